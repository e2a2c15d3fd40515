// f32 multiply-add peak loop in plain C++: what the portable GEMM path can reach on a
// machine without AVX2 (the compiler vectorizes it for the baseline ISA, e.g. SSE2 or NEON).
#include "cpu/peak/peak_probes.h"

namespace aicc::peak {

namespace {
constexpr int kAcc = 32;  // 8 SSE/NEON vectors of 4 lanes: enough chains for mul+add latency
}

int fp32_fma_flops_per_iter_portable() { return kAcc * 2; }

double fp32_fma_loop_portable(int64_t iters, float seed) {
  float acc[kAcc];
  for (int j = 0; j < kAcc; ++j) acc[j] = seed + static_cast<float>(j);
  const float m = 0.999999f;
  const float c = 1e-6f;
  for (int64_t i = 0; i < iters; ++i) {
    for (int j = 0; j < kAcc; ++j) acc[j] = acc[j] * m + c;
  }
  double total = 0;
  for (float v : acc) total += v;
  return total;
}

}  // namespace aicc::peak
