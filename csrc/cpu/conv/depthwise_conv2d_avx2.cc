// AVX2/FMA/F16C primitives of the depthwise conv (see depthwise_conv2d.h): accumulators
// stay in registers across every tap of an output, f16/bf16 widen to f32 on load. The NHWC
// primitives are depthwise_kernels_impl.h at 8 floats per vector.
#include <immintrin.h>

#define AICC_DW_VL 8
#include "cpu/conv/depthwise_kernels_impl.h"

#include <algorithm>
#include <cmath>

#include "common/half.h"
#include "cpu/conv/depthwise_conv2d.h"

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

// max(0, v) keeps NaN: _mm256_max_ps returns its second operand when either is NaN.
inline __m256 relu8(__m256 v) { return _mm256_max_ps(_mm256_setzero_ps(), v); }
inline float relu1(float v) { return v > 0.0f ? v : (std::isnan(v) ? v : 0.0f); }

template <DType T>
void row_nchw(const void* const* rows, const float* w, int R, int S, int64_t Q, int64_t W, int64_t stride,
              int64_t dil, int64_t pad_left, float bias, bool relu, float* dst) {
  // Columns q whose every tap is inside [0, W): [q_lo, q_hi); vectorized there for stride 1.
  const int64_t q_lo = std::min(Q, (pad_left + stride - 1) / stride);
  const int64_t last = W - 1 - (S - 1) * dil + pad_left;  // q*stride <= last
  const int64_t q_hi = last < 0 ? q_lo : std::max(q_lo, std::min(Q, last / stride + 1));
  const auto scalar = [&](int64_t q) {
    float a = 0.0f;
    for (int r = 0; r < R; ++r) {
      if (!rows[r]) continue;
      for (int s = 0; s < S; ++s) {
        const int64_t col = q * stride + s * dil - pad_left;
        if (col >= 0 && col < W) a = std::fma(load1<T>(rows[r], col), w[r * S + s], a);
      }
    }
    a += bias;
    dst[q] = relu ? relu1(a) : a;
  };
  for (int64_t q = 0; q < q_lo; ++q) scalar(q);
  int64_t q = q_lo;
  if (stride == 1) {
    const __m256 bv = _mm256_set1_ps(bias);
    for (; q + 16 <= q_hi; q += 16) {
      __m256 a0 = _mm256_setzero_ps(), a1 = a0;
      for (int r = 0; r < R; ++r) {
        if (!rows[r]) continue;
        for (int s = 0; s < S; ++s) {
          const __m256 wv = _mm256_set1_ps(w[r * S + s]);
          const int64_t col = q + s * dil - pad_left;
          a0 = _mm256_fmadd_ps(load8<T>(rows[r], col), wv, a0);
          a1 = _mm256_fmadd_ps(load8<T>(rows[r], col + 8), wv, a1);
        }
      }
      a0 = _mm256_add_ps(a0, bv);
      a1 = _mm256_add_ps(a1, bv);
      _mm256_storeu_ps(dst + q, relu ? relu8(a0) : a0);
      _mm256_storeu_ps(dst + q + 8, relu ? relu8(a1) : a1);
    }
    for (; q + 8 <= q_hi; q += 8) {
      __m256 a0 = _mm256_setzero_ps();
      for (int r = 0; r < R; ++r) {
        if (!rows[r]) continue;
        for (int s = 0; s < S; ++s)
          a0 = _mm256_fmadd_ps(load8<T>(rows[r], q + s * dil - pad_left), _mm256_set1_ps(w[r * S + s]), a0);
      }
      a0 = _mm256_add_ps(a0, bv);
      _mm256_storeu_ps(dst + q, relu ? relu8(a0) : a0);
    }
  }
  for (; q < Q; ++q) scalar(q);
}

}  // namespace

const DepthwiseOps& depthwise_ops_avx2(DType t) {
  static const DepthwiseOps f32 = dwk::float_ops<float>(row_nchw<DType::kF32>);
  static const DepthwiseOps f16 = dwk::float_ops<dwk::F16>(row_nchw<DType::kF16>);
  static const DepthwiseOps bf16 = dwk::float_ops<dwk::BF16>(row_nchw<DType::kBF16>);
  static const DepthwiseOps u8 = dwk::int8_ops<uint8_t>();
  static const DepthwiseOps s8 = dwk::int8_ops<int8_t>();
  switch (t) {
    case DType::kF16: return f16;
    case DType::kBF16: return bf16;
    case DType::kU8: return u8;
    case DType::kS8: return s8;
    default: return f32;
  }
}

}  // namespace aicc::cpu
