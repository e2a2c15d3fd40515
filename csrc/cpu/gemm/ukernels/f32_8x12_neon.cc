// f32 8x12 microkernel, NEON (layouts in gemm_driver.h, kF32 words). Register plan of the
// 32 128-bit registers: 24 accumulators (8 rows x 3 vectors of 4 columns), 3 for the B row of
// 12 columns, 2 for the 8 A values (fmla by element reads the A value from a lane, so A is
// never broadcast): 29. Per k: 24 fmla for 5 128-bit loads, the ideal of one fmla per 4 output
// lanes (the tile of OpenBLAS / XNNPACK's Cortex-A7x f32 kernels).
//
// Numerics: fmla is a fused multiply-add (one rounding per k), like the x86 FMA kernels.
#include <arm_neon.h>

#include "cpu/gemm/aarch64_kernels.h"
#include "cpu/gemm/float_kernels.h"

namespace aicc::cpu::gemm_internal {

void ukernel_f32_8x12_neon(int64_t kc, const void* a_words, const void* b_words, float* c, int64_t ldc,
                           int accumulate) {
  const float* a = static_cast<const float*>(a_words);
  const float* b = static_cast<const float*>(b_words);
  float32x4_t c00 = vdupq_n_f32(0), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;
  float32x4_t c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;
  float32x4_t c40 = c00, c41 = c00, c42 = c00, c50 = c00, c51 = c00, c52 = c00;
  float32x4_t c60 = c00, c61 = c00, c62 = c00, c70 = c00, c71 = c00, c72 = c00;

#define AICC_ROW(A, L, C0, C1, C2)   \
  C0 = vfmaq_laneq_f32(C0, b0, A, L); \
  C1 = vfmaq_laneq_f32(C1, b1, A, L); \
  C2 = vfmaq_laneq_f32(C2, b2, A, L);
#define AICC_STEP(P)                                                            \
  {                                                                             \
    const float32x4_t a0 = vld1q_f32(a + 8 * (P)), a1 = vld1q_f32(a + 8 * (P) + 4); \
    const float32x4_t b0 = vld1q_f32(b + 12 * (P)), b1 = vld1q_f32(b + 12 * (P) + 4); \
    const float32x4_t b2 = vld1q_f32(b + 12 * (P) + 8);                         \
    AICC_ROW(a0, 0, c00, c01, c02)                                              \
    AICC_ROW(a0, 1, c10, c11, c12)                                              \
    AICC_ROW(a0, 2, c20, c21, c22)                                              \
    AICC_ROW(a0, 3, c30, c31, c32)                                              \
    AICC_ROW(a1, 0, c40, c41, c42)                                              \
    AICC_ROW(a1, 1, c50, c51, c52)                                              \
    AICC_ROW(a1, 2, c60, c61, c62)                                              \
    AICC_ROW(a1, 3, c70, c71, c72)                                              \
  }

  // One k step per iteration: with 29 of the 32 vector registers live, a wider unroll makes
  // GCC copy accumulators between registers and spill (tools/aarch64_insn_report.py).
  for (int64_t p = 0; p < kc; ++p) {
    AICC_STEP(0)
    a += 8;
    b += 12;
  }
#undef AICC_STEP
#undef AICC_ROW

  auto put = [&](float* row, float32x4_t v0, float32x4_t v1, float32x4_t v2) {
    if (accumulate) {
      v0 = vaddq_f32(vld1q_f32(row), v0);
      v1 = vaddq_f32(vld1q_f32(row + 4), v1);
      v2 = vaddq_f32(vld1q_f32(row + 8), v2);
    }
    vst1q_f32(row, v0);
    vst1q_f32(row + 4, v1);
    vst1q_f32(row + 8, v2);
  };
  put(c + 0 * ldc, c00, c01, c02);
  put(c + 1 * ldc, c10, c11, c12);
  put(c + 2 * ldc, c20, c21, c22);
  put(c + 3 * ldc, c30, c31, c32);
  put(c + 4 * ldc, c40, c41, c42);
  put(c + 5 * ldc, c50, c51, c52);
  put(c + 6 * ldc, c60, c61, c62);
  put(c + 7 * ldc, c70, c71, c72);
}

}  // namespace aicc::cpu::gemm_internal
