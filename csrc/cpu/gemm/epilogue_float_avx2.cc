// Tile epilogue, AVX2/F16C: 8 columns at a time where out (and C, when read) have unit column
// stride; other layouts and the tail columns go through the scalar element epilogue, which
// computes the same f32 operations in the same order.
#include <immintrin.h>

#include "cpu/gemm/float_kernels.h"
#include "cpu/gemm/gelu_avx2.h"

namespace aicc::cpu::gemm_internal {
namespace {

inline __m256 load8_any(const void* base, DType t, int64_t off) {
  switch (t) {
    case DType::kF16:
      return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + off)));
    case DType::kBF16: {
      const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + off));
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    default: return _mm256_loadu_ps(static_cast<const float*>(base) + off);
  }
}

// f32 -> bf16, round half to even; NaN -> quiet NaN with the sign and top payload kept
// (bit-identical to f32_to_bf16 in common/half.h).
inline __m128i f32_to_bf16_8(__m256 x) {
  const __m256i u = _mm256_castps_si256(x);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb), 16);
  const __m256i qnan = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
  const __m256i is_nan = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
  r = _mm256_blendv_epi8(r, qnan, is_nan);
  // Pack the 8 low halves (values < 2^16, so unsigned saturation is exact) into 8 x u16.
  const __m128i lo = _mm256_castsi256_si128(r), hi = _mm256_extracti128_si256(r, 1);
  return _mm_packus_epi32(lo, hi);
}

inline void store8_any(void* base, DType t, int64_t off, __m256 y) {
  switch (t) {
    case DType::kF16:
      // vcvtps2ph with round-to-nearest-even agrees with f32_to_f16 (common/half.h) on every
      // input, NaN payloads and overflow to inf included.
      _mm_storeu_si128(reinterpret_cast<__m128i*>(static_cast<uint16_t*>(base) + off),
                       _mm256_cvtps_ph(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
      break;
    case DType::kBF16:
      _mm_storeu_si128(reinterpret_cast<__m128i*>(static_cast<uint16_t*>(base) + off), f32_to_bf16_8(y));
      break;
    default: _mm256_storeu_ps(static_cast<float*>(base) + off, y); break;
  }
}

}  // namespace

void epilogue_tile_avx2(const Epilogue& ep, const float* tile, int64_t ldt, int64_t i0, int64_t j0, int mr,
                        int nr) {
  const MatrixView& o = ep.out;
  const MatrixView& c = ep.c;
  const bool read_c = ep.beta != 0.0f;
  const bool vector = o.col_stride == 1 && (!read_c || c.col_stride <= 1);
  const int nv = vector ? nr / 8 * 8 : 0;
  const __m256 alpha = _mm256_set1_ps(ep.alpha), beta = _mm256_set1_ps(ep.beta);
  const __m256 zero = _mm256_setzero_ps();
  // Everything the vector loop reads from `ep`, in locals: the intrinsic stores may alias
  // anything, so fields read through `ep` would be reloaded (and re-tested) every 8 elements.
  const float* const scale = ep.scale;
  const float* const bias = ep.bias;
  const bool per_row = ep.bias_per_row;
  const void* const res = ep.residual.data;
  const DType res_dtype = ep.residual.dtype;
  const int64_t res_ld = ep.residual.row_stride;
  const Activation act = ep.activation;
  void* const odata = o.data;
  const DType odtype = o.dtype;
  const int64_t o_ld = o.row_stride;
  for (int i = 0; i < mr; ++i) {
    const int64_t row = i0 + i;
    const float* t = tile + i * ldt;
    const __m256 row_bias = bias && per_row ? _mm256_set1_ps(bias[row]) : zero;
    const __m256 row_scale = scale && per_row ? _mm256_set1_ps(scale[row]) : zero;
    for (int j = 0; j < nv; j += 8) {
      const int64_t col = j0 + j;
      __m256 y = _mm256_mul_ps(alpha, _mm256_loadu_ps(t + j));
      if (scale) y = _mm256_mul_ps(y, per_row ? row_scale : _mm256_loadu_ps(scale + col));
      if (read_c) {
        const int64_t off = row * c.row_stride + col * c.col_stride;
        const __m256 cv = c.col_stride == 0 ? _mm256_set1_ps(load_f32(c.data, c.dtype, off))
                                            : load8_any(c.data, c.dtype, off);
        y = _mm256_add_ps(y, _mm256_mul_ps(beta, cv));
      }
      if (bias) y = _mm256_add_ps(y, per_row ? row_bias : _mm256_loadu_ps(bias + col));
      if (res) y = _mm256_add_ps(y, load8_any(res, res_dtype, row * res_ld + col));
      if (act == Activation::kRelu) y = _mm256_max_ps(zero, y);  // NaN in y stays NaN
      else if (act == Activation::kGelu) y = gelu8_avx2(y);
      store8_any(odata, odtype, row * o_ld + col, y);
    }
    for (int j = nv; j < nr; ++j) {
      const int64_t col = j0 + j;
      float y = epilogue_linear(ep, t[j], row, col);
      if (ep.activation == Activation::kRelu) {
        y = relu_f32(y);
      } else if (ep.activation == Activation::kGelu) {
        // The vector gelu here too, so a value does not depend on its position in the tile.
        y = _mm256_cvtss_f32(gelu8_avx2(_mm256_set1_ps(y)));
      }
      store_f32(o.data, o.dtype, row * o.row_stride + col * o.col_stride, y);
    }
  }
}

}  // namespace aicc::cpu::gemm_internal
