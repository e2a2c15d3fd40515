// Quantized depthwise conv2d: ISA dispatch over the kernel template (depthwise_qconv2d_impl.h).
#include "cpu/conv/depthwise_qconv2d.h"

#include "common/cpu_features.h"
#include "cpu/conv/depthwise_qconv2d_impl.h"

namespace aicc::cpu {

void depthwise_qconv2d(const Conv2dDesc& d, const TensorView& x, const TensorView& w, const QGemmParams& params,
                       const TensorView& out) {
#if defined(AICC_X86)
  if (active_isa() >= Isa::kAvx2) {
    depthwise_qconv2d_avx2(d, x, w, params, out);
    return;
  }
#endif
  if (x.dtype == DType::kU8) dwq_detail::depthwise_qconv2d_run<uint8_t>(d, x, w, params, out);
  else dwq_detail::depthwise_qconv2d_run<int8_t>(d, x, w, params, out);
}

}  // namespace aicc::cpu
