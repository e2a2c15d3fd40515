// Depthwise conv2d (groups == C == K: one input and one output channel per group): a
// direct kernel, f32 accumulation, vectorized over channels (NHWC) or output columns (NCHW).
// The per-ISA part is two row primitives; the loops around them are shared.
#pragma once

#include <cstdint>

#include "aicc/conv.h"

namespace aicc::cpu {

// The row primitives one ISA supplies, for one input dtype (f32 / f16 / bf16 storage).
struct DepthwiseRowOps {
  // acc[i] += x[i] * w[i], i < n (NHWC: i runs over channels).
  void (*madd_vv)(float* acc, const void* x, const float* w, int64_t n);
  // acc[i] += x[i * stride] * w, i < n (NCHW: i runs over output columns).
  void (*madd_vs)(float* acc, const void* x, int64_t stride, float w, int64_t n);
};

const DepthwiseRowOps& depthwise_row_ops_portable(DType dtype);
#if defined(AICC_X86)
const DepthwiseRowOps& depthwise_row_ops_avx2(DType dtype);
#endif

void depthwise_conv2d(const Conv2dDesc& d, const TensorView& x, const TensorView& w, const float* bias,
                      Activation activation, const TensorView& out);
int64_t depthwise_workspace_bytes(const Conv2dDesc& d);

}  // namespace aicc::cpu
