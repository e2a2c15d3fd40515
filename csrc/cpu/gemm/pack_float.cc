// Packing strided f32/f16/bf16 matrices into microkernel panels (portable path + dispatch).
#include <algorithm>
#include <cstring>

#include "cpu/gemm/float_kernels.h"
#include "cpu/gemm/gemm_driver.h"

namespace aicc::cpu::gemm_internal {
namespace {

// dst[p*w + l] = src(l, p) for l < valid, 0 for valid <= l < w; src(l, p) at
// base + l*ls + p*ps (elements). One template per dtype so the inner loop has no switch.
template <typename Load>
void pack_panel(Load load, int64_t ls, int64_t ps, int64_t valid, int64_t kc, int w, float* dst) {
  for (int64_t p = 0; p < kc; ++p) {
    float* d = dst + p * w;
    int64_t off = p * ps;
    for (int64_t l = 0; l < valid; ++l, off += ls) d[l] = load(off);
    for (int64_t l = valid; l < w; ++l) d[l] = 0.0f;
  }
}

// Packs `count` lanes (rows of A or columns of B) in panels of w; lane l, depth p at
// base + l*ls + p*ps.
template <typename Load>
void pack_lanes(Load load, int64_t ls, int64_t ps, int64_t count, int64_t kc, int w, float* dst) {
  for (int64_t l0 = 0; l0 < count; l0 += w) {
    auto shifted = [&](int64_t off) { return load(off + l0 * ls); };
    pack_panel(shifted, ls, ps, std::min<int64_t>(w, count - l0), kc, w, dst);
    dst += static_cast<int64_t>(w) * kc;
  }
}

void pack_strided(const MatrixView& v, int64_t lane0, int64_t count, int64_t p0, int64_t kc, int w,
                  bool lanes_are_rows, float* dst) {
  const int64_t ls = lanes_are_rows ? v.row_stride : v.col_stride;
  const int64_t ps = lanes_are_rows ? v.col_stride : v.row_stride;
  const int64_t base = lane0 * ls + p0 * ps;
  switch (v.dtype) {
    case DType::kF16: {
      const uint16_t* s = static_cast<const uint16_t*>(v.data) + base;
      pack_lanes([s](int64_t o) { return f16_to_f32(s[o]); }, ls, ps, count, kc, w, dst);
      break;
    }
    case DType::kBF16: {
      const uint16_t* s = static_cast<const uint16_t*>(v.data) + base;
      pack_lanes([s](int64_t o) { return bf16_to_f32(s[o]); }, ls, ps, count, kc, w, dst);
      break;
    }
    default: {
      const float* s = static_cast<const float*>(v.data) + base;
      pack_lanes([s](int64_t o) { return s[o]; }, ls, ps, count, kc, w, dst);
      break;
    }
  }
}

}  // namespace

void pack_a_portable(const MatrixView& a, int64_t i0, int64_t mc, int64_t p0, int64_t kc, int mr, float* dst) {
  pack_strided(a, i0, mc, p0, kc, mr, /*lanes_are_rows=*/true, dst);
}

void pack_b_portable(const MatrixView& b, int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr, float* dst) {
  pack_strided(b, j0, nc, p0, kc, nr, /*lanes_are_rows=*/false, dst);
}

void MatrixAPacker::pack(int64_t i0, int64_t mc, int64_t p0, int64_t kc, int mr, float* dst) const {
#if defined(AICC_X86)
  if (active_isa() >= Isa::kAvx2 && pack_a_avx2(a_, i0, mc, p0, kc, mr, dst)) return;
#endif
  pack_a_portable(a_, i0, mc, p0, kc, mr, dst);
}

void MatrixBPacker::pack(int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr, float* dst) const {
#if defined(AICC_X86)
  if (active_isa() >= Isa::kAvx2 && pack_b_avx2(b_, p0, kc, j0, nc, nr, dst)) return;
#endif
  pack_b_portable(b_, p0, kc, j0, nc, nr, dst);
}

}  // namespace aicc::cpu::gemm_internal
