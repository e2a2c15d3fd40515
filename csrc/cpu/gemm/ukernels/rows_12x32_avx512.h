// The 12x32 AVX-512 microkernels (f32 FMA, bf16-pair vdpbf16ps) for a tile of fewer than 12
// rows: only the first R = 4, 8 or 12 rows of the packed 12-row A panel are multiplied and
// only the tile's `rows` rows of c are stored (FloatRowsUkernel, gemm_driver.h). The full
// kernel multiplies the zero rows that pad the panel like real ones; where M leaves a tail of
// 4 rows (a conv with 64 output channels as the rows of A: 5 full tiles and a sixth of 4
// rows) that was a ninth of the work. Per element the products and sums are the full
// kernel's, in its order (same instruction, same operand order), so the bits are the same.
// The same template with a B row stride ldb (in words; 32 for a packed panel) is the f32
// kernel that reads B in place from the rows of a row-major matrix (FloatStridedBUkernel).
// Included by the kernel files, which compile it with their ISA flags.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace aicc::cpu::gemm_internal::rows12x32 {

// One k word of R rows: acc[i] += a_word(i) . b(q) for both 16-column halves.
template <int R, bool kBf16Pairs>
inline void step(const int32_t* a, const float* b, __m512 (&acc)[R][2]) {
  // Unaligned loads: in place (FloatStridedBUkernel) a row starts anywhere; on aligned packed
  // panels they cost the same as aligned ones.
  const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 12
  for (int i = 0; i < R; ++i) {
    if constexpr (kBf16Pairs) {
      const __m512bh ai = (__m512bh)_mm512_set1_epi32(a[i]);
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, (__m512bh)b0);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, (__m512bh)b1);
    } else {
      const __m512 ai = _mm512_set1_ps(reinterpret_cast<const float*>(a)[i]);
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
    }
  }
}

template <int R, bool kBf16Pairs, bool kStrided = false>
inline void kernel(int rows, int64_t kw, const void* a_words, const void* b_words, float* c, int64_t ldc,
                   int accumulate, int64_t ldb = 32) {
  const int32_t* a = static_cast<const int32_t*>(a_words);  // 12 words per k word, rows first
  const float* b = static_cast<const float*>(b_words);      // 32 words of row q at b + q * ldb
  if constexpr (!kStrided) ldb = 32;
  __m512 acc[R][2];
#pragma GCC unroll 12
  for (int i = 0; i < R; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  auto prefetch_row = [&](int64_t ahead) {
    const char* p = reinterpret_cast<const char*>(b + ahead * ldb);
    _mm_prefetch(p, _MM_HINT_T0);
    _mm_prefetch(p + 64, _MM_HINT_T0);
    if constexpr (kStrided) {
      // In place, the panel's rows are a matrix's rows; the driver runs the next panel (the
      // next 32 columns of the same rows) after this one, whose first tile would otherwise
      // wait on memory for every row: asked for into L2 while this panel computes.
      _mm_prefetch(p + 128, _MM_HINT_T1);
      _mm_prefetch(p + 192, _MM_HINT_T1);
    }
  };
  int64_t q = 0;
  for (; q + 4 <= kw; q += 4) {
    // B rows 8 steps ahead, as the full kernels do.
    prefetch_row(8);
    prefetch_row(9);
    step<R, kBf16Pairs>(a, b, acc);
    step<R, kBf16Pairs>(a + 12, b + ldb, acc);
    prefetch_row(10);
    prefetch_row(11);
    step<R, kBf16Pairs>(a + 24, b + 2 * ldb, acc);
    step<R, kBf16Pairs>(a + 36, b + 3 * ldb, acc);
    a += 4 * 12;
    b += 4 * ldb;
  }
  for (; q < kw; ++q, a += 12, b += ldb) step<R, kBf16Pairs>(a, b, acc);
  // The sum from zero, then added to c (the full kernels' order); rows past `rows` not stored.
#pragma GCC unroll 12
  for (int i = 0; i < R; ++i) {
    if (i >= rows) break;
    float* row = c + i * ldc;
    __m512 v0 = acc[i][0], v1 = acc[i][1];
    if (accumulate) {
      v0 = _mm512_add_ps(_mm512_loadu_ps(row), v0);
      v1 = _mm512_add_ps(_mm512_loadu_ps(row + 16), v1);
    }
    _mm512_storeu_ps(row, v0);
    _mm512_storeu_ps(row + 16, v1);
  }
}

// B read in place (unaligned rows: the step's loads are aligned loads only for packed panels).
template <bool kBf16Pairs>
inline void dispatch_strided(int rows, int64_t kw, const void* a, const void* b, int64_t ldb, float* c, int64_t ldc,
                             int accumulate) {
  if (rows <= 4) kernel<4, kBf16Pairs, true>(rows, kw, a, b, c, ldc, accumulate, ldb);
  else if (rows <= 8) kernel<8, kBf16Pairs, true>(rows, kw, a, b, c, ldc, accumulate, ldb);
  else kernel<12, kBf16Pairs, true>(rows, kw, a, b, c, ldc, accumulate, ldb);
}

template <bool kBf16Pairs>
inline void dispatch(int rows, int64_t kw, const void* a, const void* b, float* c, int64_t ldc, int accumulate) {
  if (rows <= 4) kernel<4, kBf16Pairs>(rows, kw, a, b, c, ldc, accumulate);
  else if (rows <= 8) kernel<8, kBf16Pairs>(rows, kw, a, b, c, ldc, accumulate);
  else kernel<12, kBf16Pairs>(rows, kw, a, b, c, ldc, accumulate);
}

}  // namespace aicc::cpu::gemm_internal::rows12x32
