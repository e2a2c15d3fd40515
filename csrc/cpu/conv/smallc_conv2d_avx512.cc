// The small-C direct conv kernel (smallc_conv2d.h) at 16 floats per vector, 24 accumulators.
#define AICC_SMALLC_VL 16
#define AICC_SMALLC_ACC 24
#include "cpu/conv/smallc_kernels_impl.h"

namespace aicc::cpu {

const SmallCOps& smallc_ops_avx512() { return smallck::ops(); }

}  // namespace aicc::cpu
