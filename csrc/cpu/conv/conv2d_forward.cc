// conv2d and qconv2d forward on the GEMM machinery (design: docs/CONV.md).
//
// Float: the blocked driver (csrc/cpu/gemm/gemm_driver.h) with implicit-GEMM packers that
//   gather each panel straight from the input through a small staging tile, so no unfolded
//   matrix exists. NHWC: A = output pixels of the batch, B = W_g^T (a PackedB per group for
//   Conv2dWeights). NCHW: A = W_g, B = taps x pixels of one image, bias per row. 1x1
//   stride-1 unpadded convs read the input in place.
// INT8: the same driver on the registry's INT8 entry (int16 pairs or u8/s8 quads). NHWC:
//   A = output pixels of the batch through an implicit-GEMM packer whose padding taps hold the
//   activation zero point (so zero-point folding stays exact with no pass over the input),
//   B = W_g^T, one GEMM per group. NCHW: im2col in chunks of output pixels whose column buffer
//   never exceeds the layer's output size, one public qgemm per chunk.
// Depthwise convs use their own kernels (depthwise_conv2d.h, depthwise_qconv2d.h).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "aicc/conv.h"
#include "aicc/status.h"
#include "common/half.h"
#include "common/thread_pool.h"
#include "cpu/conv/conv2d_common.h"
#include "cpu/conv/depthwise_conv2d.h"
#include "cpu/conv/depthwise_qconv2d.h"
#include "cpu/conv/qstem_conv2d.h"
#include "cpu/conv/smallc_conv2d.h"
#include "cpu/gemm/gemm_checks.h"
#include "cpu/gemm/gemm_driver.h"

namespace aicc::cpu {

struct Conv2dWeights::Impl {
  std::vector<char> raw;                                        // the weights as given (for depthwise)
  std::vector<std::unique_ptr<gemm_internal::PackedB>> packed;  // per group: B = W_g^T, packed
};

namespace {

using conv::chunk_pixels;
using conv::im2col;

bool is_float(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

char* byte_ptr(const TensorView& t, int64_t elems) {
  return static_cast<char*>(t.data) + elems * static_cast<int64_t>(dtype_size(t.dtype));
}

void check_common(const Conv2dDesc& d, const TensorView& x, const TensorView* w, const TensorView& out) {
  conv::check_desc(d);
  int64_t xd[4], wd[4], yd[4];
  conv::x_dims(d, xd);
  conv::w_dims(d, wd);
  conv::y_dims(d, yd);
  conv::check_tensor(x, "x", xd[0], xd[1], xd[2], xd[3], false);
  if (w) conv::check_tensor(*w, "w", wd[0], wd[1], wd[2], wd[3], false);
  conv::check_tensor(out, "out", yd[0], yd[1], yd[2], yd[3], true);
}

// B of group g read from the weights in place: [depth, kg] with row stride 1.
MatrixView weight_view(const Conv2dDesc& d, const void* w, DType dtype, int64_t g) {
  const int64_t kg = d.kg(), depth = d.cg() * d.r * d.s;
  return MatrixView{static_cast<char*>(const_cast<void*>(w)) + g * kg * depth * static_cast<int64_t>(dtype_size(dtype)),
                    dtype, depth, kg, 1, depth};
}

// The A operand and output of one (image, group, pixel range): A = pixels x depth.
// `col` is the chunk's column buffer (im2col path), or nullptr to read the input in place
// (a pointwise conv).
struct Operands {
  MatrixView a, out;
};

Operands operands(const Conv2dDesc& d, const TensorView& x, const TensorView& y, const void* col, int64_t n,
                  int64_t g, int64_t m0, int64_t mc) {
  const int64_t cg = d.cg(), kg = d.kg(), depth = cg * d.r * d.s, pq = d.p() * d.q();
  Operands o;
  o.a.dtype = x.dtype;
  o.a.rows = mc;
  o.a.cols = depth;
  o.out.dtype = y.dtype;
  o.out.rows = mc;
  o.out.cols = kg;
  if (d.layout == Layout::kNHWC) {
    if (col) {
      o.a.data = const_cast<void*>(col);
      o.a.row_stride = depth;
    } else {
      o.a.data = byte_ptr(x, m0 * d.c + g * cg);
      o.a.row_stride = d.c;
    }
    o.a.col_stride = 1;
    o.out.data = byte_ptr(y, m0 * d.k + g * kg);
    o.out.row_stride = d.k;
    o.out.col_stride = 1;
  } else {
    if (col) {  // pixel-major rows (im2col)
      o.a.data = const_cast<void*>(col);
      o.a.row_stride = depth;
      o.a.col_stride = 1;
    } else {
      o.a.data = byte_ptr(x, (n * d.c + g * cg) * d.h * d.w + m0);
      o.a.col_stride = d.h * d.w;
      o.a.row_stride = 1;
    }
    o.out.data = byte_ptr(y, (n * d.k + g * kg) * pq + m0);
    o.out.row_stride = 1;
    o.out.col_stride = pq;
  }
  return o;
}

int64_t pixels_per_gemm(const Conv2dDesc& d) { return d.layout == Layout::kNHWC ? d.n * d.p() * d.q() : d.p() * d.q(); }
int64_t gemm_images(const Conv2dDesc& d) { return d.layout == Layout::kNHWC ? 1 : d.n; }

// Calls fn(operands, g) for every chunk of the conv, im2col-ing into one reused buffer.
template <typename Fn>
void for_each_chunk(const Conv2dDesc& d, const TensorView& x, const TensorView& y, uint32_t pad, Fn&& fn) {
  const bool pointwise = conv::is_pointwise(d);
  const int esize = static_cast<int>(dtype_size(x.dtype));
  const int64_t depth = d.cg() * d.r * d.s;
  const int64_t pixels = pixels_per_gemm(d);
  const int64_t mc_max = pointwise ? pixels : chunk_pixels(d);
  std::unique_ptr<char[]> col;
  if (!pointwise) col.reset(new char[static_cast<size_t>(mc_max * depth * esize)]);
  for (int64_t n = 0; n < gemm_images(d); ++n) {
    for (int64_t g = 0; g < d.groups; ++g) {
      for (int64_t m0 = 0; m0 < pixels; m0 += mc_max) {
        const int64_t mc = std::min(mc_max, pixels - m0);
        if (!pointwise) im2col(d, x.data, esize, pad, n, g, m0, mc, col.get());
        fn(operands(d, x, y, col.get(), n, g, m0, mc), g);
      }
    }
  }
}

// B = W_g^T (depth x kg) packed from the weights as stored ([kg, depth] rows, contiguous in
// depth): a column-major view of W_g^T, which the matrix packer reads with its vectorized
// transposing path (8 output channels x 8 depths per step) in every word format. (A scalar
// loop that spread each channel's row across its panel lane cost 13 % of a 3x3 512@7 conv,
// whose 9.4 MB of weights are packed on every call.)
class WeightBPacker final : public gemm_internal::BPacker {
 public:
  WeightBPacker(const void* w_group, DType dtype, int64_t depth) : w_(w_group), dtype_(dtype), depth_(depth) {}

  DType dtype() const override { return dtype_; }

  void pack(const gemm_internal::FloatGemmConfig& cfg, int64_t p0, int64_t kc, int64_t j0, int64_t nc,
            void* dst_words) const override {
    gemm_internal::MatrixBPacker(MatrixView{const_cast<void*>(w_), dtype_, depth_, j0 + nc, 1, depth_})
        .pack(cfg, p0, kc, j0, nc, dst_words);
  }

 private:
  const void* w_;
  DType dtype_;
  int64_t depth_;
};

// NHWC A = output pixels x depth (taps x Cg) of group g, gathered one mr-row panel at a time
// into a per-thread staging tile (mr x kc input elements; every tap is a contiguous run of
// channels), which the driver's vectorized matrix packer converts into the panel. The
// unfolded matrix never exists.
class ImplicitAPacker final : public gemm_internal::APacker {
 public:
  ImplicitAPacker(const Conv2dDesc& d, const TensorView& x, int64_t g) : d_(d), x_(x), g_(g) {}

  DType dtype() const override { return x_.dtype; }

  void pack(const gemm_internal::FloatGemmConfig& cfg, int64_t i0, int64_t mc, int64_t p0, int64_t kc,
            void* dst) const override {
    const int mr = cfg.mr;
    const int64_t kw = gemm_internal::panel_words(kc, cfg.word);
    thread_local std::vector<char> staging;
    const int esize = static_cast<int>(dtype_size(x_.dtype));
    const size_t bytes = static_cast<size_t>(mr * kc * esize);
    if (staging.size() < bytes) staging.resize(bytes);
    for (int64_t i = i0; i < i0 + mc; i += mr) {
      const int64_t rows = std::min<int64_t>(mr, i0 + mc - i);
      conv::im2col_block(d_, x_.data, esize, 0u, 0, g_, i, rows, p0, kc, staging.data());
      gemm_internal::MatrixAPacker(MatrixView{staging.data(), x_.dtype, rows, kc, kc, 1})
          .pack(cfg, 0, rows, 0, kc, static_cast<uint32_t*>(dst) + (i - i0) * kw);
    }
  }

  // In place (f32 words of an f32 input, pair words of a bf16 one): each tap of a pixel is a run of Cg channels, so a
  // depth block splits at tap boundaries into runs, and a row table points every output pixel
  // of a tile at its input pixel for each run (or at zeros where the tap falls in the padding).
  // Short runs (few channels per group) and input rows that would share L1 sets are packed.
  // bf16 inputs are read as pair words (two adjacent channels of one tap) when every run is a
  // whole number of pairs (Cg, p0 and kc even), so no word straddles two taps.
  int direct_segments(const gemm_internal::FloatGemmConfig& cfg, int64_t p0, int64_t kc,
                      int64_t* seg_words) const override {
    const int64_t cg = d_.cg();
    const bool f32 = cfg.word == gemm_internal::PanelWord::kF32 && x_.dtype == DType::kF32;
    const bool pairs = cfg.word == gemm_internal::PanelWord::kBF16Pair && x_.dtype == DType::kBF16 &&
                       cg % 2 == 0 && p0 % 2 == 0 && kc % 2 == 0;
    if (!(f32 || pairs) || kc <= 0) return 0;
    const int64_t esize = f32 ? 4 : 2, per_word = f32 ? 1 : 2;
    if (cg < kMinDirectRun || gemm_internal::rows_share_l1_sets(d_.stride_w * d_.c * esize, cfg.mr)) return 0;
    int nseg = 0;
    for (int64_t p = p0; p < p0 + kc; ++nseg) {
      if (nseg == gemm_internal::APacker::kMaxDirectSegments) return 0;
      const int64_t len = std::min(cg - p % cg, p0 + kc - p);
      if (len * esize > kZeroRunBytes) return 0;
      seg_words[nseg] = len / per_word;
      p += len;
    }
    return nseg;
  }

  void direct_rows(const gemm_internal::FloatGemmConfig& cfg, int64_t i, int64_t p0, int nseg,
                   const int64_t* seg_words, const void** rows) const override {
    // Called once per tile and depth block, so no division in the inner loops (a version that
    // divided per row and segment took 8-10 % of a bf16 3x3 conv): each segment's tap offset
    // and channel, then each row's pixel by stepping along the output row.
    const int mr = cfg.mr;
    const int64_t P = d_.p(), Q = d_.q(), cg = d_.cg();
    const int64_t esize = static_cast<int64_t>(dtype_size(x_.dtype)), per_word = 4 / esize;
    int64_t dh[gemm_internal::APacker::kMaxDirectSegments], dw[gemm_internal::APacker::kMaxDirectSegments];
    int64_t coff[gemm_internal::APacker::kMaxDirectSegments];
    for (int sg = 0, p = static_cast<int>(0); sg < nseg; ++sg) {
      const int64_t k = p0 + p, tap = k / cg;
      dh[sg] = tap / d_.s * d_.dilation_h;
      dw[sg] = tap % d_.s * d_.dilation_w;
      coff[sg] = (g_ * cg + k % cg) * esize;
      p += static_cast<int>(seg_words[sg] * per_word);
    }
    const char* x = static_cast<const char*>(x_.data);
    const int64_t row_bytes = d_.w * d_.c * esize, image_bytes = d_.h * row_bytes, pixel_bytes = d_.c * esize;
    int64_t n = i / (P * Q), oh = i / Q % P, ow = i % Q;
    for (int r = 0; r < mr; ++r) {
      const int64_t h0 = oh * d_.stride_h - d_.pad_top, w0 = ow * d_.stride_w - d_.pad_left;
      const char* image = x + n * image_bytes;
      for (int sg = 0; sg < nseg; ++sg) {
        const int64_t ih = h0 + dh[sg], iw = w0 + dw[sg];
        const bool inside = ih >= 0 && ih < d_.h && iw >= 0 && iw < d_.w;
        rows[sg * mr + r] = inside ? image + ih * row_bytes + iw * pixel_bytes + coff[sg] : static_cast<const void*>(kZeros);
      }
      if (++ow == Q) {
        ow = 0;
        if (++oh == P) oh = 0, ++n;
      }
    }
  }

 private:
  // Runs shorter than this cost more in row-pointer switches than packing saves.
  static constexpr int64_t kMinDirectRun = 16;
  // Padding taps read zeros from here: a run is at most one kc block (512 f32 or 1024 bf16).
  static constexpr int64_t kZeroRunBytes = 4096;
  alignas(64) static constexpr float kZeros[kZeroRunBytes / 4] = {};

  Conv2dDesc d_;
  TensorView x_;
  int64_t g_;
};

// INT8 NHWC A = output pixels x depth (taps x Cg) of group g, as ImplicitAPacker: one mr-row
// tile at a time gathered into a per-thread staging tile (mr x kc bytes, L1-resident; padding
// taps hold the activation zero point), then packed into the entry's INT8 words by its matrix
// packer, which also sums the rows where the zero points are folded (vpsadbw on VNNI).
class ImplicitQAPacker final : public gemm_internal::APacker {
 public:
  ImplicitQAPacker(const Conv2dDesc& d, const TensorView& x, int64_t g, int32_t za) : d_(d), x_(x), g_(g), za_(za) {}

  DType dtype() const override { return x_.dtype; }

  void pack(const gemm_internal::FloatGemmConfig& cfg, int64_t i0, int64_t mc, int64_t p0, int64_t kc,
            void* dst) const override {
    pack_with_sums(cfg, i0, mc, p0, kc, dst, nullptr);
  }

  void pack_with_sums(const gemm_internal::FloatGemmConfig& cfg, int64_t i0, int64_t mc, int64_t p0, int64_t kc,
                      void* dst, int32_t* row_sums) const override {
    const int mr = cfg.mr;
    const int64_t kw = gemm_internal::panel_words(kc, cfg.word);
    thread_local std::vector<uint8_t> staging;
    if (staging.size() < static_cast<size_t>(mr * kc)) staging.resize(static_cast<size_t>(mr * kc));
    // The zero point as the input's byte (u8 0..255 or s8 -128..127), so (x - za) is 0 there.
    const uint32_t pad = static_cast<uint32_t>(za_) & 0xffu;
    for (int64_t i = i0; i < i0 + mc; i += mr) {
      const int rows = static_cast<int>(std::min<int64_t>(mr, i0 + mc - i));
      conv::im2col_block(d_, x_.data, 1, pad, 0, g_, i, rows, p0, kc, staging.data());
      cfg.int8->pack_a(MatrixView{staging.data(), x_.dtype, rows, kc, kc, 1}, 0, rows, za_, kw,
                       static_cast<char*>(dst) + (i - i0) * kw * 4, row_sums ? row_sums + (i - i0) : nullptr);
    }
  }

 private:
  Conv2dDesc d_;
  TensorView x_;
  int64_t g_;
  int32_t za_;
};

// NCHW B = depth (Cg x taps) x output pixels of image n, group g: the weights are A and the
// output [Kg, P*Q] is written row-major (bias per row). Gathered kStagedPanels column panels
// at a time into a depth-major staging tile (each tap row is a run along an output row),
// then packed by the driver's vectorized matrix packer.
constexpr int kStagedPanels = 8;

// Packs B columns [j0, j0 + nc) of a depth block of kc rows through a per-thread depth-major
// staging tile, kStagedPanels panels at a time: gather(first column, columns, staging) fills
// its kc rows of `columns` elements (row stride `columns`), then the driver's matrix packer
// turns them into panels of the entry's word format.
template <typename Gather>
void pack_staged_b(const gemm_internal::FloatGemmConfig& cfg, DType dtype, int64_t kc, int64_t j0, int64_t nc,
                   void* dst, Gather gather) {
  const int64_t kw = gemm_internal::panel_words(kc, cfg.word);
  thread_local std::vector<char> staging;
  const int64_t esize = static_cast<int64_t>(dtype_size(dtype));
  const int64_t step = static_cast<int64_t>(kStagedPanels) * cfg.nr;
  const size_t bytes = static_cast<size_t>(step * kc * esize);
  if (staging.size() < bytes) staging.resize(bytes);
  for (int64_t j = 0; j < nc; j += step) {
    const int64_t cols = std::min<int64_t>(step, nc - j);
    gather(j0 + j, cols, staging.data());
    gemm_internal::MatrixBPacker(MatrixView{staging.data(), dtype, kc, cols, cols, 1})
        .pack(cfg, 0, kc, 0, cols, static_cast<uint32_t*>(dst) + j * kw);
  }
}

// Gathers NCHW B columns straight into the entry's panels where the word format allows it
// (f32 words of an f32 input, pair words of a bf16 one): pixels [m0, m0 + mc) of image n go
// to panel columns [j_off, j_off + mc) of the panels at dst (kc depth rows from p0). False:
// the word format needs the staged path.
bool gather_panels(const gemm_internal::FloatGemmConfig& cfg, const Conv2dDesc& conv_desc, const TensorView& x,
                   int64_t n, int64_t g, int64_t m0, int64_t mc, int64_t p0, int64_t kc, void* dst, int64_t j_off) {
  // A pointwise conv's channel plane is one contiguous row of H*W pixels: gathered as such, a
  // panel row is one or two runs (loads) instead of one per output row (3-4 at 14x14).
  Conv2dDesc d = conv_desc;
  if (conv::is_pointwise(d)) d.w *= d.h, d.h = 1;
  if (x.dtype == DType::kF32 && cfg.word == gemm_internal::PanelWord::kF32) {
    conv::nchw_gather_ops().panels_f32(d, static_cast<const float*>(x.data), n, g, m0, mc, p0, kc, cfg.nr,
                                       static_cast<float*>(dst), j_off);
    return true;
  }
  if (x.dtype == DType::kBF16 && cfg.word == gemm_internal::PanelWord::kBF16Pair) {
    conv::nchw_gather_ops().panels_bf16pairs(d, static_cast<const uint16_t*>(x.data), n, g, m0, mc, p0, kc, cfg.nr,
                                             static_cast<uint32_t*>(dst), j_off);
    return true;
  }
  return false;
}

bool gathers_panels(const gemm_internal::FloatGemmConfig& cfg, DType x) {
  return (x == DType::kF32 && cfg.word == gemm_internal::PanelWord::kF32) ||
         (x == DType::kBF16 && cfg.word == gemm_internal::PanelWord::kBF16Pair);
}

// Zeroes the lanes past nc of the last, partial panel of a B block of nc columns (kw words).
void zero_panel_tail(const gemm_internal::FloatGemmConfig& cfg, int64_t kw, int64_t nc, void* dst) {
  const int nr = cfg.nr;
  if (const int64_t cols = nc % nr) {
    uint32_t* last = static_cast<uint32_t*>(dst) + nc / nr * nr * kw;
    for (int64_t t = 0; t < kw; ++t) std::fill(last + t * nr + cols, last + (t + 1) * nr, 0u);
  }
}

class ImplicitBPacker final : public gemm_internal::BPacker {
 public:
  ImplicitBPacker(const Conv2dDesc& d, const TensorView& x, int64_t n, int64_t g) : d_(d), x_(x), n_(n), g_(g) {}

  DType dtype() const override { return x_.dtype; }

  void pack(const gemm_internal::FloatGemmConfig& cfg, int64_t p0, int64_t kc, int64_t j0, int64_t nc,
            void* dst) const override {
    const int esize = static_cast<int>(dtype_size(x_.dtype));
    if (gathers_panels(cfg, x_.dtype)) {
      // An f32 panel of f32 words (or of bf16 pair words) is a depth-major block of nr pixels,
      // so the panels are gathered straight into place: no staging tile and no second pass
      // (that pass was 8 % of a 3x3 64@56 NCHW f32 conv). The lanes past a last partial panel
      // are zeroed.
      const int nr = cfg.nr;
      const int64_t kw = gemm_internal::panel_words(kc, cfg.word);
      uint32_t* out = static_cast<uint32_t*>(dst);
      // kStagedPanels panels per call: the depth rows' writes stay within a few L1 lines.
      for (int64_t j = 0; j < nc; j += kStagedPanels * nr)
        gather_panels(cfg, d_, x_, n_, g_, j0 + j, std::min<int64_t>(kStagedPanels * nr, nc - j), p0, kc,
                      out + j * kw, 0);
      zero_panel_tail(cfg, kw, nc, dst);
      return;
    }
    pack_staged_b(cfg, x_.dtype, kc, j0, nc, dst, [&](int64_t m0, int64_t cols, char* staging) {
      conv::im2col_block(d_, x_.data, esize, 0u, n_, g_, m0, cols, p0, kc, staging);
    });
  }

 private:
  Conv2dDesc d_;
  TensorView x_;
  int64_t n_, g_;
};

// NCHW pointwise B: the image's channel rows [Cg, H*W] themselves. Read in place by the
// entry's strided-B kernel (f32 words of an f32 input), so the 1x1 conv copies nothing; the
// matrix packer packs what the kernel cannot read (a last partial panel, other word formats,
// rows a multiple of ~4 KiB apart). Packing was a copy of the whole input per call, a quarter
// of a 1x1 256->64 @56 conv (perf), where NHWC reads its A in place.
class NchwPointwiseBPacker final : public gemm_internal::BPacker {
 public:
  explicit NchwPointwiseBPacker(const MatrixView& rows) : rows_(rows), packer_(rows) {}

  DType dtype() const override { return rows_.dtype; }

  void pack(const gemm_internal::FloatGemmConfig& cfg, int64_t p0, int64_t kc, int64_t j0, int64_t nc,
            void* dst) const override {
    packer_.pack(cfg, p0, kc, j0, nc, dst);
  }

  const void* direct_panel(const gemm_internal::FloatGemmConfig& cfg, int64_t p0, int64_t kc, int64_t j0,
                           int64_t* ld) const override {
    (void)kc;
    // Rows that start off a 64-byte line make every 64-byte load of the kernel touch two lines:
    // with NumPy's 16-byte aligned arrays, 1x1 256->64 @56 ran 15.1 ms in place against 12.8 ms
    // packed; 64-byte aligned (torch's allocations), 10.0 against 13.1 (1 thread, batch 8).
    const auto base = reinterpret_cast<uintptr_t>(rows_.data);
    if (rows_.dtype != DType::kF32 || cfg.word != gemm_internal::PanelWord::kF32 || base % 64 != 0 ||
        rows_.row_stride * 4 % 64 != 0 || (j0 * 4) % 64 != 0 ||
        gemm_internal::rows_share_l1_sets(rows_.row_stride * 4, cfg.mr))
      return nullptr;
    *ld = rows_.row_stride;
    return static_cast<const float*>(rows_.data) + p0 * rows_.row_stride + j0;
  }

 private:
  MatrixView rows_;
  gemm_internal::MatrixBPacker packer_;
};

// NCHW, small images: B = depth x the pixels of images [n0, n0 + nb) side by side (column
// b*P*Q + i is pixel i of image n0 + b), so one GEMM covers several images. Per image the
// GEMM would have N = P*Q columns (49 at 7x7: two 32-column panels, a quarter of them padding,
// and a B block per image). Staged like ImplicitBPacker, one image segment at a time; a
// pointwise conv copies channel rows of x.
class NchwBatchBPacker final : public gemm_internal::BPacker {
 public:
  NchwBatchBPacker(const Conv2dDesc& d, const TensorView& x, int64_t n0, int64_t g)
      : d_(d), x_(x), n0_(n0), g_(g), pq_(d.p() * d.q()), pointwise_(conv::is_pointwise(d)) {}

  DType dtype() const override { return x_.dtype; }

  void pack(const gemm_internal::FloatGemmConfig& cfg, int64_t p0, int64_t kc, int64_t j0, int64_t nc,
            void* dst) const override {
    const int64_t esize = static_cast<int64_t>(dtype_size(x_.dtype));
    if (gathers_panels(cfg, x_.dtype)) {
      // Straight into the panels, one image segment at a time (a panel may hold the last
      // pixels of one image and the first of the next).
      const int64_t kw = gemm_internal::panel_words(kc, cfg.word);
      uint32_t* out = static_cast<uint32_t*>(dst);
      const int64_t step = static_cast<int64_t>(kStagedPanels) * cfg.nr;
      for (int64_t j = 0; j < nc; j += step) {  // a few panels per pass: their rows stay in L1
        const int64_t cols = std::min(step, nc - j);
        for (int64_t done = 0; done < cols;) {
          const int64_t m = j0 + j + done, n = n0_ + m / pq_, m0 = m % pq_;
          const int64_t len = std::min(cols - done, pq_ - m0);
          gather_panels(cfg, d_, x_, n, g_, m0, len, p0, kc, out + j * kw, done);
          done += len;
        }
      }
      zero_panel_tail(cfg, kw, nc, dst);
      return;
    }
    pack_staged_b(cfg, x_.dtype, kc, j0, nc, dst, [&](int64_t first, int64_t cols, char* staging) {
      for (int64_t done = 0; done < cols;) {  // one image segment at a time
        const int64_t m = first + done, n = n0_ + m / pq_, m0 = m % pq_;
        const int64_t len = std::min(cols - done, pq_ - m0);
        char* col = staging + done * esize;
        if (pointwise_) {
          const char* src = static_cast<const char*>(x_.data) + ((n * d_.c + g_ * d_.cg() + p0) * pq_ + m0) * esize;
          for (int64_t t = 0; t < kc; ++t) std::memcpy(col + t * cols * esize, src + t * pq_ * esize, len * esize);
        } else {
          conv::im2col_block(d_, x_.data, static_cast<int>(esize), 0u, n, g_, m0, len, p0, kc, col, cols);
        }
        done += len;
      }
    });
  }

 private:
  Conv2dDesc d_;
  TensorView x_;
  int64_t n0_, g_, pq_;
  bool pointwise_;
};

// Images per NCHW GEMM: 1 for images of more than kNchwBatchPixels output pixels (N = P*Q
// fills the panels already); else as many as keep the f32 product (Kg x images*P*Q) within
// the output's own size in bytes (all images for f32 outputs, half of them for bf16/f16).
constexpr int64_t kNchwBatchPixels = 256;

int64_t nchw_images_per_gemm(const Conv2dDesc& d, DType out_dtype) {
  if (d.layout != Layout::kNCHW || d.p() * d.q() > kNchwBatchPixels || d.n < 2) return 1;
  return std::max<int64_t>(1, d.n * static_cast<int64_t>(dtype_size(out_dtype)) / 4);
}

// The output-shaped residual as the epilogue's matrix view over the same rows and columns as
// `view` (a view of out): same element offsets, the residual's own base and dtype.
MatrixView residual_like(const TensorView* residual, const TensorView& out, const MatrixView& view) {
  if (!residual) return MatrixView{};
  const int64_t off = (static_cast<const char*>(view.data) - static_cast<const char*>(out.data)) /
                      static_cast<int64_t>(dtype_size(out.dtype));
  MatrixView r = view;
  r.data = byte_ptr(*residual, off);
  r.dtype = residual->dtype;
  return r;
}

void conv2d_driver(const Conv2dDesc& d, const TensorView& x, const void* w, DType wdtype,
                   const Conv2dWeights::Impl* packed, const Conv2dEpilogue& epi, const TensorView& out) {
  const float* bias = epi.bias;
  const bool pointwise = conv::is_pointwise(d);
  const int64_t kg = d.kg(), cg = d.cg(), depth = cg * d.r * d.s;
  const int64_t esize = static_cast<int64_t>(dtype_size(wdtype));
  if (d.layout == Layout::kNCHW) {
    const int64_t pq = d.p() * d.q();
    // The epilogue of image n, group g: out[kg, P*Q] rows of that image (bias per row).
    auto nchw_epilogue = [&](int64_t n, int64_t g) {
      gemm_internal::Epilogue ep;
      ep.bias = bias ? bias + g * kg : nullptr;
      ep.scale = epi.scale ? epi.scale + g * kg : nullptr;
      ep.bias_per_row = true;
      ep.activation = epi.activation;
      ep.out = MatrixView{byte_ptr(out, (n * d.k + g * kg) * pq), out.dtype, kg, pq, pq, 1};
      ep.residual = residual_like(epi.residual, out, ep.out);
      return ep;
    };
    const int64_t batch = nchw_images_per_gemm(d, out.dtype);
    if (batch > 1) {
      // Small images: prod[kg, nb*P*Q] = W_g x B over nb images at a time, into an f32
      // scratch (the plain product: full tiles go straight there), then each image's
      // [kg, P*Q] slice through the tile epilogue into out. The same sums in the same order
      // as the per-image GEMMs (k blocking depends on the depth only): the same bits.
      std::vector<float> prod(static_cast<size_t>(kg * batch * pq));
      const gemm_internal::EpilogueFn epilogue = gemm_internal::float_gemm_config(x.dtype, wdtype).epilogue;
      for (int64_t g = 0; g < d.groups; ++g) {
        const gemm_internal::MatrixAPacker a(
            MatrixView{static_cast<char*>(const_cast<void*>(w)) + g * kg * depth * esize, wdtype, kg, depth, depth, 1});
        for (int64_t n0 = 0; n0 < d.n; n0 += batch) {
          const int64_t nb = std::min(batch, d.n - n0), cols = nb * pq;
          gemm_internal::Epilogue plain;
          plain.out = MatrixView{prod.data(), DType::kF32, kg, cols, cols, 1};
          gemm_internal::run_float_gemm(kg, cols, depth, a, NchwBatchBPacker(d, x, n0, g), plain);
          // Rows of 12 channels per task (all images of the block): the epilogue is a pass
          // over the product, worth the pool only when large.
          const int64_t row_block = 12, tasks = (kg + row_block - 1) / row_block;
          parallel_for(tasks * nb, [&](int64_t task, int) {
            const int64_t b = task / tasks, i0 = (task % tasks) * row_block;
            const int64_t n = n0 + b, rows = std::min(row_block, kg - i0);
            const gemm_internal::Epilogue ep = nchw_epilogue(n, g);
            for (int64_t j = 0; j < pq; j += 1024)
              epilogue(ep, prod.data() + i0 * cols + b * pq + j, cols, i0, j, static_cast<int>(rows),
                       static_cast<int>(std::min<int64_t>(1024, pq - j)));
          }, kg * cols < (int64_t{1} << 16) ? 1 : 0);
        }
      }
      return;
    }
    // Per image and group: out[kg, P*Q] = W_g[kg, depth] x B[depth, P*Q].
    auto one = [&](int64_t task, int threads) {
      const int64_t n = task / d.groups, g = task % d.groups;
      const gemm_internal::Epilogue ep = nchw_epilogue(n, g);
      const gemm_internal::MatrixAPacker a(
          MatrixView{static_cast<char*>(const_cast<void*>(w)) + g * kg * depth * esize, wdtype, kg, depth, depth, 1});
      if (pointwise) {
        const NchwPointwiseBPacker b(MatrixView{byte_ptr(x, (n * d.c + g * cg) * pq), x.dtype, cg, pq, pq, 1});
        gemm_internal::run_float_gemm(kg, pq, depth, a, b, ep, threads);
      } else {
        gemm_internal::run_float_gemm(kg, pq, depth, a, ImplicitBPacker(d, x, n, g), ep, threads);
      }
    };
    const int64_t tasks = d.n * d.groups;
    const int64_t T = get_num_threads();
    // Enough images (and groups) to deal out evenly: one serial GEMM per task, tasks split over
    // the threads. Each GEMM split over the threads instead ends its B packing and each kc
    // block in a barrier, 2-4 per image, and on a shared machine each waits for a descheduled
    // thread (2 threads, batch 8, same process: 3x3 64@56 f32 30.1 -> 23.0 ms, 1x1 256->64
    // @56 16.2 -> 13.1, bf16 3x3 64@56 14.5 -> 12.3). Per element the sums are the same
    // either way (the GEMM's are thread-count independent): the same bits. Each thread packs
    // its own B blocks (the driver's per-thread scratch).
    if (T > 1 && (tasks % T == 0 || tasks >= 4 * T)) {
      parallel_for(tasks, [&](int64_t task, int) { one(task, 1); });
    } else {
      for (int64_t task = 0; task < tasks; ++task) one(task, 0);
    }
    return;
  }
  // NHWC: out[N*P*Q, kg] (row stride K) = A[N*P*Q, depth] x W_g^T.
  const int64_t pixels = d.n * d.p() * d.q();
  for (int64_t g = 0; g < d.groups; ++g) {
    const Operands o = operands(d, x, out, nullptr, 0, g, 0, pixels);
    gemm_internal::Epilogue ep;
    ep.bias = bias ? bias + g * kg : nullptr;
    ep.scale = epi.scale ? epi.scale + g * kg : nullptr;
    ep.activation = epi.activation;
    ep.out = o.out;
    ep.residual = residual_like(epi.residual, out, ep.out);
    const std::unique_ptr<gemm_internal::APacker> a = conv::nhwc_a_packer(d, x, g);
    if (packed) {
      gemm_internal::run_float_gemm(pixels, *a, *packed->packed[g], ep);
    } else {
      const WeightBPacker b(weight_view(d, w, wdtype, g).data, wdtype, depth);
      gemm_internal::run_float_gemm(pixels, kg, depth, *a, b, ep);
    }
  }
}

void check_float(const TensorView& x, DType wdtype, const TensorView& out) {
  if (!is_float(x.dtype)) throw_invalid("x", "dtype f32, f16 or bf16", dtype_name(x.dtype));
  if (wdtype != x.dtype) throw_invalid("w", std::string("dtype ") + dtype_name(x.dtype), dtype_name(wdtype));
  if (out.dtype != x.dtype && out.dtype != DType::kF32)
    throw_invalid("out", std::string("dtype ") + dtype_name(x.dtype) + " or f32", dtype_name(out.dtype));
}

// The residual: out's shape, C-contiguous, x's dtype or f32, and either out itself or not
// overlapping it (the epilogue reads each residual element just before writing that out
// element; any other overlap would read values already written).
void check_residual(const TensorView* r, const TensorView& x, const TensorView& out) {
  if (!r) return;
  conv::check_tensor(*r, "residual", out.shape[0], out.shape[1], out.shape[2], out.shape[3], false);
  if (r->dtype != x.dtype && r->dtype != DType::kF32)
    throw_invalid("residual", std::string("dtype ") + dtype_name(x.dtype) + " or f32", dtype_name(r->dtype));
  const char* rb = static_cast<const char*>(r->data);
  const char* ob = static_cast<const char*>(out.data);
  const int64_t rbytes = r->numel() * static_cast<int64_t>(dtype_size(r->dtype));
  const int64_t obytes = out.numel() * static_cast<int64_t>(dtype_size(out.dtype));
  const bool same = rb == ob && r->dtype == out.dtype;
  if (!same && rbytes > 0 && obytes > 0 && rb < ob + obytes && ob < rb + rbytes)
    throw_invalid("residual", "memory not overlapping out (or out itself)", "an overlapping array");
}

}  // namespace

int64_t conv2d_workspace_bytes(const Conv2dDesc& d, DType input_dtype) {
  if (d.n * d.p() * d.q() * d.k == 0) return 0;
  const int64_t esize = static_cast<int64_t>(dtype_size(input_dtype));
  const bool quantized = input_dtype == DType::kS8 || input_dtype == DType::kU8;
  // NCHW small images batched into one GEMM (for the default output dtype, the input's): the
  // f32 product, at most the output's size, plus a staging tile per thread.
  const int64_t batch = quantized || conv::is_depthwise(d) ? 1 : nchw_images_per_gemm(d, input_dtype);
  if (conv::is_pointwise(d) && batch == 1) return 0;
  if (conv::is_depthwise(d)) return depthwise_workspace_bytes(d);  // int32 accumulators: same size
  if (!quantized && smallc_eligible(d)) return smallc_workspace_bytes(d, input_dtype);
  if (quantized && qstem_eligible(d) && qstem_ops() != nullptr) return qstem_workspace_bytes(*qstem_ops(), d);
  if (!quantized) {
    // One staging tile (mr x kc input elements) per thread; the unfolded matrix never exists.
    const auto& cfg = gemm_internal::float_gemm_config(input_dtype, input_dtype);
    const int64_t kc = gemm_internal::balanced_kc(d.cg() * d.r * d.s, cfg.kc, gemm_internal::k_per_word(cfg.word));
    const int64_t staged = d.layout == Layout::kNHWC ? cfg.mr : int64_t{kStagedPanels} * cfg.nr;
    int64_t bytes = staged * kc * esize * get_num_threads();
    if (batch > 1) bytes += d.kg() * batch * d.p() * d.q() * static_cast<int64_t>(sizeof(float));
    return bytes;
  }
  if (d.layout == Layout::kNHWC) {
    // INT8 NHWC implicit GEMM: one staging tile (mr x kc bytes) per thread; no unfolded matrix.
    const auto& cfg = gemm_internal::float_gemm_config(input_dtype, DType::kS8);
    const int64_t kc = gemm_internal::balanced_kc(d.cg() * d.r * d.s, cfg.kc, gemm_internal::k_granule(cfg.word));
    return cfg.mr * kc * get_num_threads();
  }
  return chunk_pixels(d) * d.cg() * d.r * d.s * esize;  // NCHW INT8: the im2col chunk
}

void conv2d(const Conv2dDesc& d, const TensorView& x, const TensorView& w, const float* bias,
            Activation activation, const TensorView& out) {
  Conv2dEpilogue ep;
  ep.bias = bias;
  ep.activation = activation;
  conv2d(d, x, w, ep, out);
}

void conv2d(const Conv2dDesc& d, const TensorView& x, const TensorView& w, const Conv2dEpilogue& ep,
            const TensorView& out) {
  check_common(d, x, &w, out);
  check_float(x, w.dtype, out);
  check_residual(ep.residual, x, out);
  if (out.numel() == 0) return;
  if (conv::is_depthwise(d)) {
    depthwise_conv2d(d, x, w, ep.bias, ep.activation, out, ep.scale, ep.residual);
    return;
  }
  if (smallc_eligible(d)) {
    smallc_conv2d(d, x, w.data, w.dtype, ep, out);
    return;
  }
  conv2d_driver(d, x, w.data, w.dtype, nullptr, ep, out);
}

Conv2dWeights::Conv2dWeights(const TensorView& w, int64_t groups, Layout layout) : impl_(new Impl) {
  if (layout != Layout::kNCHW && layout != Layout::kNHWC)
    throw_invalid("layout", "NCHW or NHWC", std::to_string(static_cast<int>(layout)));
  if (w.ndim != 4) throw_invalid("w", "a 4-D array", std::to_string(w.ndim) + "-D");
  if (!w.is_contiguous()) throw_invalid("w", "a C-contiguous array", "a strided view");
  if (!is_float(w.dtype)) throw_invalid("w", "dtype f32, f16 or bf16", dtype_name(w.dtype));
  const bool nchw = layout == Layout::kNCHW;
  k_ = w.shape[0];
  cg_ = nchw ? w.shape[1] : w.shape[3];
  r_ = nchw ? w.shape[2] : w.shape[1];
  s_ = nchw ? w.shape[3] : w.shape[2];
  if (groups < 1 || k_ % groups) throw_invalid("groups", "a divisor of K=" + std::to_string(k_), std::to_string(groups));
  if (r_ < 1 || s_ < 1) throw_invalid("w", "a kernel of at least 1x1", std::to_string(r_) + "x" + std::to_string(s_));
  groups_ = groups;
  layout_ = layout;
  dtype_ = w.dtype;
  const int64_t esize = static_cast<int64_t>(dtype_size(w.dtype));
  const int64_t kg = k_ / groups, depth = cg_ * r_ * s_;
  impl_->raw.assign(static_cast<const char*>(w.data), static_cast<const char*>(w.data) + w.numel() * esize);
  Conv2dDesc d;  // only the fields weight_view reads
  d.c = cg_ * groups, d.k = k_, d.r = r_, d.s = s_, d.groups = groups, d.layout = layout;
  // NHWC convs take the weights as B (packed here, once); NCHW convs take them as the A
  // operand read in place (the driver packs A blocks as it goes).
  for (int64_t g = 0; g < groups && layout == Layout::kNHWC; ++g) {
    const WeightBPacker b(weight_view(d, impl_->raw.data(), dtype_, g).data, dtype_, depth);
    impl_->packed.push_back(std::make_unique<gemm_internal::PackedB>(b, depth, kg));
  }
}

Conv2dWeights::~Conv2dWeights() = default;

int64_t Conv2dWeights::packed_bytes() const {
  int64_t bytes = static_cast<int64_t>(impl_->raw.size());
  for (const auto& p : impl_->packed) {
    const auto& cfg = p->config();
    bytes += ((p->n() + cfg.nr - 1) / cfg.nr) * cfg.nr * p->k() * static_cast<int64_t>(sizeof(float));
  }
  return bytes;
}

void conv2d(const Conv2dDesc& d, const TensorView& x, const Conv2dWeights& w, const float* bias,
            Activation activation, const TensorView& out) {
  Conv2dEpilogue ep;
  ep.bias = bias;
  ep.activation = activation;
  conv2d(d, x, w, ep, out);
}

void conv2d(const Conv2dDesc& d, const TensorView& x, const Conv2dWeights& w, const Conv2dEpilogue& ep,
            const TensorView& out) {
  check_common(d, x, nullptr, out);
  check_float(x, w.dtype(), out);
  check_residual(ep.residual, x, out);
  if (w.k() != d.k || w.cg() != d.cg() || w.r() != d.r || w.s() != d.s || w.groups() != d.groups ||
      w.layout() != d.layout)
    throw_invalid("w", "prepacked weights matching the conv (K, C/groups, R, S, groups, layout)",
                  "weights for K=" + std::to_string(w.k()) + ", C/groups=" + std::to_string(w.cg()) + ", " +
                      std::to_string(w.r()) + "x" + std::to_string(w.s()) + ", groups=" + std::to_string(w.groups()));
  if (out.numel() == 0) return;
  const Conv2dWeights::Impl& impl = w.impl();
  if (conv::is_depthwise(d)) {
    TensorView raw;
    raw.data = const_cast<char*>(impl.raw.data());
    raw.dtype = w.dtype();
    raw.ndim = 4;
    conv::w_dims(d, raw.shape);
    depthwise_conv2d(d, x, raw, ep.bias, ep.activation, out, ep.scale, ep.residual);
    return;
  }
  if (smallc_eligible(d)) {  // packs its f32 weights per call (R*S*C*K: a few KiB)
    smallc_conv2d(d, x, impl.raw.data(), w.dtype(), ep, out);
    return;
  }
  if (d.layout == Layout::kNHWC) conv2d_driver(d, x, nullptr, w.dtype(), &impl, ep, out);
  else conv2d_driver(d, x, impl.raw.data(), w.dtype(), nullptr, ep, out);
}

void qconv2d(const Conv2dDesc& d, const TensorView& x, const TensorView& w, const QGemmParams& params,
             const TensorView& out) {
  qconv2d(d, x, w, params, out, nullptr, 1.0f, 0);
}

void qconv2d(const Conv2dDesc& d, const TensorView& x, const TensorView& w, const QGemmParams& params,
             const TensorView& out, const TensorView* residual, float residual_scale, int32_t residual_zero_point) {
  check_common(d, x, &w, out);
  if (x.dtype != DType::kU8 && x.dtype != DType::kS8) throw_invalid("x", "dtype u8 or s8", dtype_name(x.dtype));
  if (w.dtype != DType::kS8) throw_invalid("w", "dtype s8", dtype_name(w.dtype));
  const auto per_channel = [&](int64_t len, const char* name) {
    if (len != 0 && len != 1 && len != d.k)
      throw_invalid(name, "length 1 or K=" + std::to_string(d.k), std::to_string(len));
  };
  per_channel(params.b_zero_point ? params.b_zero_point_len : 0, "w_zero_point");
  per_channel(params.scale ? params.scale_len : 0, "scale");
  // The residual as a view of the whole tensor: the depthwise and stem kernels read it at out's
  // element index (same shape and layout, both C-contiguous); the GEMM path below cuts
  // per-chunk views of it exactly like out's.
  QResidual whole;
  if (residual != nullptr) {
    conv::check_tensor(*residual, "residual", out.shape[0], out.shape[1], out.shape[2], out.shape[3], false);
    const int64_t k = std::max<int64_t>(d.k, 1);
    whole.view = MatrixView{residual->data, residual->dtype, residual->numel() / k, k, k, 1};
    whole.scale = residual_scale;
    whole.zero_point = residual_zero_point;
    check_qresidual(MatrixView{out.data, out.dtype, out.numel() / k, k, k, 1}, &whole);
  }
  const QResidual* res = residual != nullptr ? &whole : nullptr;
  if (out.numel() == 0) return;
  if (conv::is_depthwise(d)) {
    depthwise_qconv2d(d, x, w, params, out, res);
    return;
  }
  if (qstem_eligible(d)) {
    if (const QStemOps* ops = qstem_ops()) {
      qstem_qconv2d(*ops, d, x, w, params, out, res);
      return;
    }
  }
  const int64_t kg = d.kg();
  // Per-group slices of the per-channel parameters.
  auto group_params = [&](int64_t g) {
    QGemmParams p = params;
    if (p.b_zero_point && p.b_zero_point_len == d.k) {
      p.b_zero_point += g * kg;
      p.b_zero_point_len = kg;
    }
    if (p.scale && p.scale_len == d.k) {
      p.scale += g * kg;
      p.scale_len = kg;
    }
    if (p.bias) p.bias += g * kg;
    return p;
  };
  if (d.layout == Layout::kNHWC) {
    // One GEMM per group over every output pixel of the batch: M = N*P*Q, K = R*S*Cg.
    const gemm_internal::FloatGemmConfig& cfg = gemm_internal::float_gemm_config(x.dtype, DType::kS8);
    const int64_t pixels = d.n * d.p() * d.q();
    for (int64_t g = 0; g < d.groups; ++g) {
      const QGemmParams p = group_params(g);
      const MatrixView o{byte_ptr(out, g * kg), out.dtype, pixels, kg, d.k, 1};
      QResidual gres;
      if (res != nullptr) {  // the group's columns of the residual (1 byte per element)
        gres = whole;
        gres.view = MatrixView{static_cast<char*>(whole.view.data) + g * kg, whole.view.dtype, pixels, kg, d.k, 1};
      }
      const MatrixView b = weight_view(d, w.data, w.dtype, g);
      if (conv::is_pointwise(d)) {  // A is the input itself: pixels x Cg, row stride C
        const MatrixView a{byte_ptr(x, g * d.cg()), x.dtype, pixels, d.cg(), d.c, 1};
        qgemm_detail::qgemm_with_route(a, b, o, p, cfg, res != nullptr ? &gres : nullptr);
      } else {
        // The GEMM's checks (zero point ranges, the K that int32 sums allow) on A's shape: a
        // broadcast view of x's first byte, never read (x itself is not a pixels x depth
        // matrix; its overlap with out is refused with the conv's own checks).
        check_qgemm_args(MatrixView{x.data, x.dtype, pixels, b.rows, 0, 0}, b, o, p);
        check_qresidual(o, res != nullptr ? &gres : nullptr);
        gemm_internal::run_qgemm(pixels, ImplicitQAPacker(d, x, g, p.a_zero_point), b, o, p,
                                 res != nullptr ? &gres : nullptr, cfg);
      }
    }
    return;
  }
  // NCHW: im2col chunks into the public qgemm. Padding holds the zero point so that (x - zx)
  // is exactly 0 there.
  const uint32_t pad = static_cast<uint32_t>(params.a_zero_point) & 0xffu;
  const int64_t out_esize = static_cast<int64_t>(dtype_size(out.dtype));
  for_each_chunk(d, x, out, pad, [&](const Operands& o, int64_t g) {
    const QGemmParams p = group_params(g);
    QResidual chunk_res;
    if (res != nullptr) {  // the chunk's out view, over the residual's bytes (1 per element)
      chunk_res = whole;
      chunk_res.view = o.out;
      chunk_res.view.dtype = whole.view.dtype;
      chunk_res.view.data = static_cast<char*>(whole.view.data) +
                            (static_cast<const char*>(o.out.data) - static_cast<const char*>(out.data)) / out_esize;
    }
    qgemm(o.a, weight_view(d, w.data, w.dtype, g), o.out, p, res != nullptr ? &chunk_res : nullptr);
  });
}

namespace conv {

std::unique_ptr<gemm_internal::APacker> nhwc_a_packer(const Conv2dDesc& d, const TensorView& x, int64_t g) {
  if (is_pointwise(d)) {
    const int64_t pixels = d.n * d.p() * d.q();
    return std::make_unique<gemm_internal::MatrixAPacker>(
        MatrixView{byte_ptr(x, g * d.cg()), x.dtype, pixels, d.cg(), d.c, 1});
  }
  return std::make_unique<ImplicitAPacker>(d, x, g);
}

std::unique_ptr<gemm_internal::BPacker> nchw_b_packer(const Conv2dDesc& d, const TensorView& x, int64_t n0,
                                                       int64_t nb, int64_t g) {
  if (nb > 1) return std::make_unique<NchwBatchBPacker>(d, x, n0, g);
  if (is_pointwise(d)) {
    const int64_t pq = d.p() * d.q();
    return std::make_unique<NchwPointwiseBPacker>(
        MatrixView{byte_ptr(x, (n0 * d.c + g * d.cg()) * pq), x.dtype, d.cg(), pq, pq, 1});
  }
  return std::make_unique<ImplicitBPacker>(d, x, n0, g);
}

}  // namespace conv

}  // namespace aicc::cpu
