// Per-ISA pieces of the float GEMM (microkernels, packers, tile epilogues) and the scalar
// element helpers they share. Only the kernel registry (csrc/cpu/config/) reaches the
// ISA-specific ones, after matching the active CPU features.
#pragma once

#include <cmath>
#include <cstdint>

#include "aicc/tensor.h"
#include "common/half.h"
#include "cpu/gemm/gemm_driver.h"

namespace aicc::cpu::gemm_internal {

// Microkernels (csrc/cpu/gemm/ukernels/), named dtype_tile_isa.
void ukernel_f32_4x8_portable(int64_t kc, const void* a, const void* b, float* c, int64_t ldc, int accumulate);
#if defined(AICC_X86)
void ukernel_f32_6x16_avx2(int64_t kc, const void* a, const void* b, float* c, int64_t ldc, int accumulate);
void ukernel_f32_6x16_avx2_indirect(int64_t nseg, const int64_t* seg_words, const void* const* rows,
                                    const void* b, float* c, int64_t ldc, int accumulate);
void ukernel_f32_12x32_avx512(int64_t kc, const void* a, const void* b, float* c, int64_t ldc, int accumulate);
void ukernel_f32_12x32_avx512_strided_a(int64_t kc, const void* a, int64_t lda, const void* b, float* c,
                                        int64_t ldc, int accumulate);
void ukernel_f32_12x32_avx512_indirect(int64_t nseg, const int64_t* seg_words, const void* const* rows,
                                       const void* b, float* c, int64_t ldc, int accumulate);
void ukernel_f32_12x32_avx512_indirect_epilogue(int64_t nseg, const int64_t* seg_words, const void* const* rows, const void* b,
    const float* c, int64_t ldc, int accumulate, const Epilogue& ep, int64_t i0, int64_t j0);
void ukernel_f32_12x32_avx512_rows(int rows, int64_t kc, const void* a, const void* b, float* c, int64_t ldc,
                                   int accumulate);
void ukernel_f32_12x32_avx512_strided_b(int rows, int64_t kc, const void* a, const void* b, int64_t ldb, float* c,
                                        int64_t ldc, int accumulate);
void ukernel_bf16_12x32_avx512bf16(int64_t kw, const void* a, const void* b, float* c, int64_t ldc,
                                   int accumulate);
void ukernel_bf16_12x32_avx512bf16_rows(int rows, int64_t kw, const void* a, const void* b, float* c, int64_t ldc,
                                        int accumulate);
void ukernel_bf16_12x32_avx512bf16_indirect(int64_t nseg, const int64_t* seg_words, const void* const* rows,
                                            const void* b, float* c, int64_t ldc, int accumulate);
void ukernel_bf16_12x32_avx512bf16_indirect_epilogue(int64_t nseg, const int64_t* seg_words, const void* const* rows, const void* b,
    const float* c, int64_t ldc, int accumulate, const Epilogue& ep, int64_t i0, int64_t j0);
#endif

// Tile epilogues (the portable one on every architecture).
void epilogue_tile_portable(const Epilogue& ep, const float* tile, int64_t ldt, int64_t i0, int64_t j0, int mr, int nr);
#if defined(AICC_X86)
void epilogue_tile_avx2(const Epilogue& ep, const float* tile, int64_t ldt, int64_t i0, int64_t j0, int mr, int nr);
// 16 columns at a time for f32/bf16 outputs without C or gelu; the rest through the AVX2 one.
void epilogue_tile_avx512(const Epilogue& ep, const float* tile, int64_t ldt, int64_t i0, int64_t j0, int mr, int nr);
#endif

// Packers of a strided matrix (layouts in gemm_driver.h). The portable ones handle every
// layout and word format; the vectorized ones (PackAFn / PackBFn) return false for layouts
// they do not vectorize (the caller then uses the portable one).
void pack_a_portable(const MatrixView& a, int64_t i0, int64_t mc, int64_t p0, int64_t kc, int mr, PanelWord word,
                     void* dst);
void pack_b_portable(const MatrixView& b, int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr, PanelWord word,
                     void* dst);
#if defined(AICC_X86)
bool pack_a_avx2(const MatrixView& a, int64_t i0, int64_t mc, int64_t p0, int64_t kc, int mr, void* dst);
bool pack_b_avx2(const MatrixView& b, int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr, void* dst);
// AVX-512 f32 packers for 12x32 panels (column-major A, row-major B); other layouts: the AVX2 ones.
bool pack_a_f32_avx512(const MatrixView& a, int64_t i0, int64_t mc, int64_t p0, int64_t kc, int mr, void* dst);
bool pack_b_f32_avx512(const MatrixView& b, int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr, void* dst);
bool pack_a_bf16pair_avx512(const MatrixView& a, int64_t i0, int64_t mc, int64_t p0, int64_t kc, int mr, void* dst);
bool pack_b_bf16pair_avx512(const MatrixView& b, int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr, void* dst);
#endif

// ---- scalar element helpers ------------------------------------------------------------

inline float load_f32(const void* base, DType t, int64_t off) {
  switch (t) {
    case DType::kF16: return f16_to_f32(static_cast<const uint16_t*>(base)[off]);
    case DType::kBF16: return bf16_to_f32(static_cast<const uint16_t*>(base)[off]);
    default: return static_cast<const float*>(base)[off];
  }
}

inline void store_f32(void* base, DType t, int64_t off, float x) {
  switch (t) {
    case DType::kF16: static_cast<uint16_t*>(base)[off] = f32_to_f16(x); break;
    case DType::kBF16: static_cast<uint16_t*>(base)[off] = f32_to_bf16(x); break;
    default: static_cast<float*>(base)[off] = x; break;
  }
}

// relu keeps NaN (max(NaN, 0) is NaN in the reference).
inline float relu_f32(float y) { return y > 0.0f || std::isnan(y) ? y : 0.0f; }

// gelu(x) = x/2 * (1 + erf(x/sqrt 2)) = x/2 * erfc(-x/sqrt 2), the exact form, evaluated in
// double (erfc keeps the relative accuracy for large negative x, where 1 + erf cancels).
inline float gelu_f32_scalar(float x) {
  if (std::isinf(x)) return x > 0 ? x : 0.0f;
  const double xd = x;
  return static_cast<float>(0.5 * xd * std::erfc(-xd * 0.70710678118654752440));
}

// scale * (alpha * acc) + beta * C[i, j] + bias + residual[i, j]: the epilogue before the
// activation.
inline float epilogue_linear(const Epilogue& ep, float acc, int64_t i, int64_t j) {
  float y = ep.alpha * acc;
  if (ep.scale) y *= ep.scale[ep.bias_per_row ? i : j];
  if (ep.beta != 0.0f) y += ep.beta * load_f32(ep.c.data, ep.c.dtype, i * ep.c.row_stride + j * ep.c.col_stride);
  if (ep.bias) y += ep.bias[ep.bias_per_row ? i : j];
  if (ep.residual.data) y += load_f32(ep.residual.data, ep.residual.dtype, i * ep.residual.row_stride + j);
  return y;
}

// One output element's epilogue, in the contract's order.
inline float epilogue_value(const Epilogue& ep, float acc, int64_t i, int64_t j) {
  float y = epilogue_linear(ep, acc, i, j);
  if (ep.activation == Activation::kRelu) y = relu_f32(y);
  else if (ep.activation == Activation::kGelu) y = gelu_f32_scalar(y);
  return y;
}

}  // namespace aicc::cpu::gemm_internal
