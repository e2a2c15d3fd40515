// Public C++ GEMM API. Semantics are those of docs/SEMANTICS.md and
// aicc_kernels.reference.gemm / qgemm; the Python layer validates arguments before
// calling, and these functions validate again (same messages) for C++ callers.
#pragma once

#include <cstdint>

#include "aicc/tensor.h"

namespace aicc {

enum class Activation : int { kNone = 0, kRelu = 1, kGelu = 2 };

// Floating-point GEMM epilogue, applied in f32 in this order:
//   out = activation(alpha * (A @ B) + beta * C + bias)
// then rounded once to out's dtype. beta == 0 never reads C (NaN in C does not leak).
struct GemmParams {
  float alpha = 1.0f;
  float beta = 0.0f;
  const float* bias = nullptr;  // length n, f32, contiguous; nullptr = no bias
  Activation activation = Activation::kNone;
};

namespace cpu {

// out[m x n] = epilogue(A[m x k] @ B[k x n]).
//   A, B: f32 x f32, f16 x f16 or bf16 x bf16 (f32 accumulation).
//   c:    optional (nullptr unless beta != 0), m x n, dtype f32/f16/bf16.
//   out:  m x n, f32 or the input dtype; must not overlap A, B (may alias C exactly).
// Any non-negative strides are accepted; the packing routines read them directly.
void gemm(const MatrixView& a, const MatrixView& b, const MatrixView* c, const MatrixView& out,
          const GemmParams& params);

}  // namespace cpu

// Quantized GEMM (see SEMANTICS.md, "INT8"):
//   acc[i, j] = sum_k (A[i, k] - a_zero_point) * (B[k, j] - b_zero_point[j]) + bias[j]  (exact, int32)
//   out = acc                                            (out s32; relu: max(acc, 0))
//       | f32(acc) * scale[j]                             (out f32, one f32 multiply; relu after)
//       | sat(rint_half_even(f32(acc) * scale[j]) + out_zero_point)   (out s8 / u8; relu clamps
//                                                          at out_zero_point)
// A is u8 or s8, B is s8. Callers guarantee k * max|A - za| * max|B - zb| + max|bias| fits
// in int32 (the Python layer and qgemm() both check and refuse otherwise).
struct QGemmParams {
  int32_t a_zero_point = 0;
  const int32_t* b_zero_point = nullptr;  // nullptr = 0, else length b_zero_point_len (1 or n)
  int64_t b_zero_point_len = 0;
  const int32_t* bias = nullptr;          // length n, or nullptr
  const float* scale = nullptr;           // length scale_len (1 or n); required for s8/u8/f32 out
  int64_t scale_len = 0;
  int32_t out_zero_point = 0;
  Activation activation = Activation::kNone;  // kNone or kRelu
  // No more fields: this is the layout of the C ABI's aicc_qgemm_params (aicc/backend.h), which
  // plugin kernels receive as a QGemmParams. Optional terms travel as separate arguments.
};

// Optional residual of the quantized output stage (the quantized ResNet block's skip input),
// s8/u8/f32 outputs only:
//   v = f32(acc) * scale[j];  v = v + scale * f32(r[i, j] - zero_point)
// (a multiply and an add, each rounded once to f32), then the output's rounding, zero point,
// saturation and relu as above.
struct QResidual {
  // qgemm: u8 or s8, out's rows x cols; it may be out itself (same data and strides: each element
  // is read before it is written), else must not overlap it.
  MatrixView view;
  float scale = 1.0f;      // finite, > 0
  int32_t zero_point = 0;  // in view.dtype's range
};

namespace cpu {

void qgemm(const MatrixView& a, const MatrixView& b, const MatrixView& out,
           const QGemmParams& params);
// The same with the residual term (nullptr: none).
void qgemm(const MatrixView& a, const MatrixView& b, const MatrixView& out, const QGemmParams& params,
           const QResidual* residual);

}  // namespace cpu
}  // namespace aicc
