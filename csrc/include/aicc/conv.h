// Public C++ convolution API. Semantics are those of docs/SEMANTICS.md ("Convolution") and
// aicc_kernels.reference.conv2d / qconv2d / conv2d_backward_*; the Python layer validates
// arguments first, and these functions validate again for C++ callers.
//
// Tensors are C-contiguous: x [N, C, H, W] (NCHW) or [N, H, W, C] (NHWC); weights
// [K, C/groups, R, S] (NCHW) or [K, R, S, C/groups] (NHWC); outputs [N, K, P, Q] / [N, P, Q, K].
#pragma once

#include <cstdint>
#include <memory>

#include "aicc/gemm.h"
#include "aicc/tensor.h"

namespace aicc {

enum class Layout : int { kNCHW = 0, kNHWC = 1 };

struct Conv2dDesc {
  int64_t n = 0, c = 0, h = 0, w = 0;  // input
  int64_t k = 0, r = 0, s = 0;         // output channels, kernel height and width
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;
  Layout layout = Layout::kNCHW;

  int64_t p() const { return (h + pad_top + pad_bottom - dilation_h * (r - 1) - 1) / stride_h + 1; }
  int64_t q() const { return (w + pad_left + pad_right - dilation_w * (s - 1) - 1) / stride_w + 1; }
  int64_t cg() const { return c / groups; }
  int64_t kg() const { return k / groups; }
};

namespace cpu {

// out = activation(conv2d(x, w) + bias), f32 accumulation, rounded once to out's dtype.
// x, w: f32, f16 or bf16 (same dtype); out: x's dtype or f32; bias: K floats or nullptr.
void conv2d(const Conv2dDesc& d, const TensorView& x, const TensorView& w, const float* bias,
            Activation activation, const TensorView& out);

// The fused epilogue of a float forward conv, per output element of channel k, in f32:
//   out = round(activation(scale[k] * acc + bias[k] + residual)),
// one operation at a time in that order (absent terms skipped), one rounding to out's dtype.
// scale * acc + bias is a folded batch norm; residual is the ResNet block's skip input. It is
// computed in the GEMM epilogue (depthwise: in the kernel's row write), never as a separate
// pass over the output.
struct Conv2dEpilogue {
  const float* bias = nullptr;   // K floats, or nullptr
  const float* scale = nullptr;  // K floats, or nullptr
  // out's shape and layout, C-contiguous, x's dtype or f32; may be out itself (same memory,
  // read before written), must not overlap it otherwise. nullptr: none.
  const TensorView* residual = nullptr;
  Activation activation = Activation::kNone;
};
void conv2d(const Conv2dDesc& d, const TensorView& x, const TensorView& w, const Conv2dEpilogue& epilogue,
            const TensorView& out);

// Weights prepared once for many conv2d calls (what a framework keeps next to its layer):
// the GEMM B operand of each group (W_g^T, [Cg*R*S, K/groups]) packed for the microkernel of
// the ISA path active at construction, plus a copy for the depthwise kernel. Independent of x and of stride / padding / dilation. Immutable after
// construction, so one object may serve concurrent calls.
class Conv2dWeights {
 public:
  // w: [K, C/groups, R, S] (NCHW) or [K, R, S, C/groups] (NHWC), f32/f16/bf16, C-contiguous.
  Conv2dWeights(const TensorView& w, int64_t groups, Layout layout);
  ~Conv2dWeights();
  Conv2dWeights(const Conv2dWeights&) = delete;
  Conv2dWeights& operator=(const Conv2dWeights&) = delete;

  int64_t k() const { return k_; }
  int64_t cg() const { return cg_; }
  int64_t r() const { return r_; }
  int64_t s() const { return s_; }
  int64_t groups() const { return groups_; }
  Layout layout() const { return layout_; }
  DType dtype() const { return dtype_; }
  int64_t packed_bytes() const;  // memory held

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  int64_t k_, cg_, r_, s_, groups_;
  Layout layout_;
  DType dtype_;
  std::unique_ptr<Impl> impl_;
};

// conv2d with prepacked weights; same contract as conv2d above (d.k, d.r, d.s, d.groups and
// d.layout must match the weights).
void conv2d(const Conv2dDesc& d, const TensorView& x, const Conv2dWeights& w, const float* bias,
            Activation activation, const TensorView& out);
void conv2d(const Conv2dDesc& d, const TensorView& x, const Conv2dWeights& w, const Conv2dEpilogue& epilogue,
            const TensorView& out);

// Quantized conv2d through qgemm's output stage. params.a_zero_point is x's zero point
// (padding holds it, so padded taps contribute 0); b_zero_point / scale / bias are per
// output channel (length 1 or K). x: u8 or s8, w: s8; out: s32, s8, u8 or f32.
void qconv2d(const Conv2dDesc& d, const TensorView& x, const TensorView& w, const QGemmParams& params,
             const TensorView& out);
// The same with the quantized ResNet block's skip input fused into the output stage (s8/u8/f32
// outputs): residual is u8 or s8, out's shape and layout, C-contiguous; it may be out itself
// (each element is read before that out element is written), else must not overlap it. The
// term is residual_scale * (residual - residual_zero_point), added after the scale multiply
// (aicc/gemm.h QResidual). residual == nullptr is the plain qconv2d.
void qconv2d(const Conv2dDesc& d, const TensorView& x, const TensorView& w, const QGemmParams& params,
             const TensorView& out, const TensorView* residual, float residual_scale, int32_t residual_zero_point);

// grad_in = adjoint of conv2d in x, for grad_out [N, K, P, Q] (or NHWC). f32 accumulation;
// the result does not depend on the thread count.
void conv2d_backward_data(const Conv2dDesc& d, const TensorView& grad_out, const TensorView& w,
                          const TensorView& grad_in);

// grad_w = gradient of <conv2d(x, w), grad_out> in w (weight layout of d.layout). f32
// accumulation in a fixed order: the result does not depend on the thread count.
void conv2d_backward_weight(const Conv2dDesc& d, const TensorView& x, const TensorView& grad_out,
                            const TensorView& grad_w);

// Scratch bytes conv2d / qconv2d allocate for this problem and input dtype (im2col chunks);
// never more than the output's size in elements times the input element size.
int64_t conv2d_workspace_bytes(const Conv2dDesc& d, DType input_dtype);

}  // namespace cpu
}  // namespace aicc
