#include "cpu/gemm/gemm_checks.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include "aicc/status.h"

namespace aicc::cpu {
namespace {

std::string dims(const MatrixView& v) { return std::to_string(v.rows) + "x" + std::to_string(v.cols); }

bool is_float_compute(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

void check_strides(const MatrixView& v, const char* name, bool output) {
  if (v.rows < 0 || v.cols < 0) throw_invalid(name, "non-negative dimensions", dims(v));
  if (v.row_stride < 0 || v.col_stride < 0)
    throw_invalid(name, "non-negative strides", std::to_string(v.row_stride) + "," + std::to_string(v.col_stride));
  if (v.rows > 0 && v.cols > 0 && v.data == nullptr) throw_invalid(name, "a non-null pointer", "nullptr");
  // An output with a zero stride would have several elements written through one address.
  if (output && ((v.rows > 1 && v.row_stride == 0) || (v.cols > 1 && v.col_stride == 0)))
    throw_invalid(name, "an output with non-zero strides", "a broadcast (stride 0) view");
}

// Bytes spanned by a view: [first, last] addresses.
void span(const MatrixView& v, const char** lo, const char** hi) {
  const auto size = static_cast<int64_t>(dtype_size(v.dtype));
  *lo = static_cast<const char*>(v.data);
  *hi = *lo + ((v.rows - 1) * v.row_stride + (v.cols - 1) * v.col_stride + 1) * size;
}

void check_no_overlap(const MatrixView& out, const MatrixView& in, const char* name) {
  if (out.rows == 0 || out.cols == 0 || in.rows == 0 || in.cols == 0) return;
  const char *olo, *ohi, *ilo, *ihi;
  span(out, &olo, &ohi);
  span(in, &ilo, &ihi);
  if (olo < ihi && ilo < ohi)
    throw_invalid("out", std::string("memory not overlapping ") + name, "an overlapping array");
}

}  // namespace

void check_gemm_args(const MatrixView& a, const MatrixView& b, const MatrixView* c, const MatrixView& out,
                     const GemmParams& params) {
  check_strides(a, "a", false);
  check_strides(b, "b", false);
  check_strides(out, "out", true);
  if (!is_float_compute(a.dtype)) throw_invalid("a", "dtype f32, f16 or bf16", dtype_name(a.dtype));
  if (b.dtype != a.dtype) throw_invalid("b", std::string("dtype ") + dtype_name(a.dtype), dtype_name(b.dtype));
  if (out.dtype != a.dtype && out.dtype != DType::kF32)
    throw_invalid("out", std::string("dtype ") + dtype_name(a.dtype) + " or f32", dtype_name(out.dtype));
  if (b.rows != a.cols) throw_invalid("b", std::to_string(a.cols) + " rows", dims(b));
  if (out.rows != a.rows || out.cols != b.cols)
    throw_invalid("out", std::to_string(a.rows) + "x" + std::to_string(b.cols), dims(out));
  check_no_overlap(out, a, "a");
  check_no_overlap(out, b, "b");
  if (params.beta != 0.0f) {
    if (c == nullptr) throw_invalid("c", "a matrix because beta != 0", "nullptr");
    check_strides(*c, "c", false);
    if (!is_float_compute(c->dtype)) throw_invalid("c", "dtype f32, f16 or bf16", dtype_name(c->dtype));
    if (c->rows != out.rows || c->cols != out.cols) throw_invalid("c", dims(out), dims(*c));
    const bool same = c->data == out.data && c->row_stride == out.row_stride &&
                      c->col_stride == out.col_stride && c->dtype == out.dtype;
    if (!same) check_no_overlap(out, *c, "c");
  }
  const int a_ = static_cast<int>(params.activation);
  if (a_ < 0 || a_ > 2) throw_invalid("activation", "none, relu or gelu", std::to_string(a_));
}

void check_qgemm_args(const MatrixView& a, const MatrixView& b, const MatrixView& out,
                      const QGemmParams& params) {
  check_strides(a, "a", false);
  check_strides(b, "b", false);
  check_strides(out, "out", true);
  if (a.dtype != DType::kU8 && a.dtype != DType::kS8) throw_invalid("a", "dtype u8 or s8", dtype_name(a.dtype));
  if (b.dtype != DType::kS8) throw_invalid("b", "dtype s8", dtype_name(b.dtype));
  if (b.rows != a.cols) throw_invalid("b", std::to_string(a.cols) + " rows", dims(b));
  if (out.rows != a.rows || out.cols != b.cols)
    throw_invalid("out", std::to_string(a.rows) + "x" + std::to_string(b.cols), dims(out));
  const DType o = out.dtype;
  if (o != DType::kS32 && o != DType::kS8 && o != DType::kU8 && o != DType::kF32)
    throw_invalid("out", "dtype s32, s8, u8 or f32", dtype_name(o));
  check_no_overlap(out, a, "a");
  check_no_overlap(out, b, "b");
  const int64_t n = b.cols;
  if (params.b_zero_point != nullptr && params.b_zero_point_len != 1 && params.b_zero_point_len != n)
    throw_invalid("b_zero_point", "length 1 or " + std::to_string(n), std::to_string(params.b_zero_point_len));
  if (o == DType::kS32) {
    if (params.scale != nullptr) throw_invalid("scale", "none for an s32 output", "a scale");
  } else if (params.scale == nullptr || (params.scale_len != 1 && params.scale_len != n)) {
    throw_invalid("scale", "length 1 or " + std::to_string(n), std::to_string(params.scale_len));
  }
  if (params.activation != Activation::kNone && params.activation != Activation::kRelu)
    throw_invalid("activation", "none or relu", "gelu");

  // Worst-case int32 accumulator magnitude over the dtype ranges.
  const int64_t a_lo = a.dtype == DType::kU8 ? 0 : -128, a_hi = a.dtype == DType::kU8 ? 255 : 127;
  if (params.a_zero_point < a_lo || params.a_zero_point > a_hi)
    throw_invalid("a_zero_point", "a value in [" + std::to_string(a_lo) + ", " + std::to_string(a_hi) + "]",
                  std::to_string(params.a_zero_point));
  const int64_t max_a = std::max(std::llabs(a_lo - params.a_zero_point), std::llabs(a_hi - params.a_zero_point));
  int64_t max_b = 128;
  if (params.b_zero_point != nullptr) {
    max_b = 0;
    for (int64_t j = 0; j < params.b_zero_point_len; ++j) {
      const int64_t zb = params.b_zero_point[j];
      if (zb < -128 || zb > 127) throw_invalid("b_zero_point", "values in [-128, 127]", std::to_string(zb));
      max_b = std::max<int64_t>(max_b, std::max(std::llabs(-128 - zb), std::llabs(127 - zb)));
    }
  }
  int64_t max_bias = 0;
  if (params.bias != nullptr)
    for (int64_t j = 0; j < n; ++j) max_bias = std::max<int64_t>(max_bias, std::llabs(params.bias[j]));
  if (a.cols * max_a * max_b + max_bias > std::numeric_limits<int32_t>::max())
    throw_invalid("a", "K small enough that int32 accumulation cannot overflow", "K=" + std::to_string(a.cols));
}

void check_qresidual(const MatrixView& out, const QResidual* residual) {
  if (residual == nullptr) return;
  const MatrixView& r = residual->view;
  if (out.dtype == DType::kS32) throw_invalid("residual", "none for an s32 output", "a residual");
  check_strides(r, "residual", false);
  if (r.dtype != DType::kU8 && r.dtype != DType::kS8) throw_invalid("residual", "dtype u8 or s8", dtype_name(r.dtype));
  if (r.rows != out.rows || r.cols != out.cols) throw_invalid("residual", dims(out), dims(r));
  if (!(std::isfinite(residual->scale) && residual->scale > 0.0f))
    throw_invalid("residual_scale", "a finite positive value", std::to_string(residual->scale));
  const int32_t lo = r.dtype == DType::kU8 ? 0 : -128, hi = r.dtype == DType::kU8 ? 255 : 127;
  if (residual->zero_point < lo || residual->zero_point > hi)
    throw_invalid("residual_zero_point", "a value in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]",
                  std::to_string(residual->zero_point));
  // Exactly out (read before written) or apart from it.
  const bool same = r.data == out.data && r.row_stride == out.row_stride && r.col_stride == out.col_stride &&
                    r.dtype == out.dtype;
  if (!same) check_no_overlap(out, r, "residual");
}

}  // namespace aicc::cpu
