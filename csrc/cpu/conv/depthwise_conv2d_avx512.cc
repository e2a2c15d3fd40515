// AVX-512 primitives of the depthwise conv (see depthwise_conv2d.h): the NHWC kernels of
// depthwise_kernels_impl.h at 16 floats per vector (one zmm: a 16-channel block per tap, so
// the 9 or 25 weights of a 3x3 / 5x5 kernel and four pixels' accumulators fit the 32
// registers). The NCHW row kernel is the AVX2 one.
#include "common/half.h"
#include "cpu/conv/depthwise_conv2d.h"

#define AICC_DW_VL 16
#include "cpu/conv/depthwise_kernels_impl.h"

namespace aicc::cpu {

const DepthwiseOps& depthwise_ops_avx512(DType t) {
  static const DepthwiseOps f32 = dwk::float_ops<float>(depthwise_ops_avx2(DType::kF32).row_nchw);
  static const DepthwiseOps f16 = dwk::float_ops<dwk::F16>(depthwise_ops_avx2(DType::kF16).row_nchw);
  static const DepthwiseOps bf16 = dwk::float_ops<dwk::BF16>(depthwise_ops_avx2(DType::kBF16).row_nchw);
  static const DepthwiseOps u8 = dwk::int8_ops<uint8_t>();
  static const DepthwiseOps s8 = dwk::int8_ops<int8_t>();
  switch (t) {
    case DType::kF16: return f16;
    case DType::kBF16: return bf16;
    case DType::kU8: return u8;
    case DType::kS8: return s8;
    default: return f32;
  }
}

}  // namespace aicc::cpu
