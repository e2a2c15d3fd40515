// The AVX-512 epilogue arithmetic, in registers: shared by the tile epilogue
// (epilogue_float_avx512.cc) and the microkernels that finish their tile without storing it
// first (FloatIndirectEpilogueUkernel, gemm_driver.h). One definition, so the two give the same
// bits. Include only from files compiled with at least the avx512 flags (cmake/AiccIsa.cmake).
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <type_traits>

#include "cpu/gemm/gemm_driver.h"

namespace aicc::cpu::gemm_internal::avx512_epilogue {

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

// Rounds and packs 32 values to bf16 like pack_low_halves(round_bf16(y0), round_bf16(y1)).
// Where the including file is compiled for AVX512_BF16 (the bf16 kernels), one vcvtne2ps2bf16
// does it: it rounds to nearest even and quiets NaN the same way, but reads f32 subnormals as
// zero, so a row segment holding one (rare: |y| < 2^-126) takes the integer path. Saves ~10
// vector operations per 32 outputs, most of the epilogue on K = 64 layers.
inline __m512i round_pack_bf16(__m512 y0, __m512 y1) {
#if defined(__AVX512BF16__)
  const __mmask16 subnormal = _mm512_fpclass_ps_mask(y0, 0x20) | _mm512_fpclass_ps_mask(y1, 0x20);
  if (__builtin_expect(subnormal == 0, 1)) return reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(y1, y0));
#endif
  return pack_low_halves(round_bf16(y0), round_bf16(y1));
}

inline __mmask16 lanes(int n) { return n >= 16 ? __mmask16(0xffff) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1); }

// Everything the row step reads from an Epilogue, in locals (stores through intrinsics may
// alias the Epilogue, so the compiler would otherwise reload its fields after every store).
struct RowParams {
  explicit RowParams(const Epilogue& ep)
      : alpha(_mm512_set1_ps(ep.alpha)),
        unit_alpha(ep.alpha == 1.0f),
        scale(ep.scale),
        bias(ep.bias),
        per_row(ep.bias_per_row),
        res(ep.residual.data),
        res_dtype(ep.residual.dtype),
        res_ld(ep.residual.row_stride),
        relu(ep.activation == Activation::kRelu),
        bf16(ep.out.dtype == DType::kBF16),
        out(static_cast<char*>(ep.out.data)),
        out_ld(ep.out.row_stride) {}
  __m512 alpha;
  // alpha == 1: 1 * y is y for every value the multiply can hand over (a quiet NaN stays the
  // same NaN), so the multiply is skipped.
  bool unit_alpha;
  const float* scale;
  const float* bias;
  bool per_row;
  const void* res;
  DType res_dtype;
  int64_t res_ld;
  bool relu;
  bool bf16;
  char* out;
  int64_t out_ld;
};

// Finishes 32 columns (y0: col..col+15, y1: col+16..col+31) of output row `row`; lanes outside
// m0/m1 are neither read nor written. The operations of Epilogue in its order: alpha, scale,
// bias, residual, relu, rounding (C and gelu are not handled here: see handles()).
__attribute__((always_inline)) inline void finish_row32(const RowParams& p, __m512 y0, __m512 y1, int64_t row, int64_t col, __mmask16 m0,
                         __mmask16 m1) {
  const __m512 zero = _mm512_setzero_ps();
  if (!p.unit_alpha) {
    y0 = _mm512_mul_ps(p.alpha, y0);
    y1 = _mm512_mul_ps(p.alpha, y1);
  }
  if (p.scale) {
    const __m512 row_scale = p.per_row ? _mm512_set1_ps(p.scale[row]) : zero;
    y0 = _mm512_mul_ps(y0, p.per_row ? row_scale : _mm512_maskz_loadu_ps(m0, p.scale + col));
    y1 = _mm512_mul_ps(y1, p.per_row ? row_scale : _mm512_maskz_loadu_ps(m1, p.scale + col + 16));
  }
  if (p.bias) {
    const __m512 row_bias = p.per_row ? _mm512_set1_ps(p.bias[row]) : zero;
    y0 = _mm512_add_ps(y0, p.per_row ? row_bias : _mm512_maskz_loadu_ps(m0, p.bias + col));
    y1 = _mm512_add_ps(y1, p.per_row ? row_bias : _mm512_maskz_loadu_ps(m1, p.bias + col + 16));
  }
  if (p.res) {
    y0 = _mm512_add_ps(y0, load16(p.res, p.res_dtype, row * p.res_ld + col, m0));
    y1 = _mm512_add_ps(y1, load16(p.res, p.res_dtype, row * p.res_ld + col + 16, m1));
  }
  if (p.relu) {  // NaN in y stays NaN (the second operand)
    y0 = _mm512_max_ps(zero, y0);
    y1 = _mm512_max_ps(zero, y1);
  }
  // Full rows store unmasked: a masked store is slower on Zen 4 even with every lane set.
  if (p.bf16) {
    uint16_t* o16 = reinterpret_cast<uint16_t*>(p.out) + row * p.out_ld + col;
    const __m512i packed = round_pack_bf16(y0, y1);
    if (m1 == __mmask16(0xffff)) _mm512_storeu_si512(o16, packed);
    else _mm512_mask_storeu_epi16(o16, static_cast<__mmask32>(m0) | static_cast<__mmask32>(m1) << 16, packed);
  } else {
    float* o32 = reinterpret_cast<float*>(p.out) + row * p.out_ld + col;
    if (m1 == __mmask16(0xffff)) {
      _mm512_storeu_ps(o32, y0);
      _mm512_storeu_ps(o32 + 16, y1);
    } else {
      _mm512_mask_storeu_ps(o32, m0, y0);
      _mm512_mask_storeu_ps(o32 + 16, m1, y1);
    }
  }
}

// The same row step for a full 32-column row with the epilogue's shape fixed at compile time
// (a FullRowShape bit set), so a microkernel finishing 12 rows in registers runs them without
// the 8 data-dependent branches per row of finish_row32. Those branches were a fifth of a
// 12x32 bf16 tile's time at depth 64 (1x1 convs with 64 input channels: ~200 of ~1000 cycles).
// kGeneralShape: finish_row32 itself. Same operations in the same order: the same bits.
enum FullRowShape : unsigned {
  kOutBf16 = 1u,      // out bf16 (else f32)
  kRelu = 2u,         // relu
  kColumnBias = 4u,   // bias[col] (bias_per_row false)
  kResidual = 8u,     // a residual (f32 or bf16)
  kGeneralShape = 16u,  // anything else: alpha != 1, a scale, a per-row bias
};

// The shape of p, or kGeneralShape when it has a term the fixed shapes do not cover.
inline unsigned full_row_shape(const RowParams& p) {
  if (!p.unit_alpha || p.scale || (p.bias && p.per_row)) return kGeneralShape;
  return (p.bf16 ? kOutBf16 : 0u) | (p.relu ? kRelu : 0u) | (p.bias ? kColumnBias : 0u) | (p.res ? kResidual : 0u);
}

template <unsigned kShape>
__attribute__((always_inline)) inline void finish_full_row32(const RowParams& p, __m512 y0, __m512 y1, int64_t row,
                                                             int64_t col) {
  if constexpr ((kShape & kGeneralShape) != 0) {
    finish_row32(p, y0, y1, row, col, __mmask16(0xffff), __mmask16(0xffff));
  } else {
    if constexpr ((kShape & kColumnBias) != 0) {
      y0 = _mm512_add_ps(y0, _mm512_loadu_ps(p.bias + col));
      y1 = _mm512_add_ps(y1, _mm512_loadu_ps(p.bias + col + 16));
    }
    if constexpr ((kShape & kResidual) != 0) {
      y0 = _mm512_add_ps(y0, load16(p.res, p.res_dtype, row * p.res_ld + col, __mmask16(0xffff)));
      y1 = _mm512_add_ps(y1, load16(p.res, p.res_dtype, row * p.res_ld + col + 16, __mmask16(0xffff)));
    }
    if constexpr ((kShape & kRelu) != 0) {
      y0 = _mm512_max_ps(_mm512_setzero_ps(), y0);
      y1 = _mm512_max_ps(_mm512_setzero_ps(), y1);
    }
    if constexpr ((kShape & kOutBf16) != 0) {
      _mm512_storeu_si512(reinterpret_cast<uint16_t*>(p.out) + row * p.out_ld + col, round_pack_bf16(y0, y1));
    } else {
      float* o32 = reinterpret_cast<float*>(p.out) + row * p.out_ld + col;
      _mm512_storeu_ps(o32, y0);
      _mm512_storeu_ps(o32 + 16, y1);
    }
  }
}

// Calls finish(std::integral_constant<unsigned, shape>{}) with the shape as a compile-time
// constant: one instantiation per fixed shape plus the general one.
template <class Finish>
__attribute__((always_inline)) inline void with_full_row_shape(unsigned shape, Finish&& finish) {
  switch (shape) {
#define AICC_FULL_ROW_SHAPE_CASE(S) \
  case S:                           \
    finish(std::integral_constant<unsigned, S>{}); \
    return;
    AICC_FULL_ROW_SHAPE_CASE(0) AICC_FULL_ROW_SHAPE_CASE(1) AICC_FULL_ROW_SHAPE_CASE(2)
    AICC_FULL_ROW_SHAPE_CASE(3) AICC_FULL_ROW_SHAPE_CASE(4) AICC_FULL_ROW_SHAPE_CASE(5)
    AICC_FULL_ROW_SHAPE_CASE(6) AICC_FULL_ROW_SHAPE_CASE(7) AICC_FULL_ROW_SHAPE_CASE(8)
    AICC_FULL_ROW_SHAPE_CASE(9) AICC_FULL_ROW_SHAPE_CASE(10) AICC_FULL_ROW_SHAPE_CASE(11)
    AICC_FULL_ROW_SHAPE_CASE(12) AICC_FULL_ROW_SHAPE_CASE(13) AICC_FULL_ROW_SHAPE_CASE(14)
    AICC_FULL_ROW_SHAPE_CASE(15)
#undef AICC_FULL_ROW_SHAPE_CASE
    default:
      finish(std::integral_constant<unsigned, kGeneralShape>{});
  }
}

}  // namespace aicc::cpu::gemm_internal::avx512_epilogue
