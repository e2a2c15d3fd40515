// Direct convolution for few input channels (the network stem: C = 3, 7x7/2 in ResNet, 3x3/2
// in MobileNet), forward, float dtypes.
//
// Why not the implicit GEMM: with C = 3 a row of A (R*S*C deep, 147 for the 7x7 stem) is R*S
// runs of 3 elements, and the GEMM packs each such row once for only N = K/nr column panels
// (2 for K = 64), so packing costs about as much as the arithmetic. Here nothing is packed per
// pixel: each output row (n, p) gets a zero-padded f32 "slab" of its R input rows
// ([R][Wslab][C], padding and the converted input written once), and a register-tile kernel
// reads the taps of MR consecutive output pixels straight from it: tap t = (r, s, c) of pixel q
// is slab[q*stride_w*C + off[t]], off[t] = r*Wslab*C + s*dilation_w*C + c, one broadcast per
// pixel and tap, multiplied into NV vectors of packed weights (oneDNN and XNNPACK special-case
// this layer the same way). Padding and borders cost nothing inside the kernel.
// Sums run over t in order from zero (f32 accumulation), so results do not depend on the
// thread count; the GEMM's tile epilogue applies bias, activation and the output dtype.
#pragma once

#include <cstdint>

#include "aicc/conv.h"
#include "aicc/gemm.h"

namespace aicc::cpu {

// Where a full tile goes: dst[i*ldd + j] = round(relu?(acc[i][j] + bias[j])), rounded to
// bf16 (round half to even, NaN kept quiet: common/half.h's f32_to_bf16) or stored as f32.
// bias may be null. Other epilogues (gelu, f16, partial tiles) take the raw f32 sums
// (plain f32, no bias, no relu) through the GEMM's tile epilogue.
struct SmallCStore {
  void* dst;
  int64_t ldd;         // elements
  const float* bias;   // nv*vl values or nullptr
  bool relu;
  bool bf16;           // else f32
};

// One ISA's kernel (vectors of `vl` floats). tile(nv, ...) computes mr(nv) consecutive output
// pixels x nv*vl output channels:
//   acc[i][j] = sum_{t < depth} a[i*step + off[t]] * w[t*nv*vl + j],  i < mr(nv), j < nv*vl,
// in t order from zero, and stores them as `o` says.
// tile_pairs (nullptr where the CPU has no bf16 dot product): the same over 32-bit words that
// each hold two bf16 (low half first), each product of a word pair summed as vdpbf16ps does.
struct SmallCOps {
  int vl;      // floats per vector
  int max_nv;  // most weight vectors per tile
  int (*mr)(int nv);
  void (*tile)(int nv, const float* a, int64_t step, const int32_t* off, int64_t depth, const float* w,
               const SmallCStore& o);
  void (*tile_pairs)(int nv, const uint32_t* a, int64_t step, const int32_t* off, int64_t words, const uint32_t* w,
                     const SmallCStore& o);
};

// The registry's choice (csrc/cpu/config/): the first small-C entry the active features allow.
const SmallCOps& smallc_ops();
const SmallCOps& smallc_ops_portable();
#if defined(AICC_X86)
const SmallCOps& smallc_ops_avx2();
const SmallCOps& smallc_ops_avx512();
const SmallCOps& smallc_ops_avx512bf16();
#endif

// True for the convs this path takes: float, groups == 1, at most kSmallCMaxChannels input
// channels, not a pointwise (1x1 stride-1 unpadded: a plain GEMM with no copy) conv.
constexpr int64_t kSmallCMaxChannels = 4;
bool smallc_eligible(const Conv2dDesc& d);

// The conv (shapes and dtypes checked by the caller). w: the weights as given (layout's order).
void smallc_conv2d(const Conv2dDesc& d, const TensorView& x, const void* w, DType wdtype, const float* bias,
                   Activation activation, const TensorView& out);
int64_t smallc_workspace_bytes(const Conv2dDesc& d);

}  // namespace aicc::cpu
