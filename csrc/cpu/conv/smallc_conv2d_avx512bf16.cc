// The small-C direct conv kernels (smallc_conv2d.h) with AVX512_BF16: the f32 kernel of the
// avx512 entry plus bf16 pair words multiplied by vdpbf16ps (twice the products per instruction).
#define AICC_SMALLC_VL 16
#define AICC_SMALLC_ACC 24
#define AICC_SMALLC_PAIRS 1
#include "cpu/conv/smallc_kernels_impl.h"

namespace aicc::cpu {

const SmallCOps& smallc_ops_avx512bf16() { return smallck::ops(); }

}  // namespace aicc::cpu
