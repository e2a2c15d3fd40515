// bf16 dot-product peak loop, AVX512_BF16: 16 independent zmm accumulators of vdpbf16ps (16
// lanes x one k pair = 64 FLOPs per instruction), the probe for the bf16 GEMM's
// bf16_12x32_avx512bf16 microkernel. The operands are fixed small normal values, so the sums
// stay normal (vdpbf16ps flushes subnormals) and finite over any iteration count.
#include <immintrin.h>

#include "cpu/peak/peak_probes.h"

namespace aicc::peak {

namespace {
constexpr int kAcc = 16;
}

int bf16_dot_flops_per_iter_avx512() { return kAcc * 16 * 2 * 2; }

double bf16_dot_loop_avx512(int64_t iters, int seed) {
  // bf16 pair words: 2^-20 in both halves (0x3580), times 1.0 pairs (0x3f80): each step adds 2^-19.
  const __m512bh a = (__m512bh)_mm512_set1_epi32(0x35803580);
  const __m512bh b = (__m512bh)_mm512_set1_epi32(0x3f803f80);
  __m512 acc[kAcc];
  for (int j = 0; j < kAcc; ++j) acc[j] = _mm512_set1_ps(static_cast<float>(seed + j));
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < kAcc; ++j) acc[j] = _mm512_dpbf16_ps(acc[j], a, b);
  }
  __m512 sum = acc[0];
  for (int j = 1; j < kAcc; ++j) sum = _mm512_add_ps(sum, acc[j]);
  return static_cast<double>(_mm512_reduce_add_ps(sum));
}

}  // namespace aicc::peak
