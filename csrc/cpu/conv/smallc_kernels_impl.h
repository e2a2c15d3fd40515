// The small-C direct conv tile kernel (smallc_conv2d.h) as a template over GCC vector types,
// compiled once per ISA file with its own lane count AICC_SMALLC_VL (portable 4, avx2 8,
// avx512 16 floats) and accumulator budget AICC_SMALLC_ACC (registers: 24 of the 32 zmm,
// 12 of the 16 ymm/xmm).
#pragma once

#include <cstdint>
#include <cstring>

#include "cpu/conv/smallc_conv2d.h"

#if defined(__AVX__)
#include <immintrin.h>
#endif

#if !defined(AICC_SMALLC_VL) || !defined(AICC_SMALLC_ACC)
#error "define AICC_SMALLC_VL and AICC_SMALLC_ACC before including smallc_kernels_impl.h"
#endif

namespace aicc::cpu::smallck {
// Internal linkage: each ISA file keeps its own copy.
namespace {

constexpr int VL = AICC_SMALLC_VL;
constexpr int ACC = AICC_SMALLC_ACC;
typedef float V __attribute__((vector_size(VL * 4)));

// Pixels per tile for nv weight vectors: the accumulator budget, at most 12 (each pixel keeps
// its i*step offset in a general register).
constexpr int mr_for(int nv) { return ACC / nv < 12 ? ACC / nv : 12; }

// All lanes = x (one vbroadcastss; `V{} + x` would add +0.0 and turn -0.0 into +0.0).
// (A lane-by-lane loop compiles to masked inserts at 16 lanes.)
inline V splat(float x) {
#if defined(__AVX512F__) && AICC_SMALLC_VL == 16
  return reinterpret_cast<V>(_mm512_set1_ps(x));
#elif defined(__AVX__) && AICC_SMALLC_VL == 8
  return reinterpret_cast<V>(_mm256_set1_ps(x));
#else
  static_assert(VL == 4, "the portable entry is 4 lanes");
  return V{x, x, x, x};
#endif
}

inline V ldv(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <int NV>
void tile_t(const float* a, int64_t step, const int32_t* off, int64_t depth, const float* w, float* dst,
            int64_t ldd) {
  constexpr int MR = mr_for(NV);
  V acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = V{};
  for (int64_t t = 0; t < depth; ++t, w += NV * VL) {
    V wv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) wv[v] = ldv(w + v * VL);
    const float* at = a + off[t];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const V ai = splat(at[i * step]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] += ai * wv[v];
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) std::memcpy(dst + i * ldd + v * VL, &acc[i][v], sizeof(V));
}

constexpr int kMaxNV = ACC >= 24 ? 4 : 2;

int mr(int nv) { return mr_for(nv); }

void tile(int nv, const float* a, int64_t step, const int32_t* off, int64_t depth, const float* w, float* dst,
          int64_t ldd) {
  switch (nv) {
    case 1: tile_t<1>(a, step, off, depth, w, dst, ldd); break;
    case 2: tile_t<2>(a, step, off, depth, w, dst, ldd); break;
    case 3: if constexpr (kMaxNV >= 3) tile_t<kMaxNV >= 3 ? 3 : 1>(a, step, off, depth, w, dst, ldd); break;
    default: if constexpr (kMaxNV >= 4) tile_t<kMaxNV >= 4 ? 4 : 1>(a, step, off, depth, w, dst, ldd); break;
  }
}

const SmallCOps& ops() {
  static const SmallCOps o = {VL, kMaxNV, mr, tile};
  return o;
}

}  // namespace
}  // namespace aicc::cpu::smallck
