// f32 FMA peak probe, AVX2: 12 independent vfmadd chains (2 FMA ports x 4-5 cycles of latency
// need at least 8-10 in flight), the same register budget as the 6x16 GEMM microkernel.
#include <immintrin.h>

#include "cpu/peak/fma_peak.h"

namespace aicc::cpu {

int64_t fma_probe_avx2(int64_t iterations, float* sink) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(0.001f * static_cast<float>(i));
  const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iterations; ++it) {
    acc[0] = _mm256_fmadd_ps(acc[0], x, y);
    acc[1] = _mm256_fmadd_ps(acc[1], x, y);
    acc[2] = _mm256_fmadd_ps(acc[2], x, y);
    acc[3] = _mm256_fmadd_ps(acc[3], x, y);
    acc[4] = _mm256_fmadd_ps(acc[4], x, y);
    acc[5] = _mm256_fmadd_ps(acc[5], x, y);
    acc[6] = _mm256_fmadd_ps(acc[6], x, y);
    acc[7] = _mm256_fmadd_ps(acc[7], x, y);
    acc[8] = _mm256_fmadd_ps(acc[8], x, y);
    acc[9] = _mm256_fmadd_ps(acc[9], x, y);
    acc[10] = _mm256_fmadd_ps(acc[10], x, y);
    acc[11] = _mm256_fmadd_ps(acc[11], x, y);
  }
  __m256 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, s);
  for (float v : lanes) *sink += v;
  return iterations * 12 * 8 * 2;
}

}  // namespace aicc::cpu
