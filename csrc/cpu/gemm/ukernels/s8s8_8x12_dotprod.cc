// INT8 8x12 microkernel, sdot by element (aarch64 dotprod; layouts in aarch64_kernels.h, quad
// words, A in the s8 domain). sdot adds, into each int32 lane, the dot product of the lane's 4
// s8 of B (one column's k quad) and 4 s8 of A selected by index (one row's quad), so a B vector
// of 4 columns and an A vector of 4 rows make 4 output lanes per instruction, with no broadcast.
// Registers: 24 accumulators (8 rows x 3 vectors of 4 columns), 3 B, 2 A: 29. Per k quad:
// 24 sdot for 5 loads, the ideal of one sdot per 4 output lanes.
//
// Exact: s8 x s8 products summed in int32 (wrapping, which the driver's modular zero-point
// folding expects); the driver moves u8 activations into s8 (a - 128) and corrects with the
// row/column sums (gemm_driver.cc; PanelWord::kS8Quad, packed_a_zero_point).
#include <arm_neon.h>

#include "cpu/gemm/aarch64_kernels.h"
#include "cpu/gemm/qgemm_internal.h"

namespace aicc::cpu::qgemm_detail {

void ukernel_s8s8_8x12_dotprod(int64_t kq, const void* a_words, const void* b_words, int32_t* c, bool accumulate) {
  const int8_t* a = static_cast<const int8_t*>(a_words);
  const int8_t* b = static_cast<const int8_t*>(b_words);
  int32x4_t c00 = vdupq_n_s32(0), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;
  int32x4_t c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;
  int32x4_t c40 = c00, c41 = c00, c42 = c00, c50 = c00, c51 = c00, c52 = c00;
  int32x4_t c60 = c00, c61 = c00, c62 = c00, c70 = c00, c71 = c00, c72 = c00;

#define AICC_ROW(A, L, C0, C1, C2)    \
  C0 = vdotq_laneq_s32(C0, b0, A, L); \
  C1 = vdotq_laneq_s32(C1, b1, A, L); \
  C2 = vdotq_laneq_s32(C2, b2, A, L);
#define AICC_STEP(P)                                                                   \
  {                                                                                    \
    const int8x16_t a0 = vld1q_s8(a + 32 * (P)), a1 = vld1q_s8(a + 32 * (P) + 16);     \
    const int8x16_t b0 = vld1q_s8(b + 48 * (P)), b1 = vld1q_s8(b + 48 * (P) + 16);     \
    const int8x16_t b2 = vld1q_s8(b + 48 * (P) + 32);                                  \
    AICC_ROW(a0, 0, c00, c01, c02)                                                     \
    AICC_ROW(a0, 1, c10, c11, c12)                                                     \
    AICC_ROW(a0, 2, c20, c21, c22)                                                     \
    AICC_ROW(a0, 3, c30, c31, c32)                                                     \
    AICC_ROW(a1, 0, c40, c41, c42)                                                     \
    AICC_ROW(a1, 1, c50, c51, c52)                                                     \
    AICC_ROW(a1, 2, c60, c61, c62)                                                     \
    AICC_ROW(a1, 3, c70, c71, c72)                                                     \
  }

  // One k step per iteration: with 29 of the 32 vector registers live, a wider unroll makes
  // GCC copy accumulators between registers and spill (tools/aarch64_insn_report.py).
  for (int64_t q = 0; q < kq; ++q) {
    AICC_STEP(0)
    a += 32;
    b += 48;
  }
#undef AICC_STEP
#undef AICC_ROW

  auto put = [&](int32_t* row, int32x4_t v0, int32x4_t v1, int32x4_t v2) {
    if (accumulate) {
      v0 = vaddq_s32(vld1q_s32(row), v0);
      v1 = vaddq_s32(vld1q_s32(row + 4), v1);
      v2 = vaddq_s32(vld1q_s32(row + 8), v2);
    }
    vst1q_s32(row, v0);
    vst1q_s32(row + 4, v1);
    vst1q_s32(row + 8, v2);
  };
  constexpr int NR = kDotNR;
  put(c + 0 * NR, c00, c01, c02);
  put(c + 1 * NR, c10, c11, c12);
  put(c + 2 * NR, c20, c21, c22);
  put(c + 3 * NR, c30, c31, c32);
  put(c + 4 * NR, c40, c41, c42);
  put(c + 5 * NR, c50, c51, c52);
  put(c + 6 * NR, c60, c61, c62);
  put(c + 7 * NR, c70, c71, c72);
}

}  // namespace aicc::cpu::qgemm_detail
