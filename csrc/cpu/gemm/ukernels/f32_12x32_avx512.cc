// f32 12x32 microkernel, AVX-512F (layouts in gemm_driver.h). 24 zmm accumulators
// (12 rows x 2 vectors of 16 columns), 2 for the B row, 1 for the broadcast A value: 27 of 32
// registers. Per k step: 2 aligned loads of B (one 128-byte row of the 32-column panel),
// 12 broadcasts of A, 24 FMAs; 24 independent accumulators cover the 4-cycle FMA latency on
// two 512-bit FMA ports three times over. As in the AVX2 kernel, the C tile is prefetched by
// the driver, and the sum is formed from zero and then added to C (`accumulate`). The same
// code with A read in place from a column-major source is the strided-A kernel.
#include <immintrin.h>

#include "cpu/gemm/epilogue_avx512_inl.h"
#include "cpu/gemm/float_kernels.h"
#include "cpu/gemm/ukernels/indirect_12x32_avx512.h"
#include "cpu/gemm/ukernels/rows_12x32_avx512.h"

namespace aicc::cpu::gemm_internal {

namespace {

// The tile product over kc k steps with A's value (i, q) at a[q * lda + i]: lda = 12 is the
// packed panel (a compile-time stride: the packed kernel's code), any other lda a column-major
// A read in place (kStridedA), whose rows 8 steps ahead are prefetched like B's.
template <bool kStridedA>
inline void tile_12x32(int64_t kc, const float* a, int64_t lda, const float* b, float* c, int64_t ldc,
                       int accumulate) {
  const int64_t as = kStridedA ? lda : 12;
  __m512 c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps();
  __m512 c10 = _mm512_setzero_ps(), c11 = _mm512_setzero_ps();
  __m512 c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps();
  __m512 c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps();
  __m512 c40 = _mm512_setzero_ps(), c41 = _mm512_setzero_ps();
  __m512 c50 = _mm512_setzero_ps(), c51 = _mm512_setzero_ps();
  __m512 c60 = _mm512_setzero_ps(), c61 = _mm512_setzero_ps();
  __m512 c70 = _mm512_setzero_ps(), c71 = _mm512_setzero_ps();
  __m512 c80 = _mm512_setzero_ps(), c81 = _mm512_setzero_ps();
  __m512 c90 = _mm512_setzero_ps(), c91 = _mm512_setzero_ps();
  __m512 cA0 = _mm512_setzero_ps(), cA1 = _mm512_setzero_ps();
  __m512 cB0 = _mm512_setzero_ps(), cB1 = _mm512_setzero_ps();

#define AICC_ROW(P, I, C0, C1)                       \
  ai = _mm512_set1_ps(a[(P) * as + (I)]);            \
  C0 = _mm512_fmadd_ps(ai, b0, C0);                  \
  C1 = _mm512_fmadd_ps(ai, b1, C1);
#define AICC_STEP(P)                                 \
  {                                                  \
    const __m512 b0 = _mm512_load_ps(b + (P) * 32);  \
    const __m512 b1 = _mm512_load_ps(b + (P) * 32 + 16); \
    __m512 ai;                                       \
    AICC_ROW(P, 0, c00, c01)                         \
    AICC_ROW(P, 1, c10, c11)                         \
    AICC_ROW(P, 2, c20, c21)                         \
    AICC_ROW(P, 3, c30, c31)                         \
    AICC_ROW(P, 4, c40, c41)                         \
    AICC_ROW(P, 5, c50, c51)                         \
    AICC_ROW(P, 6, c60, c61)                         \
    AICC_ROW(P, 7, c70, c71)                         \
    AICC_ROW(P, 8, c80, c81)                         \
    AICC_ROW(P, 9, c90, c91)                         \
    AICC_ROW(P, 10, cA0, cA1)                        \
    AICC_ROW(P, 11, cB0, cB1)                        \
  }

  int64_t p = 0;
  for (; p + 4 <= kc; p += 4) {
    // B rows 8 steps ahead (two lines per step); A is 48 bytes per step, one line per 4/3 steps.
    _mm_prefetch(reinterpret_cast<const char*>(b + 8 * 32), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b + 8 * 32 + 16), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b + 9 * 32), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b + 9 * 32 + 16), _MM_HINT_T0);
    if constexpr (kStridedA) {  // 48 bytes of each of 4 rows: one or two lines each
      for (int q = 8; q < 12; ++q) {
        _mm_prefetch(reinterpret_cast<const char*>(a + q * as), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(a + q * as + 11), _MM_HINT_T0);
      }
    }
    AICC_STEP(0) AICC_STEP(1)
    _mm_prefetch(reinterpret_cast<const char*>(b + 10 * 32), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b + 10 * 32 + 16), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b + 11 * 32), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b + 11 * 32 + 16), _MM_HINT_T0);
    AICC_STEP(2) AICC_STEP(3)
    a += 4 * as;
    b += 4 * 32;
  }
  for (; p < kc; ++p) {
    AICC_STEP(0)
    a += as;
    b += 32;
  }
#undef AICC_STEP
#undef AICC_ROW

  auto put = [&](float* row, __m512 v0, __m512 v1) {
    if (accumulate) {
      v0 = _mm512_add_ps(_mm512_loadu_ps(row), v0);
      v1 = _mm512_add_ps(_mm512_loadu_ps(row + 16), v1);
    }
    _mm512_storeu_ps(row, v0);
    _mm512_storeu_ps(row + 16, v1);
  };
  put(c + 0 * ldc, c00, c01);
  put(c + 1 * ldc, c10, c11);
  put(c + 2 * ldc, c20, c21);
  put(c + 3 * ldc, c30, c31);
  put(c + 4 * ldc, c40, c41);
  put(c + 5 * ldc, c50, c51);
  put(c + 6 * ldc, c60, c61);
  put(c + 7 * ldc, c70, c71);
  put(c + 8 * ldc, c80, c81);
  put(c + 9 * ldc, c90, c91);
  put(c + 10 * ldc, cA0, cA1);
  put(c + 11 * ldc, cB0, cB1);
}

}  // namespace

void ukernel_f32_12x32_avx512(int64_t kc, const void* a_words, const void* b_words, float* c, int64_t ldc,
                              int accumulate) {
  tile_12x32<false>(kc, static_cast<const float*>(a_words), 12, static_cast<const float*>(b_words), c, ldc,
                    accumulate);
}

void ukernel_f32_12x32_avx512_strided_a(int64_t kc, const void* a, int64_t lda, const void* b_words, float* c,
                                        int64_t ldc, int accumulate) {
  tile_12x32<true>(kc, static_cast<const float*>(a), lda, static_cast<const float*>(b_words), c, ldc, accumulate);
}

void ukernel_f32_12x32_avx512_rows(int rows, int64_t kc, const void* a, const void* b, float* c, int64_t ldc,
                                   int accumulate) {
  rows12x32::dispatch<false>(rows, kc, a, b, c, ldc, accumulate);
}

void ukernel_f32_12x32_avx512_strided_b(int rows, int64_t kc, const void* a, const void* b, int64_t ldb, float* c,
                                        int64_t ldc, int accumulate) {
  rows12x32::dispatch_strided<false>(rows, kc, a, b, ldb, c, ldc, accumulate);
}

AICC_DEFINE_INDIRECT_12X32_AVX512(ukernel_f32_12x32_avx512_indirect, AICC_I12_LOOP, "vfmadd231ps")
AICC_DEFINE_INDIRECT_12X32_AVX512_EPILOGUE(ukernel_f32_12x32_avx512_indirect_epilogue, AICC_I12_LOOP, "vfmadd231ps")

}  // namespace aicc::cpu::gemm_internal
