// Depthwise conv2d backward (design in depthwise_conv2d.h).
//
// Data: grad_in[h][w] = sum over the taps (r, s) whose output pixel
//   ((h + pad_top - r*dil_h) / stride_h, (w + pad_left - s*dil_w) / stride_w) exists (exact
//   division) of grad_out[that pixel] * w[r][s]. Input columns are split by stride phase
//   (w mod stride_w): inside one phase the valid column taps are fixed and consecutive input
//   columns of the phase read consecutive grad_out columns, so the phase's interior is one
//   call of the forward primitive (stride 1 over grad_out) that uses only that phase's taps;
//   rows pick their taps the same way (h + pad_top - r*dil_h divisible by stride_h).
// Weight: per fixed chunk of output rows, an f32 partial filter accumulated by the wgrad
//   primitive (filter accumulators in registers across the row's pixels); the partials are
//   summed in chunk order. The chunking depends only on the shape, so the result does not
//   depend on the thread count.
// NCHW: the same sums per (image, channel) plane, with the table's column primitives
//   (vectors along rows).
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "common/half.h"
#include "common/thread_pool.h"
#include "cpu/conv/depthwise_conv2d.h"

namespace aicc::cpu {
namespace {

float load_any(DType t, const void* p, int64_t i) {
  if (t == DType::kF16) return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
  if (t == DType::kBF16) return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
  return static_cast<const float*>(p)[i];
}

void store_f32(DType t, void* out, int64_t base, const float* src, int64_t n) {
  if (t == DType::kF16) {
    uint16_t* o = static_cast<uint16_t*>(out) + base;
    for (int64_t i = 0; i < n; ++i) o[i] = f32_to_f16(src[i]);
  } else if (t == DType::kBF16) {
    uint16_t* o = static_cast<uint16_t*>(out) + base;
    for (int64_t i = 0; i < n; ++i) o[i] = f32_to_bf16(src[i]);
  } else {
    std::copy(src, src + n, static_cast<float*>(out) + base);
  }
}

// Floor division and modulo for a possibly negative numerator.
int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
int64_t mod(int64_t a, int64_t b) { return a - floor_div(a, b) * b; }

// Output rows per weight-gradient chunk: at most kMaxChunks chunks, from the shape alone.
constexpr int64_t kMaxChunks = 32;

void backward_data_nhwc(const Conv2dDesc& d, const TensorView& g, const TensorView& w, const TensorView& gi) {
  const DepthwiseOps& ops = depthwise_ops(g.dtype);
  const int64_t C = d.c, P = d.p(), Q = d.q(), R = d.r, S = d.s, RS = R * S;
  const int64_t gsize = static_cast<int64_t>(dtype_size(g.dtype));
  const char* gb = static_cast<const char*>(g.data);
  const int threads = get_num_threads();
  const bool direct = gi.dtype == DType::kF32;
  // bf16 (f16) grad_in with a primitive that rounds in registers: no f32 row in between.
  const bool direct_round = !direct && ops.accum_pixels_round != nullptr;
  // [R*S][C], or the split rows of accum_pixels_round.
  const int64_t wrow = direct_round ? depthwise_split_row(C) : C;
  const std::vector<float> wt = depthwise_tap_rows(w.dtype, w.data, C, RS, direct_round);
  std::vector<float> rows(direct || direct_round ? 0 : static_cast<size_t>(d.w * C * threads));
  const int64_t sw = d.stride_w, sh = d.stride_h;
  parallel_for(d.n * d.h, [&](int64_t nh, int thread) {
    const int64_t n = nh / d.h, h = nh % d.h;
    const int64_t base = nh * d.w * C;
    float* dst = direct ? static_cast<float*>(gi.data) + base : direct_round ? nullptr : rows.data() + thread * d.w * C;
    char* const gi_row = static_cast<char*>(gi.data) + base * gsize;
    // Kernel rows that reach this input row, and the grad_out row each reads.
    std::vector<int64_t> rr(static_cast<size_t>(R)), pr(static_cast<size_t>(R));
    int64_t* rs_ = rr.data();
    int64_t* ps_ = pr.data();
    int nr = 0;
    for (int64_t r = 0; r < R; ++r) {
      const int64_t t = h + d.pad_top - r * d.dilation_h;
      if (mod(t, sh) != 0) continue;
      const int64_t p = floor_div(t, sh);
      if (p < 0 || p >= P) continue;
      rs_[nr] = r;
      ps_[nr++] = p;
    }
    std::vector<const void*> src(static_cast<size_t>(RS));
    std::vector<const float*> wp(static_cast<size_t>(RS));
    const auto accum = [&](int nt, int64_t step, int64_t npix, int64_t col, int64_t dst_step) {
      if (direct_round)
        ops.accum_pixels_round(src.data(), wp.data(), nt, step, npix, C, nullptr, false, gi_row + col * C * gsize,
                               dst_step);
      else
        ops.accum_pixels(src.data(), wp.data(), nt, step, npix, C, nullptr, false, dst + col * C, dst_step);
    };
    std::vector<int64_t> phase_s(static_cast<size_t>(S)), phase_u(static_cast<size_t>(S));
    for (int64_t pw = 0; pw < std::min(sw, d.w); ++pw) {
      // Column taps of this phase: u = pw + pad_left - s*dil_w divisible by stride_w; input
      // column pw + sw*j then reads grad_out column j + u/sw.
      int ns = 0;
      for (int64_t s = 0; s < S; ++s) {
        const int64_t u = pw + d.pad_left - s * d.dilation_w;
        if (mod(u, sw) != 0) continue;
        phase_s[ns] = s;
        phase_u[ns++] = floor_div(u, sw);
      }
      const int64_t J = (d.w - pw + sw - 1) / sw;  // input columns in this phase
      // Interior: every column tap of the phase inside [0, Q).
      int64_t j_lo = 0, j_hi = J;
      for (int k = 0; k < ns; ++k) {
        j_lo = std::max(j_lo, -phase_u[k]);
        j_hi = std::min(j_hi, Q - phase_u[k]);
      }
      j_hi = std::max(j_hi, std::min(j_lo, J));
      j_lo = std::min(j_lo, J);
      const auto taps = [&](int64_t j, bool clip) {
        int nt = 0;
        for (int a = 0; a < nr; ++a)
          for (int k = 0; k < ns; ++k) {
            const int64_t q = j + phase_u[k];
            if (clip && (q < 0 || q >= Q)) continue;
            src[nt] = gb + ((n * P + ps_[a]) * Q + q) * C * gsize;
            wp[nt++] = wt.data() + (rs_[a] * S + phase_s[k]) * wrow;
          }
        return nt;
      };
      for (int64_t j = 0; j < J; ++j) {
        if (j == j_lo && j_hi > j_lo) {
          accum(taps(j_lo, false), C, j_hi - j_lo, pw + sw * j_lo, sw * C);
          j = j_hi - 1;
          continue;
        }
        accum(taps(j, true), 0, 1, pw + sw * j, C);
      }
    }
    if (!direct && !direct_round) ops.store_row(dst, d.w * C, gi_row);
  }, threads);
}

// Stride 1: grad_in is the forward conv of grad_out with the kernel flipped in both axes and
// the padding mirrored ((R-1)*dil - pad_top above, the rest below), so the ISA's NCHW plane
// kernel (DepthwiseOps::forward_rows_nchw: rows of output columns per vector, several output
// rows per input row load, masked borders) computes it plane by plane, written straight into
// grad_in (f32, or bf16 rounded in registers). Returns false (nothing done) where the table
// has no such kernel or it does not take this geometry.
bool backward_data_nchw_as_forward(const Conv2dDesc& d, const TensorView& g, const std::vector<float>& wf,
                                   const TensorView& gi) {
  const DepthwiseOps& ops = depthwise_ops(g.dtype);
  const bool round = gi.dtype != DType::kF32;
  if (ops.forward_rows_nchw == nullptr || (round && (gi.dtype != g.dtype || ops.accum_pixels_round == nullptr)))
    return false;
  const int64_t C = d.c, P = d.p(), Q = d.q(), R = d.r, S = d.s, RS = R * S, H = d.h, W = d.w;
  Conv2dDesc f = d;
  f.h = P, f.w = Q;
  f.pad_top = (R - 1) * d.dilation_h - d.pad_top;
  f.pad_left = (S - 1) * d.dilation_w - d.pad_left;
  f.pad_bottom = H - P - f.pad_top + (R - 1) * d.dilation_h;
  f.pad_right = W - Q - f.pad_left + (S - 1) * d.dilation_w;
  if (f.p() != H || f.q() != W) return false;
  // An empty range: the kernel only says whether it takes this geometry.
  if (!ops.forward_rows_nchw(f, nullptr, nullptr, 0.0f, false, 0, 0, nullptr, round, nullptr)) return false;
  std::vector<float> flipped(static_cast<size_t>(C * RS));
  for (int64_t c = 0; c < C; ++c)
    for (int64_t t = 0; t < RS; ++t) flipped[c * RS + t] = wf[c * RS + (RS - 1 - t)];
  const int64_t gsize = static_cast<int64_t>(dtype_size(g.dtype)), osize = static_cast<int64_t>(dtype_size(gi.dtype));
  const int threads = get_num_threads();
  std::vector<float> widened(gsize == 2 ? static_cast<size_t>(P * Q * threads) : 0);
  parallel_for(d.n * C, [&](int64_t nc, int thread) {
    float* ws = widened.empty() ? nullptr : widened.data() + thread * P * Q;
    ops.forward_rows_nchw(f, static_cast<const char*>(g.data) + nc * P * Q * gsize, flipped.data() + (nc % C) * RS,
                          0.0f, false, 0, H, static_cast<char*>(gi.data) + nc * H * W * osize, round, ws);
  }, threads);
  return true;
}

void backward_data_nchw(const Conv2dDesc& d, const TensorView& g, const TensorView& w, const TensorView& gi) {
  const DepthwiseOps& ops = depthwise_ops(g.dtype);
  const int64_t C = d.c, P = d.p(), Q = d.q(), R = d.r, S = d.s, RS = R * S, H = d.h, W = d.w;
  const int64_t sw = d.stride_w, sh = d.stride_h;
  const int64_t gsize = static_cast<int64_t>(dtype_size(g.dtype));
  const char* gb = static_cast<const char*>(g.data);
  std::vector<float> wf(static_cast<size_t>(C * RS));
  for (int64_t i = 0; i < C * RS; ++i) wf[i] = load_any(w.dtype, w.data, i);
  const int threads = get_num_threads();
  if (sh == 1 && sw == 1 && backward_data_nchw_as_forward(d, g, wf, gi)) return;
  // Per thread: one f32 input row and one phase's columns.
  std::vector<float> rows(static_cast<size_t>(2 * W * threads));
  parallel_for(d.n * C, [&](int64_t nc, int thread) {
    const int64_t c = nc % C;
    const char* gp = gb + nc * P * Q * gsize;
    float* acc = rows.data() + thread * 2 * W;
    float* tmp = acc + W;
    const float* wc = wf.data() + c * RS;
    std::vector<const void*> src(static_cast<size_t>(RS));
    std::vector<float> wt(static_cast<size_t>(RS));
    std::vector<int64_t> rp(static_cast<size_t>(R)), rr(static_cast<size_t>(R));
    std::vector<int64_t> phase_s(static_cast<size_t>(S)), phase_u(static_cast<size_t>(S));
    for (int64_t h = 0; h < H; ++h) {
      int nr = 0;
      for (int64_t r = 0; r < R; ++r) {
        const int64_t t = h + d.pad_top - r * d.dilation_h;
        if (mod(t, sh) != 0) continue;
        const int64_t p = floor_div(t, sh);
        if (p < 0 || p >= P) continue;
        rr[nr] = r;
        rp[nr++] = p;
      }
      for (int64_t pw = 0; pw < std::min(sw, W); ++pw) {
        int ns = 0;
        for (int64_t s = 0; s < S; ++s) {
          const int64_t u = pw + d.pad_left - s * d.dilation_w;
          if (mod(u, sw) != 0) continue;
          phase_s[ns] = s;
          phase_u[ns++] = floor_div(u, sw);
        }
        const int64_t J = (W - pw + sw - 1) / sw;
        int64_t j_lo = 0, j_hi = J;
        for (int k = 0; k < ns; ++k) {
          j_lo = std::max(j_lo, -phase_u[k]);
          j_hi = std::min(j_hi, Q - phase_u[k]);
        }
        j_hi = std::max(j_hi, std::min(j_lo, J));
        j_lo = std::min(j_lo, J);
        // Border columns: the taps that land inside grad_out, one column at a time.
        const auto border = [&](int64_t j) {
          float a = 0.0f;
          for (int i = 0; i < nr; ++i)
            for (int k = 0; k < ns; ++k) {
              const int64_t q = j + phase_u[k];
              if (q >= 0 && q < Q)
                a += load_any(g.dtype, g.data, nc * P * Q + rp[i] * Q + q) * wc[rr[i] * S + phase_s[k]];
            }
          acc[pw + sw * j] = a;
        };
        for (int64_t j = 0; j < j_lo; ++j) border(j);
        if (j_hi > j_lo) {
          int nt = 0;
          for (int i = 0; i < nr; ++i)
            for (int k = 0; k < ns; ++k) {
              src[nt] = gp + (rp[i] * Q + j_lo + phase_u[k]) * gsize;
              wt[nt++] = wc[rr[i] * S + phase_s[k]];
            }
          float* out = sw == 1 ? acc + j_lo : tmp;
          ops.accum_cols(src.data(), wt.data(), nt, j_hi - j_lo, out);
          if (sw != 1)
            for (int64_t j = j_lo; j < j_hi; ++j) acc[pw + sw * j] = tmp[j - j_lo];
        }
        for (int64_t j = j_hi; j < J; ++j) border(j);
      }
      ops.store_row(acc, W, static_cast<char*>(gi.data) + (nc * H + h) * W * gsize);
    }
  }, threads);
}

// row: the partial filters' row length (C, or depthwise_split_row(C) for wgrad_pixels_split).
void backward_weight_nhwc(const Conv2dDesc& d, const TensorView& x, const TensorView& g, float* partial,
                          int64_t chunks, int64_t rows_per_chunk, int64_t row) {
  const DepthwiseOps& ops = depthwise_ops(x.dtype);
  const auto wgrad = ops.wgrad_pixels_split != nullptr ? ops.wgrad_pixels_split : ops.wgrad_pixels;
  const int64_t C = d.c, P = d.p(), Q = d.q(), R = d.r, S = d.s, RS = R * S;
  const int64_t esize = static_cast<int64_t>(dtype_size(x.dtype));
  const char* xb = static_cast<const char*>(x.data);
  const char* gb = static_cast<const char*>(g.data);
  int64_t q_lo, q_hi;
  depthwise_interior(Q, d.w, S, d.stride_w, d.dilation_w, d.pad_left, &q_lo, &q_hi);
  parallel_for(chunks, [&](int64_t k, int) {
    float* acc = partial + k * RS * row;
    std::fill(acc, acc + RS * row, 0.0f);
    const int64_t np0 = k * rows_per_chunk, np_end = std::min(d.n * P, (k + 1) * rows_per_chunk);
    if (ops.wgrad_rows != nullptr && ops.wgrad_rows(d, x.data, g.data, np0, np_end, acc, row)) return;
    std::vector<const void*> src(static_cast<size_t>(RS));
    std::vector<float*> wp(static_cast<size_t>(RS));
    const int64_t np1 = std::min(d.n * P, (k + 1) * rows_per_chunk);
    for (int64_t np = k * rows_per_chunk; np < np1; ++np) {
      const int64_t n = np / P, p = np % P;
      const auto taps = [&](int64_t q, bool clip) {
        int nt = 0;
        for (int64_t r = 0; r < R; ++r) {
          const int64_t h = p * d.stride_h - d.pad_top + r * d.dilation_h;
          if (h < 0 || h >= d.h) continue;
          for (int64_t s = 0; s < S; ++s) {
            const int64_t wi = q * d.stride_w - d.pad_left + s * d.dilation_w;
            if (clip && (wi < 0 || wi >= d.w)) continue;
            src[nt] = xb + ((n * d.h + h) * d.w + wi) * C * esize;
            wp[nt++] = acc + (r * S + s) * row;
          }
        }
        return nt;
      };
      const char* grow = gb + np * Q * C * esize;
      for (int64_t q = 0; q < Q; ++q) {
        if (q == q_lo && q_hi > q_lo) {
          const int nt = taps(q_lo, false);
          wgrad(grow + q_lo * C * esize, C, src.data(), nt, d.stride_w * C, q_hi - q_lo, C, wp.data());
          q = q_hi - 1;
          continue;
        }
        const int nt = taps(q, true);
        wgrad(grow + q * C * esize, C, src.data(), nt, 0, 1, C, wp.data());
      }
    }
  });
}

// rows_kernel: the table's wgrad_rows_nchw takes this geometry (the caller asked it).
void backward_weight_nchw(const Conv2dDesc& d, const TensorView& x, const TensorView& g, float* partial,
                          int64_t chunks, int64_t rows_per_chunk, bool rows_kernel) {
  // Task (chunk k, channel c): the rows of chunk k of channel c's planes; partial[k][t][c].
  const DepthwiseOps& ops = depthwise_ops(x.dtype);
  const int64_t C = d.c, P = d.p(), Q = d.q(), R = d.r, S = d.s, RS = R * S, H = d.h, W = d.w;
  const int64_t esize = static_cast<int64_t>(dtype_size(x.dtype));
  const char* xb = static_cast<const char*>(x.data);
  const char* gb = static_cast<const char*>(g.data);
  int64_t q_lo, q_hi;
  depthwise_interior(Q, W, S, d.stride_w, d.dilation_w, d.pad_left, &q_lo, &q_hi);
  // The ISA's plane kernel: the chunk's rows split at image boundaries, one call per plane's
  // run of rows.
  if (rows_kernel) {
    // A task per (chunk, run of 64 channels), channels in order inside: consecutive planes
    // are consecutive in memory (a task per channel over its chunks jumped C*H*W elements per
    // plane; a task per (chunk, channel) was 14336 tasks on 512@14). Each (chunk, channel)
    // partial is the same computation whichever task runs it.
    constexpr int64_t kRun = 64;
    const int threads = get_num_threads();
    const int64_t runs = (C + kRun - 1) / kRun;
    parallel_for(chunks * runs, [&](int64_t task, int) {
      const int64_t k = task / runs, c0 = (task % runs) * kRun, c1 = std::min(C, c0 + kRun);
      const int64_t end = std::min(d.n * P, (k + 1) * rows_per_chunk);
      float part[25];
      for (int64_t c = c0; c < c1; ++c) {
        std::fill(part, part + RS, 0.0f);
        for (int64_t np = k * rows_per_chunk; np < end;) {
          const int64_t n = np / P, p0 = np % P, p1 = std::min(P, p0 + (end - np));
          ops.wgrad_rows_nchw(d, xb + (n * C + c) * H * W * esize, gb + (n * C + c) * P * Q * esize, p0, p1, part);
          np += p1 - p0;
        }
        for (int64_t t = 0; t < RS; ++t) partial[(k * RS + t) * C + c] = part[t];
      }
    }, threads);
    return;
  }
  parallel_for(chunks * C, [&](int64_t kc, int) {
    const int64_t k = kc / C, c = kc % C;
    std::vector<float> part(static_cast<size_t>(RS), 0.0f);
    std::vector<const void*> src(static_cast<size_t>(S));
    const int64_t np1 = std::min(d.n * P, (k + 1) * rows_per_chunk);
    for (int64_t np = k * rows_per_chunk; np < np1; ++np) {
      const int64_t n = np / P, p = np % P;
      const int64_t gbase = ((n * C + c) * P + p) * Q;
      for (int64_t r = 0; r < R; ++r) {
        const int64_t h = p * d.stride_h - d.pad_top + r * d.dilation_h;
        if (h < 0 || h >= H) continue;
        const int64_t xbase = ((n * C + c) * H + h) * W;
        float* pr = part.data() + r * S;
        for (int64_t q = 0; q < q_lo; ++q) {
          const float gv = load_any(g.dtype, g.data, gbase + q);
          for (int64_t s = 0; s < S; ++s) {
            const int64_t wi = q * d.stride_w - d.pad_left + s * d.dilation_w;
            if (wi >= 0 && wi < W) pr[s] += gv * load_any(x.dtype, x.data, xbase + wi);
          }
        }
        if (q_hi > q_lo) {
          for (int64_t s = 0; s < S; ++s)
            src[s] = xb + (xbase + q_lo * d.stride_w - d.pad_left + s * d.dilation_w) * esize;
          ops.dot_cols(gb + (gbase + q_lo) * esize, src.data(), static_cast<int>(S), d.stride_w, q_hi - q_lo, pr);
        }
        for (int64_t q = q_hi; q < Q; ++q) {
          const float gv = load_any(g.dtype, g.data, gbase + q);
          for (int64_t s = 0; s < S; ++s) {
            const int64_t wi = q * d.stride_w - d.pad_left + s * d.dilation_w;
            if (wi >= 0 && wi < W) pr[s] += gv * load_any(x.dtype, x.data, xbase + wi);
          }
        }
      }
    }
    for (int64_t t = 0; t < RS; ++t) partial[(k * RS + t) * C + c] = part[t];
  });
}

}  // namespace

void depthwise_conv2d_backward_data(const Conv2dDesc& d, const TensorView& grad_out, const TensorView& w,
                                    const TensorView& grad_in) {
  if (grad_in.numel() == 0) return;
  if (d.layout == Layout::kNHWC) backward_data_nhwc(d, grad_out, w, grad_in);
  else backward_data_nchw(d, grad_out, w, grad_in);
}

void depthwise_conv2d_backward_weight(const Conv2dDesc& d, const TensorView& x, const TensorView& grad_out,
                                      const TensorView& grad_w) {
  const int64_t C = d.c, RS = d.r * d.s, rows = d.n * d.p();
  if (grad_w.numel() == 0) return;
  // NCHW on the ISA's plane kernel: chunks of whole planes (its lane sums are reduced once per
  // call; chunks of 4 rows of a 14x14 plane spent more on the reductions than on the FMAs).
  const DepthwiseOps& ops = depthwise_ops(x.dtype);
  const bool nchw_rows = d.layout == Layout::kNCHW && ops.wgrad_rows_nchw != nullptr && RS <= 25 &&
                         ops.wgrad_rows_nchw(d, nullptr, nullptr, 0, 0, nullptr);
  const int64_t rows_per_chunk =
      nchw_rows ? d.p() * std::max<int64_t>(1, (d.n + kMaxChunks - 1) / kMaxChunks)
                : std::max<int64_t>(1, (rows + kMaxChunks - 1) / kMaxChunks);
  const int64_t chunks = rows == 0 ? 0 : (rows + rows_per_chunk - 1) / rows_per_chunk;
  // Partial filters [chunk][t][row]: channel c at column c, or at its split position.
  const bool split = d.layout == Layout::kNHWC && ops.wgrad_pixels_split != nullptr;
  const int64_t row = split ? depthwise_split_row(C) : C;
  const auto column = [&](int64_t c) {
    if (!split) return c;
    const int64_t in_block = c % kDepthwiseSplit;
    return c - in_block + (in_block % 2) * (kDepthwiseSplit / 2) + in_block / 2;
  };
  std::unique_ptr<float[]> partial(new float[static_cast<size_t>(std::max<int64_t>(chunks, 1) * RS * row)]);
  if (d.q() > 0) {
    if (d.layout == Layout::kNHWC) backward_weight_nhwc(d, x, grad_out, partial.get(), chunks, rows_per_chunk, row);
    else backward_weight_nchw(d, x, grad_out, partial.get(), chunks, rows_per_chunk, nchw_rows);
  }
  const int64_t q = d.q();
  // grad_w[c][t] = 0 + the chunks' partials in chunk order. The partials are [t][c] rows, so
  // the sums run along contiguous rows (vectorized; a loop per channel gathered one float per
  // chunk and tap with a stride of R*S*C floats and cost more than the gradient itself on
  // 14x14 layers), one block of taps at a time, then the [t][c] block is transposed into the
  // c-major weights ([C, R, S, 1] / [C, 1, R, S]).
  const int64_t tb = std::max<int64_t>(1, std::min<int64_t>(RS, 4096 / std::max<int64_t>(row, 1)));
  parallel_for((RS + tb - 1) / tb, [&](int64_t blk, int) {
    const int64_t t0 = blk * tb, t1 = std::min(RS, t0 + tb);
    std::vector<float> sums(static_cast<size_t>((t1 - t0) * row), 0.0f), vals(static_cast<size_t>(t1 - t0));
    if (q > 0)
      for (int64_t k = 0; k < chunks; ++k) {
        const float* src = partial.get() + (k * RS + t0) * row;
        float* dst = sums.data();
        for (int64_t i = 0; i < (t1 - t0) * row; ++i) dst[i] += src[i];
      }
    for (int64_t c = 0; c < C; ++c) {
      const int64_t at = column(c);
      for (int64_t t = t0; t < t1; ++t) vals[t - t0] = sums[(t - t0) * row + at];
      store_f32(grad_w.dtype, grad_w.data, c * RS + t0, vals.data(), t1 - t0);
    }
  });
}

}  // namespace aicc::cpu
