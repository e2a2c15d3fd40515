// Quantized GEMM entry point. (Initial scalar implementation: exact, unblocked; the packed
// int16 vpmaddwd driver replaces the compute loop.)
#include <algorithm>
#include <cmath>

#include "aicc/gemm.h"
#include "cpu/gemm/gemm_checks.h"

namespace aicc::cpu {

void qgemm(const MatrixView& a, const MatrixView& b, const MatrixView& out, const QGemmParams& p) {
  check_qgemm_args(a, b, out, p);
  for (int64_t i = 0; i < out.rows; ++i) {
    for (int64_t j = 0; j < out.cols; ++j) {
      const int32_t zb = p.b_zero_point ? p.b_zero_point[p.b_zero_point_len == 1 ? 0 : j] : 0;
      int64_t acc = 0;
      for (int64_t k = 0; k < a.cols; ++k) {
        const int64_t off = i * a.row_stride + k * a.col_stride;
        const int32_t av = a.dtype == DType::kU8 ? static_cast<const uint8_t*>(a.data)[off]
                                                 : static_cast<const int8_t*>(a.data)[off];
        const int32_t bv = static_cast<const int8_t*>(b.data)[k * b.row_stride + j * b.col_stride];
        acc += static_cast<int64_t>(av - p.a_zero_point) * (bv - zb);
      }
      if (p.bias) acc += p.bias[j];
      const int64_t off = i * out.row_stride + j * out.col_stride;
      const bool relu = p.activation == Activation::kRelu;
      if (out.dtype == DType::kS32) {
        static_cast<int32_t*>(out.data)[off] = static_cast<int32_t>(relu ? std::max<int64_t>(acc, 0) : acc);
        continue;
      }
      const float s = p.scale[p.scale_len == 1 ? 0 : j];
      const float v = static_cast<float>(static_cast<int32_t>(acc)) * s;
      if (out.dtype == DType::kF32) {
        static_cast<float*>(out.data)[off] = relu ? std::max(v, 0.0f) : v;
        continue;
      }
      const float lo = out.dtype == DType::kU8 ? 0.0f : -128.0f, hi = out.dtype == DType::kU8 ? 255.0f : 127.0f;
      float q = std::nearbyint(v) + static_cast<float>(p.out_zero_point);
      q = std::min(std::max(q, relu ? std::max(lo, static_cast<float>(p.out_zero_point)) : lo), hi);
      if (out.dtype == DType::kU8) static_cast<uint8_t*>(out.data)[off] = static_cast<uint8_t>(q);
      else static_cast<int8_t*>(out.data)[off] = static_cast<int8_t>(q);
    }
  }
}

}  // namespace aicc::cpu
