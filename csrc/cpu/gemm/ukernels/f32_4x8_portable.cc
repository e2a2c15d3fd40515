// f32 4x8 microkernel in plain C++ (layouts in gemm_driver.h). The fixed-size accumulator
// array is what the compiler keeps in registers and vectorizes at the baseline ISA
// (8 SSE2 registers on x86-64, 8 NEON registers on aarch64).
#include "cpu/gemm/float_kernels.h"

namespace aicc::cpu::gemm_internal {

void ukernel_f32_4x8_portable(int64_t kc, const void* a_words, const void* b_words, float* c, int64_t ldc,
                              int accumulate) {
  const float* a = static_cast<const float*>(a_words);  // kF32 words
  const float* b = static_cast<const float*>(b_words);
  constexpr int MR = 4, NR = 8;
  float acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; ++p) {
    for (int i = 0; i < MR; ++i) {
      const float ai = a[i];
      for (int j = 0; j < NR; ++j) acc[i][j] += ai * b[j];
    }
    a += MR;
    b += NR;
  }
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
    if (accumulate) {
      for (int j = 0; j < NR; ++j) ci[j] += acc[i][j];
    } else {
      for (int j = 0; j < NR; ++j) ci[j] = acc[i][j];
    }
  }
}

}  // namespace aicc::cpu::gemm_internal
