// f32 6x16 microkernel, AVX2 + FMA (layouts in gemm_driver.h). 12 ymm accumulators
// (6 rows x 2 vectors of 8 columns), 2 for the B row, 1 for the broadcast A value: 15 of 16
// registers. Per k step: 2 loads of B, 6 broadcasts of A, 12 FMAs, so the two FMA ports stay
// busy while the loads go through the two load ports. The C tile is prefetched by the driver,
// not here: prefetch code in this function makes GCC spill an accumulator (-6%, measured).
#include <immintrin.h>

#include "cpu/gemm/float_kernels.h"

namespace aicc::cpu::gemm_internal {

void ukernel_f32_6x16_avx2(int64_t kc, const void* a_words, const void* b_words, float* c, int64_t ldc,
                           int accumulate) {
  const float* a = static_cast<const float*>(a_words);  // kF32 words
  const float* b = static_cast<const float*>(b_words);
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();

#define AICC_STEP(P)                                                   \
  {                                                                    \
    const __m256 b0 = _mm256_load_ps(b + (P) * 16);                    \
    const __m256 b1 = _mm256_load_ps(b + (P) * 16 + 8);                \
    __m256 ai = _mm256_broadcast_ss(a + (P) * 6 + 0);                  \
    c00 = _mm256_fmadd_ps(ai, b0, c00);                                \
    c01 = _mm256_fmadd_ps(ai, b1, c01);                                \
    ai = _mm256_broadcast_ss(a + (P) * 6 + 1);                         \
    c10 = _mm256_fmadd_ps(ai, b0, c10);                                \
    c11 = _mm256_fmadd_ps(ai, b1, c11);                                \
    ai = _mm256_broadcast_ss(a + (P) * 6 + 2);                         \
    c20 = _mm256_fmadd_ps(ai, b0, c20);                                \
    c21 = _mm256_fmadd_ps(ai, b1, c21);                                \
    ai = _mm256_broadcast_ss(a + (P) * 6 + 3);                         \
    c30 = _mm256_fmadd_ps(ai, b0, c30);                                \
    c31 = _mm256_fmadd_ps(ai, b1, c31);                                \
    ai = _mm256_broadcast_ss(a + (P) * 6 + 4);                         \
    c40 = _mm256_fmadd_ps(ai, b0, c40);                                \
    c41 = _mm256_fmadd_ps(ai, b1, c41);                                \
    ai = _mm256_broadcast_ss(a + (P) * 6 + 5);                         \
    c50 = _mm256_fmadd_ps(ai, b0, c50);                                \
    c51 = _mm256_fmadd_ps(ai, b1, c51);                                \
  }

  int64_t p = 0;
  for (; p + 4 <= kc; p += 4) {
    // The next B rows are 4 * 64 bytes ahead: one line per step.
    _mm_prefetch(reinterpret_cast<const char*>(b + 4 * 16 * 4), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b + 4 * 16 * 4 + 32), _MM_HINT_T0);
    AICC_STEP(0) AICC_STEP(1) AICC_STEP(2) AICC_STEP(3)
    a += 4 * 6;
    b += 4 * 16;
  }
  for (; p < kc; ++p) {
    AICC_STEP(0)
    a += 6;
    b += 16;
  }
#undef AICC_STEP

  auto put = [&](float* row, __m256 v0, __m256 v1) {
    if (accumulate) {
      v0 = _mm256_add_ps(_mm256_loadu_ps(row), v0);
      v1 = _mm256_add_ps(_mm256_loadu_ps(row + 8), v1);
    }
    _mm256_storeu_ps(row, v0);
    _mm256_storeu_ps(row + 8, v1);
  };
  put(c + 0 * ldc, c00, c01);
  put(c + 1 * ldc, c10, c11);
  put(c + 2 * ldc, c20, c21);
  put(c + 3 * ldc, c30, c31);
  put(c + 4 * ldc, c40, c41);
  put(c + 5 * ldc, c50, c51);
}

}  // namespace aicc::cpu::gemm_internal
