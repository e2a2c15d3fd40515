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

typedef uint32_t VU __attribute__((vector_size(VL * 4)));
typedef int32_t VI __attribute__((vector_size(VL * 4)));
typedef uint16_t VH __attribute__((vector_size(VL * 2)));

// One vector of results at element `idx` of dst: f32, or bf16 rounded half to even (NaN -> quiet
// NaN with the sign and top payload, as f32_to_bf16 in common/half.h).
inline void store_row(V y, char* dst, int64_t idx, bool bf16) {
  if (!bf16) {
    std::memcpy(dst + idx * 4, &y, sizeof y);
    return;
  }
  const VU u = reinterpret_cast<VU>(y);
  const VU rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const VI nan = (u & 0x7fffffffu) > 0x7f800000u;
  const VU r = nan ? (u >> 16) | 0x40u : rounded;
  const VH h = __builtin_convertvector(r, VH);
  std::memcpy(dst + idx * 2, &h, sizeof h);
}

// The accumulators of one tile, through bias / relu / rounding, into o.dst.
template <int MR, int NV>
inline void store_tile(V (&acc)[MR][NV], const SmallCStore& o) {
  V b[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) b[v] = o.bias ? ldv(o.bias + v * VL) : V{};
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    if (i >= o.rows) break;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      V y = acc[i][v];
      if (o.bias) y += b[v];
      if (o.relu) y = y < 0 ? V{} : y;  // NaN stays NaN
      store_row(y, static_cast<char*>(o.dst), i * o.ldd + v * VL, o.bf16);
    }
  }
}

template <int NV>
void tile_t(const float* a, int64_t step, const int32_t* off, int64_t depth, const float* w, const SmallCStore& o) {
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
  store_tile<MR, NV>(acc, o);
}

#if defined(AICC_SMALLC_PAIRS)
// bf16 pair words: one vdpbf16ps per (pixel, weight vector) adds both products of the word.
template <int NV>
void tile_pairs_t(const uint32_t* a, int64_t step, const int32_t* off, int64_t words, const uint32_t* w,
                  const SmallCStore& o) {
  static_assert(VL == 16, "vdpbf16ps on zmm");
  constexpr int MR = mr_for(NV);
  V acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = V{};
  for (int64_t t = 0; t < words; ++t, w += NV * VL) {
    __m512bh wv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) wv[v] = (__m512bh)_mm512_loadu_si512(w + v * VL);
    const uint32_t* at = a + off[t];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m512bh ai = (__m512bh)_mm512_set1_epi32(static_cast<int>(at[i * step]));
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = reinterpret_cast<V>(_mm512_dpbf16_ps(reinterpret_cast<__m512>(acc[i][v]), ai, wv[v]));
    }
  }
  store_tile<MR, NV>(acc, o);
}

void tile_pairs(int nv, const uint32_t* a, int64_t step, const int32_t* off, int64_t words, const uint32_t* w,
                const SmallCStore& o) {
  switch (nv) {
    case 1: tile_pairs_t<1>(a, step, off, words, w, o); break;
    case 2: tile_pairs_t<2>(a, step, off, words, w, o); break;
    case 3: tile_pairs_t<3>(a, step, off, words, w, o); break;
    default: tile_pairs_t<4>(a, step, off, words, w, o); break;
  }
}
constexpr auto kTilePairs = tile_pairs;

// NCHW over pair words: MR output channels x NQ vectors of 16 pixels; per word t, NQ loads of
// 16 pixel words and MR broadcast weight words, MR*NQ vdpbf16ps.
template <int MR, int NQ>
void tile_rows_pairs_t(const uint32_t* x, const int32_t* off, int64_t words, const uint32_t* w, int64_t ldw,
                       const SmallCStore& o) {
  static_assert(VL == 16, "vdpbf16ps on zmm");
  V acc[MR][NQ];
#pragma GCC unroll 24
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < NQ; ++v) acc[i][v] = V{};
  for (int64_t t = 0; t < words; ++t, w += ldw) {
    __m512bh xv[NQ];
#pragma GCC unroll 2
    for (int v = 0; v < NQ; ++v) xv[v] = (__m512bh)_mm512_loadu_si512(x + off[t] + v * VL);
#pragma GCC unroll 24
    for (int i = 0; i < MR; ++i) {
      const __m512bh wi = (__m512bh)_mm512_set1_epi32(static_cast<int>(w[i]));
#pragma GCC unroll 2
      for (int v = 0; v < NQ; ++v)
        acc[i][v] = reinterpret_cast<V>(_mm512_dpbf16_ps(reinterpret_cast<__m512>(acc[i][v]), wi, xv[v]));
    }
  }
#pragma GCC unroll 24
  for (int i = 0; i < MR; ++i) {
    const V b = o.bias ? splat(o.bias[i]) : V{};
#pragma GCC unroll 2
    for (int v = 0; v < NQ; ++v) {
      V y = acc[i][v];
      if (o.bias) y += b;
      if (o.relu) y = y < 0 ? V{} : y;  // NaN stays NaN
      store_row(y, static_cast<char*>(o.dst), i * o.ldd + v * VL, o.bf16);
    }
  }
}
#else
constexpr decltype(SmallCOps::tile_pairs) kTilePairs = nullptr;
#endif

// NCHW: MR output channels x one vector of VL consecutive output pixels; the weights of a tap
// are MR consecutive floats (broadcast), the pixels one contiguous load.
template <int MR>
void tile_rows_t(const float* x, const int32_t* off, int64_t depth, const float* w, int64_t ldw,
                 const SmallCStore& o) {
  V acc[MR];
#pragma GCC unroll 24
  for (int i = 0; i < MR; ++i) acc[i] = V{};
  for (int64_t t = 0; t < depth; ++t, w += ldw) {
    const V xv = ldv(x + off[t]);
#pragma GCC unroll 24
    for (int i = 0; i < MR; ++i) acc[i] += splat(w[i]) * xv;
  }
#pragma GCC unroll 24
  for (int i = 0; i < MR; ++i) {
    V y = acc[i];
    if (o.bias) y += splat(o.bias[i]);
    if (o.relu) y = y < 0 ? V{} : y;  // NaN stays NaN
    store_row(y, static_cast<char*>(o.dst), i * o.ldd, o.bf16);
  }
}

constexpr int kRowsMR0 = ACC >= 24 ? 24 : 12, kRowsMR1 = ACC >= 24 ? 16 : 8, kRowsMR2 = ACC >= 24 ? 12 : 6,
              kRowsMR3 = ACC >= 24 ? 8 : 4;

void tile_rows(int mr, const float* x, const int32_t* off, int64_t depth, const float* w, int64_t ldw,
               const SmallCStore& o) {
  if (mr == kRowsMR0) tile_rows_t<kRowsMR0>(x, off, depth, w, ldw, o);
  else if (mr == kRowsMR1) tile_rows_t<kRowsMR1>(x, off, depth, w, ldw, o);
  else if (mr == kRowsMR2) tile_rows_t<kRowsMR2>(x, off, depth, w, ldw, o);
  else tile_rows_t<kRowsMR3>(x, off, depth, w, ldw, o);
}

constexpr int kMaxNV = ACC >= 24 ? 4 : 2;

int mr(int nv) { return mr_for(nv); }

void tile(int nv, const float* a, int64_t step, const int32_t* off, int64_t depth, const float* w,
          const SmallCStore& o) {
  switch (nv) {
    case 1: tile_t<1>(a, step, off, depth, w, o); break;
    case 2: tile_t<2>(a, step, off, depth, w, o); break;
    case 3: if constexpr (kMaxNV >= 3) tile_t<kMaxNV >= 3 ? 3 : 1>(a, step, off, depth, w, o); break;
    default: if constexpr (kMaxNV >= 4) tile_t<kMaxNV >= 4 ? 4 : 1>(a, step, off, depth, w, o); break;
  }
}

#if defined(AICC_SMALLC_PAIRS)
void tile_rows_pairs(int mr, int nq, const uint32_t* x, const int32_t* off, int64_t words, const uint32_t* w,
                     int64_t ldw, const SmallCStore& o) {
  if (mr == 12) {
    if (nq == 2) tile_rows_pairs_t<12, 2>(x, off, words, w, ldw, o);
    else tile_rows_pairs_t<12, 1>(x, off, words, w, ldw, o);
  } else {
    if (nq == 2) tile_rows_pairs_t<8, 2>(x, off, words, w, ldw, o);
    else tile_rows_pairs_t<8, 1>(x, off, words, w, ldw, o);
  }
}
constexpr auto kTileRowsPairs = tile_rows_pairs;
#else
constexpr decltype(SmallCOps::tile_rows_pairs) kTileRowsPairs = nullptr;
#endif

const SmallCOps& ops() {
  static const SmallCOps o = {VL, kMaxNV, mr, tile, kTilePairs, {kRowsMR0, kRowsMR1, kRowsMR2, kRowsMR3, 0}, tile_rows,
                              {12, 8, 0}, kTileRowsPairs};
  return o;
}

}  // namespace
}  // namespace aicc::cpu::smallck
