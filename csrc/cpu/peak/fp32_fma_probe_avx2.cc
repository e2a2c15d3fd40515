// f32 FMA peak loop, AVX2+FMA: 12 independent ymm accumulators. Two FMA ports with a
// 4-cycle latency need at least 8 chains in flight; 12 leaves margin for 5-cycle parts
// while staying inside the 16 ymm registers (12 accumulators + 2 operands).
#include <immintrin.h>

#include "cpu/peak/peak_probes.h"

namespace aicc::peak {

namespace {
constexpr int kAcc = 12;
}

int fp32_fma_flops_per_iter_avx2() { return kAcc * 8 * 2; }

double fp32_fma_loop_avx2(int64_t iters, float seed) {
  // acc = acc * m + c converges to c / (1 - m): values stay normal (no denormal slow path).
  const __m256 m = _mm256_set1_ps(0.999999f);
  const __m256 c = _mm256_set1_ps(1e-6f);
  __m256 acc[kAcc];
  for (int j = 0; j < kAcc; ++j) acc[j] = _mm256_set1_ps(seed + static_cast<float>(j));
  for (int64_t i = 0; i < iters; ++i) {
    acc[0] = _mm256_fmadd_ps(acc[0], m, c);
    acc[1] = _mm256_fmadd_ps(acc[1], m, c);
    acc[2] = _mm256_fmadd_ps(acc[2], m, c);
    acc[3] = _mm256_fmadd_ps(acc[3], m, c);
    acc[4] = _mm256_fmadd_ps(acc[4], m, c);
    acc[5] = _mm256_fmadd_ps(acc[5], m, c);
    acc[6] = _mm256_fmadd_ps(acc[6], m, c);
    acc[7] = _mm256_fmadd_ps(acc[7], m, c);
    acc[8] = _mm256_fmadd_ps(acc[8], m, c);
    acc[9] = _mm256_fmadd_ps(acc[9], m, c);
    acc[10] = _mm256_fmadd_ps(acc[10], m, c);
    acc[11] = _mm256_fmadd_ps(acc[11], m, c);
  }
  __m256 sum = acc[0];
  for (int j = 1; j < kAcc; ++j) sum = _mm256_add_ps(sum, acc[j]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  double total = 0;
  for (float v : lanes) total += v;
  return total;
}

}  // namespace aicc::peak
