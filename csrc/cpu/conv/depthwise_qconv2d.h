// Quantized depthwise conv2d (groups == C == K), exact: see depthwise_qconv2d.cc.
#pragma once

#include "aicc/conv.h"

namespace aicc::cpu {

// params as for qconv2d (a_zero_point = x's zero point; b_zero_point / scale / bias per channel).
// residual (nullptr: none): view.data is a C-contiguous u8/s8 tensor of out's shape (only its data
// and dtype are read: element i of out adds the term of element i of the residual).
void depthwise_qconv2d(const Conv2dDesc& d, const TensorView& x, const TensorView& w, const QGemmParams& params,
                       const TensorView& out, const QResidual* residual = nullptr);
void depthwise_qconv2d_portable(const Conv2dDesc& d, const TensorView& x, const TensorView& w,
                                const QGemmParams& params, const TensorView& out, const QResidual* residual);
#if defined(AICC_X86)
void depthwise_qconv2d_avx2(const Conv2dDesc& d, const TensorView& x, const TensorView& w, const QGemmParams& params,
                            const TensorView& out, const QResidual* residual);
// NHWC on vpdpbusd (positions interleaved into u8 quads in registers); NCHW: the template.
void depthwise_qconv2d_avx512vnni(const Conv2dDesc& d, const TensorView& x, const TensorView& w,
                                  const QGemmParams& params, const TensorView& out, const QResidual* residual);
#endif

}  // namespace aicc::cpu
