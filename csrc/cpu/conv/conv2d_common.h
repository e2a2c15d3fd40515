// Shared pieces of the CPU convolutions: argument checks, chunk planning, and the
// im2col / col2im copies that feed the GEMM driver a bounded slice of output pixels.
//
// Column buffers (`col`), per layout:
//   NHWC: col[j][(r*S + s)*Cg + c]   one row per output pixel j of the chunk (pixels of the
//                                    whole batch, n-major), matching the [K, R, S, Cg] weights.
//   NCHW: col[(c*R + r)*S + s][j]    one row per tap, pixels of one image, matching [K, Cg, R, S]
//                                    (im2col_block, col2im_add). im2col() writes NCHW pixel-major
//                                    instead, col[j][(c*R + r)*S + s]: a row-major A for the INT8
//                                    GEMM, each (c, r) one run of S input elements.
#pragma once

#include <cstdint>
#include <memory>

#include "aicc/conv.h"

namespace aicc::cpu::gemm_internal {
class APacker;
class BPacker;
}

namespace aicc::cpu::conv {

// The A operand conv2d's NHWC float GEMM uses for group g (output pixels x Cg*R*S taps: x
// itself for a pointwise conv, else the implicit-GEMM packer that reads x in place where the
// registry entry can), for callers that run that GEMM with their own B: backward data packs
// its flipped weights straight from w instead of materializing them (conv2d_backward.cc).
std::unique_ptr<gemm_internal::APacker> nhwc_a_packer(const Conv2dDesc& d, const TensorView& x, int64_t g);

// The B operand conv2d's NCHW float GEMM uses for group g of images [n0, n0 + nb): depth
// (Cg*R*S) x the images' output pixels side by side (column b*P*Q + i: pixel i of image n0 + b),
// gathered from x (a pointwise single image: its channel rows, read in place where the entry
// can). For callers that run that GEMM with their own A and output: the NCHW strided backward
// data runs its phase convs image block by image block into a scratch it then interleaves.
std::unique_ptr<gemm_internal::BPacker> nchw_b_packer(const Conv2dDesc& d, const TensorView& x, int64_t n0,
                                                       int64_t nb, int64_t g);

// Validates desc against the tensors (shapes, contiguity, dtypes are checked by callers).
void check_desc(const Conv2dDesc& d);
void check_tensor(const TensorView& t, const char* name, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                  bool writeable_output);
void x_dims(const Conv2dDesc& d, int64_t out[4]);
void w_dims(const Conv2dDesc& d, int64_t out[4]);
void y_dims(const Conv2dDesc& d, int64_t out[4]);

// True when the conv is a plain GEMM over the input (1x1, stride 1, no padding).
bool is_pointwise(const Conv2dDesc& d);
// True for the dedicated depthwise kernel (one input and one output channel per group).
bool is_depthwise(const Conv2dDesc& d);

// Output pixels per im2col chunk: the column buffer (pixels x Cg*R*S elements) never holds
// more elements than the layer's output, and at least one pixel. NCHW chunks stay inside one image.
int64_t chunk_pixels(const Conv2dDesc& d);

// im2col of output pixels [m0, m0 + mc) (global over the batch for NHWC, inside image n for
// NCHW), group g, `esize`-byte elements, one row per pixel in both layouts; padded taps get
// `pad` (bit pattern, low esize bytes).
void im2col(const Conv2dDesc& d, const void* x, int esize, uint32_t pad, int64_t n, int64_t g, int64_t m0,
            int64_t mc, void* col);

// One block of the column matrix: output pixels [m0, m0 + mc) x depth [p0, p0 + kc), serial
// (called from inside the GEMM driver's tasks). Block layout: NHWC row-major
// (col[j*kc + (p - p0)]), NCHW depth-major (col[(p - p0)*ldc + j], ldc = mc when 0: a caller
// stages the pixels of several images side by side), like im2col's.
void im2col_block(const Conv2dDesc& d, const void* x, int esize, uint32_t pad, int64_t n, int64_t g, int64_t m0,
                  int64_t mc, int64_t p0, int64_t kc, void* col, int64_t ldc = 0);

// The same NCHW block of an f32 input written straight into the GEMM's f32 B panels (nr
// pixels wide, kc rows each, panel after panel: gemm_driver.h); pixel j of the block goes to
// panel column j + j_off (j_off > 0: an image's pixels after another's, in one GEMM); lanes
// of the panels that no pixel of the block maps to are left as they are.
void im2col_panels_nchw_f32(const Conv2dDesc& d, const float* x, int64_t n, int64_t g, int64_t m0, int64_t mc,
                            int64_t p0, int64_t kc, int64_t nr, float* dst, int64_t j_off = 0);
// The same for a bf16 input into bf16 pair-word B panels (PanelWord::kBF16Pair: ceil(kc/2)
// words per lane, depth rows 2q and 2q + 1 in the low and high halves, +0 past kc).
void im2col_panels_nchw_bf16pairs(const Conv2dDesc& d, const uint16_t* x, int64_t n, int64_t g, int64_t m0,
                                  int64_t mc, int64_t p0, int64_t kc, int64_t nr, uint32_t* dst, int64_t j_off = 0);

// The two panel gathers above as a registry family (`nchw_gather`): the portable entry is
// those functions, nchw_gather_avx512 builds each 32-lane panel row from masked loads (the same
// words; strides past 2 and other panel widths go to the portable code).
struct NchwGatherOps {
  void (*panels_f32)(const Conv2dDesc& d, const float* x, int64_t n, int64_t g, int64_t m0, int64_t mc, int64_t p0,
                     int64_t kc, int64_t nr, float* dst, int64_t j_off);
  void (*panels_bf16pairs)(const Conv2dDesc& d, const uint16_t* x, int64_t n, int64_t g, int64_t m0, int64_t mc,
                           int64_t p0, int64_t kc, int64_t nr, uint32_t* dst, int64_t j_off);
};
const NchwGatherOps& nchw_gather_ops();  // the registry's choice under the active CPU features
const NchwGatherOps& nchw_gather_ops_portable();
#if defined(AICC_X86)
const NchwGatherOps& nchw_gather_ops_avx512();
#endif

// col2im: accumulates an f32 column buffer of the same shape into f32 grad_in (full x shape).
// Each grad_in element is written by one task in a fixed order: thread-count independent.
void col2im_add(const Conv2dDesc& d, const float* col, int64_t n, int64_t g, int64_t m0, int64_t mc,
                float* grad_in);

}  // namespace aicc::cpu::conv
