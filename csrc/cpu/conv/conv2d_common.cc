#include "cpu/conv/conv2d_common.h"

#include <algorithm>
#include <utility>
#include <vector>
#include <cstring>
#include <string>

#include "aicc/status.h"
#include "common/thread_pool.h"
#include "cpu/config/registry.h"

namespace aicc::cpu::conv {
namespace {

std::string dims_str(const int64_t* v, int n) {
  std::string s = "(";
  for (int i = 0; i < n; ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + ")";
}

// Elements per parallel task of the copy loops: big enough to amortize scheduling.
constexpr int64_t kCopyGrain = 1 << 14;

}  // namespace

void x_dims(const Conv2dDesc& d, int64_t o[4]) {
  const int64_t a[4] = {d.n, d.c, d.h, d.w}, b[4] = {d.n, d.h, d.w, d.c};
  std::memcpy(o, d.layout == Layout::kNCHW ? a : b, sizeof a);
}
void w_dims(const Conv2dDesc& d, int64_t o[4]) {
  const int64_t cg = d.groups > 0 ? d.c / d.groups : 0;
  const int64_t a[4] = {d.k, cg, d.r, d.s}, b[4] = {d.k, d.r, d.s, cg};
  std::memcpy(o, d.layout == Layout::kNCHW ? a : b, sizeof a);
}
void y_dims(const Conv2dDesc& d, int64_t o[4]) {
  const int64_t a[4] = {d.n, d.k, d.p(), d.q()}, b[4] = {d.n, d.p(), d.q(), d.k};
  std::memcpy(o, d.layout == Layout::kNCHW ? a : b, sizeof a);
}

void check_desc(const Conv2dDesc& d) {
  if (d.layout != Layout::kNCHW && d.layout != Layout::kNHWC)
    throw_invalid("layout", "NCHW or NHWC", std::to_string(static_cast<int>(d.layout)));
  if (d.n < 0 || d.c < 0 || d.h < 0 || d.w < 0 || d.k < 0)
    throw_invalid("x", "non-negative sizes", "a negative size");
  if (d.r < 1 || d.s < 1) throw_invalid("w", "a kernel of at least 1x1", std::to_string(d.r) + "x" + std::to_string(d.s));
  if (d.stride_h < 1 || d.stride_w < 1) throw_invalid("stride", "integers >= 1", std::to_string(std::min(d.stride_h, d.stride_w)));
  if (d.dilation_h < 1 || d.dilation_w < 1)
    throw_invalid("dilation", "integers >= 1", std::to_string(std::min(d.dilation_h, d.dilation_w)));
  if (std::min({d.pad_top, d.pad_bottom, d.pad_left, d.pad_right}) < 0)
    throw_invalid("padding", "non-negative values", "a negative padding");
  if (d.groups < 1 || d.c % d.groups || d.k % d.groups)
    throw_invalid("groups", "a divisor of C=" + std::to_string(d.c) + " and K=" + std::to_string(d.k),
                  std::to_string(d.groups));
  const int64_t eff_r = d.dilation_h * (d.r - 1) + 1, eff_s = d.dilation_w * (d.s - 1) + 1;
  if (d.h + d.pad_top + d.pad_bottom < eff_r || d.w + d.pad_left + d.pad_right < eff_s)
    throw_invalid("w", "a (dilated) kernel no larger than the padded input",
                  std::to_string(eff_r) + "x" + std::to_string(eff_s));
}

void check_tensor(const TensorView& t, const char* name, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                  bool output) {
  const int64_t want[4] = {d0, d1, d2, d3};
  if (t.ndim != 4 || t.shape[0] != d0 || t.shape[1] != d1 || t.shape[2] != d2 || t.shape[3] != d3)
    throw_invalid(name, "shape " + dims_str(want, 4), dims_str(t.shape, t.ndim));
  if (!t.is_contiguous()) throw_invalid(name, "a C-contiguous array", "a strided view");
  if (t.numel() > 0 && t.data == nullptr) throw_invalid(name, "a non-null pointer", "nullptr");
  (void)output;
}

bool is_pointwise(const Conv2dDesc& d) {
  return d.r == 1 && d.s == 1 && d.stride_h == 1 && d.stride_w == 1 && d.pad_top == 0 && d.pad_bottom == 0 &&
         d.pad_left == 0 && d.pad_right == 0;
}

bool is_depthwise(const Conv2dDesc& d) { return d.groups > 1 && d.groups == d.c && d.groups == d.k; }

int64_t chunk_pixels(const Conv2dDesc& d) {
  const int64_t depth = d.cg() * d.r * d.s;
  const int64_t pixels = d.layout == Layout::kNCHW ? d.p() * d.q() : d.n * d.p() * d.q();
  const int64_t out_elems = d.n * d.k * d.p() * d.q();
  // Beyond ~4 MiB of f32 columns a larger chunk no longer speeds the GEMM up.
  const int64_t budget = std::min<int64_t>(out_elems, int64_t{1} << 20);
  return std::max<int64_t>(1, std::min(pixels, budget / std::max<int64_t>(depth, 1)));
}

namespace {

template <typename T>
void im2col_nhwc(const Conv2dDesc& d, const T* x, T pad, int64_t g, int64_t m0, int64_t mc, T* col) {
  const int64_t P = d.p(), Q = d.q(), cg = d.cg(), row = d.r * d.s * cg;
  // One group, unit column dilation: a filter row's taps are contiguous (small-C convs such as
  // the stem copy R runs of S*C elements per pixel instead of R*S runs of C).
  const bool runs = d.groups == 1 && d.dilation_w == 1 && d.s > 1;
  const int64_t rows_per_task = std::max<int64_t>(1, kCopyGrain / std::max<int64_t>(row, 1));
  parallel_for((mc + rows_per_task - 1) / rows_per_task, [&](int64_t task, int) {
    const int64_t j1 = std::min(mc, (task + 1) * rows_per_task);
    for (int64_t j = task * rows_per_task; j < j1; ++j) {
      const int64_t m = m0 + j, n = m / (P * Q), p = (m / Q) % P, q = m % Q;
      T* dst = col + j * row;
      if (runs) {
        // The S taps of one filter row are one run of S*C elements in the input.
        const int64_t w0 = q * d.stride_w - d.pad_left;
        const int64_t s_lo = std::clamp<int64_t>(-w0, 0, d.s), s_hi = std::clamp<int64_t>(d.w - w0, s_lo, d.s);
        for (int64_t r = 0; r < d.r; ++r, dst += d.s * cg) {
          const int64_t h = p * d.stride_h - d.pad_top + r * d.dilation_h;
          if (h < 0 || h >= d.h) {
            std::fill(dst, dst + d.s * cg, pad);
            continue;
          }
          std::fill(dst, dst + s_lo * cg, pad);
          std::memcpy(dst + s_lo * cg, x + ((n * d.h + h) * d.w + w0 + s_lo) * d.c, (s_hi - s_lo) * cg * sizeof(T));
          std::fill(dst + s_hi * cg, dst + d.s * cg, pad);
        }
        continue;
      }
      for (int64_t r = 0; r < d.r; ++r) {
        const int64_t h = p * d.stride_h - d.pad_top + r * d.dilation_h;
        for (int64_t s = 0; s < d.s; ++s, dst += cg) {
          const int64_t w = q * d.stride_w - d.pad_left + s * d.dilation_w;
          if (h < 0 || h >= d.h || w < 0 || w >= d.w) {
            std::fill(dst, dst + cg, pad);
          } else {
            std::memcpy(dst, x + ((n * d.h + h) * d.w + w) * d.c + g * cg, cg * sizeof(T));
          }
        }
      }
    }
  });
}

template <typename T>
void im2col_rows_nchw_t(const Conv2dDesc& d, const T* x, T pad, int64_t n, int64_t g, int64_t m0, int64_t mc, T* col) {
  const int64_t Q = d.q(), cg = d.cg(), row = d.r * d.s * cg;
  const int64_t rows_per_task = std::max<int64_t>(1, kCopyGrain / std::max<int64_t>(row, 1));
  parallel_for((mc + rows_per_task - 1) / rows_per_task, [&](int64_t task, int) {
    const int64_t j1 = std::min(mc, (task + 1) * rows_per_task);
    for (int64_t j = task * rows_per_task; j < j1; ++j) {
      const int64_t m = m0 + j, p = m / Q, q = m % Q;
      const int64_t w0 = q * d.stride_w - d.pad_left;
      // Taps [s_lo, s_hi) of a filter row are inside the input columns (dilation 1).
      const int64_t s_lo = std::clamp<int64_t>(-w0, 0, d.s), s_hi = std::clamp<int64_t>(d.w - w0, s_lo, d.s);
      T* dst = col + j * row;
      for (int64_t c = 0; c < cg; ++c) {
        const T* plane = x + (n * d.c + g * cg + c) * d.h * d.w;
        for (int64_t r = 0; r < d.r; ++r, dst += d.s) {
          const int64_t h = p * d.stride_h - d.pad_top + r * d.dilation_h;
          if (h < 0 || h >= d.h) {
            std::fill(dst, dst + d.s, pad);
          } else if (d.dilation_w == 1) {
            std::fill(dst, dst + s_lo, pad);
            std::memcpy(dst + s_lo, plane + h * d.w + w0 + s_lo, (s_hi - s_lo) * sizeof(T));
            std::fill(dst + s_hi, dst + d.s, pad);
          } else {
            for (int64_t s = 0; s < d.s; ++s) {
              const int64_t w = w0 + s * d.dilation_w;
              dst[s] = (w >= 0 && w < d.w) ? plane[h * d.w + w] : pad;
            }
          }
        }
      }
    }
  });
}

template <typename T>
void block_nhwc(const Conv2dDesc& d, const T* x, T pad, int64_t g, int64_t m0, int64_t mc, int64_t p0, int64_t kc,
                T* col) {
  const int64_t P = d.p(), Q = d.q(), cg = d.cg();
  // One group, unit column dilation: the taps of a filter row are one run of S*C input elements
  // (clipped at the left/right padding), copied at once instead of tap by tap.
  const bool runs = d.groups == 1 && d.dilation_w == 1 && d.s > 1;
  const int64_t rowlen = d.s * cg;
  for (int64_t j = 0; j < mc; ++j) {
    const int64_t m = m0 + j, n = m / (P * Q), p = (m / Q) % P, q = m % Q;
    T* dst = col + j * kc;
    int64_t k = p0;
    if (runs) {
      const int64_t w0 = q * d.stride_w - d.pad_left;
      // Valid part of every filter row, as element offsets inside the row: [lo, hi).
      const int64_t lo = std::clamp<int64_t>(-w0, 0, d.s) * cg, hi = std::max(lo, std::clamp<int64_t>(d.w - w0, 0, d.s) * cg);
      while (k < p0 + kc) {
        const int64_t r = k / rowlen, e = k % rowlen;
        const int64_t h = p * d.stride_h - d.pad_top + r * d.dilation_h;
        const int64_t row_end = std::min(rowlen, e + p0 + kc - k);  // this block's part of row r
        int64_t len;
        if (h < 0 || h >= d.h) {
          len = row_end - e;
          std::fill(dst, dst + len, pad);
        } else if (e < lo) {
          len = std::min(lo, row_end) - e;
          std::fill(dst, dst + len, pad);
        } else if (e < hi) {
          len = std::min(hi, row_end) - e;
          std::memcpy(dst, x + ((n * d.h + h) * d.w + w0) * d.c + e, len * sizeof(T));
        } else {
          len = row_end - e;
          std::fill(dst, dst + len, pad);
        }
        dst += len;
        k += len;
      }
      continue;
    }
    while (k < p0 + kc) {
      const int64_t tap = k / cg, c = k % cg, len = std::min(cg - c, p0 + kc - k);
      const int64_t r = tap / d.s, s = tap % d.s;
      const int64_t h = p * d.stride_h - d.pad_top + r * d.dilation_h;
      const int64_t w = q * d.stride_w - d.pad_left + s * d.dilation_w;
      if (h < 0 || h >= d.h || w < 0 || w >= d.w) std::fill(dst, dst + len, pad);
      else std::memcpy(dst, x + ((n * d.h + h) * d.w + w) * d.c + g * cg + c, len * sizeof(T));
      dst += len;
      k += len;
    }
  }
}

// Per tap column s of an NCHW gather: the output columns [first[s], second[s]) whose input
// column lies inside the row; the ones left and right of them read padding. A per-thread
// table, rebuilt on each call.
const std::pair<std::vector<int64_t>, std::vector<int64_t>>& tap_column_bounds(const Conv2dDesc& d) {
  thread_local std::pair<std::vector<int64_t>, std::vector<int64_t>> b;
  b.first.resize(static_cast<size_t>(d.s));
  b.second.resize(static_cast<size_t>(d.s));
  const int64_t sw = d.stride_w;
  for (int64_t ts = 0; ts < d.s; ++ts) {
    const int64_t off = ts * d.dilation_w - d.pad_left;
    b.first[static_cast<size_t>(ts)] = std::max<int64_t>(0, (-off + sw - 1) / sw);
    b.second[static_cast<size_t>(ts)] = d.w - off <= 0 ? 0 : (d.w - off + sw - 1) / sw;
  }
  return b;
}

// NCHW column block, depth-major: element (t, j) (depth p0 + t, pixel m0 + j) at
// col[t * ldc + j], or, with panel_nr > 0, in the GEMM's f32 B-panel layout: panel j / panel_nr,
// row t, lane j % panel_nr (col[(j / panel_nr) * panel_nr * kc + t * panel_nr + j % panel_nr]).
template <typename T>
void block_nchw(const Conv2dDesc& d, const T* x, T pad, int64_t n, int64_t g, int64_t m0, int64_t mc, int64_t p0,
                int64_t kc, T* col, int64_t ldc, int64_t panel_nr = 0, int64_t j_off = 0) {
  // The block's pixels split into runs along output rows (and panels); the runs are the same
  // for every depth row, so they are found once, the depth rows' (c, r, s) step without
  // divisions, and the in-row column range of each s is computed once. (Per depth row and
  // run, divisions and library calls cost as much as the copies themselves on B panels.)
  struct Run {
    int64_t dst, len, p, q0;
  };
  thread_local std::vector<Run> runs;
  runs.clear();
  const int64_t Q = d.q(), cg = d.cg();
  for (int64_t j = 0; j < mc;) {
    const int64_t m = m0 + j, q0 = m % Q;
    int64_t len = std::min(mc - j, Q - q0), dst = j;
    if (panel_nr > 0) {
      const int64_t jj = j + j_off;  // the pixel's column in the panels
      len = std::min(len, panel_nr - jj % panel_nr);
      dst = jj / panel_nr * panel_nr * kc + jj % panel_nr;
    }
    runs.push_back(Run{dst, len, m / Q, q0});
    j += len;
  }
  const int64_t row_step = panel_nr > 0 ? panel_nr : ldc;
  const int64_t sw = d.stride_w;
  const auto& bounds = tap_column_bounds(d);
  const std::vector<int64_t>& lo_s = bounds.first;
  const std::vector<int64_t>& hi_s = bounds.second;
  int64_t c = p0 / (d.r * d.s), r = (p0 / d.s) % d.r, s = p0 % d.s;
  for (int64_t t = 0; t < kc; ++t) {
    const T* plane = x + (n * d.c + g * cg + c) * d.h * d.w;
    T* dst = col + t * row_step;
    const int64_t off = s * d.dilation_w - d.pad_left, lo_all = lo_s[s], hi_all = hi_s[s];
    for (const Run& run : runs) {
      T* out = dst + run.dst - run.q0;  // out[q] for output column q of the run
      const int64_t q1 = run.q0 + run.len;
      const int64_t h = run.p * d.stride_h - d.pad_top + r * d.dilation_h;
      if (h < 0 || h >= d.h) {
        for (int64_t q = run.q0; q < q1; ++q) out[q] = pad;
        continue;
      }
      const T* src = plane + h * d.w + off;
      const int64_t lo = std::min(q1, std::max(run.q0, lo_all)), hi = std::max(lo, std::min(q1, hi_all));
      for (int64_t q = run.q0; q < lo; ++q) out[q] = pad;
      if (sw == 1) {
        for (int64_t q = lo; q < hi; ++q) out[q] = src[q];
      } else {
        for (int64_t q = lo; q < hi; ++q) out[q] = src[q * sw];
      }
      for (int64_t q = hi; q < q1; ++q) out[q] = pad;
    }
    if (++s == d.s) {
      s = 0;
      if (++r == d.r) r = 0, ++c;
    }
  }
}

// The same block as bf16 pair words straight in the GEMM's B-panel layout (gemm_driver.h,
// kBF16Pair): word (q, j) of panel j / nr holds depth rows p0 + 2q (low half) and p0 + 2q + 1
// (high half, +0 past kc) of pixel j, at dst[(j / nr) * nr * kw + q * nr + j % nr]; pixel j
// of the block is panel column j + j_off. Replaces an im2col of bf16 elements into a staging
// tile and a second pass that interleaved its rows into pairs (together a fifth to a third of
// an NCHW bf16 3x3 conv, perf). Two passes over each 32-word run, in L1: the low halves are
// written (as zero-extended words), then the high halves or'ed in; each pass is a padding run,
// a copy and a padding run, loops the compiler vectorizes.
void block_nchw_pairs(const Conv2dDesc& d, const uint16_t* x, int64_t n, int64_t g, int64_t m0, int64_t mc,
                      int64_t p0, int64_t kc, int64_t nr, uint32_t* dst, int64_t j_off) {
  struct Run {
    int64_t dst, len, p, q0;
  };
  thread_local std::vector<Run> runs;
  runs.clear();
  const int64_t Q = d.q(), cg = d.cg(), kw = (kc + 1) / 2;
  for (int64_t j = 0; j < mc;) {
    const int64_t m = m0 + j, q0 = m % Q, jj = j + j_off;
    const int64_t len = std::min({mc - j, Q - q0, nr - jj % nr});
    runs.push_back(Run{jj / nr * nr * kw + jj % nr, len, m / Q, q0});
    j += len;
  }
  const int64_t sw = d.stride_w;
  const auto& bounds = tap_column_bounds(d);
  const std::vector<int64_t>& lo_s = bounds.first;
  const std::vector<int64_t>& hi_s = bounds.second;
  int64_t c = p0 / (d.r * d.s), r = (p0 / d.s) % d.r, s = p0 % d.s;
  for (int64_t t = 0; t < kc; ++t) {
    const bool high = t % 2 == 1;
    const uint16_t* plane = x + (n * d.c + g * cg + c) * d.h * d.w;
    uint32_t* row = dst + t / 2 * nr;
    const int64_t off = s * d.dilation_w - d.pad_left, lo_all = lo_s[s], hi_all = hi_s[s];
    for (const Run& run : runs) {
      uint32_t* out = row + run.dst - run.q0;  // out[q] for output column q of the run
      const int64_t q1 = run.q0 + run.len;
      const int64_t h = run.p * d.stride_h - d.pad_top + r * d.dilation_h;
      int64_t lo = q1, hi = q1;  // [lo, hi): columns read inside the input row
      const uint16_t* src = nullptr;
      if (h >= 0 && h < d.h) {
        src = plane + h * d.w + off;
        lo = std::min(q1, std::max(run.q0, lo_all));
        hi = std::max(lo, std::min(q1, hi_all));
      }
      if (!high) {  // low halves; the padding is +0.0 in both halves
        for (int64_t q = run.q0; q < lo; ++q) out[q] = 0u;
        if (sw == 1) {
          for (int64_t q = lo; q < hi; ++q) out[q] = src[q];
        } else {
          for (int64_t q = lo; q < hi; ++q) out[q] = src[q * sw];
        }
        for (int64_t q = hi; q < q1; ++q) out[q] = 0u;
      } else if (sw == 1) {  // or the high halves in (padding: nothing to add)
        for (int64_t q = lo; q < hi; ++q) out[q] |= static_cast<uint32_t>(src[q]) << 16;
      } else {
        for (int64_t q = lo; q < hi; ++q) out[q] |= static_cast<uint32_t>(src[q * sw]) << 16;
      }
    }
    if (++s == d.s) {
      s = 0;
      if (++r == d.r) r = 0, ++c;
    }
  }
}

}  // namespace

void im2col_block(const Conv2dDesc& d, const void* x, int esize, uint32_t pad, int64_t n, int64_t g, int64_t m0,
                  int64_t mc, int64_t p0, int64_t kc, void* col, int64_t ldc) {
  const bool nhwc = d.layout == Layout::kNHWC;
  if (ldc <= 0) ldc = mc;
  switch (esize) {
    case 1: {
      const auto v = static_cast<uint8_t>(pad);
      const auto* xs = static_cast<const uint8_t*>(x);
      auto* cs = static_cast<uint8_t*>(col);
      if (nhwc) block_nhwc(d, xs, v, g, m0, mc, p0, kc, cs); else block_nchw(d, xs, v, n, g, m0, mc, p0, kc, cs, ldc);
      break;
    }
    case 2: {
      const auto v = static_cast<uint16_t>(pad);
      const auto* xs = static_cast<const uint16_t*>(x);
      auto* cs = static_cast<uint16_t*>(col);
      if (nhwc) block_nhwc(d, xs, v, g, m0, mc, p0, kc, cs); else block_nchw(d, xs, v, n, g, m0, mc, p0, kc, cs, ldc);
      break;
    }
    default: {
      const auto* xs = static_cast<const uint32_t*>(x);
      auto* cs = static_cast<uint32_t*>(col);
      if (nhwc) block_nhwc(d, xs, pad, g, m0, mc, p0, kc, cs); else block_nchw(d, xs, pad, n, g, m0, mc, p0, kc, cs, ldc);
      break;
    }
  }
}

void im2col_panels_nchw_f32(const Conv2dDesc& d, const float* x, int64_t n, int64_t g, int64_t m0, int64_t mc,
                            int64_t p0, int64_t kc, int64_t nr, float* dst, int64_t j_off) {
  block_nchw(d, reinterpret_cast<const uint32_t*>(x), uint32_t{0}, n, g, m0, mc, p0, kc,
             reinterpret_cast<uint32_t*>(dst), 0, nr, j_off);
}

void im2col_panels_nchw_bf16pairs(const Conv2dDesc& d, const uint16_t* x, int64_t n, int64_t g, int64_t m0,
                                  int64_t mc, int64_t p0, int64_t kc, int64_t nr, uint32_t* dst, int64_t j_off) {
  block_nchw_pairs(d, x, n, g, m0, mc, p0, kc, nr, dst, j_off);
}

const NchwGatherOps& nchw_gather_ops_portable() {
  static const NchwGatherOps ops = {im2col_panels_nchw_f32, im2col_panels_nchw_bf16pairs};
  return ops;
}

const NchwGatherOps& nchw_gather_ops() { return *registry::select(registry::families().nchw_gather).impl; }

void im2col(const Conv2dDesc& d, const void* x, int esize, uint32_t pad, int64_t n, int64_t g, int64_t m0,
            int64_t mc, void* col) {
  const bool nhwc = d.layout == Layout::kNHWC;
  switch (esize) {
    case 1: {
      const auto v = static_cast<uint8_t>(pad);
      if (nhwc) im2col_nhwc(d, static_cast<const uint8_t*>(x), v, g, m0, mc, static_cast<uint8_t*>(col));
      else im2col_rows_nchw_t(d, static_cast<const uint8_t*>(x), v, n, g, m0, mc, static_cast<uint8_t*>(col));
      break;
    }
    case 2: {
      const auto v = static_cast<uint16_t>(pad);
      if (nhwc) im2col_nhwc(d, static_cast<const uint16_t*>(x), v, g, m0, mc, static_cast<uint16_t*>(col));
      else im2col_rows_nchw_t(d, static_cast<const uint16_t*>(x), v, n, g, m0, mc, static_cast<uint16_t*>(col));
      break;
    }
    default: {
      const uint32_t v = pad;
      if (nhwc) im2col_nhwc(d, static_cast<const uint32_t*>(x), v, g, m0, mc, static_cast<uint32_t*>(col));
      else im2col_rows_nchw_t(d, static_cast<const uint32_t*>(x), v, n, g, m0, mc, static_cast<uint32_t*>(col));
      break;
    }
  }
}

void col2im_add(const Conv2dDesc& d, const float* col, int64_t n, int64_t g, int64_t m0, int64_t mc,
                float* gx) {
  const int64_t P = d.p(), Q = d.q(), cg = d.cg();
  if (d.layout == Layout::kNHWC) {
    // Tasks own channel blocks; each walks every pixel and tap in order.
    const int64_t row = d.r * d.s * cg;
    const int64_t block = std::max<int64_t>(8, cg / 8);
    parallel_for((cg + block - 1) / block, [&](int64_t task, int) {
      const int64_t c0 = task * block, c1 = std::min(cg, c0 + block);
      for (int64_t j = 0; j < mc; ++j) {
        const int64_t m = m0 + j, nn = m / (P * Q), p = (m / Q) % P, q = m % Q;
        const float* src = col + j * row;
        for (int64_t r = 0; r < d.r; ++r) {
          const int64_t h = p * d.stride_h - d.pad_top + r * d.dilation_h;
          for (int64_t s = 0; s < d.s; ++s, src += cg) {
            const int64_t w = q * d.stride_w - d.pad_left + s * d.dilation_w;
            if (h < 0 || h >= d.h || w < 0 || w >= d.w) continue;
            float* dst = gx + ((nn * d.h + h) * d.w + w) * d.c + g * cg;
            for (int64_t c = c0; c < c1; ++c) dst[c] += src[c];
          }
        }
      }
    });
    return;
  }
  // NCHW: tasks own input channels.
  parallel_for(cg, [&](int64_t c, int) {
    float* plane = gx + (n * d.c + g * cg + c) * d.h * d.w;
    for (int64_t r = 0; r < d.r; ++r) {
      for (int64_t s = 0; s < d.s; ++s) {
        const float* src = col + ((c * d.r + r) * d.s + s) * mc;
        for (int64_t j = 0; j < mc; ++j) {
          const int64_t m = m0 + j, p = m / Q, q = m % Q;
          const int64_t h = p * d.stride_h - d.pad_top + r * d.dilation_h;
          const int64_t w = q * d.stride_w - d.pad_left + s * d.dilation_w;
          if (h >= 0 && h < d.h && w >= 0 && w < d.w) plane[h * d.w + w] += src[j];
        }
      }
    }
  });
}

}  // namespace aicc::cpu::conv
