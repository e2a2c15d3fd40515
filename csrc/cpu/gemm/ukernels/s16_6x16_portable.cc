// INT8 GEMM microkernel, portable C++: a 6x16 int32 tile over int16 K-pair panels. The B
// panel is planar per pair ([kp][2][16]: the 16 even-k values, then the 16 odd-k ones) so the
// column loop is unit-stride and compilers vectorize it (SSE2, NEON). Exact: int16 x int16
// products summed in int32, with the same bound as the vector kernels (qgemm_internal.h).
#include "cpu/gemm/qgemm_internal.h"

namespace aicc::cpu::qgemm_detail {

void ukernel_s16_6x16_portable(int64_t kp, const void* a_, const void* b_, int32_t* c, bool accumulate) {
  const int16_t* a = static_cast<const int16_t*>(a_);
  const int16_t* b = static_cast<const int16_t*>(b_);
  int32_t acc[kMR][kNR];
  for (int i = 0; i < kMR; ++i)
    for (int j = 0; j < kNR; ++j) acc[i][j] = accumulate ? c[i * kNR + j] : 0;
  for (int64_t p = 0; p < kp; ++p) {
    const int16_t* ap = a + p * kMR * 2;
    const int16_t* b0 = b + p * kNR * 2;
    const int16_t* b1 = b0 + kNR;
    for (int i = 0; i < kMR; ++i) {
      const int32_t a0 = ap[2 * i], a1 = ap[2 * i + 1];
      for (int j = 0; j < kNR; ++j) acc[i][j] += a0 * b0[j] + a1 * b1[j];
    }
  }
  for (int i = 0; i < kMR; ++i)
    for (int j = 0; j < kNR; ++j) c[i * kNR + j] = acc[i][j];
}

}  // namespace aicc::cpu::qgemm_detail
