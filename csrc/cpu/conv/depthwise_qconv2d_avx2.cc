// The quantized depthwise conv kernel compiled with AVX2 (see depthwise_qconv2d_impl.h).
#include "cpu/conv/depthwise_qconv2d.h"
#include "cpu/conv/depthwise_qconv2d_impl.h"

namespace aicc::cpu {

void depthwise_qconv2d_avx2(const Conv2dDesc& d, const TensorView& x, const TensorView& w, const QGemmParams& params,
                            const TensorView& out, const QResidual* residual) {
  if (x.dtype == DType::kU8) dwq_detail::depthwise_qconv2d_run<uint8_t>(d, x, w, params, out, residual);
  else dwq_detail::depthwise_qconv2d_run<int8_t>(d, x, w, params, out, residual);
}

}  // namespace aicc::cpu
