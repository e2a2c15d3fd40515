#include "cpu/conv/depthwise_conv2d.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/config/registry.h"
#include "cpu/gemm/gemm_driver.h"
#include "common/half.h"
#include "common/thread_pool.h"

#define AICC_DW_VL 4
#include "cpu/conv/depthwise_kernels_impl.h"

namespace aicc::cpu {
namespace {

template <DType T>
float load(const void* p, int64_t i) {
  if constexpr (T == DType::kF16) return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
  else if constexpr (T == DType::kBF16) return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
  else return static_cast<const float*>(p)[i];
}

float load_any(DType t, const void* p, int64_t i) {
  return t == DType::kF16 ? load<DType::kF16>(p, i) : t == DType::kBF16 ? load<DType::kBF16>(p, i)
                                                                          : load<DType::kF32>(p, i);
}

inline float relu(float y) { return y > 0.0f ? y : (std::isnan(y) ? y : 0.0f); }

template <DType T>
void row_nchw_portable(const void* const* rows, const float* w, int R, int S, int64_t Q, int64_t W, int64_t stride,
                       int64_t dil, int64_t pad_left, float bias, bool do_relu, float* dst) {
  for (int64_t q = 0; q < Q; ++q) {
    float acc = 0.0f;
    for (int r = 0; r < R; ++r) {
      if (!rows[r]) continue;
      for (int s = 0; s < S; ++s) {
        const int64_t col = q * stride + s * dil - pad_left;
        if (col >= 0 && col < W) acc += load<T>(rows[r], col) * w[r * S + s];
      }
    }
    acc += bias;
    dst[q] = do_relu ? relu(acc) : acc;
  }
}

void store_row(DType t, void* out, int64_t base, const float* src, int64_t n, Activation a) {
  for (int64_t i = 0; i < n; ++i) {
    float y = src[i];
    if (a == Activation::kGelu) y = std::isinf(y) && y < 0 ? 0.0f : 0.5f * y * (1.0f + std::erf(y * 0.70710678118654752f));
    if (t == DType::kF16) static_cast<uint16_t*>(out)[base + i] = f32_to_f16(y);
    else if (t == DType::kBF16) static_cast<uint16_t*>(out)[base + i] = f32_to_bf16(y);
    else static_cast<float*>(out)[base + i] = y;
  }
}

// NCHW rows per fused-epilogue call: up to kFusedNchwFloats outputs (16 KiB of f32, L1), at
// least one row, at most the plane.
constexpr int64_t kFusedNchwFloats = 4096;
int64_t nchw_fused_rows(int64_t P, int64_t Q) {
  return std::max<int64_t>(1, std::min<int64_t>(P, kFusedNchwFloats / std::max<int64_t>(Q, 1)));
}

}  // namespace

// The registry's choice (csrc/cpu/config: the first depthwise entry the CPU's active features allow).
const DepthwiseOps& depthwise_ops(DType t) { return registry::select(registry::families().depthwise).impl(t); }

const DepthwiseOps& depthwise_ops_portable(DType t) {
  static const DepthwiseOps f32 = dwk::float_ops<float>(row_nchw_portable<DType::kF32>);
  static const DepthwiseOps f16 = dwk::float_ops<dwk::F16>(row_nchw_portable<DType::kF16>);
  static const DepthwiseOps bf16 = dwk::float_ops<dwk::BF16>(row_nchw_portable<DType::kBF16>);
  static const DepthwiseOps u8 = dwk::int8_ops<uint8_t>();
  static const DepthwiseOps s8 = dwk::int8_ops<int8_t>();
  switch (t) {
    case DType::kF16: return f16;
    case DType::kBF16: return bf16;
    case DType::kU8: return u8;
    case DType::kS8: return s8;
    default: return f32;
  }
}

void depthwise_interior(int64_t Q, int64_t W, int64_t S, int64_t stride, int64_t dil, int64_t pad, int64_t* lo,
                        int64_t* hi) {
  // q*stride - pad >= 0 and q*stride - pad + (S-1)*dil <= W - 1 (pad may be negative).
  const auto ceil_div = [](int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); };
  const auto floor_div = [](int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); };
  *lo = std::min(Q, std::max<int64_t>(0, ceil_div(pad, stride)));
  *hi = std::max(*lo, std::min(Q, floor_div(W - 1 + pad - (S - 1) * dil, stride) + 1));
}

void depthwise_split_weights(DType w_dtype, const void* w, int64_t C, int64_t RS, float* out) {
  const int64_t row = depthwise_split_row(C), half = kDepthwiseSplit / 2;
  std::fill(out, out + RS * row, 0.0f);
  for (int64_t c = 0; c < C; ++c) {
    const int64_t in_block = c % kDepthwiseSplit;
    const int64_t at = c - in_block + (in_block % 2) * half + in_block / 2;
    for (int64_t t = 0; t < RS; ++t) out[t * row + at] = load_any(w_dtype, w, c * RS + t);
  }
}

std::vector<float> depthwise_tap_rows(DType w_dtype, const void* w, int64_t C, int64_t RS, bool split) {
  std::vector<float> rows(static_cast<size_t>(RS * (split ? depthwise_split_row(C) : C)));
  if (split) {
    depthwise_split_weights(w_dtype, w, C, RS, rows.data());
  } else {
    for (int64_t c = 0; c < C; ++c)
      for (int64_t t = 0; t < RS; ++t) rows[t * C + c] = load_any(w_dtype, w, c * RS + t);
  }
  return rows;
}

int64_t depthwise_workspace_bytes(const Conv2dDesc& d) {
  // f32 weights (transposed to [R*S][C] for NHWC) and one f32 output row per thread (NCHW:
  // nchw_fused_rows rows, at most, plus the H*W f32 plane a 16-bit input is widened into for
  // the AVX-512 plane kernel; the largest case is reported).
  const int64_t row = d.layout == Layout::kNHWC ? d.q() * d.c : nchw_fused_rows(d.p(), d.q()) * d.q() + d.h * d.w;
  return (d.c * d.r * d.s + row * get_num_threads()) * static_cast<int64_t>(sizeof(float));
}

void depthwise_conv2d(const Conv2dDesc& d, const TensorView& x, const TensorView& w, const float* bias_in,
                      Activation activation, const TensorView& out, const float* scale,
                      const TensorView* residual) {
  const DepthwiseOps& ops = depthwise_ops(x.dtype);
  // Fused scale / residual: the primitives produce the bare sums (no bias, no relu) in the
  // thread's row buffer and the GEMM tile epilogue finishes the row into out, so the order
  // of operations and the rounding are exactly the dense convs'.
  const bool fused = scale != nullptr || residual != nullptr;
  const gemm_internal::EpilogueFn finish =
      fused ? gemm_internal::float_gemm_config(x.dtype, x.dtype).epilogue : nullptr;
  const float* bias = fused ? nullptr : bias_in;
  const auto out_row = [&](int64_t base, int64_t rows, int64_t cols) {
    gemm_internal::Epilogue ep;
    ep.out = MatrixView{static_cast<char*>(out.data) + base * static_cast<int64_t>(dtype_size(out.dtype)),
                        out.dtype, rows, cols, cols, 1};
    if (residual)
      ep.residual = MatrixView{static_cast<char*>(residual->data) + base * static_cast<int64_t>(dtype_size(residual->dtype)),
                               residual->dtype, rows, cols, cols, 1};
    ep.activation = activation;
    return ep;
  };
  const int64_t C = d.c, P = d.p(), Q = d.q(), RS = d.r * d.s;
  const int64_t xsize = static_cast<int64_t>(dtype_size(x.dtype));
  const char* xb = static_cast<const char*>(x.data);
  const int threads = get_num_threads();
  const bool relu_fused = activation == Activation::kRelu && !fused;
  // f32 output without gelu: the primitive writes straight into out.
  const bool direct = out.dtype == DType::kF32 && activation != Activation::kGelu && !fused;
  // bf16 (f16) output of the input's dtype: a primitive that rounds in registers writes out.
  const bool direct_round = !direct && ops.accum_pixels_round != nullptr && out.dtype == x.dtype &&
                            activation != Activation::kGelu && !fused;
  if (d.layout == Layout::kNHWC) {
    // [R*S][C], or the split rows of accum_pixels_round.
    const int64_t wrow = direct_round ? depthwise_split_row(C) : C;
    const std::vector<float> wt = depthwise_tap_rows(w.dtype, w.data, C, RS, direct_round);
    int64_t q_lo, q_hi;
    depthwise_interior(Q, d.w, d.s, d.stride_w, d.dilation_w, d.pad_left, &q_lo, &q_hi);
    std::vector<float> rows(static_cast<size_t>(Q * C * threads));
    // One task per output row: the interior columns (every tap inside the input) in one call
    // whose tap pattern is the row's valid kernel rows x all columns; the border columns one
    // pixel at a time with their own clipped taps.
    // The ISA's whole-row kernel where it has one for this kernel size (out in x's dtype).
    const bool rows_kernel = ops.forward_rows != nullptr && ((direct && x.dtype == DType::kF32) || direct_round) &&
                             ops.forward_rows(d, x.data, wt.data(), wrow, bias, relu_fused, 0, 0, out.data);
    if (rows_kernel) {
      // Runs of output rows per task (at most an image's, at least 4 tasks per thread), so the
      // kernel can keep a channel block's weights in registers across several rows and walk
      // the rows inside the block while their input is in cache. Each pixel's sum is the same
      // whatever run it falls in.
      const int64_t total = d.n * P;
      const int64_t chunk = std::clamp<int64_t>(total / (4 * static_cast<int64_t>(threads)), 1, std::max<int64_t>(P, 1));
      parallel_for((total + chunk - 1) / chunk, [&](int64_t t, int) {
        ops.forward_rows(d, x.data, wt.data(), wrow, bias, relu_fused, t * chunk, std::min(total, (t + 1) * chunk),
                         out.data);
      }, threads);
      return;
    }
    parallel_for(d.n * P, [&](int64_t np, int thread) {
      const int64_t n = np / P, p = np % P;
      std::vector<const void*> xt(static_cast<size_t>(RS));
      std::vector<const float*> wp(static_cast<size_t>(RS));
      const int64_t base = (n * P + p) * Q * C;
      float* dst = direct ? static_cast<float*>(out.data) + base : rows.data() + thread * Q * C;
      const auto taps = [&](int64_t q, bool clip_columns) {
        int ntaps = 0;
        for (int64_t r = 0; r < d.r; ++r) {
          const int64_t h = p * d.stride_h - d.pad_top + r * d.dilation_h;
          if (h < 0 || h >= d.h) continue;
          for (int64_t s = 0; s < d.s; ++s) {
            const int64_t wi = q * d.stride_w - d.pad_left + s * d.dilation_w;
            if (clip_columns && (wi < 0 || wi >= d.w)) continue;
            xt[ntaps] = xb + ((n * d.h + h) * d.w + wi) * C * xsize;
            wp[ntaps++] = wt.data() + (r * d.s + s) * wrow;
          }
        }
        return ntaps;
      };
      char* const out_bytes = static_cast<char*>(out.data) + base * xsize;
      const auto accum = [&](int nt, int64_t step, int64_t npix, int64_t q) {
        if (direct_round)
          ops.accum_pixels_round(xt.data(), wp.data(), nt, step, npix, C, bias, relu_fused, out_bytes + q * C * xsize, C);
        else
          ops.accum_pixels(xt.data(), wp.data(), nt, step, npix, C, bias, relu_fused, dst + q * C, C);
      };
      for (int64_t q = 0; q < Q; ++q) {
        if (q == q_lo && q_hi > q_lo) {
          accum(taps(q_lo, false), d.stride_w * C, q_hi - q_lo, q_lo);
          q = q_hi - 1;
          continue;
        }
        accum(taps(q, true), 0, 1, q);
      }
      if (direct || direct_round) return;
      if (fused) {
        gemm_internal::Epilogue ep = out_row(base, Q, C);
        ep.bias = bias_in;
        ep.scale = scale;
        finish(ep, dst, C, 0, 0, static_cast<int>(Q), static_cast<int>(C));
      } else if (activation != Activation::kGelu && out.dtype == x.dtype)
        ops.store_row(dst, Q * C, static_cast<char*>(out.data) + base * xsize);
      else
        store_row(out.dtype, out.data, base, dst, Q * C, activation);
    }, threads);
    return;
  }
  // NCHW: one task per (image, channel) plane, one output row at a time.
  std::vector<float> wf(static_cast<size_t>(C * RS));
  for (int64_t i = 0; i < C * RS; ++i) wf[i] = load_any(w.dtype, w.data, i);
  // Fused epilogue: consecutive rows of a plane are contiguous in out, so `group` of them are
  // finished by one epilogue call (a call per 7..56-column row cost more than the epilogue).
  const bool plane_kernel = ops.forward_rows_nchw != nullptr;
  const int64_t group = fused || plane_kernel ? nchw_fused_rows(P, Q) : 1;
  std::vector<float> rows(static_cast<size_t>(group * Q * threads));
  // The ISA's plane kernel (rows of output in registers, borders masked) where it has one:
  // whole planes straight into out (f32, or bf16 rounded in registers), otherwise `group` rows
  // at a time into the row buffer and the epilogue / rounding below. 16-bit inputs are widened
  // into a per-thread window of H*W floats.
  std::vector<float> widened(plane_kernel && xsize == 2 ? static_cast<size_t>(d.h * d.w * threads) : 0);
  parallel_for(d.n * C, [&](int64_t nc, int thread) {
    const int64_t c = nc % C;
    const char* plane = xb + nc * d.h * d.w * xsize;
    if (plane_kernel) {
      const int64_t osize = static_cast<int64_t>(dtype_size(out.dtype));  // f32 (direct) or x's (direct_round)
      float* const ws = widened.empty() ? nullptr : widened.data() + thread * d.h * d.w;
      const float b = bias ? bias[c] : 0.0f;
      if (direct || direct_round) {
        if (ops.forward_rows_nchw(d, plane, wf.data() + c * RS, b, relu_fused, 0, P,
                                  static_cast<char*>(out.data) + nc * P * Q * osize, direct_round, ws))
          return;
      } else {
        // Epilogue, gelu or another out dtype: `group` rows into the row buffer, then finished
        // as the per-row path below finishes its rows (one call per group).
        float* const buf = rows.data() + thread * group * Q;
        bool done = true;
        for (int64_t p0 = 0; p0 < P && done; p0 += group) {
          const int64_t p1 = std::min(P, p0 + group), base = (nc * P + p0) * Q, n_elems = (p1 - p0) * Q;
          done = ops.forward_rows_nchw(d, plane, wf.data() + c * RS, b, relu_fused, p0, p1, buf, false, ws);
          if (!done) break;  // the kernel size decides: false on the first group or never
          if (fused) {
            gemm_internal::Epilogue ep = out_row(base, 1, n_elems);
            ep.bias = bias_in ? bias_in + c : nullptr;
            ep.scale = scale ? scale + c : nullptr;
            ep.bias_per_row = true;
            finish(ep, buf, n_elems, 0, 0, 1, static_cast<int>(n_elems));
          } else if (activation != Activation::kGelu && out.dtype == x.dtype) {
            ops.store_row(buf, n_elems, static_cast<char*>(out.data) + base * xsize);
          } else {
            store_row(out.dtype, out.data, base, buf, n_elems, activation);
          }
        }
        if (done) return;
      }
    }
    std::vector<const void*> xr(static_cast<size_t>(d.r));
    for (int64_t p = 0; p < P; ++p) {
      for (int64_t r = 0; r < d.r; ++r) {
        const int64_t h = p * d.stride_h - d.pad_top + r * d.dilation_h;
        xr[r] = (h < 0 || h >= d.h) ? nullptr : plane + h * d.w * xsize;
      }
      const int64_t base = (nc * P + p) * Q;
      float* const buf = rows.data() + thread * group * Q;
      float* dst = direct ? static_cast<float*>(out.data) + base : buf + (p % group) * Q;
      ops.row_nchw(xr.data(), wf.data() + c * RS, static_cast<int>(d.r), static_cast<int>(d.s), Q, d.w, d.stride_w,
                   d.dilation_w, d.pad_left, bias ? bias[c] : 0.0f, relu_fused, dst);
      if (direct) continue;
      if (fused) {
        if ((p + 1) % group != 0 && p + 1 != P) continue;
        const int64_t p0 = p - p % group, n_elems = (p - p0 + 1) * Q;
        gemm_internal::Epilogue ep = out_row((nc * P + p0) * Q, 1, n_elems);
        ep.bias = bias_in ? bias_in + c : nullptr;
        ep.scale = scale ? scale + c : nullptr;
        ep.bias_per_row = true;
        finish(ep, buf, n_elems, 0, 0, 1, static_cast<int>(n_elems));
      } else if (activation != Activation::kGelu && out.dtype == x.dtype)
        ops.store_row(dst, Q, static_cast<char*>(out.data) + base * xsize);
      else
        store_row(out.dtype, out.data, base, dst, Q, activation);
    }
  }, threads);
}

}  // namespace aicc::cpu
