// Direct convolution for few input channels (the network stem: C = 3, 7x7/2 in ResNet, 3x3/2
// in MobileNet), forward, float dtypes.
//
// Why not the implicit GEMM: with C = 3 a row of A (R*S*C deep, 147 for the 7x7 stem) is R*S
// runs of 3 elements, and the GEMM packs each such row once for only N = K/nr column panels
// (2 for K = 64), so packing cost about as much as the arithmetic. Here nothing is packed per
// pixel: each image is padded and converted to f32 once (a few hundred KiB; each input row
// serves about R / stride_h output rows), and a register-tile kernel reads the taps straight
// from it (oneDNN and XNNPACK special-case this layer the same way):
//   NHWC: img[hp][col][c]; tap t = (r, s, c) of output pixel (p, q) is
//         img[(p*stride_h*cols + q*stride_w)*C + off[t]], off[t] = (r*dil_h*cols + s*dil_w)*C + c;
//         MR consecutive pixels (one broadcast each) x NV vectors of output channels.
//         bf16 on AVX512_BF16: 32-bit words pairing filter rows 2u, 2u + 1 (vdpbf16ps).
//   NCHW: img[c][hp][phase][i] split by column stride phase, so VL consecutive output pixels
//         of a tap are one contiguous load; MR output channels (weights broadcast) x VL pixels,
//         stored along the NCHW output rows. bf16 on AVX512_BF16: the same over pair words
//         (filter rows 2u, 2u + 1 of one (c, s); a word holds input rows hp and hp + dilation_h).
// Padding costs nothing inside the kernels. Sums run over t in order from zero (f32
// accumulation): results do not depend on the thread count. Full tiles apply bias, relu and
// the f32/bf16 output in registers; partial tiles, scale (folded BN), residual, gelu and f16
// outputs take the GEMM's tile epilogue.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

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
  const float* bias;   // per column (tile) or per row (tile_rows), or nullptr
  bool relu;
  bool bf16;           // else f32
  int rows = 1 << 30;  // tile (NHWC): store only pixels i < rows (the rest read the image's zero margin)
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
  // NCHW, vectors along the output row: mr output channels x vl consecutive output pixels,
  //   acc[i][j] = sum_{t < depth} w[t*ldw + i] * x[off[t] + j],  bias per row i.
  // x is a stride-phase-split image, so the vl pixels of a tap are contiguous. mr is one of
  // rows_mr (descending, 0-terminated).
  int rows_mr[5];
  void (*tile_rows)(int mr, const float* x, const int32_t* off, int64_t depth, const float* w, int64_t ldw,
                    const SmallCStore& o);
  // tile_rows over bf16 pair words (nullptr without a bf16 dot product), mr (one of
  // rows_mr_pairs) output channels x nq (1 or 2) vectors of pixels: x is a pair image (each
  // word two input rows of one phase column), w[t*ldw + i] the pair of weights of word t.
  // Two pixel vectors per broadcast weight: with one, the broadcasts were as many as the dot
  // products.
  int rows_mr_pairs[3];
  void (*tile_rows_pairs)(int mr, int nq, const uint32_t* x, const int32_t* off, int64_t words, const uint32_t* w,
                          int64_t ldw, const SmallCStore& o);
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
void smallc_conv2d(const Conv2dDesc& d, const TensorView& x, const void* w, DType wdtype, const Conv2dEpilogue& epi,
                   const TensorView& out);
int64_t smallc_workspace_bytes(const Conv2dDesc& d, DType input_dtype);

// Column blocks of the output channels for a direct stem kernel table (SmallCOps, the INT8
// stem's QStemOps): ops.max_nv vectors of ops.vl channels each, the last one what is left.
struct ColumnBlock {
  int64_t j0;
  int nv;
};

template <typename Ops>
std::vector<ColumnBlock> column_blocks(const Ops& ops, int64_t k) {
  std::vector<ColumnBlock> blocks;
  for (int64_t j = 0; j < k;) {
    const int nv = static_cast<int>(std::min<int64_t>(ops.max_nv, (k - j + ops.vl - 1) / ops.vl));
    blocks.push_back({j, nv});
    j += static_cast<int64_t>(nv) * ops.vl;
  }
  return blocks;
}

}  // namespace aicc::cpu
