// Direct INT8 convolution for few input channels (the network stem: C = 3, 7x7/2 in ResNet,
// 3x3/2 in MobileNet), the quantized twin of smallc_conv2d.h; docs/CONV.md "INT8 stem".
//
// Why not im2col + qgemm: a 7x7 tap row of C = 3 is 147 bytes of 49 runs of 3, unfolded once
// per output pixel and packed for only K/nr = 2 column panels; the 3x3/2 stem's depth of 27 runs
// the GEMM at a quarter of its rate. Here each image is padded with the x zero point once (in
// the u8 domain of vpdpbusd: s8 inputs are shifted by +128, their zero point too), so a padded
// tap contributes exactly 0 after the zero-point folding and the kernel has no border cases. The
// taps of a pixel are read in place as u8 quads: a filter row is one run of S*C contiguous
// bytes (unit column dilation; else one run of C bytes per column tap), cut into 4-byte quads
// whose bytes past the run get a zero weight. One vpdpbusd multiplies a broadcast quad of a
// pixel by 16 output channels' 4 s8 weights:
//   tile: MR consecutive output pixels x NV vectors of 16 output channels (6x64, 8x48, 12x32,
//         12x16), raw dot products sum_t x'[quad t] . w[quad t] in int32 (wrapping),
// then the qgemm output stage (qgemm_internal.h OutputStage) folds the zero points as the GEMM
// does, exactly:
//   acc = dot + (bias[k] - zx' colsum_w[k] + T zx' zw[k]) - zw[k] rowsum_x'(pixel)   (mod 2^32)
// over the T = R*S*C real taps (the row term only when some zw != 0), and applies scale,
// residual, zero point, saturation and relu. NCHW inputs are padded into the same NHWC image;
// each output row is finished in an NHWC row buffer and transposed into the NCHW output.
#pragma once

#include <cstdint>

#include "aicc/conv.h"
#include "aicc/gemm.h"
#include "cpu/gemm/qgemm_internal.h"

namespace aicc::cpu {

// One ISA's kernel. tile(nv, ...) computes mr(nv) consecutive output pixels x nv*vl channels,
//   acc[i][j] = sum_{t < quads} sum_{b < 4} a[i*step + off[t] + b] * w[(t*nv*vl + j)*4 + b]
// (u8 x s8, int32 wrapping), and finishes rows i < rows, channels j < ncols through the qgemm
// output stage o (qgemm_internal.h; bit for bit output_portable) as tile rows i0 + i and
// columns j0 + j. o's views have unit column strides. All mr(nv) pixels are read (the image
// keeps a margin past each output row).
struct QStemOps {
  int vl;      // int32 lanes per vector
  int max_nv;  // most weight vectors per tile
  int (*mr)(int nv);
  void (*tile)(int nv, const uint8_t* a, int64_t step, const int32_t* off, int64_t quads, const int8_t* w, int rows,
               int ncols, int64_t i0, int64_t j0, const qgemm_detail::OutputStage& o);
  // NCHW rows of 1-byte outputs and residuals: dst[k*ld + q] = src[q*src_ld + k], q < rows, k < cols.
  void (*transpose_u8)(const uint8_t* src, int64_t src_ld, int64_t rows, int64_t cols, uint8_t* dst, int64_t ld);
};

#if defined(AICC_X86)
const QStemOps& qstem_ops_avx512vnni();
#endif

// The registry's choice (csrc/cpu/config/): the direct kernel, or nullptr where the active
// features offer none (the conv then runs on the int8_gemm family's entry: NHWC as an implicit
// GEMM, NCHW as im2col + qgemm).
const QStemOps* qstem_ops();

// True for the quantized convs the direct path takes when qstem_ops() has a kernel: groups 1,
// at most 4 input channels, not pointwise (the same shapes as the float small-C path).
bool qstem_eligible(const Conv2dDesc& d);

// The conv (arguments checked by qconv2d). residual (nullptr: none): view.data is a C-contiguous
// u8/s8 tensor of out's shape (its data and dtype are read; depthwise_qconv2d.h's convention).
void qstem_qconv2d(const QStemOps& ops, const Conv2dDesc& d, const TensorView& x, const TensorView& w,
                   const QGemmParams& params, const TensorView& out, const QResidual* residual);
// Scratch bytes (the padded image, packed weights, per-thread tiles; NCHW row buffers sized for
// a 4-byte output).
int64_t qstem_workspace_bytes(const QStemOps& ops, const Conv2dDesc& d);

}  // namespace aicc::cpu
