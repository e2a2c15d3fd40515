// Tile epilogue, AVX-512: 32 columns at a time, the row's last columns under a mask, for the
// layouts a conv or GEMM with a bf16 or f32 output mostly has (out with unit column stride, no
// C read, no gelu). Anything else goes to the AVX2 epilogue, which computes the same f32
// operations in the same order.
//
// Why: a bf16 output is rounded in the epilogue, and with the 8-wide AVX2 version plus its
// scalar tail that was as long as the microkernel itself on short-K layers (a 25088 x 64 x 256
// bf16 GEMM, a ResNet 1x1 64->256 conv: 43 % of the time in the epilogue, 35 % in the kernel).
#include <immintrin.h>

#include "cpu/gemm/float_kernels.h"

namespace aicc::cpu::gemm_internal {
namespace {

inline __m512 load16(const void* base, DType t, int64_t off, __mmask16 m) {
  if (t == DType::kBF16) {
    const __m256i h = _mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(base) + off);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  return _mm512_maskz_loadu_ps(m, static_cast<const float*>(base) + off);
}

// f32 -> bf16 bits in the low half of each 32-bit lane, round half to even; NaN -> quiet NaN
// with the sign and top payload kept (bit-identical to f32_to_bf16 in common/half.h and to the
// AVX2 epilogue). Not vcvtneps2bf16: that one reads f32 subnormals as zero.
inline __m512i round_bf16(__m512 x) {
  const __m512i u = _mm512_castps_si512(x);
  const __m512i hi = _mm512_srli_epi32(u, 16);
  const __m512i lsb = _mm512_and_si512(hi, _mm512_set1_epi32(1));
  const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb), 16);
  const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  return _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(hi, _mm512_set1_epi32(0x40)));
}

// The low 16 bits of the 32 lanes of (a, b), in order: one 32-element row segment. (A masked
// vpmovdw to memory, the obvious way, ran at a fraction of the rest on Zen 4.)
inline __m512i pack_low_halves(__m512i a, __m512i b) {
  alignas(64) static const uint16_t idx[32] = {0,  2,  4,  6,  8,  10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30,
                                               32, 34, 36, 38, 40, 42, 44, 46, 48, 50, 52, 54, 56, 58, 60, 62};
  return _mm512_permutex2var_epi16(a, _mm512_load_si512(idx), b);
}

inline __mmask16 lanes(int n) { return n >= 16 ? __mmask16(0xffff) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1); }

}  // namespace

void epilogue_tile_avx512(const Epilogue& ep, const float* tile, int64_t ldt, int64_t i0, int64_t j0, int mr,
                          int nr) {
  const MatrixView& o = ep.out;
  const DType rdt = ep.residual.dtype;
  const bool fast = o.col_stride == 1 && ep.beta == 0.0f && ep.activation != Activation::kGelu &&
                    (o.dtype == DType::kF32 || o.dtype == DType::kBF16) &&
                    (!ep.residual.data || rdt == DType::kF32 || rdt == DType::kBF16);
  if (!fast) {
    epilogue_tile_avx2(ep, tile, ldt, i0, j0, mr, nr);
    return;
  }
  // Everything the loop reads from `ep`, in locals (stores through intrinsics may alias them).
  const __m512 alpha = _mm512_set1_ps(ep.alpha), zero = _mm512_setzero_ps();
  // alpha == 1: 1 * y is y for every value the multiply can hand over (a quiet NaN stays the
  // same NaN), so the multiply is skipped.
  const bool unit_alpha = ep.alpha == 1.0f;
  const float* const scale = ep.scale;
  const float* const bias = ep.bias;
  const bool per_row = ep.bias_per_row;
  const void* const res = ep.residual.data;
  const int64_t res_ld = ep.residual.row_stride;
  const bool relu = ep.activation == Activation::kRelu;
  const bool bf16 = o.dtype == DType::kBF16;
  char* const odata = static_cast<char*>(o.data);
  const int64_t o_ld = o.row_stride;
  for (int i = 0; i < mr; ++i) {
    const int64_t row = i0 + i;
    const float* t = tile + i * ldt;
    const __m512 row_bias = bias && per_row ? _mm512_set1_ps(bias[row]) : zero;
    const __m512 row_scale = scale && per_row ? _mm512_set1_ps(scale[row]) : zero;
    // 32 columns at a time (two vectors: one 32-element bf16 store), the row's tail masked.
    for (int j = 0; j < nr; j += 32) {
      const __mmask16 m0 = lanes(nr - j), m1 = lanes(nr - j - 16);
      const int64_t col = j0 + j;
      __m512 y0 = _mm512_maskz_loadu_ps(m0, t + j), y1 = _mm512_maskz_loadu_ps(m1, t + j + 16);
      if (!unit_alpha) {
        y0 = _mm512_mul_ps(alpha, y0);
        y1 = _mm512_mul_ps(alpha, y1);
      }
      if (scale) {
        y0 = _mm512_mul_ps(y0, per_row ? row_scale : _mm512_maskz_loadu_ps(m0, scale + col));
        y1 = _mm512_mul_ps(y1, per_row ? row_scale : _mm512_maskz_loadu_ps(m1, scale + col + 16));
      }
      if (bias) {
        y0 = _mm512_add_ps(y0, per_row ? row_bias : _mm512_maskz_loadu_ps(m0, bias + col));
        y1 = _mm512_add_ps(y1, per_row ? row_bias : _mm512_maskz_loadu_ps(m1, bias + col + 16));
      }
      if (res) {
        y0 = _mm512_add_ps(y0, load16(res, rdt, row * res_ld + col, m0));
        y1 = _mm512_add_ps(y1, load16(res, rdt, row * res_ld + col + 16, m1));
      }
      if (relu) {  // NaN in y stays NaN (the second operand)
        y0 = _mm512_max_ps(zero, y0);
        y1 = _mm512_max_ps(zero, y1);
      }
      if (bf16) {
        const __mmask32 m = static_cast<__mmask32>(m0) | static_cast<__mmask32>(m1) << 16;
        _mm512_mask_storeu_epi16(reinterpret_cast<uint16_t*>(odata) + row * o_ld + col, m,
                                 pack_low_halves(round_bf16(y0), round_bf16(y1)));
      } else {
        float* o32 = reinterpret_cast<float*>(odata) + row * o_ld + col;
        _mm512_mask_storeu_ps(o32, m0, y0);
        _mm512_mask_storeu_ps(o32 + 16, m1, y1);
      }
    }
  }
}

}  // namespace aicc::cpu::gemm_internal
