// Depthwise conv2d (groups == C == K: one input and one output channel per group), forward
// (float and INT8) and backward (data and weight): direct kernels, f32 (INT8: int32)
// accumulation, vectorized over channels (NHWC) or output columns (NCHW).
// The per-ISA part is the table of primitives below, which keep accumulators in registers
// across all taps of an output (or, for the weight gradient, across all pixels); the loops
// around them (tap clipping, stride phases, threading, dtype of out) are shared.
#pragma once

#include <cstdint>
#include <vector>

#include "aicc/conv.h"
#include "aicc/gemm.h"

namespace aicc::cpu {

// The primitives one ISA supplies for one input storage dtype (f32 / f16 / bf16, or u8 / s8
// for qaccum_pixels; the entries that do not apply to the dtype are nullptr).
// NHWC primitives walk `npix` pixels sharing a tap pattern: tap t reads src[t][i*step + c]
// for pixel i (elements of the input dtype) and has the f32 (int32) weight row w[t][c].
struct DepthwiseOps {
  // dst[i*dst_step + c] = relu?(bias[c] + sum_t src[t][i*step + c] * w[t][c]); bias may be null.
  void (*accum_pixels)(const void* const* src, const float* const* w, int ntaps, int64_t step, int64_t npix,
                       int64_t C, const float* bias, bool relu, float* dst, int64_t dst_step);
  // wacc[t][c] += sum_i g[i*gstep + c] * src[t][i*step + c] (pixels in order).
  void (*wgrad_pixels)(const void* g, int64_t gstep, const void* const* src, int ntaps, int64_t step, int64_t npix,
                       int64_t C, float* const* wacc);
  // NCHW, one output row: dst[q] = sum_{r,s} rows[r][q*stride + s*dil - pad_left] * w[r*S + s] + bias,
  // q < Q; rows[r] == nullptr for a tap row in the padding; columns outside [0, W) are padding.
  void (*row_nchw)(const void* const* rows, const float* w, int R, int S, int64_t Q, int64_t W, int64_t stride,
                   int64_t dil, int64_t pad_left, float bias, bool relu, float* dst);
  // NCHW backward data, one run of columns: dst[j] = sum_t src[t][j] * w[t], j < npix.
  void (*accum_cols)(const void* const* src, const float* w, int ntaps, int64_t npix, float* dst);
  // NCHW backward weight: out[t] += sum_j g[j] * src[t][j*step], j < npix.
  void (*dot_cols)(const void* g, const void* const* src, int ntaps, int64_t step, int64_t npix, float* out);
  // dst[i] = src[i] (f32) rounded once to this table's storage dtype, i < n.
  void (*store_row)(const float* src, int64_t n, void* dst);
  // INT8, exact: dst[i*dst_step + c] = init[c] + sum_t src[t][i*step + c] * w[t][c] (int32).
  void (*qaccum_pixels)(const void* const* src, const int32_t* const* w, int ntaps, int64_t step, int64_t npix,
                        int64_t C, const int32_t* init, int32_t* dst, int64_t dst_step);
  // accum_pixels with dst in the table's storage dtype: the f32 sums rounded once in registers
  // (round half to even, NaN kept quiet: f32_to_bf16), no f32 row in between. nullptr where the
  // ISA has none (then accum_pixels + store_row give the same bits). Its weight rows w[t] are in
  // the split layout of depthwise_split_weights (bias: plain, C floats).
  void (*accum_pixels_round)(const void* const* src, const float* const* w, int ntaps, int64_t step, int64_t npix,
                             int64_t C, const float* bias, bool relu, void* dst, int64_t dst_step) = nullptr;
  // wgrad_pixels with the filter accumulators wacc[t] in the split layout of
  // depthwise_split_weights (rows of depthwise_split_row(C) floats); nullptr where the ISA has none.
  void (*wgrad_pixels_split)(const void* g, int64_t gstep, const void* const* src, int ntaps, int64_t step,
                             int64_t npix, int64_t C, float* const* wacc) = nullptr;
  // NHWC weight gradient over whole output rows np0 <= n*P + p < np1, in row and pixel order:
  // wacc[t * row + c'] += sum g[n][p][q][c] * x at tap t (taps outside the input skipped), c' the
  // channel's column (split layout where wgrad_pixels_split is set). The filter accumulators stay
  // in registers across all the rows, borders included. Returns false (nothing done) for kernels
  // it does not handle; nullptr where the ISA has none.
  bool (*wgrad_rows)(const Conv2dDesc& d, const void* x, const void* g, int64_t np0, int64_t np1, float* wacc,
                     int64_t row) = nullptr;
  // NHWC forward of whole output rows np0 <= n*P + p < np1 into out (the table's storage dtype:
  // f32 stored as is, bf16 rounded in registers): relu?(bias[c] + sum over the taps inside the
  // input, in tap order, of x * w). w: [R*S][row] (row = C, or the split layout where
  // accum_pixels_round is set). The weights stay in registers across the row, border pixels
  // included. Returns false (nothing done) for kernels it does not handle.
  bool (*forward_rows)(const Conv2dDesc& d, const void* x, const float* w, int64_t row, const float* bias, bool relu,
                       int64_t np0, int64_t np1, void* out) = nullptr;
  // NCHW forward of output rows p0 <= p < p1 of one (image, channel) plane x (H*W elements of
  // the table's storage dtype) with its R*S f32 weights w: row p at dst + (p - p0) * Q, the
  // sums relu?(bias + taps inside the input) in f32, or with `round` in the table's storage
  // dtype rounded in registers (bf16 only). ws: f32 scratch of H*W floats (16-bit inputs are
  // widened into it once per input row). Returns false (nothing done) for kernels it does not
  // handle; nullptr where the ISA has none.
  bool (*forward_rows_nchw)(const Conv2dDesc& d, const void* x, const float* w, float bias, bool relu, int64_t p0,
                            int64_t p1, void* dst, bool round, float* ws) = nullptr;
  // NCHW weight gradient of output rows p0 <= p < p1 of one (image, channel) plane: x the input
  // plane (H*W), g the grad_out plane (P*Q), both in the table's storage dtype; part[r*S + s] +=
  // the rows' sum of g * x at tap (r, s) (taps outside the input add nothing). Summed in an
  // order fixed by the geometry and [p0, p1). Returns false (nothing done) for kernels it does
  // not handle; nullptr where the ISA has none.
  bool (*wgrad_rows_nchw)(const Conv2dDesc& d, const void* x, const void* g, int64_t p0, int64_t p1,
                          float* part) = nullptr;
};

// The weight rows of DepthwiseOps::accum_pixels_round: [R*S][depthwise_split_row(C)] f32, each
// block of 32 channels stored as its 16 even channels then its 16 odd ones (zeros past C), so
// the kernel, which widens bf16 pairs into even / odd f32 vectors, loads them as they lie.
// w: the [C][R*S] weights of an NHWC depthwise conv (w_dtype f32 / f16 / bf16).
constexpr int64_t kDepthwiseSplit = 32;
inline int64_t depthwise_split_row(int64_t C) { return (C + kDepthwiseSplit - 1) / kDepthwiseSplit * kDepthwiseSplit; }
void depthwise_split_weights(DType w_dtype, const void* w, int64_t C, int64_t RS, float* out);
// The f32 tap rows an NHWC depthwise kernel reads: [R*S][C] (tap-major), or with `split` the
// split layout above ([R*S][depthwise_split_row(C)]), from the [C][R*S] weights w.
std::vector<float> depthwise_tap_rows(DType w_dtype, const void* w, int64_t C, int64_t RS, bool split);

// The one place the depthwise kernels pick an ISA (active_isa(); AICC_ISA caps it).
const DepthwiseOps& depthwise_ops(DType dtype);

const DepthwiseOps& depthwise_ops_portable(DType dtype);
#if defined(AICC_X86)
const DepthwiseOps& depthwise_ops_avx2(DType dtype);
const DepthwiseOps& depthwise_ops_avx512(DType dtype);
// The AVX-512 table with the bf16 NHWC 5x5 forward on vdpbf16ps (depthwise_conv2d_avx512bf16.cc).
const DepthwiseOps& depthwise_ops_avx512bf16(DType dtype);
#endif

// scale (K floats) and residual (out's shape and layout) are the fused epilogue of
// aicc::cpu::Conv2dEpilogue; with either, each output row is finished from the kernel's f32
// row buffer by the float GEMM's tile epilogue (scale, bias, residual, activation, rounding)
// as it is written: still one pass over the output.
void depthwise_conv2d(const Conv2dDesc& d, const TensorView& x, const TensorView& w, const float* bias,
                      Activation activation, const TensorView& out, const float* scale = nullptr,
                      const TensorView* residual = nullptr);
int64_t depthwise_workspace_bytes(const Conv2dDesc& d);

// Backward of the depthwise conv; dtypes and shapes are checked by the callers
// (conv2d_backward_data / _weight). grad_w is written whole (f32 partial filters per fixed
// chunk of output rows, summed in chunk order: independent of the thread count).
void depthwise_conv2d_backward_data(const Conv2dDesc& d, const TensorView& grad_out, const TensorView& w,
                                    const TensorView& grad_in);
void depthwise_conv2d_backward_weight(const Conv2dDesc& d, const TensorView& x, const TensorView& grad_out,
                                      const TensorView& grad_w);

// Output columns [lo, hi) of a row whose every tap s*dil - pad + q*stride lies in [0, W).
void depthwise_interior(int64_t Q, int64_t W, int64_t S, int64_t stride, int64_t dil, int64_t pad, int64_t* lo,
                        int64_t* hi);

}  // namespace aicc::cpu
