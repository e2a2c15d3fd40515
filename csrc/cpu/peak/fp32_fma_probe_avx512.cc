// f32 FMA peak loop, AVX-512F: 16 independent zmm accumulators, the probe for the f32 GEMM's
// 12x32 AVX-512 microkernel (active ISA avx512). Two 512-bit FMA ports with a 4-cycle latency
// need at least 8 chains in flight; 16 leaves margin and fits in the 32 zmm registers.
#include <immintrin.h>

#include "cpu/peak/peak_probes.h"

namespace aicc::peak {

namespace {
constexpr int kAcc = 16;
}

int fp32_fma_flops_per_iter_avx512() { return kAcc * 16 * 2; }

double fp32_fma_loop_avx512(int64_t iters, float seed) {
  // acc = acc * m + c converges to c / (1 - m): values stay normal (no denormal slow path).
  const __m512 m = _mm512_set1_ps(0.999999f);
  const __m512 c = _mm512_set1_ps(1e-6f);
  __m512 acc[kAcc];
  for (int j = 0; j < kAcc; ++j) acc[j] = _mm512_set1_ps(seed + static_cast<float>(j));
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < kAcc; ++j) acc[j] = _mm512_fmadd_ps(acc[j], m, c);
  }
  __m512 sum = acc[0];
  for (int j = 1; j < kAcc; ++j) sum = _mm512_add_ps(sum, acc[j]);
  return static_cast<double>(_mm512_reduce_add_ps(sum));
}

}  // namespace aicc::peak
