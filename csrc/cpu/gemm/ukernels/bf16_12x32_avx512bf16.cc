// bf16 12x32 microkernel, AVX512_BF16 (layouts in gemm_driver.h, kBF16Pair words): each
// vdpbf16ps multiplies 16 columns x one k pair and adds both products into f32 lanes, so one
// instruction does the work of two f32 FMAs. Registers as in the f32 12x32 kernel: 24 zmm
// accumulators (12 rows x 2 vectors of 16 columns), 2 for the B word row, 1 for the broadcast
// A pair: 27 of 32.
//
// Numerics (docs/SEMANTICS.md): products of bf16 values are exact in f32; each vdpbf16ps adds
// the pair's two products into the accumulator one after the other with round-to-nearest-even,
// and it treats denormal inputs as zero and flushes denormal results to zero, whatever MXCSR says.
#include <immintrin.h>

#include "cpu/gemm/epilogue_avx512_inl.h"
#include "cpu/gemm/float_kernels.h"
#include "cpu/gemm/ukernels/indirect_12x32_avx512.h"
#include "cpu/gemm/ukernels/rows_12x32_avx512.h"

namespace aicc::cpu::gemm_internal {

void ukernel_bf16_12x32_avx512bf16(int64_t kw, const void* a_words, const void* b_words, float* c, int64_t ldc,
                                   int accumulate) {
  const int32_t* a = static_cast<const int32_t*>(a_words);
  const __m512i* b = static_cast<const __m512i*>(b_words);
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

#define AICC_ROW(Q, I, C0, C1)                                      \
  ai = (__m512bh)_mm512_set1_epi32(a[(Q) * 12 + (I)]);              \
  C0 = _mm512_dpbf16_ps(C0, ai, b0);                                \
  C1 = _mm512_dpbf16_ps(C1, ai, b1);
#define AICC_STEP(Q)                                                \
  {                                                                 \
    const __m512bh b0 = (__m512bh)_mm512_load_si512(b + 2 * (Q));   \
    const __m512bh b1 = (__m512bh)_mm512_load_si512(b + 2 * (Q) + 1); \
    __m512bh ai;                                                    \
    AICC_ROW(Q, 0, c00, c01)                                        \
    AICC_ROW(Q, 1, c10, c11)                                        \
    AICC_ROW(Q, 2, c20, c21)                                        \
    AICC_ROW(Q, 3, c30, c31)                                        \
    AICC_ROW(Q, 4, c40, c41)                                        \
    AICC_ROW(Q, 5, c50, c51)                                        \
    AICC_ROW(Q, 6, c60, c61)                                        \
    AICC_ROW(Q, 7, c70, c71)                                        \
    AICC_ROW(Q, 8, c80, c81)                                        \
    AICC_ROW(Q, 9, c90, c91)                                        \
    AICC_ROW(Q, 10, cA0, cA1)                                       \
    AICC_ROW(Q, 11, cB0, cB1)                                       \
  }

  int64_t q = 0;
  for (; q + 4 <= kw; q += 4) {
    // B word rows 8 steps ahead (two lines per step), as in the f32 kernel.
    _mm_prefetch(reinterpret_cast<const char*>(b + 16), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b + 17), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b + 18), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b + 19), _MM_HINT_T0);
    AICC_STEP(0) AICC_STEP(1)
    _mm_prefetch(reinterpret_cast<const char*>(b + 20), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b + 21), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b + 22), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b + 23), _MM_HINT_T0);
    AICC_STEP(2) AICC_STEP(3)
    a += 4 * 12;
    b += 4 * 2;
  }
  for (; q < kw; ++q) {
    AICC_STEP(0)
    a += 12;
    b += 2;
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

// A in place (bf16 rows, pair words): indirect_12x32_avx512.h with vdpbf16ps.
void ukernel_bf16_12x32_avx512bf16_rows(int rows, int64_t kw, const void* a, const void* b, float* c, int64_t ldc,
                                        int accumulate) {
  rows12x32::dispatch<true>(rows, kw, a, b, c, ldc, accumulate);
}

AICC_DEFINE_INDIRECT_12X32_AVX512(ukernel_bf16_12x32_avx512bf16_indirect, AICC_I12_LOOP_RB, "vdpbf16ps")
AICC_DEFINE_INDIRECT_12X32_AVX512_EPILOGUE(ukernel_bf16_12x32_avx512bf16_indirect_epilogue, AICC_I12_LOOP_RB, "vdpbf16ps")

}  // namespace aicc::cpu::gemm_internal
