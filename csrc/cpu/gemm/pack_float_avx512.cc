// AVX-512 packers of f32 matrices into kF32 panels (layouts in gemm_driver.h) for the 12x32
// entry, for the two layouts a weight gradient streams through the packers at every call:
//   A with unit row stride (column-major: a conv's G^T, or its column matrix, pixel-major),
//     12-row panels: four k steps of a panel are 48 contiguous destination floats, built from
//     four 12-float runs with three vpermt2ps and written as three whole 64-byte stores;
//   B with unit column stride (row-major), 32-column panels: two zmm per k row.
// Everything else (other dtypes, tiles and layouts) goes to the AVX2 packers. Values are
// copied as they are.
#include <immintrin.h>

#include "cpu/gemm/float_kernels.h"

namespace aicc::cpu::gemm_internal {
namespace {

// vpermt2ps indices: lanes [0, n) take the first operand from lane `from_a`, the rest the
// second operand from lane 0 (index 16 + t selects lane t of the second operand).
inline __m512i splice_index(int from_a, int n) {
  alignas(64) int32_t idx[16];
  for (int t = 0; t < 16; ++t) idx[t] = t < n ? from_a + t : 16 + (t - n);
  return _mm512_load_si512(idx);
}

// A column-major (a[i, p] at a + p * ld + i), `panels` full 12-row panels from row i0, depth
// [p0, p0 + kc): panel r at dst + r * 12 * kc, word (i, q) at q * 12 + i. The loop walks the
// depth outside and the panels inside, so each source row (k step) is read once, front to back:
// walking panel by panel read every 1 KiB-strided row once per panel and cost half as much as
// the multiply in a 1x1 256->64 @56 weight gradient.
void pack_a_cols12(const float* a, int64_t ld, int64_t i0, int64_t p0, int64_t kc, int64_t panels, float* dst) {
  const __mmask16 twelve = 0x0FFF;
  // 48 destination floats = rows q..q+3 of 12: [r0 0-11, r1 0-3], [r1 4-11, r2 0-7], [r2 8-11, r3 0-11].
  const __m512i first = splice_index(0, 12), second = splice_index(4, 8), third = splice_index(8, 4);
  int64_t p = 0;
  for (; p + 4 <= kc; p += 4) {
    const float* s0 = a + (p0 + p) * ld + i0;
    const float* s1 = s0 + ld;
    const float* s2 = s1 + ld;
    const float* s3 = s2 + ld;
    float* d = dst + p * 12;
    for (int64_t r = 0; r < panels; ++r, d += 12 * kc) {
      const int64_t o = r * 12;
      const __m512 r0 = _mm512_maskz_loadu_ps(twelve, s0 + o), r1 = _mm512_maskz_loadu_ps(twelve, s1 + o);
      const __m512 r2 = _mm512_maskz_loadu_ps(twelve, s2 + o), r3 = _mm512_maskz_loadu_ps(twelve, s3 + o);
      _mm512_storeu_ps(d, _mm512_permutex2var_ps(r0, first, r1));
      _mm512_storeu_ps(d + 16, _mm512_permutex2var_ps(r1, second, r2));
      _mm512_storeu_ps(d + 32, _mm512_permutex2var_ps(r2, third, r3));
    }
  }
  for (; p < kc; ++p) {
    const float* s = a + (p0 + p) * ld + i0;
    float* d = dst + p * 12;
    for (int64_t r = 0; r < panels; ++r, d += 12 * kc)
      _mm512_mask_storeu_ps(d, twelve, _mm512_maskz_loadu_ps(twelve, s + r * 12));
  }
}

// B row-major (b[p, j] at b + p * ld + j), `panels` full 32-column panels from column j0.
void pack_b_rows32(const float* b, int64_t ld, int64_t p0, int64_t kc, int64_t j0, int64_t panels, float* dst) {
  for (int64_t s = 0; s < panels; ++s) {
    const float* src = b + p0 * ld + j0 + s * 32;
    float* d = dst + s * 32 * kc;
    for (int64_t p = 0; p < kc; ++p, src += ld, d += 32) {
      _mm512_storeu_ps(d, _mm512_loadu_ps(src));
      _mm512_storeu_ps(d + 16, _mm512_loadu_ps(src + 16));
    }
  }
}

}  // namespace

bool pack_a_f32_avx512(const MatrixView& a, int64_t i0, int64_t mc, int64_t p0, int64_t kc, int mr, void* dst_words) {
  if (mr != 12 || a.dtype != DType::kF32 || a.row_stride != 1 || a.col_stride < 0)
    return pack_a_avx2(a, i0, mc, p0, kc, mr, dst_words);
  float* dst = static_cast<float*>(dst_words);
  const int64_t panels = mc / 12;
  pack_a_cols12(static_cast<const float*>(a.data), a.col_stride, i0, p0, kc, panels, dst);
  if (mc % 12) pack_a_portable(a, i0 + panels * 12, mc % 12, p0, kc, 12, PanelWord::kF32, dst + panels * 12 * kc);
  return true;
}

bool pack_b_f32_avx512(const MatrixView& b, int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr, void* dst_words) {
  if (nr != 32 || b.dtype != DType::kF32 || b.col_stride != 1 || b.row_stride < 0)
    return pack_b_avx2(b, p0, kc, j0, nc, nr, dst_words);
  float* dst = static_cast<float*>(dst_words);
  const int64_t panels = nc / 32;
  pack_b_rows32(static_cast<const float*>(b.data), b.row_stride, p0, kc, j0, panels, dst);
  if (nc % 32) pack_b_portable(b, p0, kc, j0 + panels * 32, nc % 32, 32, PanelWord::kF32, dst + panels * 32 * kc);
  return true;
}

}  // namespace aicc::cpu::gemm_internal
