// AVX2/FMA/F16C row primitives of the depthwise conv (see depthwise_conv2d.h).
#include <immintrin.h>

#include <cmath>

#include "cpu/conv/depthwise_conv2d.h"
#include "common/half.h"

namespace aicc::cpu {
namespace {

template <DType T>
inline __m256 load8(const void* p, int64_t i) {
  if constexpr (T == DType::kF32) {
    return _mm256_loadu_ps(static_cast<const float*>(p) + i);
  } else if constexpr (T == DType::kF16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(p) + i)));
  } else {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(p) + i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
}

template <DType T>
inline float load1(const void* p, int64_t i) {
  if constexpr (T == DType::kF32) return static_cast<const float*>(p)[i];
  else if constexpr (T == DType::kF16) return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
  else return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
}

template <DType T>
void madd_vv(float* acc, const void* x, const float* w, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm256_storeu_ps(acc + i, _mm256_fmadd_ps(load8<T>(x, i), _mm256_loadu_ps(w + i), _mm256_loadu_ps(acc + i)));
    _mm256_storeu_ps(acc + i + 8,
                     _mm256_fmadd_ps(load8<T>(x, i + 8), _mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(acc + i + 8)));
  }
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(acc + i, _mm256_fmadd_ps(load8<T>(x, i), _mm256_loadu_ps(w + i), _mm256_loadu_ps(acc + i)));
  for (; i < n; ++i) acc[i] = std::fma(load1<T>(x, i), w[i], acc[i]);
}

template <DType T>
void madd_vs(float* acc, const void* x, int64_t stride, float w, int64_t n) {
  const __m256 wv = _mm256_set1_ps(w);
  int64_t i = 0;
  if (stride == 1) {
    for (; i + 8 <= n; i += 8)
      _mm256_storeu_ps(acc + i, _mm256_fmadd_ps(load8<T>(x, i), wv, _mm256_loadu_ps(acc + i)));
  } else if constexpr (T == DType::kF32) {
    const __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                           _mm256_set1_epi32(static_cast<int>(stride)));
    const float* xf = static_cast<const float*>(x);
    for (; i + 8 <= n; i += 8)
      _mm256_storeu_ps(acc + i, _mm256_fmadd_ps(_mm256_i32gather_ps(xf + i * stride, idx, 4), wv,
                                                _mm256_loadu_ps(acc + i)));
  }
  for (; i < n; ++i) acc[i] = std::fma(load1<T>(x, i * stride), w, acc[i]);
}

}  // namespace

const DepthwiseRowOps& depthwise_row_ops_avx2(DType t) {
  static const DepthwiseRowOps f32{madd_vv<DType::kF32>, madd_vs<DType::kF32>};
  static const DepthwiseRowOps f16{madd_vv<DType::kF16>, madd_vs<DType::kF16>};
  static const DepthwiseRowOps bf16{madd_vv<DType::kBF16>, madd_vs<DType::kBF16>};
  return t == DType::kF16 ? f16 : t == DType::kBF16 ? bf16 : f32;
}

}  // namespace aicc::cpu
