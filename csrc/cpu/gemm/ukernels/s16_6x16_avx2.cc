// INT8 GEMM microkernel, AVX2: a 6x16 int32 tile (12 ymm accumulators) over int16 K-pair
// panels (layouts in qgemm_internal.h). Per K-pair: two 16-column B vectors, six broadcast
// A pairs, 12 vpmaddwd + 12 vpaddd. vpmaddwd sums two exact int16 products into int32 (no
// saturating step: vpmaddubsw is not used, see docs/INT8_DESIGN.md).
#include <immintrin.h>

#include <cstring>

#include "cpu/gemm/qgemm_internal.h"

namespace aicc::cpu::qgemm_detail {
namespace {

inline __m256i broadcast_pair(const int16_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return _mm256_set1_epi32(v);
}

}  // namespace

void ukernel_s16_6x16_avx2(int64_t kp, const void* a_, const void* b_, int32_t* c, bool accumulate) {
  const int16_t* a = static_cast<const int16_t*>(a_);
  const int16_t* b = static_cast<const int16_t*>(b_);
  __m256i c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
  if (accumulate) {
    c00 = _mm256_load_si256(reinterpret_cast<const __m256i*>(c + 0 * kNR));
    c01 = _mm256_load_si256(reinterpret_cast<const __m256i*>(c + 0 * kNR + 8));
    c10 = _mm256_load_si256(reinterpret_cast<const __m256i*>(c + 1 * kNR));
    c11 = _mm256_load_si256(reinterpret_cast<const __m256i*>(c + 1 * kNR + 8));
    c20 = _mm256_load_si256(reinterpret_cast<const __m256i*>(c + 2 * kNR));
    c21 = _mm256_load_si256(reinterpret_cast<const __m256i*>(c + 2 * kNR + 8));
    c30 = _mm256_load_si256(reinterpret_cast<const __m256i*>(c + 3 * kNR));
    c31 = _mm256_load_si256(reinterpret_cast<const __m256i*>(c + 3 * kNR + 8));
    c40 = _mm256_load_si256(reinterpret_cast<const __m256i*>(c + 4 * kNR));
    c41 = _mm256_load_si256(reinterpret_cast<const __m256i*>(c + 4 * kNR + 8));
    c50 = _mm256_load_si256(reinterpret_cast<const __m256i*>(c + 5 * kNR));
    c51 = _mm256_load_si256(reinterpret_cast<const __m256i*>(c + 5 * kNR + 8));
  } else {
    c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = _mm256_setzero_si256();
  }
#pragma GCC unroll 4
  for (int64_t p = 0; p < kp; ++p) {
    const __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b));
    const __m256i b1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + 16));
    __m256i x = broadcast_pair(a + 0);
    c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(x, b0));
    c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(x, b1));
    x = broadcast_pair(a + 2);
    c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(x, b0));
    c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(x, b1));
    x = broadcast_pair(a + 4);
    c20 = _mm256_add_epi32(c20, _mm256_madd_epi16(x, b0));
    c21 = _mm256_add_epi32(c21, _mm256_madd_epi16(x, b1));
    x = broadcast_pair(a + 6);
    c30 = _mm256_add_epi32(c30, _mm256_madd_epi16(x, b0));
    c31 = _mm256_add_epi32(c31, _mm256_madd_epi16(x, b1));
    x = broadcast_pair(a + 8);
    c40 = _mm256_add_epi32(c40, _mm256_madd_epi16(x, b0));
    c41 = _mm256_add_epi32(c41, _mm256_madd_epi16(x, b1));
    x = broadcast_pair(a + 10);
    c50 = _mm256_add_epi32(c50, _mm256_madd_epi16(x, b0));
    c51 = _mm256_add_epi32(c51, _mm256_madd_epi16(x, b1));
    a += kMR * 2;
    b += kNR * 2;
  }
  _mm256_store_si256(reinterpret_cast<__m256i*>(c + 0 * kNR), c00);
  _mm256_store_si256(reinterpret_cast<__m256i*>(c + 0 * kNR + 8), c01);
  _mm256_store_si256(reinterpret_cast<__m256i*>(c + 1 * kNR), c10);
  _mm256_store_si256(reinterpret_cast<__m256i*>(c + 1 * kNR + 8), c11);
  _mm256_store_si256(reinterpret_cast<__m256i*>(c + 2 * kNR), c20);
  _mm256_store_si256(reinterpret_cast<__m256i*>(c + 2 * kNR + 8), c21);
  _mm256_store_si256(reinterpret_cast<__m256i*>(c + 3 * kNR), c30);
  _mm256_store_si256(reinterpret_cast<__m256i*>(c + 3 * kNR + 8), c31);
  _mm256_store_si256(reinterpret_cast<__m256i*>(c + 4 * kNR), c40);
  _mm256_store_si256(reinterpret_cast<__m256i*>(c + 4 * kNR + 8), c41);
  _mm256_store_si256(reinterpret_cast<__m256i*>(c + 5 * kNR), c50);
  _mm256_store_si256(reinterpret_cast<__m256i*>(c + 5 * kNR + 8), c51);
}

}  // namespace aicc::cpu::qgemm_detail
