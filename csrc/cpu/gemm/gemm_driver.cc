// Float GEMM entry point. (Initial scalar implementation: correct, unblocked; the blocked
// BLIS-style driver replaces the compute loop.)
#include <cmath>

#include "aicc/gemm.h"
#include "common/half.h"
#include "cpu/gemm/gemm_checks.h"

namespace aicc::cpu {
namespace {

float load(const MatrixView& v, int64_t i, int64_t j) {
  const int64_t off = i * v.row_stride + j * v.col_stride;
  switch (v.dtype) {
    case DType::kF32: return static_cast<const float*>(v.data)[off];
    case DType::kF16: return f16_to_f32(static_cast<const uint16_t*>(v.data)[off]);
    case DType::kBF16: return bf16_to_f32(static_cast<const uint16_t*>(v.data)[off]);
    default: return 0.0f;
  }
}

void store(const MatrixView& v, int64_t i, int64_t j, float x) {
  const int64_t off = i * v.row_stride + j * v.col_stride;
  switch (v.dtype) {
    case DType::kF32: static_cast<float*>(v.data)[off] = x; break;
    case DType::kF16: static_cast<uint16_t*>(v.data)[off] = f32_to_f16(x); break;
    case DType::kBF16: static_cast<uint16_t*>(v.data)[off] = f32_to_bf16(x); break;
    default: break;
  }
}

}  // namespace

void gemm(const MatrixView& a, const MatrixView& b, const MatrixView* c, const MatrixView& out,
          const GemmParams& p) {
  check_gemm_args(a, b, c, out, p);
  for (int64_t i = 0; i < out.rows; ++i) {
    for (int64_t j = 0; j < out.cols; ++j) {
      float acc = 0.0f;
      for (int64_t k = 0; k < a.cols; ++k) acc += load(a, i, k) * load(b, k, j);
      float y = p.alpha * acc;
      if (p.beta != 0.0f) y += p.beta * load(*c, i, j);
      if (p.bias) y += p.bias[j];
      if (p.activation == Activation::kRelu) y = y > 0.0f ? y : (std::isnan(y) ? y : 0.0f);
      if (p.activation == Activation::kGelu) y = std::isinf(y) && y < 0 ? 0.0f : 0.5f * y * (1.0f + std::erf(y * 0.70710678f));
      store(out, i, j, y);
    }
  }
}

}  // namespace aicc::cpu
