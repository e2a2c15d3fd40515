// conv2d backward (data and weight) on the GEMM driver.
//
//   backward_data:   stride 1 (and padding no larger than the kernel's reach): a forward
//                    conv of grad_out with the weights OC/IC-swapped and flipped, padded by
//                    (R-1)*dil - pad, so it runs as the forward implicit GEMM (no column
//                    buffer, no col2im; NHWC f32 packs the flipped B straight from w, other
//                    cases flip into a scratch copy first); strided NHWC convs likewise per
//                    stride phase. NCHW (any stride): per block of images (one, or the
//                    batch for small images) every phase's GEMM into a per-thread scratch,
//                    then grad_in's rows written once from it (stride 1 with one image per
//                    GEMM: straight into grad_in); A is a flipped copy of w read in place, or,
//                    for the batch in one GEMM, packed from w itself. 1x1 stride-1 unpadded
//                    convs write one GEMM straight into grad_in (NCHW images of <= 64 pixels:
//                    the phase path's batch GEMM); otherwise col = G_chunk x W_g (f32), then
//                    col2im adds col into an f32 grad_in.
//   backward_weight: dW_g = G_g^T x col, an implicit GEMM over the N*P*Q pixels whose
//                    B packer gathers the column blocks straight from x (no column buffer;
//                    NCHW: one gather per image the block touches, G^T read per image run).
//                    The pixel sum is cut into depth chunks whose number depends on the
//                    pixel count alone; each chunk's product goes to its own f32 copy of dW
//                    and the copies are added in chunk order. Inside a chunk the threads
//                    split dW_g's columns (taps x channels) or, when there are more output
//                    channels than columns, its rows, each tile a serial GEMM over the
//                    chunk's pixels. NHWC f32 with few output channels (where 12-row panels
//                    of K waste more lanes than 12-row panels of taps): swapped, dW_g^T =
//                    col^T x G_g, then transposed (NHWC only).
//   depthwise:       direct kernels (depthwise_conv2d_backward.cc).
// Thread-count independence: the GEMM driver splits only M and N across threads (never
// the K sum), depth chunks and their reduction order come from the shape alone, and col2im
// gives every grad_in element to one task, so every sum is formed in the same order
// whatever the thread count.
#include <algorithm>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
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
#include "cpu/conv/smallc_conv2d.h"
#include "cpu/gemm/float_kernels.h"
#include "cpu/gemm/gemm_driver.h"

namespace aicc::cpu {
namespace {

bool is_float(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

char* at(const TensorView& t, int64_t elems) {
  return static_cast<char*>(t.data) + elems * static_cast<int64_t>(dtype_size(t.dtype));
}

void check_float_dtypes(const TensorView& a, const char* an, const TensorView& b, const char* bn,
                        const TensorView& out, const char* on) {
  if (!is_float(a.dtype)) throw_invalid(an, "dtype f32, f16 or bf16", dtype_name(a.dtype));
  if (b.dtype != a.dtype) throw_invalid(bn, std::string("dtype ") + dtype_name(a.dtype), dtype_name(b.dtype));
  if (out.dtype != a.dtype) throw_invalid(on, std::string("dtype ") + dtype_name(a.dtype), dtype_name(out.dtype));
}

// f32 values -> `out` (any float dtype), in parallel.
void convert_from_f32(const float* src, const TensorView& out) {
  const int64_t total = out.numel();
  constexpr int64_t kGrain = 1 << 16;
  parallel_for((total + kGrain - 1) / kGrain, [&](int64_t t, int) {
    const int64_t i1 = std::min(total, (t + 1) * kGrain);
    for (int64_t i = t * kGrain; i < i1; ++i) {
      if (out.dtype == DType::kF16) static_cast<uint16_t*>(out.data)[i] = f32_to_f16(src[i]);
      else if (out.dtype == DType::kBF16) static_cast<uint16_t*>(out.data)[i] = f32_to_bf16(src[i]);
      else static_cast<float*>(out.data)[i] = src[i];
    }
  });
}

// Backward data as forward convs over grad_out, one per stride phase (ph, pw): the input
// pixels (ph + sh*i, pw + sw*j) receive only the taps r with (ph + pad_top - r*dil_h)
// divisible by sh (likewise s), which read grad_out row i + (ph + pad_top - r*dil_h)/sh. Those
// offsets are evenly spaced (step dil_h / gcd(sh, dil_h)), so the phase is a stride-1 conv of
// grad_out with that sub-kernel, flipped and OC/IC-swapped, dilated by the step and padded by
// minus the smallest offset. Stride 1 is the single phase, written straight into grad_in;
// strided convs compute each phase into a scratch of the phase's size, then scatter it.
constexpr int64_t kMinPhaseChannels = 16;

struct PhaseTaps {
  std::vector<int64_t> taps;  // kernel indices, in increasing grad_out offset (decreasing index)
  int64_t first = 0;          // grad_out offset of taps[0]
  int64_t step = 1;           // offset step between consecutive taps
  int64_t count = 0;          // input rows (columns) in the phase
};

PhaseTaps phase_taps(int64_t phase, int64_t pad, int64_t kernel, int64_t dil, int64_t stride, int64_t size) {
  PhaseTaps t;
  t.count = size > phase ? (size - phase + stride - 1) / stride : 0;
  for (int64_t r = kernel - 1; r >= 0; --r) {
    const int64_t u = phase + pad - r * dil;
    if (((u % stride) + stride) % stride != 0) continue;
    if (t.taps.empty()) t.first = (u >= 0 ? u / stride : -((-u) / stride));
    t.taps.push_back(r);
  }
  int64_t a = stride, b = dil;
  while (b) a %= b, std::swap(a, b);  // gcd
  t.step = dil / a;
  return t;
}

// dst[c * dst_c + k * dst_k] = src[k * src_k + c * src_c] for k < rows, c < cols (strides in
// elements of `es` bytes), in 16x16 blocks so both sides stay in cache.
template <typename T>
void transpose_typed(const T* src, int64_t src_k, int64_t src_c, T* dst, int64_t dst_c, int64_t dst_k, int64_t rows,
                     int64_t cols) {
  constexpr int64_t kB = 16;
  for (int64_t k0 = 0; k0 < rows; k0 += kB)
    for (int64_t c0 = 0; c0 < cols; c0 += kB) {
      const int64_t k1 = std::min(rows, k0 + kB), c1 = std::min(cols, c0 + kB);
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t k = k0; k < k1; ++k) dst[c * dst_c + k * dst_k] = src[k * src_k + c * src_c];
    }
}

void transpose_block(const char* src, int64_t src_k, int64_t src_c, char* dst, int64_t dst_c, int64_t dst_k,
                     int64_t rows, int64_t cols, size_t es) {
  if (es == 4)
    transpose_typed(reinterpret_cast<const uint32_t*>(src), src_k, src_c, reinterpret_cast<uint32_t*>(dst), dst_c,
                    dst_k, rows, cols);
  else
    transpose_typed(reinterpret_cast<const uint16_t*>(src), src_k, src_c, reinterpret_cast<uint16_t*>(dst), dst_c,
                    dst_k, rows, cols);
}

// B of one phase's forward conv, group g, packed straight from the NHWC f32 or bf16 weights:
// row p = (m * Sc + mm) * Kg + k of B (depth order of the phase conv's [Cg][Rc][Sc][Kg] weights)
// and column j (input channel) hold w[g*Kg + k][taps_r[m]][taps_s[mm]][j], so each row of a
// panel is nr contiguous elements of w (bf16: two rows interleaved into pair words). The
// flipped weights are never materialized: flipping them (a Kg x Cg transpose per tap) and then
// packing them (a second transpose, B being W^T) cost about a fifth of a 3x3 512@7 data
// gradient (perf, 2 threads); this is one copy pass.
class FlippedWeightBPacker final : public gemm_internal::BPacker {
 public:
  // w: f32 (f32 words) or bf16 (bf16 pair words: two depth rows interleaved 16 bits at a time).
  FlippedWeightBPacker(const Conv2dDesc& d, const void* w, DType dtype, int64_t g, const PhaseTaps& tr,
                       const PhaseTaps& ts)
      : d_(d), w_(w), dtype_(dtype), g_(g), tr_(tr), ts_(ts) {}
  DType dtype() const override { return dtype_; }

  void pack(const gemm_internal::FloatGemmConfig& cfg, int64_t p0, int64_t kc, int64_t j0, int64_t nc,
            void* dst) const override {
    const int nr = cfg.nr;
    const int64_t panels = (nc + nr - 1) / nr;
    if (cfg.word == gemm_internal::PanelWord::kBF16Pair) {
      // Word q of a panel row: depth rows p0 + 2q (low half) and p0 + 2q + 1 (high half, +0
      // past kc), each a row of w read along its channels.
      const int64_t kw = (kc + 1) / 2;
      uint32_t* out = static_cast<uint32_t*>(dst);
      for (int64_t q = 0; q < kw; ++q) {
        const uint16_t* lo = static_cast<const uint16_t*>(row(p0 + 2 * q, j0));
        const uint16_t* hi = 2 * q + 1 < kc ? static_cast<const uint16_t*>(row(p0 + 2 * q + 1, j0)) : nullptr;
        for (int64_t t = 0; t < panels; ++t) {
          const int64_t cols = std::min<int64_t>(nr, nc - t * nr);
          uint32_t* word = out + (t * kw + q) * nr;
          const uint16_t* a = lo + t * nr;
          if (hi) {
            const uint16_t* b = hi + t * nr;
            for (int64_t c = 0; c < cols; ++c) word[c] = static_cast<uint32_t>(a[c]) | static_cast<uint32_t>(b[c]) << 16;
          } else {
            for (int64_t c = 0; c < cols; ++c) word[c] = a[c];
          }
          std::fill(word + cols, word + nr, 0u);
        }
      }
      return;
    }
    float* out = static_cast<float*>(dst);
    for (int64_t q = 0; q < kc; ++q) {
      const float* src = static_cast<const float*>(row(p0 + q, j0));
      for (int64_t t = 0; t < panels; ++t) {
        const int64_t cols = std::min<int64_t>(nr, nc - t * nr);
        float* lanes = out + (t * kc + q) * nr;
        std::memcpy(lanes, src + t * nr, static_cast<size_t>(cols) * sizeof(float));
        if (cols < nr) std::fill(lanes + cols, lanes + nr, 0.0f);
      }
    }
  }

 private:
  // Depth row p (tap-major: p = tap * Kg + k) of the flipped weights from column j0: the
  // channels of w[g*Kg + k][r][s], the tap's filter position.
  const void* row(int64_t p, int64_t j0) const {
    const int64_t kg = d_.kg(), cg = d_.cg(), sc = static_cast<int64_t>(ts_.taps.size());
    const int64_t tap = p / kg, k = p % kg;
    const int64_t r = tr_.taps[static_cast<size_t>(tap / sc)], s = ts_.taps[static_cast<size_t>(tap % sc)];
    return static_cast<const char*>(w_) +
           ((((g_ * kg + k) * d_.r + r) * d_.s + s) * cg + j0) * static_cast<int64_t>(dtype_size(dtype_));
  }

  const Conv2dDesc& d_;
  const void* w_;
  DType dtype_;
  int64_t g_;
  const PhaseTaps& tr_;
  const PhaseTaps& ts_;
};

// A byte buffer that only grows and is never cleared, one per calling thread: the flipped
// weights and the phase scratch are written in full before they are read, so a fresh
// std::vector's zero fill (9 MiB serial for 3x3 512x512) and the page faults of a new
// allocation per call were pure overhead.
class ReusedBytes {
 public:
  char* get(size_t bytes) {
    if (bytes > size_) {
      data_.reset(new char[bytes]);
      size_ = bytes;
    }
    return data_.get();
  }

 private:
  std::unique_ptr<char[]> data_;
  size_t size_ = 0;
};

// A of one NCHW phase conv, group g, packed straight from the NCHW weights: row c (input
// channel g*Cg + c) and depth p = k * taps + t hold w[g*Kg + k][c][taps_r[t / Sc]][taps_s[t %
// Sc]]. For phase GEMMs that run once per call (the batch's images in one GEMM): a flipped copy
// of the weights is written to a buffer that is cold by the next call, and those writes,
// missing the cache line after line, cost a 3x3/2 512@14 data gradient more than its NHWC
// twin's whole runtime (11.9 against 3.9 ms at batch 1, f32). Packing A from w costs one
// strided read per element instead, into the driver's L2-resident A block.
class FlippedWeightAPacker final : public gemm_internal::APacker {
 public:
  FlippedWeightAPacker(const Conv2dDesc& d, const void* w, DType dtype, int64_t g, const PhaseTaps& tr,
                       const PhaseTaps& ts)
      : d_(d), w_(w), dtype_(dtype), g_(g), taps_(static_cast<int64_t>(tr.taps.size() * ts.taps.size())) {
    for (const int64_t r : tr.taps)
      for (const int64_t s : ts.taps) offsets_.push_back(r * d.s + s);
  }
  DType dtype() const override { return dtype_; }

  // Depth step by depth step, all mc rows of the block at once: each filter tap's column of A
  // is one pass along a run of w (mc filters, contiguous), the next k's run a fixed stride
  // further, which the hardware prefetchers follow. Panel by panel (12 rows at a time across
  // all kc steps) ran twice as long: each k step a new line, 18 KiB after the last.
  void pack(const gemm_internal::FloatGemmConfig& cfg, int64_t i0, int64_t mc, int64_t p0, int64_t kc,
            void* dst) const override {
    const int mr = cfg.mr;
    const int64_t rs = d_.r * d_.s, kstride = d_.cg() * rs;
    const int64_t base = g_ * d_.kg() * kstride + i0 * rs;
    const int64_t panels = (mc + mr - 1) / mr;
    // Element offset of A[i0 + l][p] in w is offset(p) + l * rs.
    auto offset = [&](int64_t p) { return base + (p / taps_) * kstride + offsets_[static_cast<size_t>(p % taps_)]; };
    if (cfg.word == gemm_internal::PanelWord::kBF16Pair) {
      const uint16_t* w = static_cast<const uint16_t*>(w_);
      const int64_t kw = (kc + 1) / 2;
      uint32_t* out = static_cast<uint32_t*>(dst);
      for (int64_t q = 0; q < kw; ++q) {
        const uint16_t* lo = w + offset(p0 + 2 * q);
        const uint16_t* hi = 2 * q + 1 < kc ? w + offset(p0 + 2 * q + 1) : nullptr;
        for (int64_t t = 0; t < panels; ++t) {
          uint32_t* word = out + (t * kw + q) * mr;
          const int64_t l0 = t * mr, rows = std::min<int64_t>(mr, mc - l0);
          for (int64_t l = 0; l < rows; ++l)
            word[l] = static_cast<uint32_t>(lo[(l0 + l) * rs]) | (hi ? static_cast<uint32_t>(hi[(l0 + l) * rs]) << 16 : 0u);
          for (int64_t l = rows; l < mr; ++l) word[l] = 0u;
        }
      }
      return;
    }
    float* out = static_cast<float*>(dst);
    auto words = [&](auto load) {
      for (int64_t q = 0; q < kc; ++q) {
        const int64_t o = offset(p0 + q);
        for (int64_t t = 0; t < panels; ++t) {
          float* lanes = out + (t * kc + q) * mr;
          const int64_t l0 = t * mr, rows = std::min<int64_t>(mr, mc - l0);
          for (int64_t l = 0; l < rows; ++l) lanes[l] = load(o + (l0 + l) * rs);
          for (int64_t l = rows; l < mr; ++l) lanes[l] = 0.0f;
        }
      }
    };
    if (dtype_ == DType::kF32) words([w = static_cast<const float*>(w_)](int64_t o) { return w[o]; });
    else if (dtype_ == DType::kBF16) words([w = static_cast<const uint16_t*>(w_)](int64_t o) { return bf16_to_f32(w[o]); });
    else words([w = static_cast<const uint16_t*>(w_)](int64_t o) { return f16_to_f32(w[o]); });
  }

 private:
  const Conv2dDesc& d_;
  const void* w_;
  DType dtype_;
  int64_t g_, taps_;
  std::vector<int64_t> offsets_;  // r * S + s of each tap of the phase, in depth order
};

// One row of grad_in from its stride-2 phase rows: dst[2j] = a[j] (na values), dst[2j + 1] =
// b[j] (nb values, na - 1 <= nb <= na; b nullptr: zeros, the phase no tap reaches). SSE2 (every
// x86-64) unpacks 4 f32 (8 bf16) pairs at a time: the element-strided stores per phase this
// replaces were a quarter of an NCHW 3x3/2 data gradient (perf).
template <typename T>
void interleave2_row(T* dst, const T* a, const T* b, int64_t na, int64_t nb) {
  int64_t j = 0;
#if defined(__SSE2__)
  constexpr int64_t kV = 16 / static_cast<int64_t>(sizeof(T));
  for (; j + kV <= nb; j += kV) {
    const __m128i va = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + j));
    const __m128i vb = b ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + j)) : _mm_setzero_si128();
    __m128i lo, hi;
    if constexpr (sizeof(T) == 4) lo = _mm_unpacklo_epi32(va, vb), hi = _mm_unpackhi_epi32(va, vb);
    else lo = _mm_unpacklo_epi16(va, vb), hi = _mm_unpackhi_epi16(va, vb);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 2 * j), lo);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 2 * j + kV), hi);
  }
#endif
  for (; j < nb; ++j) dst[2 * j] = a[j], dst[2 * j + 1] = b ? b[j] : T{0};
  if (na > nb) dst[2 * nb] = a[nb];
}

// NCHW strided backward data. Per block of images (one image, or several for phases of at most
// kNchwPhaseBatchPixels pixels, as conv2d batches small NCHW images) and group: every stride
// phase's forward conv (the phase's flipped weights as A, grad_out gathered as B) into its part
// of a per-thread scratch, then the block's grad_in rows written once each, from the phases'
// rows, while the scratch is still in cache. Running each phase as a conv2d over the whole
// batch and scattering it (every sw-th element of each row, one pass per phase) was a quarter
// of a 3x3/2 128@56 data gradient and left NCHW at 0.66-0.70x (f32) of NHWC.
constexpr int64_t kNchwPhaseBatchPixels = 256;
constexpr int64_t kNchwPointwiseBatchPixels = 64;

void nchw_phases_backward_data(const Conv2dDesc& d, const TensorView& grad_out, const TensorView& w,
                               const TensorView& grad_in, const std::vector<PhaseTaps>& rows,
                               const std::vector<PhaseTaps>& cols) {
  const int64_t sh = d.stride_h, sw = d.stride_w, P = d.p(), Q = d.q();
  const int64_t cg = d.cg(), kg = d.kg(), H = d.h, W = d.w;
  const size_t es = dtype_size(w.dtype);
  const int64_t eo = static_cast<int64_t>(dtype_size(grad_in.dtype));
  struct Phase {
    Conv2dDesc f;
    int64_t hp = 0, wp = 0;  // the phase's pixels
    int64_t hf = 0, wf = 0;  // the phase conv's outputs (>= hp, wp; the extra ones are not read)
    int64_t depth = 0, ld = 0;  // the phase GEMM's depth; its flipped weights' row stride
    bool zero = true;     // no tap reaches these pixels: their gradient is 0
    int64_t w_off = 0;    // elements into the flipped weights
    int64_t s_off = 0;    // elements into a block's scratch, per image of the block
  };
  std::vector<Phase> phases(static_cast<size_t>(sh * sw));
  int64_t s_total = 0, max_pixels = 0;
  for (int64_t ph = 0; ph < sh; ++ph)
    for (int64_t pw = 0; pw < sw; ++pw) {
      const PhaseTaps& tr = rows[static_cast<size_t>(ph)];
      const PhaseTaps& ts = cols[static_cast<size_t>(pw)];
      Phase& p = phases[static_cast<size_t>(ph * sw + pw)];
      p.hp = tr.count, p.wp = ts.count;
      const int64_t Rc = static_cast<int64_t>(tr.taps.size()), Sc = static_cast<int64_t>(ts.taps.size());
      p.zero = p.hp == 0 || p.wp == 0 || Rc == 0 || Sc == 0;
      if (p.zero) continue;
      Conv2dDesc f = d;
      f.n = d.n, f.c = d.k, f.k = d.c, f.h = P, f.w = Q, f.r = Rc, f.s = Sc;
      f.stride_h = f.stride_w = 1;
      f.dilation_h = tr.step, f.dilation_w = ts.step;
      f.pad_top = -tr.first, f.pad_left = -ts.first;
      // Enough bottom/right padding for Hp x Wp outputs; any extra rows/columns are not read.
      f.pad_bottom = std::max<int64_t>(0, p.hp - 1 + (Rc - 1) * tr.step - f.pad_top - (P - 1));
      f.pad_right = std::max<int64_t>(0, p.wp - 1 + (Sc - 1) * ts.step - f.pad_left - (Q - 1));
      p.f = f;
      p.hf = f.p(), p.wf = f.q();
      p.depth = kg * Rc * Sc;
      p.s_off = s_total, s_total += cg * p.hf * p.wf;
      max_pixels = std::max(max_pixels, p.hf * p.wf);
    }
  const int64_t nb = max_pixels > kNchwPhaseBatchPixels ? 1 : d.n;
  const int64_t blocks = (d.n + nb - 1) / nb, tasks = blocks * d.groups;
  // A block of the whole batch runs each phase GEMM once: its A is packed straight from w
  // (FlippedWeightAPacker). Image by image, the GEMMs read a flipped copy, in place.
  const bool flip_copy = blocks > 1;
  // Stride 1, one image per GEMM, the conv's outputs exactly grad_in's pixels: the GEMM writes
  // grad_in itself.
  const bool into_grad_in = sh == 1 && sw == 1 && nb == 1 && phases[0].hf == H && phases[0].wf == W;
  // Every phase's flipped weights, side by side, phase p's rows ld apart: w'[g*Cg + c][k][m][mm]
  // = w[g*Kg + k][c][taps_r[m]][taps_s[mm]]. One pass over w, every phase's taps from each
  // filter read once: per phase (one strided 36-byte read per 64-byte line of w and phase) the
  // flip was a tenth of a 3x3/2 512@14 data gradient. Tasks of kFlipChannels input channels.
  // Row strides near a multiple of 4 KiB (depth 1024 or 2048 f32, 2048 bf16) are padded by a
  // line: the GEMM then reads A in place instead of packing it (rows_share_l1_sets).
  const int mr = gemm_internal::float_gemm_config(grad_out.dtype, w.dtype).mr;
  int64_t w_total = 0;
  for (Phase& p : phases) {
    if (p.zero) continue;
    p.ld = p.depth;
    if (gemm_internal::rows_share_l1_sets(p.ld * static_cast<int64_t>(es), mr)) p.ld += 64 / static_cast<int64_t>(es);
    p.w_off = w_total, w_total += d.groups * cg * p.ld;
  }
  thread_local ReusedBytes wf_buffer;
  char* const wf_raw = flip_copy ? wf_buffer.get(static_cast<size_t>(w_total) * es + 64) : nullptr;
  char* const wf = flip_copy ? wf_raw + (64 - reinterpret_cast<uintptr_t>(wf_raw) % 64) % 64 : nullptr;  // rows on lines
  const char* src = static_cast<const char*>(w.data);
  constexpr int64_t kFlipChannels = 16;
  const int64_t cblocks = (cg + kFlipChannels - 1) / kFlipChannels;
  parallel_for(flip_copy ? d.groups * cblocks : 0, [&](int64_t task, int) {
    const int64_t g = task / cblocks, c0 = (task % cblocks) * kFlipChannels, c1 = std::min(cg, c0 + kFlipChannels);
    auto flip = [&](auto elem) {
      using T = decltype(elem);
      const int64_t rs = d.r * d.s;
      // kFlipChannels x kFlipChannels blocks of (k, c): the block's filters are kFlipChannels
      // runs of w (they stay in L1 while read), and each of its (c, phase) rows is one run of
      // writes, finished before the next. Rows of a phase are often a multiple of 4 KiB apart
      // (bf16 depth 2048): writing them a few elements at a time, row after row, thrashed the
      // L1 set they share.
      for (int64_t k0 = 0; k0 < kg; k0 += kFlipChannels) {
        const int64_t k1 = std::min(kg, k0 + kFlipChannels);
        for (int64_t c = c0; c < c1; ++c)
          for (size_t pi = 0; pi < phases.size(); ++pi) {
            const Phase& p = phases[pi];
            if (p.zero) continue;
            const PhaseTaps& tr = rows[pi / static_cast<size_t>(sw)];
            const PhaseTaps& ts = cols[pi % static_cast<size_t>(sw)];
            const int64_t taps = p.depth / kg;
            T* to = reinterpret_cast<T*>(wf) + p.w_off + (g * cg + c) * p.ld + k0 * taps;
            const T* f = reinterpret_cast<const T*>(src) + ((g * kg + k0) * cg + c) * rs;
            for (int64_t k = k0; k < k1; ++k, f += cg * rs)
              for (const int64_t r : tr.taps)
                for (const int64_t s_ : ts.taps) *to++ = f[r * d.s + s_];
          }
      }
    };
    if (es == 4) flip(uint32_t{});
    else flip(uint16_t{});
  });

  // Writes the grad_in rows of images [n0, n0 + nbk), group g, channels [c0, c1) from the
  // block's scratch (phase p's values of image b, channel c, row i at s_off*nbk + (c*nbk + b)*
  // hf*wf + i*wf).
  auto write_rows = [&](const char* scratch, int64_t n0, int64_t nbk, int64_t g, int64_t c0, int64_t c1) {
    auto typed = [&](auto elem) {
      using T = decltype(elem);
      const T* sc = reinterpret_cast<const T*>(scratch);
      for (int64_t b = 0; b < nbk; ++b)
        for (int64_t c = c0; c < c1; ++c) {
          T* plane = static_cast<T*>(grad_in.data) + ((n0 + b) * d.c + g * cg + c) * H * W;
          for (int64_t h = 0; h < H; ++h) {
            const int64_t ph = h % sh, i = h / sh;
            T* dst = plane + h * W;
            auto phase_row = [&](int64_t pw) -> const T* {
              const Phase& p = phases[static_cast<size_t>(ph * sw + pw)];
              if (p.zero) return nullptr;
              return sc + p.s_off * nbk + (c * nbk + b) * p.hf * p.wf + i * p.wf;
            };
            if (sw == 2) {
              const T* a = phase_row(0);
              const T* bb = phase_row(1);
              const int64_t na = phases[static_cast<size_t>(ph * sw)].wp, nbw = phases[static_cast<size_t>(ph * sw + 1)].wp;
              if (a) {
                interleave2_row(dst, a, bb, na, nbw);
              } else if (bb) {  // only the odd columns have taps
                for (int64_t j = 0; j < na; ++j) dst[2 * j] = T{0};
                for (int64_t j = 0; j < nbw; ++j) dst[2 * j + 1] = bb[j];
              } else {
                std::memset(dst, 0, static_cast<size_t>(W) * sizeof(T));
              }
              continue;
            }
            for (int64_t pw = 0; pw < sw; ++pw) {
              const int64_t wp = phases[static_cast<size_t>(ph * sw + pw)].wp;
              const T* row = phase_row(pw);
              T* out = dst + pw;
              if (sw == 1) {
                if (row) std::memcpy(out, row, static_cast<size_t>(wp) * sizeof(T));
                else std::memset(out, 0, static_cast<size_t>(wp) * sizeof(T));
              } else if (row) {
                for (int64_t j = 0; j < wp; ++j) out[j * sw] = row[j];
              } else {
                for (int64_t j = 0; j < wp; ++j) out[j * sw] = T{0};
              }
            }
          }
        }
    };
    if (eo == 4) typed(uint32_t{});
    else typed(uint16_t{});
  };
  // One block: the phase GEMMs (on `threads`; serial inside a dealt-out task), then its rows.
  auto block = [&](int64_t task, int threads) {
    const int64_t n0 = (task / d.groups) * nb, g = task % d.groups, nbk = std::min(nb, d.n - n0);
    thread_local ReusedBytes scratch_buffer;
    char* const scratch = into_grad_in ? nullptr : scratch_buffer.get(static_cast<size_t>(s_total * nbk * eo));
    for (size_t pi = 0; pi < phases.size(); ++pi) {
      const Phase& p = phases[pi];
      if (p.zero) continue;
      const int64_t cols_n = nbk * p.hf * p.wf;
      std::unique_ptr<gemm_internal::APacker> a;
      if (flip_copy)
        a = std::make_unique<gemm_internal::MatrixAPacker>(
            MatrixView{wf + (p.w_off + g * cg * p.ld) * static_cast<int64_t>(es), w.dtype, cg, p.depth, p.ld, 1});
      else
        a = std::make_unique<FlippedWeightAPacker>(d, w.data, w.dtype, g, rows[pi / static_cast<size_t>(sw)],
                                                   cols[pi % static_cast<size_t>(sw)]);
      const std::unique_ptr<gemm_internal::BPacker> b = conv::nchw_b_packer(p.f, grad_out, n0, nbk, g);
      gemm_internal::Epilogue ep;
      ep.out = into_grad_in ? MatrixView{at(grad_in, (n0 * d.c + g * cg) * H * W), grad_in.dtype, cg, H * W, H * W, 1}
                            : MatrixView{scratch + p.s_off * nbk * eo, grad_in.dtype, cg, cols_n, cols_n, 1};
      gemm_internal::run_float_gemm(cg, cols_n, p.depth, *a, *b, ep, threads);
    }
    if (into_grad_in) return;
    if (threads == 1) {
      write_rows(scratch, n0, nbk, g, 0, cg);
    } else {
      constexpr int64_t kRowChannels = 8;
      parallel_for((cg + kRowChannels - 1) / kRowChannels, [&](int64_t t, int) {
        write_rows(scratch, n0, nbk, g, t * kRowChannels, std::min(cg, (t + 1) * kRowChannels));
      });
    }
  };
  // As conv2d's NCHW GEMMs: whole blocks dealt out to the threads where they divide evenly (or
  // are many), one serial GEMM each; else block by block, each GEMM on all threads. The GEMM's
  // sums do not depend on its thread count and the rows are copies: the same bits either way.
  const int64_t T = get_num_threads();
  if (T > 1 && (tasks % T == 0 || tasks >= 4 * T)) {
    parallel_for(tasks, [&](int64_t task, int) { block(task, 1); });
  } else {
    for (int64_t task = 0; task < tasks; ++task) block(task, 0);
  }
}

bool backward_data_as_forward(const Conv2dDesc& d, const TensorView& grad_out, const TensorView& w,
                              const TensorView& grad_in) {
  const int64_t sh = d.stride_h, sw = d.stride_w, P = d.p(), Q = d.q();
  const bool nhwc = d.layout == Layout::kNHWC;
  // Strided: only where the phase GEMMs are wide enough to beat G x W + col2im (measured:
  // NHWC 3x3/2 with 128-256 channels 0.3-0.5x -> 0.7-0.8x torch; the 7x7/2 stem with C = 3,
  // where each phase GEMM has 3 columns, is faster on the column path). NCHW too
  // (nchw_phases_backward_data; 1 thread, batch 8, NCHW time over NHWC time: 3x3/2 128@56 0.26
  // -> 0.67 with a scatter per phase, 0.96 with the rows written once from all phases).
  if ((sh != 1 || sw != 1) && d.cg() < kMinPhaseChannels) return false;
  // Small images too (3x3 512@7): once the flipped weights are transposed in blocks, the
  // forward GEMM beats G x W + col2im there as well (batch 8, 1 thread: 0.56x -> 0.70x torch,
  // 2 threads 0.39x -> 0.49x; batch 1, 1 thread: 0.27x -> 0.49x).
  std::vector<PhaseTaps> rows, cols;
  for (int64_t ph = 0; ph < sh; ++ph) rows.push_back(phase_taps(ph, d.pad_top, d.r, d.dilation_h, sh, d.h));
  for (int64_t pw = 0; pw < sw; ++pw) cols.push_back(phase_taps(pw, d.pad_left, d.s, d.dilation_w, sw, d.w));
  // A phase whose first tap lies past grad_out's start would need a negative padding: the
  // column path handles those (padding beyond the kernel's reach).
  for (const auto* set : {&rows, &cols})
    for (const PhaseTaps& t : *set)
      if (!t.taps.empty() && t.count > 0 && t.first > 0) return false;
  // NCHW: the phase GEMMs run here (all strides); a stride-1 conv whose grad_out has at most
  // kSmallCMaxChannels channels stays on conv2d's small-C kernel below.
  if (!nhwc && !(sh == 1 && sw == 1 && d.groups == 1 && d.k <= kSmallCMaxChannels)) {
    nchw_phases_backward_data(d, grad_out, w, grad_in, rows, cols);
    return true;
  }
  const int64_t cg = d.cg(), kg = d.kg();
  const size_t es = dtype_size(w.dtype);
  const char* src = static_cast<const char*>(w.data);
  thread_local ReusedBytes wf_buffer, scratch_buffer;
  for (int64_t ph = 0; ph < sh; ++ph) {
    for (int64_t pw = 0; pw < sw; ++pw) {
      const PhaseTaps& tr = rows[static_cast<size_t>(ph)];
      const PhaseTaps& ts = cols[static_cast<size_t>(pw)];
      const int64_t Hp = tr.count, Wp = ts.count;
      if (Hp == 0 || Wp == 0) continue;
      const int64_t Rc = static_cast<int64_t>(tr.taps.size()), Sc = static_cast<int64_t>(ts.taps.size());
      const bool direct = sh == 1 && sw == 1;
      if (Rc == 0 || Sc == 0) {  // no tap reaches these pixels: their gradient is 0 (NHWC here)
        const int64_t esz = static_cast<int64_t>(dtype_size(grad_in.dtype));
        for (int64_t n = 0; n < d.n; ++n)
          for (int64_t i = 0; i < Hp; ++i)
            for (int64_t j = 0; j < Wp; ++j)
              std::memset(at(grad_in, ((n * d.h + ph + sh * i) * d.w + pw + sw * j) * d.c), 0,
                          static_cast<size_t>(d.c * esz));
        continue;
      }
      Conv2dDesc f = d;
      f.c = d.k, f.k = d.c, f.h = P, f.w = Q, f.r = Rc, f.s = Sc;
      f.stride_h = f.stride_w = 1;
      f.dilation_h = tr.step, f.dilation_w = ts.step;
      f.pad_top = -tr.first, f.pad_left = -ts.first;
      // Enough bottom/right padding for Hp x Wp outputs; any extra rows/columns are dropped.
      f.pad_bottom = std::max<int64_t>(0, Hp - 1 + (Rc - 1) * tr.step - f.pad_top - (P - 1));
      f.pad_right = std::max<int64_t>(0, Wp - 1 + (Sc - 1) * ts.step - f.pad_left - (Q - 1));
      if (direct && (f.p() != d.h || f.q() != d.w)) return false;
      // Where conv2d would run this phase as its NHWC f32 implicit GEMM, run that GEMM here
      // with B packed straight from w (FlippedWeightBPacker); the output is the phase's
      // out (grad_in itself for stride 1, else the scratch), so nothing else changes.
      const gemm_internal::FloatGemmConfig& cfg = gemm_internal::float_gemm_config(grad_out.dtype, w.dtype);
      const bool fused = nhwc && !smallc_eligible(f) &&
                         ((w.dtype == DType::kF32 && cfg.word == gemm_internal::PanelWord::kF32) ||
                          (w.dtype == DType::kBF16 && grad_out.dtype == DType::kBF16 &&
                           cfg.word == gemm_internal::PanelWord::kBF16Pair));
      const int64_t esz_in = static_cast<int64_t>(dtype_size(grad_in.dtype));
      const int64_t Hf = f.p(), Wf = f.q();
      char* const scratch = direct ? nullptr : scratch_buffer.get(static_cast<size_t>(d.n * d.c * Hf * Wf * esz_in));
      if (fused) {
        const int64_t pixels = f.n * Hf * Wf;
        for (int64_t g = 0; g < d.groups; ++g) {
          gemm_internal::Epilogue ep;
          ep.out = MatrixView{(direct ? static_cast<char*>(grad_in.data) : scratch) + g * cg * esz_in, grad_in.dtype,
                              pixels, cg, d.c, 1};
          const std::unique_ptr<gemm_internal::APacker> a = conv::nhwc_a_packer(f, grad_out, g);
          const FlippedWeightBPacker b(d, w.data, w.dtype, g, tr, ts);
          gemm_internal::run_float_gemm(pixels, cg, Rc * Sc * kg, *a, b, ep, 0, &cfg);
        }
      }
      if (!fused) {
        // w'[g*Cg + c][m][mm][k] = w[g*Kg + k][taps_r[m]][taps_s[mm]][c] (NHWC; NCHW likewise).
        char* const wf = wf_buffer.get(static_cast<size_t>(d.k * cg * Rc * Sc) * es);
        // One Kg x Cg transpose per (group, tap): blocked, since an element-by-element flip
        // of a 512x512 3x3 filter took as long as a third of the phase GEMMs (1 thread). Split
        // over the threads in row bands of kFlipRows output channels (a pure copy: no effect
        // on any result): done on the calling thread alone it was a fifth of a 3x3 512@7 data
        // gradient at 2 threads, with the second core spinning meanwhile (perf).
        const int64_t src_k = d.r * d.s * cg, src_c = 1, dst_c = Rc * Sc * kg, dst_k = 1;  // NHWC
        constexpr int64_t kFlipRows = 64;
        const int64_t bands = (kg + kFlipRows - 1) / kFlipRows;
        if (!nhwc) {
          // NCHW: w'[g*Cg + c][k][m][mm] = w[g*Kg + k][c][taps_r[m]][taps_s[mm]]. Output channel
          // by output channel of w' (one task per c), k inner: every write is sequential and
          // each read is a filter's R*S taps, contiguous. Per tap, the transposes of the NHWC
          // branch were element-strided on both sides here (12 % of a 3x3 512@7 data gradient).
          parallel_for(d.groups * cg, [&](int64_t task, int) {
            const int64_t g = task / cg, c = task % cg;
            auto flip = [&](auto elem) {
              using T = decltype(elem);
              const T* from = reinterpret_cast<const T*>(src) + (g * kg * cg + c) * d.r * d.s;
              T* to = reinterpret_cast<T*>(wf) + (g * cg + c) * kg * Rc * Sc;
              for (int64_t k = 0; k < kg; ++k, from += cg * d.r * d.s)
                for (int64_t m = 0; m < Rc; ++m)
                  for (int64_t mm = 0; mm < Sc; ++mm)
                    *to++ = from[tr.taps[static_cast<size_t>(m)] * d.s + ts.taps[static_cast<size_t>(mm)]];
            };
            if (es == 4) flip(uint32_t{});
            else flip(uint16_t{});
          });
        } else {
          parallel_for(d.groups * Rc * Sc * bands, [&](int64_t task, int) {
            const int64_t k0 = (task % bands) * kFlipRows, rows_k = std::min(kFlipRows, kg - k0);
            const int64_t tap = task / bands, g = tap / (Rc * Sc), m = (tap / Sc) % Rc, mm = tap % Sc;
            const int64_t r = tr.taps[static_cast<size_t>(m)], s_ = ts.taps[static_cast<size_t>(mm)];
            const int64_t from = ((g * kg * d.r + r) * d.s + s_) * cg;
            const int64_t to = (g * cg * Rc + m) * Sc * kg + mm * kg;
            transpose_block(src + static_cast<int64_t>(es) * (from + k0 * src_k), src_k, src_c,
                            wf + static_cast<int64_t>(es) * (to + k0 * dst_k), dst_c, dst_k, rows_k, cg, es);
          });
        }
        TensorView wv = w;
        wv.data = wf;
        int64_t dims[4];
        conv::w_dims(f, dims);
        wv.ndim = 4;
        int64_t st = 1;
        for (int i = 3; i >= 0; --i) wv.shape[i] = dims[i], wv.strides[i] = st, st *= dims[i];
        if (direct) {
          conv2d(f, grad_out, wv, nullptr, Activation::kNone, grad_in);
        } else {
          TensorView out = grad_in;
          conv::y_dims(f, out.shape);
          st = 1;
          for (int i = 3; i >= 0; --i) out.strides[i] = st, st *= out.shape[i];
          out.data = scratch;
          conv2d(f, grad_out, wv, nullptr, Activation::kNone, out);
        }
      }
      if (direct) continue;
      const size_t esz = dtype_size(grad_in.dtype);
      // Scatter the phase into grad_in (NHWC: only NHWC convs are strided here), one task per
      // (image, phase row).
      parallel_for(d.n * Hp, [&](int64_t ni, int) {
        const int64_t n = ni / Hp, i = ni % Hp, h = ph + sh * i;
        for (int64_t j = 0; j < Wp; ++j)
          std::memcpy(at(grad_in, ((n * d.h + h) * d.w + pw + sw * j) * d.c),
                      scratch + ((n * Hf + i) * Wf + j) * d.c * static_cast<int64_t>(esz),
                      static_cast<size_t>(d.c) * esz);
      });
    }
  }
  return true;
}

// nr pair words from two runs of nr bf16 (nullptr: zeros): word j = a[j] | b[j] << 16, the first
// pixel's value in the low half. SSE2 (every x86-64) interleaves 8 at a time.
inline void interleave_pair_row(const uint16_t* a, const uint16_t* b, int nr, uint32_t* dst) {
#if defined(__SSE2__)
  if (nr % 8 == 0) {
    for (int j = 0; j < nr; j += 8) {
      const __m128i va = a ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + j)) : _mm_setzero_si128();
      const __m128i vb = b ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + j)) : _mm_setzero_si128();
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + j), _mm_unpacklo_epi16(va, vb));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + j + 4), _mm_unpackhi_epi16(va, vb));
    }
    return;
  }
#endif
  for (int j = 0; j < nr; ++j)
    dst[j] = static_cast<uint32_t>(a ? a[j] : 0) | static_cast<uint32_t>(b ? b[j] : 0) << 16;
}

// B = the column matrix of group g (N*P*Q pixels x Cg*R*S taps, NHWC), restricted to the
// columns [j_begin, j_begin + n): gathered straight from x a few panels at a time into a
// per-thread staging tile, then packed by the driver's matrix packer.
class WgradColumnPacker final : public gemm_internal::BPacker {
 public:
  static constexpr int kStagedPanels = 8;
  // n: the image (NCHW, where pixels are those of one image; NHWC: 0, pixels of the batch; NCHW
  // with n < 0: the pixels of the whole batch, image-major, as in NHWC).
  // pixel_begin: the pixel that is the GEMM's depth index 0 (NHWC depth chunks).
  WgradColumnPacker(const Conv2dDesc& d, const TensorView& x, int64_t n, int64_t g, int64_t j_begin,
                    int64_t pixel_begin = 0)
      : d_(d), x_(x), n_(n), g_(g), j_begin_(j_begin), pixel_begin_(pixel_begin) {}

  DType dtype() const override { return x_.dtype; }

  void pack(const gemm_internal::FloatGemmConfig& cfg, int64_t p0, int64_t kc, int64_t j0, int64_t nc,
            void* dst) const override {
    p0 += pixel_begin_;
    const int nr = cfg.nr;
    const int64_t kw = gemm_internal::panel_words(kc, cfg.word);
    if (pack_direct(cfg, p0, kc, j0, nc, static_cast<float*>(dst))) return;
    if (d_.layout == Layout::kNCHW && n_ < 0 && conv::is_pointwise(d_)) {
      // A pointwise NCHW block inside one image is x itself (channels x pixels, column-major
      // as B): packed straight from x, no staging copy.
      const int64_t pq = d_.p() * d_.q(), img = p0 / pq, pq0 = p0 % pq;
      if (pq0 + kc <= pq) {
        const MatrixView b{static_cast<char*>(x_.data) +
                               ((img * d_.c + g_ * d_.cg() + j_begin_ + j0) * pq + pq0) * dtype_size(x_.dtype),
                           x_.dtype, kc, nc, 1, pq};
        gemm_internal::MatrixBPacker(b).pack(cfg, 0, kc, 0, nc, dst);
        return;
      }
    }
    thread_local std::vector<char> staging;
    const int esize = static_cast<int>(dtype_size(x_.dtype));
    const int64_t step = static_cast<int64_t>(kStagedPanels) * nr;
    const size_t bytes = static_cast<size_t>(step * kc * esize);
    if (staging.size() < bytes) staging.resize(bytes);
    const bool nhwc = d_.layout == Layout::kNHWC;
    for (int64_t j = 0; j < nc; j += step) {
      const int64_t cols = std::min<int64_t>(step, nc - j);
      if (nhwc || n_ >= 0) {
        conv::im2col_block(d_, x_.data, esize, 0u, n_, g_, p0, kc, j_begin_ + j0 + j, cols, staging.data());
      } else {
        // NCHW over the batch's pixels (image-major): one gather per image the block touches,
        // side by side in the tap-major staging block (row length kc).
        const int64_t pq = d_.p() * d_.q();
        for (int64_t q = 0; q < kc;) {
          const int64_t pix = p0 + q, img = pix / pq, pq0 = pix % pq, len = std::min(kc - q, pq - pq0);
          conv::im2col_block(d_, x_.data, esize, 0u, img, g_, pq0, len, j_begin_ + j0 + j, cols,
                             staging.data() + q * esize, kc);
          q += len;
        }
      }
      // NHWC blocks are pixel-major, NCHW blocks tap-major (see im2col_block).
      const MatrixView block = nhwc ? MatrixView{staging.data(), x_.dtype, kc, cols, cols, 1}
                                    : MatrixView{staging.data(), x_.dtype, kc, cols, 1, kc};
      gemm_internal::MatrixBPacker(block).pack(cfg, 0, kc, 0, cols, static_cast<uint32_t*>(dst) + j * kw);
    }
  }


 private:
  // NHWC f32 with whole nr-channel panels (Cg a multiple of nr): every panel is nr channels of
  // one tap, so each pixel's row of a panel is one nr-float copy from x (or zeros in the
  // padding), written straight into the packed layout: no staging block and no second pass
  // (which, with the im2col gather, cost a fifth of a 3x3 64@56 weight gradient).
  bool pack_direct(const gemm_internal::FloatGemmConfig& cfg, int64_t p0, int64_t kc, int64_t j0, int64_t nc,
                   float* dst) const {
    const int nr = cfg.nr;
    const int64_t cg = d_.cg();
    if (d_.layout != Layout::kNHWC || cg % nr != 0 || (j_begin_ + j0) % nr != 0 || nc % nr != 0) return false;
    if (x_.dtype == DType::kBF16 && cfg.word == gemm_internal::PanelWord::kBF16Pair) {
      pack_direct_pairs(cfg, p0, kc, j0, nc, reinterpret_cast<uint32_t*>(dst));
      return true;
    }
    if (x_.dtype != DType::kF32 || cfg.word != gemm_internal::PanelWord::kF32) return false;
    const int64_t panels = nc / nr, P = d_.p(), Q = d_.q();
    const std::vector<int64_t>& info = panel_taps(j0, panels, nr);
    const float* x = static_cast<const float*>(x_.data);
    const size_t bytes = static_cast<size_t>(nr) * sizeof(float);
    int64_t n = p0 / (P * Q), p = (p0 / Q) % P, q = p0 % Q;
    for (int64_t k = 0; k < kc; ++k) {
      const int64_t h0 = p * d_.stride_h, w0 = q * d_.stride_w;
      const float* xn = x + n * d_.h * d_.w * d_.c;
      float* row = dst + k * nr;
      for (int64_t t = 0; t < panels; ++t, row += nr * kc) {
        const int64_t h = h0 + info[static_cast<size_t>(3 * t)], w = w0 + info[static_cast<size_t>(3 * t + 1)];
        if (h < 0 || h >= d_.h || w < 0 || w >= d_.w) std::memset(row, 0, bytes);
        else std::memcpy(row, xn + (h * d_.w + w) * d_.c + info[static_cast<size_t>(3 * t + 2)], bytes);
      }
      if (++q == Q) {
        q = 0;
        if (++p == P) p = 0, ++n;
      }
    }
    return true;
  }

  // Per nr-channel panel t of the block from column j0: the tap's input offsets (dh, dw) and its
  // first channel, at [3t], [3t + 1], [3t + 2] (a per-thread table, rebuilt per call).
  const std::vector<int64_t>& panel_taps(int64_t j0, int64_t panels, int nr) const {
    const int64_t cg = d_.cg();
    thread_local std::vector<int64_t> info;
    info.resize(static_cast<size_t>(3 * panels));
    for (int64_t t = 0; t < panels; ++t) {
      const int64_t col = j_begin_ + j0 + t * nr, tap = col / cg;
      info[static_cast<size_t>(3 * t)] = (tap / d_.s) * d_.dilation_h - d_.pad_top;
      info[static_cast<size_t>(3 * t + 1)] = (tap % d_.s) * d_.dilation_w - d_.pad_left;
      info[static_cast<size_t>(3 * t + 2)] = g_ * cg + col % cg;
    }
    return info;
  }

  // The same for bf16 on pair words: a word holds one channel of one tap at two consecutive
  // pixels, so each pixel pair's row of a panel interleaves the two pixels' nr-channel runs
  // (zeros in the padding and past the block's last pixel), written straight into the packed
  // layout. Replaces an im2col of bf16 elements and a second pass that paired them.
  void pack_direct_pairs(const gemm_internal::FloatGemmConfig& cfg, int64_t p0, int64_t kc, int64_t j0, int64_t nc,
                         uint32_t* dst) const {
    const int nr = cfg.nr;
    const int64_t kw = gemm_internal::panel_words(kc, cfg.word);
    const int64_t panels = nc / nr, P = d_.p(), Q = d_.q();
    const std::vector<int64_t>& info = panel_taps(j0, panels, nr);
    const uint16_t* x = static_cast<const uint16_t*>(x_.data);
    int64_t n = p0 / (P * Q), p = (p0 / Q) % P, q = p0 % Q;
    // The run of pixel (n, p, q) at panel t's tap, or nullptr in the padding.
    auto run = [&](int64_t pn, int64_t pp, int64_t pq, int64_t t) -> const uint16_t* {
      const int64_t h = pp * d_.stride_h + info[static_cast<size_t>(3 * t)];
      const int64_t w = pq * d_.stride_w + info[static_cast<size_t>(3 * t + 1)];
      if (h < 0 || h >= d_.h || w < 0 || w >= d_.w) return nullptr;
      return x + ((pn * d_.h + h) * d_.w + w) * d_.c + info[static_cast<size_t>(3 * t + 2)];
    };
    for (int64_t word = 0; word < kw; ++word) {
      const int64_t n0 = n, pp0 = p, q0 = q;
      const bool second = 2 * word + 1 < kc;
      if (++q == Q) {
        q = 0;
        if (++p == P) p = 0, ++n;
      }
      uint32_t* row = dst + word * nr;
      for (int64_t t = 0; t < panels; ++t, row += nr * kw)
        interleave_pair_row(run(n0, pp0, q0, t), second ? run(n, p, q, t) : nullptr, nr, row);
      if (second && ++q == Q) {
        q = 0;
        if (++p == P) p = 0, ++n;
      }
    }
  }

  Conv2dDesc d_;
  TensorView x_;
  int64_t n_, g_, j_begin_, pixel_begin_;
};

// f32 A panels (mr rows, kc words each) from a pixel-major block: A[i][k] = block[k * ld + i],
// i < mc: a column-major matrix, which the entry's vectorized packer takes when it has one
// for it (AVX-512: four pixels of a panel per three whole-line stores). Otherwise each pixel
// gives each panel mr contiguous floats: one short copy, where the GEMM's generic packer for
// this (row stride 1) layout moves element by element.
void pack_pixel_major(const gemm_internal::FloatGemmConfig& cfg, const float* block, int64_t ld, int64_t mc,
                      int64_t kc, float* out) {
  if (cfg.word == gemm_internal::PanelWord::kF32 && cfg.pack_a &&
      cfg.pack_a(MatrixView{const_cast<float*>(block), DType::kF32, mc, kc, 1, ld}, 0, mc, 0, kc, cfg.mr, out))
    return;
  const int mr = cfg.mr;
  // Pixel by pixel, all full 12-row panels at once: each pixel's mc floats are read as one
  // sequential run. Panel by panel (12 floats of every pixel, then the next 12) walked all kc
  // rows of a 1 KiB-strided x once per panel and cost half as much as the multiply itself in
  // a 1x1 256->64 @56 weight gradient (perf, 2 threads).
  const int64_t full = mr == 12 ? mc / 12 : 0;
  if (full > 0) {
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = block + k * ld;
      float* d = out + k * 12;
      for (int64_t r = 0; r < full; ++r) std::memcpy(d + r * 12 * kc, src + r * 12, 12 * sizeof(float));
    }
  }
  for (int64_t r = full; r * mr < mc; ++r) {
    const int64_t rows = std::min<int64_t>(mr, mc - r * mr);
    float* d = out + r * mr * kc;
    const float* src = block + r * mr;
    for (int64_t k = 0; k < kc; ++k) {
      std::memcpy(d + k * mr, src + k * ld, static_cast<size_t>(rows) * sizeof(float));
      std::fill(d + k * mr + rows, d + (k + 1) * mr, 0.0f);
    }
  }
}

// A = G_g^T (Kg output channels x N*P*Q pixels) read from NHWC f32 grad_out, rows from i_begin.
class GradOutTransposedAPacker final : public gemm_internal::APacker {
 public:
  GradOutTransposedAPacker(const float* g, int64_t ld) : g_(g), ld_(ld) {}
  DType dtype() const override { return DType::kF32; }
  void pack(const gemm_internal::FloatGemmConfig& cfg, int64_t i0, int64_t mc, int64_t p0, int64_t kc,
            void* dst) const override {
    pack_pixel_major(cfg, g_ + p0 * ld_ + i0, ld_, mc, kc, static_cast<float*>(dst));
  }
  // G^T is column-major: read in place by a strided-A kernel where the entry has one.
  const void* direct_columns(const gemm_internal::FloatGemmConfig& cfg, int64_t p0, int64_t kc,
                             int64_t* lda_words) const override {
    if (cfg.word != gemm_internal::PanelWord::kF32 || kc <= 0 || gemm_internal::columns_share_l1_sets(ld_ * 4))
      return nullptr;
    *lda_words = ld_;
    return g_ + p0 * ld_;
  }

 private:
  const float* g_;
  int64_t ld_;
};

// A = the transposed column matrix of group g (Cg*R*S taps x N*P*Q pixels; NHWC, f32 words),
// rows [i_begin + i0, +mc), depth index 0 at pixel pixel_begin: a pixel-major block gathered
// from x by im2col_block, then cut into mr-tap panels (mr contiguous taps per pixel: one short
// copy each).
class WgradColumnAPacker final : public gemm_internal::APacker {
 public:
  WgradColumnAPacker(const Conv2dDesc& d, const TensorView& x, int64_t g, int64_t i_begin, int64_t pixel_begin = 0)
      : d_(d), x_(x), g_(g), i_begin_(i_begin), pixel_begin_(pixel_begin) {}

  DType dtype() const override { return x_.dtype; }

  void pack(const gemm_internal::FloatGemmConfig& cfg, int64_t i0, int64_t mc, int64_t p0, int64_t kc,
            void* dst) const override {
    p0 += pixel_begin_;
    const bool f32 = x_.dtype == DType::kF32;
    const int esize = f32 ? 4 : 2;
    // A 1x1/stride-1 unpadded conv's column matrix is x itself (pixel rows of C channels).
    const void* block;
    int64_t ld;
    if (conv::is_pointwise(d_)) {
      block = static_cast<const char*>(x_.data) + (p0 * d_.c + g_ * d_.cg() + i_begin_ + i0) * esize;
      ld = d_.c;
    } else {
      thread_local std::vector<float> staging;  // f32 or 16-bit elements
      if (staging.size() < static_cast<size_t>(kc * mc)) staging.resize(static_cast<size_t>(kc * mc));
      conv::im2col_block(d_, x_.data, esize, 0u, 0, g_, p0, kc, i_begin_ + i0, mc, staging.data());
      block = staging.data();
      ld = mc;
    }
    if (f32 && cfg.word == gemm_internal::PanelWord::kF32) {
      pack_pixel_major(cfg, static_cast<const float*>(block), ld, mc, kc, static_cast<float*>(dst));
      return;
    }
    // bf16 (pair words: two pixels of a tap per word) and f16: a column-major matrix to the
    // GEMM's packers.
    const MatrixView view{const_cast<void*>(block), x_.dtype, mc, kc, 1, ld};
    if (cfg.pack_a == nullptr || !cfg.pack_a(view, 0, mc, 0, kc, cfg.mr, dst))
      gemm_internal::pack_a_portable(view, 0, mc, 0, kc, cfg.mr, cfg.word, dst);
  }
  // A pointwise conv's column matrix is x itself, column-major as A: read in place by a
  // strided-A kernel where the entry has one (f32 x).
  const void* direct_columns(const gemm_internal::FloatGemmConfig& cfg, int64_t p0, int64_t kc,
                             int64_t* lda_words) const override {
    if (!conv::is_pointwise(d_) || x_.dtype != DType::kF32 || cfg.word != gemm_internal::PanelWord::kF32 || kc <= 0 ||
        gemm_internal::columns_share_l1_sets(d_.c * 4))
      return nullptr;
    *lda_words = d_.c;
    return static_cast<const float*>(x_.data) + (p0 + pixel_begin_) * d_.c + g_ * d_.cg() + i_begin_;
  }

 private:
  Conv2dDesc d_;
  TensorView x_;
  int64_t g_, i_begin_, pixel_begin_;
};

// A = G_g^T over the pixels of the whole batch from NCHW grad_out (rows [i_begin, +mk) of group
// g's output channels; depth index q = pixel pixel_begin + q, image-major). Within an image a row
// is a contiguous run of P*Q values, so a depth block is one run per row for each image it
// touches: read in place through the indirect kernel (f32 words), else staged row-major and
// packed. Summing over the batch's pixels in one GEMM replaces one GEMM per image with beta = 1
// (3x3 512@7: a depth of 49 per GEMM, each re-reading and re-writing dW).
class NchwGradOutAPacker final : public gemm_internal::APacker {
 public:
  NchwGradOutAPacker(const Conv2dDesc& d, const TensorView& g, int64_t grp, int64_t i_begin, int64_t pixel_begin)
      : d_(d), g_(g), grp_(grp), i_begin_(i_begin), pixel_begin_(pixel_begin), pq_(d.p() * d.q()) {}

  DType dtype() const override { return g_.dtype; }

  void pack(const gemm_internal::FloatGemmConfig& cfg, int64_t i0, int64_t mc, int64_t p0, int64_t kc,
            void* dst) const override {
    const int64_t esize = static_cast<int64_t>(dtype_size(g_.dtype));
    thread_local std::vector<char> staging;  // [mc][kc], row-major
    if (staging.size() < static_cast<size_t>(mc * kc * esize)) staging.resize(static_cast<size_t>(mc * kc * esize));
    for (int64_t q = 0; q < kc;) {
      const int64_t pix = pixel_begin_ + p0 + q, img = pix / pq_, pq0 = pix % pq_, len = std::min(kc - q, pq_ - pq0);
      for (int64_t i = 0; i < mc; ++i)
        std::memcpy(staging.data() + (i * kc + q) * esize, row(img, i0 + i, pq0, esize), static_cast<size_t>(len * esize));
      q += len;
    }
    const MatrixView v{staging.data(), g_.dtype, mc, kc, kc, 1};
    if (cfg.pack_a == nullptr || !cfg.pack_a(v, 0, mc, 0, kc, cfg.mr, dst))
      gemm_internal::pack_a_portable(v, 0, mc, 0, kc, cfg.mr, cfg.word, dst);
  }

  int direct_segments(const gemm_internal::FloatGemmConfig& cfg, int64_t p0, int64_t kc,
                      int64_t* seg_words) const override {
    if (cfg.word != gemm_internal::PanelWord::kF32 || g_.dtype != DType::kF32 || kc <= 0 ||
        gemm_internal::rows_share_l1_sets(pq_ * 4, cfg.mr))
      return 0;
    int nseg = 0;
    for (int64_t q = 0; q < kc; ++nseg) {
      if (nseg == kMaxDirectSegments) return 0;
      const int64_t pq0 = (pixel_begin_ + p0 + q) % pq_, len = std::min(kc - q, pq_ - pq0);
      seg_words[nseg] = len;
      q += len;
    }
    return nseg;
  }

  void direct_rows(const gemm_internal::FloatGemmConfig& cfg, int64_t i, int64_t p0, int nseg, const int64_t* seg_words,
                   const void** rows) const override {
    int64_t q = 0;
    for (int sg = 0; sg < nseg; ++sg) {
      const int64_t pix = pixel_begin_ + p0 + q, img = pix / pq_, pq0 = pix % pq_;
      for (int r = 0; r < cfg.mr; ++r) rows[sg * cfg.mr + r] = row(img, i + r, pq0, 4);
      q += seg_words[sg];
    }
  }

 private:
  // Output channel i_begin + i of group grp in image img, from pixel pq0.
  const char* row(int64_t img, int64_t i, int64_t pq0, int64_t esize) const {
    return static_cast<const char*>(g_.data) + ((img * d_.k + grp_ * d_.kg() + i_begin_ + i) * pq_ + pq0) * esize;
  }

  Conv2dDesc d_;
  TensorView g_;
  int64_t grp_, i_begin_, pixel_begin_, pq_;
};

// dW tiles over all groups and depth chunks: one on one thread (each tile packs its whole uncut
// operand once more); about two per thread otherwise, so a thread that gets its core late
// leaves at most a quarter of the work to wait for rather than half (the machine is shared).
// No tiling changes any element's sum: the driver's kc blocks depend on the chunk's pixel
// count alone.
int64_t tiles_wanted(int threads) { return threads <= 1 ? 1 : 2 * static_cast<int64_t>(threads); }

// NHWC depth chunks: the pixel sum N*P*Q is cut into a number of chunks that depends on the
// pixel count alone (never on the threads), each chunk's product goes to its own f32 copy of
// dW, and the copies are added in chunk order at the end, so every element is summed in one
// fixed order on any thread count. Why: the early layers' dW is small (1x1 64->256 @56: 256 x
// 64) over a depth of 25088 pixels at batch 8; cut into tiles of dW instead, every tile
// packed the uncut operand once more (4 tiles on 2 threads: G packed 4 times) and 22 row
// panels split 6+6+6+4 left one thread a fifth idle. Chunks pack each operand once in all
// and split evenly. A chunk keeps at least kMinChunkPixels pixels (several kc blocks, so its
// partial sums stay in the tile while the driver streams the operands), and there are at most
// kMaxDepthChunks (the extra copies of dW: at most 7 times the weights, f32).
constexpr int64_t kMinChunkPixels = 2048;
constexpr int64_t kMaxDepthChunks = 8;
// The copies are also capped at grad_out's size (chunks <= pixels / depth, depth = Cg*R*S: dW
// has depth elements per output channel, grad_out one per pixel), so the scratch stays within
// the workspace rule (docs/CONV.md: no layer needs more than an output-sized buffer); in the
// ResNet-50 layers at batch 8 the cap never binds (1x1 64->256 @56: 392 > 8).
int64_t depth_chunks(int64_t pixels, int64_t depth) {
  return std::max<int64_t>(1, std::min({kMaxDepthChunks, pixels / kMinChunkPixels, pixels / std::max<int64_t>(depth, 1)}));
}

// Pixel range [begin, end) of chunk c of `chunks` over `pixels`.
int64_t chunk_begin(int64_t pixels, int64_t chunks, int64_t c) { return pixels * c / chunks; }

// dst[e] = dst[e] + src_1[e] + ... + src_{count-1}[e], left to right, for e < elems (src_c =
// base + (c - 1) * elems): the fixed-order reduction of the depth chunks, split over threads
// by element ranges (which change no element's order).
void add_chunks(float* dst, const float* base, int64_t count, int64_t elems) {
  if (count <= 1) return;
  constexpr int64_t kGrain = 4096;
  parallel_for((elems + kGrain - 1) / kGrain, [&](int64_t t, int) {
    const int64_t e0 = t * kGrain, e1 = std::min(elems, e0 + kGrain);
    for (int64_t c = 1; c < count; ++c) {
      const float* src = base + (c - 1) * elems;
      for (int64_t e = e0; e < e1; ++e) dst[e] += src[e];
    }
  });
}

// How the tasks of an NHWC weight gradient cut the work: `chunks` depth chunks times `tiles`
// tiles of `panels` microkernel panels per group, the panels dealt out evenly (tile t gets
// panels [t * panels / tiles, (t + 1) * panels / tiles)).
struct WgradSplit {
  int64_t chunks, tiles, panels, unit;
  int64_t tile_begin(int64_t t) const { return t * panels / tiles * unit; }
};

WgradSplit wgrad_split(int64_t groups, int64_t pixels, int64_t depth, int64_t extent, int64_t unit) {
  WgradSplit sp;
  sp.chunks = depth_chunks(pixels, depth);
  sp.unit = unit;
  sp.panels = (extent + unit - 1) / unit;
  const int64_t wanted = tiles_wanted(get_num_threads());
  sp.tiles = std::max<int64_t>(1, std::min(sp.panels, (wanted + groups * sp.chunks - 1) / (groups * sp.chunks)));
  return sp;
}

// The weight gradient's A (G^T, or the swapped path's column matrix) is read pixel by pixel:
// row q of A's source is one pixel's mk channel values, a 1 KiB-strided run in x or grad_out.
// With mc-row blocks each pixel's run is read in pieces, one per row block, and the L2
// streamer fetches past every piece; one row block over all mk rows reads each run front to
// back. So the row block covers all of A's rows when that block stays within twice the
// entry's own A block (its L2 budget): 1 thread, f32 1x1 64->256 @56 b8: 13.6 -> 12.8 ms.
gemm_internal::FloatGemmConfig whole_rows_config(const gemm_internal::FloatGemmConfig& cfg, int64_t rows) {
  gemm_internal::FloatGemmConfig wide = cfg;
  const int64_t mc = (rows + cfg.mr - 1) / cfg.mr * cfg.mr;
  if (mc > cfg.mc && mc <= 2 * cfg.mc) wide.mc = static_cast<int>(mc);
  return wide;
}

// NHWC f32, swapped: dW_g^T = col^T x G_g (M = taps, N = output channels) into wt [G][Cg*R*S][Kg],
// then transposed into acc. Chosen where it wastes fewer microkernel lanes (64 output channels
// fill 5 1/3 12-row panels, but exactly two 32-column panels). Tasks: depth chunks x tiles of
// the taps.
void backward_weight_swapped(const Conv2dDesc& d, const TensorView& x, const TensorView& grad_out, float* acc) {
  const int64_t kg = d.kg(), depth = d.cg() * d.r * d.s, pixels = d.n * d.p() * d.q();
  const gemm_internal::FloatGemmConfig& cfg = gemm_internal::float_gemm_config(x.dtype, grad_out.dtype);
  const WgradSplit sp = wgrad_split(d.groups, pixels, depth, depth, cfg.mr);
  const int64_t elems = d.groups * depth * kg;
  std::unique_ptr<float[]> wt(new float[static_cast<size_t>(elems * sp.chunks)]);
  parallel_for(sp.chunks * d.groups * sp.tiles, [&](int64_t task, int) {
    const int64_t c = task / (d.groups * sp.tiles), g = task / sp.tiles % d.groups, t = task % sp.tiles;
    const int64_t i0 = sp.tile_begin(t), mk = std::min(depth, sp.tile_begin(t + 1)) - i0;
    const int64_t p0 = chunk_begin(pixels, sp.chunks, c), np = chunk_begin(pixels, sp.chunks, c + 1) - p0;
    gemm_internal::Epilogue ep;
    ep.out = MatrixView{wt.get() + c * elems + (g * depth + i0) * kg, DType::kF32, mk, kg, kg, 1};
    const gemm_internal::MatrixBPacker b(MatrixView{at(grad_out, p0 * d.k + g * kg), grad_out.dtype, np, kg, d.k, 1});
    const gemm_internal::FloatGemmConfig wide = whole_rows_config(cfg, mk);
    gemm_internal::run_float_gemm(mk, kg, np, WgradColumnAPacker(d, x, g, i0, p0), b, ep, 1, &wide);
  });
  add_chunks(wt.get(), wt.get() + elems, sp.chunks, elems);
  for (int64_t g = 0; g < d.groups; ++g)
    transpose_block(reinterpret_cast<const char*>(wt.get() + g * depth * kg), kg, 1,
                    reinterpret_cast<char*>(acc + g * kg * depth), depth, 1, depth, kg, sizeof(float));
}

// Backward weight into the f32 acc [K, Cg*R*S] (tap order of the layout); see the file comment.
void backward_weight_implicit(const Conv2dDesc& d, const TensorView& x, const TensorView& grad_out, float* acc) {
  const bool nhwc = d.layout == Layout::kNHWC;
  const int64_t cg = d.cg(), kg = d.kg(), depth = cg * d.r * d.s, pq = d.p() * d.q();
  const int64_t pixels = d.n * pq;  // the GEMM's depth: every pixel of the batch, both layouts
  const bool pointwise = conv::is_pointwise(d);
  const gemm_internal::FloatGemmConfig& cfg = gemm_internal::float_gemm_config(x.dtype, grad_out.dtype);
  auto up = [](int64_t v, int64_t u) { return (v + u - 1) / u * u; };
  // Swapped for f32, and for bf16 on pair words (the column matrix staged in bf16 and packed as
  // pairs of pixels; 1 thread, 3x3 64@56 b8: 64 output channels waste 1/9 of 12-row panels).
  const bool f32_words = x.dtype == DType::kF32 && grad_out.dtype == DType::kF32 && cfg.word == gemm_internal::PanelWord::kF32;
  const bool bf16_pairs =
      x.dtype == DType::kBF16 && grad_out.dtype == DType::kBF16 && cfg.word == gemm_internal::PanelWord::kBF16Pair;
  if (nhwc && (f32_words || bf16_pairs) && 20 * up(depth, cfg.mr) * up(kg, cfg.nr) < 19 * up(kg, cfg.mr) * up(depth, cfg.nr)) {
    backward_weight_swapped(d, x, grad_out, acc);
    return;
  }
  // Tiles of dW_g (tiles_wanted). Each packs its whole A and B over its pixels, so a split
  // repacks the operand it does not cut: cut the rows (output channels, mr panels) when there
  // are more of them than columns (taps x channels, nr panels), so the narrower operand is
  // the one packed again (measured, 1x1 64->256 @56: the column split repacked G^T, 256 rows,
  // per 32-column tile and spent as long packing as multiplying).
  const bool split_rows = kg > depth;
  const int64_t extent = split_rows ? kg : depth;
  const WgradSplit sp = wgrad_split(d.groups, pixels, depth, extent, split_rows ? cfg.mr : cfg.nr);
  const int64_t elems = d.groups * kg * depth;
  std::unique_ptr<float[]> partial(sp.chunks > 1 ? new float[static_cast<size_t>(elems * (sp.chunks - 1))] : nullptr);
  parallel_for(sp.chunks * d.groups * sp.tiles, [&](int64_t task, int) {
    const int64_t c = task / (d.groups * sp.tiles), g = task / sp.tiles % d.groups, t = task % sp.tiles;
    const int64_t t0 = sp.tile_begin(t), tn = std::min(extent, sp.tile_begin(t + 1)) - t0;
    // This task's block of dW_g: rows [i0, i0 + mk) x columns [j0, j0 + nc), over the pixels
    // [p0, p0 + np) of its chunk, into acc (chunk 0) or the chunk's partial copy.
    const int64_t i0 = split_rows ? t0 : 0, mk = split_rows ? tn : kg;
    const int64_t j0 = split_rows ? 0 : t0, nc = split_rows ? depth : tn;
    float* const dst = c == 0 ? acc : partial.get() + (c - 1) * elems;
    const MatrixView out{dst + (g * kg + i0) * depth + j0, DType::kF32, mk, nc, depth, 1};
    const int64_t p0 = chunk_begin(pixels, sp.chunks, c), np = chunk_begin(pixels, sp.chunks, c + 1) - p0;
    gemm_internal::Epilogue ep;
    ep.out = out;
    const gemm_internal::FloatGemmConfig wide = whole_rows_config(cfg, mk);
    if (nhwc) {
      const gemm_internal::MatrixAPacker generic(
          MatrixView{at(grad_out, p0 * d.k + g * kg + i0), grad_out.dtype, mk, np, 1, d.k});
      const GradOutTransposedAPacker fast(static_cast<const float*>(grad_out.data) + p0 * d.k + g * kg + i0, d.k);
      const bool f32 = grad_out.dtype == DType::kF32 && cfg.word == gemm_internal::PanelWord::kF32;
      const gemm_internal::APacker& a = f32 ? static_cast<const gemm_internal::APacker&>(fast) : generic;
      if (pointwise) {
        const gemm_internal::MatrixBPacker b(MatrixView{at(x, p0 * d.c + g * cg + j0), x.dtype, np, nc, d.c, 1});
        gemm_internal::run_float_gemm(mk, nc, np, a, b, ep, 1, &wide);
      } else {
        gemm_internal::run_float_gemm(mk, nc, np, a, WgradColumnPacker(d, x, 0, g, j0, p0), ep, 1, &wide);
      }
      return;
    }
    // NCHW: the same GEMM over the batch's pixels, G^T read per image run, the column blocks
    // gathered per image side by side.
    gemm_internal::run_float_gemm(mk, nc, np, NchwGradOutAPacker(d, grad_out, g, i0, p0),
                                  WgradColumnPacker(d, x, -1, g, j0, p0), ep, 1, &wide);
  });
  add_chunks(acc, partial.get(), sp.chunks, elems);
}

}  // namespace

void conv2d_backward_data(const Conv2dDesc& d, const TensorView& grad_out, const TensorView& w,
                          const TensorView& grad_in) {
  conv::check_desc(d);
  int64_t xd[4], wd[4], yd[4];
  conv::x_dims(d, xd);
  conv::w_dims(d, wd);
  conv::y_dims(d, yd);
  conv::check_tensor(grad_out, "grad_out", yd[0], yd[1], yd[2], yd[3], false);
  conv::check_tensor(w, "w", wd[0], wd[1], wd[2], wd[3], false);
  conv::check_tensor(grad_in, "grad_in", xd[0], xd[1], xd[2], xd[3], true);
  check_float_dtypes(grad_out, "grad_out", w, "w", grad_in, "grad_in");
  if (grad_in.numel() == 0) return;
  if (conv::is_depthwise(d)) {
    depthwise_conv2d_backward_data(d, grad_out, w, grad_in);
    return;
  }
  // NCHW 1x1 on images of at most kNchwPointwiseBatchPixels pixels (7x7: 49 columns per image,
  // two panels a quarter empty) runs as the phase GEMM of the whole batch (1 thread, batch 8,
  // same-process A/B: 2048->512 @7 1.13x f32 / 1.03x bf16, 512->2048 @7 1.23x / 1.15x; at
  // 14x14, 196 columns, it lost: 1024->256 0.94x / 0.81x).
  const bool small_nchw_pointwise =
      d.layout == Layout::kNCHW && d.n > 1 && d.p() * d.q() <= kNchwPointwiseBatchPixels;
  if ((!conv::is_pointwise(d) || small_nchw_pointwise) && backward_data_as_forward(d, grad_out, w, grad_in)) return;

  const int64_t cg = d.cg(), kg = d.kg(), depth = cg * d.r * d.s, pq = d.p() * d.q();
  const bool nhwc = d.layout == Layout::kNHWC;
  const GemmParams plain;

  if (conv::is_pointwise(d)) {
    // Each input pixel meets exactly one output pixel: grad_in_g = G_g x W_g, written directly.
    // NCHW: A = W_g^T, copied once per call into a row-major [C, Kg] (a few KiB), so every
    // image's GEMM reads its rows in place (and a bf16 output is rounded in the kernel's
    // registers) instead of packing a column-major W^T per image and finishing each tile
    // through memory (1 thread, bf16 1x1 256->64 @56 batch 8: NCHW/NHWC 0.66x before).
    thread_local ReusedBytes wt_buffer;
    const size_t wsize = dtype_size(w.dtype);
    char* const wt = nhwc ? nullptr : wt_buffer.get(static_cast<size_t>(d.groups * cg * kg) * wsize);
    if (!nhwc)
      for (int64_t g = 0; g < d.groups; ++g)
        transpose_block(static_cast<const char*>(w.data) + static_cast<int64_t>(wsize) * g * kg * cg, cg, 1,
                        wt + static_cast<int64_t>(wsize) * g * cg * kg, kg, 1, kg, cg, wsize);
    if (nhwc) {
      for (int64_t g = 0; g < d.groups; ++g) {
        const int64_t m = d.n * pq;
        MatrixView a{at(grad_out, g * kg), grad_out.dtype, m, kg, d.k, 1};
        MatrixView b{at(w, g * kg * cg), w.dtype, kg, cg, cg, 1};
        MatrixView o{at(grad_in, g * cg), grad_in.dtype, m, cg, d.c, 1};
        gemm(a, b, nullptr, o, plain);
      }
      return;
    }
    // grad_in[c, pix] = sum_k W[k, c] G[k, pix], per image and group.
    auto one = [&](int64_t task) {
      const int64_t n = task / d.groups, g = task % d.groups;
      MatrixView a{wt + static_cast<int64_t>(wsize) * g * cg * kg, w.dtype, cg, kg, kg, 1};
      MatrixView b{at(grad_out, (n * d.k + g * kg) * pq), grad_out.dtype, kg, pq, pq, 1};
      MatrixView o{at(grad_in, (n * d.c + g * cg) * pq), grad_in.dtype, cg, pq, pq, 1};
      gemm(a, b, nullptr, o, plain);
    };
    // As conv2d's NCHW GEMMs: images dealt out to the threads where they divide evenly (or are
    // many), each GEMM on its task's thread (a GEMM started inside a pool task runs inline);
    // else image by image on all threads. Per element the same sums either way: the same bits.
    const int64_t tasks = d.n * d.groups, T = get_num_threads();
    if (T > 1 && (tasks % T == 0 || tasks >= 4 * T)) {
      parallel_for(tasks, [&](int64_t task, int) { one(task); });
    } else {
      for (int64_t task = 0; task < tasks; ++task) one(task);
    }
    return;
  }

  // f32 accumulation target: grad_in itself when it is f32, else a scratch copy.
  std::unique_ptr<float[]> scratch;
  float* acc = static_cast<float*>(grad_in.data);
  if (grad_in.dtype != DType::kF32) {
    scratch.reset(new float[static_cast<size_t>(grad_in.numel())]);
    acc = scratch.get();
  }
  std::fill(acc, acc + grad_in.numel(), 0.0f);

  const int64_t pixels = nhwc ? d.n * pq : pq;
  const int64_t mc_max = conv::chunk_pixels(d);
  std::unique_ptr<float[]> col(new float[static_cast<size_t>(mc_max * depth)]);
  for (int64_t n = 0; n < (nhwc ? 1 : d.n); ++n) {
    for (int64_t g = 0; g < d.groups; ++g) {
      for (int64_t m0 = 0; m0 < pixels; m0 += mc_max) {
        const int64_t mc = std::min(mc_max, pixels - m0);
        if (nhwc) {
          // col[j][rsc] = sum_k G[m0 + j, g*kg + k] W[g*kg + k][rsc]
          MatrixView a{at(grad_out, m0 * d.k + g * kg), grad_out.dtype, mc, kg, d.k, 1};
          MatrixView b{at(w, g * kg * depth), w.dtype, kg, depth, depth, 1};
          MatrixView o{col.get(), DType::kF32, mc, depth, depth, 1};
          gemm(a, b, nullptr, o, plain);
        } else {
          // col[crs][j] = sum_k W[g*kg + k][crs] G[n, g*kg + k, m0 + j]
          MatrixView a{at(w, g * kg * depth), w.dtype, depth, kg, 1, depth};
          MatrixView b{at(grad_out, (n * d.k + g * kg) * pq + m0), grad_out.dtype, kg, mc, pq, 1};
          MatrixView o{col.get(), DType::kF32, depth, mc, mc, 1};
          gemm(a, b, nullptr, o, plain);
        }
        conv::col2im_add(d, col.get(), n, g, m0, mc, acc);
      }
    }
  }
  if (scratch) convert_from_f32(acc, grad_in);
}

void conv2d_backward_weight(const Conv2dDesc& d, const TensorView& x, const TensorView& grad_out,
                            const TensorView& grad_w) {
  conv::check_desc(d);
  int64_t xd[4], wd[4], yd[4];
  conv::x_dims(d, xd);
  conv::w_dims(d, wd);
  conv::y_dims(d, yd);
  conv::check_tensor(x, "x", xd[0], xd[1], xd[2], xd[3], false);
  conv::check_tensor(grad_out, "grad_out", yd[0], yd[1], yd[2], yd[3], false);
  conv::check_tensor(grad_w, "grad_w", wd[0], wd[1], wd[2], wd[3], true);
  check_float_dtypes(x, "x", grad_out, "grad_out", grad_w, "grad_w");
  if (grad_w.numel() == 0) return;
  if (conv::is_depthwise(d)) {
    depthwise_conv2d_backward_weight(d, x, grad_out, grad_w);
    return;
  }

  const int64_t pq = d.p() * d.q();
  std::unique_ptr<float[]> scratch;
  float* acc = static_cast<float*>(grad_w.data);
  if (grad_w.dtype != DType::kF32) {
    scratch.reset(new float[static_cast<size_t>(grad_w.numel())]);
    acc = scratch.get();
  }
  if (d.n * pq == 0) {
    std::fill(acc, acc + grad_w.numel(), 0.0f);
    if (scratch) convert_from_f32(acc, grad_w);
    return;
  }
  backward_weight_implicit(d, x, grad_out, acc);
  if (scratch) convert_from_f32(acc, grad_w);
}

}  // namespace aicc::cpu
