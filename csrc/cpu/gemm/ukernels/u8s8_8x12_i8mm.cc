// INT8 8x12 microkernel, usmmla (aarch64 i8mm; layouts in aarch64_kernels.h, pair words, A in
// the u8 domain as on VNNI). One usmmla multiplies a 2x8 u8 block of A (two rows, 8 k) by an
// 8x2 s8 block of B (two columns) into a 2x2 int32 block: 32 multiply-adds, twice an sdot's 16.
// Registers: 24 accumulators (4 row pairs x 6 column pairs), 6 B column pairs, A row pairs
// loaded one at a time: 31. Per 8 k: 24 usmmla for 10 128-bit loads.
//
// Exact: u8 x s8 products summed in int32 (wrapping; the driver folds the zero points modulo
// 2^32). An odd last quad word is widened to 8 k with zeros, which add nothing.
#include <arm_neon.h>

#include "cpu/gemm/aarch64_kernels.h"
#include "cpu/gemm/qgemm_internal.h"

namespace aicc::cpu::qgemm_detail {

namespace {
// [x (4 bytes), y (4 bytes)] -> [x, 0, y, 0] as 32-bit lanes: a 2x8 usmmla operand whose second
// half of k is zero.
inline uint8x16_t widen_half_u8(const uint8_t* p) {
  const uint32x2_t w = vreinterpret_u32_u8(vld1_u8(p));
  return vreinterpretq_u8_u32(vzip1q_u32(vcombine_u32(w, w), vdupq_n_u32(0)));
}
inline int8x16_t widen_half_s8(const int8_t* p) {
  return vreinterpretq_s8_u8(widen_half_u8(reinterpret_cast<const uint8_t*>(p)));
}
}  // namespace

// GCC's pre-allocation scheduler hoists all four A loads above the first usmmla, which needs 34
// live registers and spills three accumulators per iteration (40 instructions per 8 k instead
// of 36, tools/aarch64_insn_report.py); without that pass the A row pairs load one at a time.
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-schedule-insns")))
#endif
void ukernel_u8s8_8x12_i8mm(int64_t kq, const void* a_words, const void* b_words, int32_t* c, bool accumulate) {
  const uint8_t* a = static_cast<const uint8_t*>(a_words);
  const int8_t* b = static_cast<const int8_t*>(b_words);
  // cRC: row pair R, column pair C; lanes (2R, 2C), (2R, 2C+1), (2R+1, 2C), (2R+1, 2C+1).
  int32x4_t c00 = vdupq_n_s32(0), c01 = c00, c02 = c00, c03 = c00, c04 = c00, c05 = c00;
  int32x4_t c10 = c00, c11 = c00, c12 = c00, c13 = c00, c14 = c00, c15 = c00;
  int32x4_t c20 = c00, c21 = c00, c22 = c00, c23 = c00, c24 = c00, c25 = c00;
  int32x4_t c30 = c00, c31 = c00, c32 = c00, c33 = c00, c34 = c00, c35 = c00;

#define AICC_ROWPAIR(AR, C0, C1, C2, C3, C4, C5) \
  C0 = vusmmlaq_s32(C0, AR, b0);                 \
  C1 = vusmmlaq_s32(C1, AR, b1);                 \
  C2 = vusmmlaq_s32(C2, AR, b2);                 \
  C3 = vusmmlaq_s32(C3, AR, b3);                 \
  C4 = vusmmlaq_s32(C4, AR, b4);                 \
  C5 = vusmmlaq_s32(C5, AR, b5);
#define AICC_BLOCK(LA, LB)                                                                     \
  {                                                                                            \
    const int8x16_t b0 = LB(0), b1 = LB(1), b2 = LB(2), b3 = LB(3), b4 = LB(4), b5 = LB(5);    \
    uint8x16_t ar = LA(0);                                                                     \
    AICC_ROWPAIR(ar, c00, c01, c02, c03, c04, c05)                                             \
    ar = LA(1);                                                                                \
    AICC_ROWPAIR(ar, c10, c11, c12, c13, c14, c15)                                             \
    ar = LA(2);                                                                                \
    AICC_ROWPAIR(ar, c20, c21, c22, c23, c24, c25)                                             \
    ar = LA(3);                                                                                \
    AICC_ROWPAIR(ar, c30, c31, c32, c33, c34, c35)                                             \
  }
#define AICC_LOAD_A(R) vld1q_u8(a + 16 * (R))
#define AICC_LOAD_B(C) vld1q_s8(b + 16 * (C))
#define AICC_HALF_A(R) widen_half_u8(a + 8 * (R))
#define AICC_HALF_B(C) widen_half_s8(b + 8 * (C))

  int64_t q = 0;
  for (; q + 2 <= kq; q += 2) {
    AICC_BLOCK(AICC_LOAD_A, AICC_LOAD_B)
    a += 2 * kMmlaMR * 4;
    b += 2 * kMmlaNR * 4;
  }
  if (q < kq) AICC_BLOCK(AICC_HALF_A, AICC_HALF_B)
#undef AICC_HALF_B
#undef AICC_HALF_A
#undef AICC_LOAD_B
#undef AICC_LOAD_A
#undef AICC_BLOCK
#undef AICC_ROWPAIR

  constexpr int NR = kMmlaNR;
  // Row pair R: row 2R is the low halves of its six blocks, row 2R+1 the high halves.
  auto put = [&](int R, int32x4_t v0, int32x4_t v1, int32x4_t v2, int32x4_t v3, int32x4_t v4, int32x4_t v5) {
    int32_t* r0 = c + 2 * R * NR;
    int32_t* r1 = r0 + NR;
    const int64x2_t w0 = vreinterpretq_s64_s32(v0), w1 = vreinterpretq_s64_s32(v1);
    const int64x2_t w2 = vreinterpretq_s64_s32(v2), w3 = vreinterpretq_s64_s32(v3);
    const int64x2_t w4 = vreinterpretq_s64_s32(v4), w5 = vreinterpretq_s64_s32(v5);
    int32x4_t lo0 = vreinterpretq_s32_s64(vzip1q_s64(w0, w1)), hi0 = vreinterpretq_s32_s64(vzip2q_s64(w0, w1));
    int32x4_t lo1 = vreinterpretq_s32_s64(vzip1q_s64(w2, w3)), hi1 = vreinterpretq_s32_s64(vzip2q_s64(w2, w3));
    int32x4_t lo2 = vreinterpretq_s32_s64(vzip1q_s64(w4, w5)), hi2 = vreinterpretq_s32_s64(vzip2q_s64(w4, w5));
    if (accumulate) {
      lo0 = vaddq_s32(vld1q_s32(r0), lo0);
      lo1 = vaddq_s32(vld1q_s32(r0 + 4), lo1);
      lo2 = vaddq_s32(vld1q_s32(r0 + 8), lo2);
      hi0 = vaddq_s32(vld1q_s32(r1), hi0);
      hi1 = vaddq_s32(vld1q_s32(r1 + 4), hi1);
      hi2 = vaddq_s32(vld1q_s32(r1 + 8), hi2);
    }
    vst1q_s32(r0, lo0);
    vst1q_s32(r0 + 4, lo1);
    vst1q_s32(r0 + 8, lo2);
    vst1q_s32(r1, hi0);
    vst1q_s32(r1 + 4, hi1);
    vst1q_s32(r1 + 8, hi2);
  };
  put(0, c00, c01, c02, c03, c04, c05);
  put(1, c10, c11, c12, c13, c14, c15);
  put(2, c20, c21, c22, c23, c24, c25);
  put(3, c30, c31, c32, c33, c34, c35);
}

}  // namespace aicc::cpu::qgemm_detail
