// The small-C direct conv kernel (smallc_conv2d.h) at 8 floats per vector, 12 accumulators.
#define AICC_SMALLC_VL 8
#define AICC_SMALLC_ACC 12
#include "cpu/conv/smallc_kernels_impl.h"

namespace aicc::cpu {

const SmallCOps& smallc_ops_avx2() { return smallck::ops(); }

}  // namespace aicc::cpu
