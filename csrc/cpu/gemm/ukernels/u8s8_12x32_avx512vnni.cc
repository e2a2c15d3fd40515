// INT8 GEMM microkernel, AVX-512 VNNI: a 12x32 int32 tile (24 zmm accumulators) over byte-quad
// panels (A: [kq][12][4] u8, B: [kq][32][4] s8). vpdpbusd adds four exact u8 x s8 products to
// each int32 lane, wrapping (no saturation: the non-"s" form), so the raw sums are exact modulo
// 2^32; the driver folds the zero points in after (qgemm_driver.cc) and the final value fits.
#include <immintrin.h>

#include <cstring>

#include "cpu/gemm/qgemm_internal.h"

namespace aicc::cpu::qgemm_detail {

void ukernel_u8s8_12x32_avx512vnni(int64_t kq, const void* a_, const void* b_, int32_t* c, bool accumulate) {
  constexpr int MR = kVnniMR;
  const uint8_t* a = static_cast<const uint8_t*>(a_);
  const int8_t* b = static_cast<const int8_t*>(b_);
  __m512i acc[MR][2];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    acc[i][0] = accumulate ? _mm512_load_si512(c + i * kVnniNR) : _mm512_setzero_si512();
    acc[i][1] = accumulate ? _mm512_load_si512(c + i * kVnniNR + 16) : _mm512_setzero_si512();
  }
  for (int64_t p = 0; p < kq; ++p) {
    const __m512i b0 = _mm512_load_si512(b);
    const __m512i b1 = _mm512_load_si512(b + 64);
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      int32_t word;
      std::memcpy(&word, a + 4 * i, sizeof(word));
      const __m512i x = _mm512_set1_epi32(word);
      acc[i][0] = _mm512_dpbusd_epi32(acc[i][0], x, b0);
      acc[i][1] = _mm512_dpbusd_epi32(acc[i][1], x, b1);
    }
    a += 4 * MR;
    b += 4 * kVnniNR;
  }
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    _mm512_store_si512(c + i * kVnniNR, acc[i][0]);
    _mm512_store_si512(c + i * kVnniNR + 16, acc[i][1]);
  }
}

}  // namespace aicc::cpu::qgemm_detail
