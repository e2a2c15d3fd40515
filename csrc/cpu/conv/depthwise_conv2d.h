// Depthwise conv2d (groups == C == K: one input and one output channel per group): a
// direct kernel, f32 accumulation, vectorized over channels (NHWC) or output columns (NCHW).
// The per-ISA part is two primitives that keep the accumulators in registers across all
// taps of an output; the loops around them (tap clipping, threading, dtype of out) are shared.
#pragma once

#include <cstdint>

#include "aicc/conv.h"

namespace aicc::cpu {

// The primitives one ISA supplies, for one input storage dtype (f32 / f16 / bf16).
// Both write dst = sum over taps (+ bias) in f32, then relu when asked (NaN stays NaN).
struct DepthwiseOps {
  // NHWC, one output pixel: dst[c] = sum_t x[t][c] * w[t][c] + bias[c], c < C.
  // x[t]: the input pixel of tap t (C contiguous channels); w[t]: its C f32 weights.
  void (*pixel_nhwc)(const void* const* x, const float* const* w, int ntaps, int64_t C, const float* bias,
                     bool relu, float* dst);
  // NCHW, one output row: dst[q] = sum_{r,s} rows[r][q*stride + s*dil - pad_left] * w[r*S + s] + bias,
  // q < Q; rows[r] == nullptr for a tap row in the padding; columns outside [0, W) are padding.
  void (*row_nchw)(const void* const* rows, const float* w, int R, int S, int64_t Q, int64_t W, int64_t stride,
                   int64_t dil, int64_t pad_left, float bias, bool relu, float* dst);
};

const DepthwiseOps& depthwise_ops_portable(DType dtype);
#if defined(AICC_X86)
const DepthwiseOps& depthwise_ops_avx2(DType dtype);
#endif

void depthwise_conv2d(const Conv2dDesc& d, const TensorView& x, const TensorView& w, const float* bias,
                      Activation activation, const TensorView& out);
int64_t depthwise_workspace_bytes(const Conv2dDesc& d);

}  // namespace aicc::cpu
