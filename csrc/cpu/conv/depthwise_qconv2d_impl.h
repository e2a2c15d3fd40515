// The quantized depthwise conv kernel as a template, compiled once per ISA path
// (depthwise_qconv2d.cc portable, depthwise_qconv2d_avx2.cc with AVX2 so the int32 loops and
// the output stage vectorize). Exact int32 accumulation of (x - x_zero_point)(w - w_zero_point[c])
// + bias[c] over the taps inside the input (padded taps hold x_zero_point and contribute 0),
// then the qgemm output stage, bit for bit.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "aicc/conv.h"
#include "common/thread_pool.h"
#include "cpu/conv/depthwise_conv2d.h"

namespace aicc::cpu::dwq_detail {
// Internal linkage: each including file (compiled with its own ISA flags) keeps its own copy,
// so the linker can never hand the portable caller the AVX2 instantiation.
namespace {

// The qgemm output stage (aicc/gemm.h QGemmParams) over a row of n accumulators, written to
// out[base + i]; channel of element i: c0 + i * c_step (NHWC: the channels of one pixel,
// c_step 1; NCHW: one channel, c_step 0). Branch-free loops per output dtype so the compiler
// vectorizes them; every step is the reference's (f32 multiply, rint half-even, + zero point
// in f32 — exact, since |rint(v)| < 2^24 whenever the result is not saturated — clamp).
inline void output_row_residual(const QGemmParams& p, const QResidual& res, DType out, void* dst, int64_t base,
                                const int32_t* acc, int64_t n, int64_t c0, int64_t c_step);

inline void output_row(const QGemmParams& p, const QResidual* res, DType out, void* dst, int64_t base,
                       const int32_t* acc, int64_t n, int64_t c0, int64_t c_step) {
  if (res != nullptr) {
    output_row_residual(p, *res, out, dst, base, acc, n, c0, c_step);
    return;
  }
  const bool relu = p.activation == Activation::kRelu;
  if (out == DType::kS32) {
    int32_t* o = static_cast<int32_t*>(dst) + base;
    for (int64_t i = 0; i < n; ++i) o[i] = relu ? std::max(acc[i], 0) : acc[i];
    return;
  }
  const bool per_channel = p.scale_len != 1 && c_step != 0;
  const float* sc = p.scale + (p.scale_len == 1 ? 0 : c0);
  const float s0 = sc[0];
  if (out == DType::kF32) {
    float* o = static_cast<float*>(dst) + base;
    for (int64_t i = 0; i < n; ++i) {
      const float v = static_cast<float>(acc[i]) * (per_channel ? sc[i] : s0);
      o[i] = relu ? std::max(v, 0.0f) : v;
    }
    return;
  }
  float lo = out == DType::kU8 ? 0.0f : -128.0f;
  const float hi = out == DType::kU8 ? 255.0f : 127.0f;
  if (relu) lo = std::max(lo, static_cast<float>(p.out_zero_point));
  const float zp = static_cast<float>(p.out_zero_point);
  if (out == DType::kU8) {
    uint8_t* o = static_cast<uint8_t*>(dst) + base;
    for (int64_t i = 0; i < n; ++i) {
      const float q = std::rint(static_cast<float>(acc[i]) * (per_channel ? sc[i] : s0)) + zp;
      o[i] = static_cast<uint8_t>(static_cast<int32_t>(std::min(std::max(q, lo), hi)));
    }
  } else {
    int8_t* o = static_cast<int8_t*>(dst) + base;
    for (int64_t i = 0; i < n; ++i) {
      const float q = std::rint(static_cast<float>(acc[i]) * (per_channel ? sc[i] : s0)) + zp;
      o[i] = static_cast<int8_t>(static_cast<int32_t>(std::min(std::max(q, lo), hi)));
    }
  }
}

// With a residual (res.view.data: a tensor of out's layout, read at the same index as out):
// v = f32(acc) * scale, v + residual_scale * f32(r - zr) (each rounded once), then as above. The
// f32 values go through a small row buffer so both loops stay branch-free.
template <typename TR>
inline void residual_values(const QGemmParams& p, const QResidual& res, int64_t base, const int32_t* acc, int64_t n,
                            int64_t c0, int64_t c_step, float* v) {
  const TR* r = static_cast<const TR*>(res.view.data) + base;
  const bool per_channel = p.scale_len != 1 && c_step != 0;
  const float* sc = p.scale + (p.scale_len == 1 ? 0 : c0);
  const float s0 = sc[0], rs = res.scale;
  const int32_t zr = res.zero_point;
  for (int64_t i = 0; i < n; ++i) {
    const float scaled = static_cast<float>(acc[i]) * (per_channel ? sc[i] : s0);
    v[i] = scaled + rs * static_cast<float>(static_cast<int32_t>(r[i]) - zr);
  }
}

inline void output_row_residual(const QGemmParams& p, const QResidual& res, DType out, void* dst, int64_t base,
                                const int32_t* acc, int64_t n, int64_t c0, int64_t c_step) {
  thread_local std::vector<float> buf;
  if (buf.size() < static_cast<size_t>(n)) buf.resize(static_cast<size_t>(n));
  float* v = buf.data();
  if (res.view.dtype == DType::kU8) residual_values<uint8_t>(p, res, base, acc, n, c0, c_step, v);
  else residual_values<int8_t>(p, res, base, acc, n, c0, c_step, v);
  const bool relu = p.activation == Activation::kRelu;
  if (out == DType::kF32) {
    float* o = static_cast<float*>(dst) + base;
    for (int64_t i = 0; i < n; ++i) o[i] = relu ? std::max(v[i], 0.0f) : v[i];
    return;
  }
  float lo = out == DType::kU8 ? 0.0f : -128.0f;
  const float hi = out == DType::kU8 ? 255.0f : 127.0f;
  if (relu) lo = std::max(lo, static_cast<float>(p.out_zero_point));
  const float zp = static_cast<float>(p.out_zero_point);
  for (int64_t i = 0; i < n; ++i) {
    // Clamped first: v may exceed int range (inf) where the result saturates anyway.
    const float q = std::rint(std::min(std::max(v[i], -65536.0f), 65536.0f)) + zp;
    const int32_t qi = static_cast<int32_t>(std::min(std::max(q, lo), hi));
    if (out == DType::kU8) static_cast<uint8_t*>(dst)[base + i] = static_cast<uint8_t>(qi);
    else static_cast<int8_t*>(dst)[base + i] = static_cast<int8_t>(qi);
  }
}

template <typename TX>
void depthwise_qconv2d_run(const Conv2dDesc& d, const TensorView& x, const TensorView& w, const QGemmParams& p,
                           const TensorView& out, const QResidual* res) {
  const int64_t C = d.c, P = d.p(), Q = d.q(), RS = d.r * d.s;
  const int32_t zx = p.a_zero_point;
  const auto zw = [&](int64_t c) { return p.b_zero_point ? p.b_zero_point[p.b_zero_point_len == 1 ? 0 : c] : 0; };
  const int8_t* wq = static_cast<const int8_t*>(w.data);
  const int threads = get_num_threads();
  if (d.layout == Layout::kNHWC) {
    // Weights minus their zero point, as int32 [R*S][C] (w is [C, R, S, 1]).
    std::vector<int32_t> wt(static_cast<size_t>(RS * C));
    for (int64_t c = 0; c < C; ++c)
      for (int64_t t = 0; t < RS; ++t) wt[t * C + c] = wq[c * RS + t] - zw(c);
    const DepthwiseOps& ops = depthwise_ops(x.dtype);
    int64_t q_lo, q_hi;
    depthwise_interior(Q, d.w, d.s, d.stride_w, d.dilation_w, d.pad_left, &q_lo, &q_hi);
    std::vector<int32_t> acc_all(static_cast<size_t>(Q * C * threads)), init_all(static_cast<size_t>(C * threads));
    // The x zero point is folded into the start value: sum_t (x_t - zx) w_t = sum_t x_t w_t -
    // zx * sum_t w_t over the taps inside the input (padded taps would contribute 0), so the
    // primitive multiplies raw x. Wrapping int32 arithmetic: the same bits as the reference.
    parallel_for(d.n * P, [&](int64_t np, int thread) {
      const int64_t n = np / P, pp = np % P;
      int32_t* acc = acc_all.data() + thread * Q * C;
      int32_t* init = init_all.data() + thread * C;
      std::vector<const void*> xt(static_cast<size_t>(RS));
      std::vector<const int32_t*> wp(static_cast<size_t>(RS));
      const auto taps = [&](int64_t q, bool clip) {
        int nt = 0;
        for (int64_t r = 0; r < d.r; ++r) {
          const int64_t h = pp * d.stride_h - d.pad_top + r * d.dilation_h;
          if (h < 0 || h >= d.h) continue;
          for (int64_t s = 0; s < d.s; ++s) {
            const int64_t wi = q * d.stride_w - d.pad_left + s * d.dilation_w;
            if (clip && (wi < 0 || wi >= d.w)) continue;
            xt[nt] = static_cast<const TX*>(x.data) + ((n * d.h + h) * d.w + wi) * C;
            wp[nt++] = wt.data() + (r * d.s + s) * C;
          }
        }
        for (int64_t c = 0; c < C; ++c) {
          uint32_t sw = 0;
          for (int t = 0; t < nt; ++t) sw += static_cast<uint32_t>(wp[t][c]);
          const uint32_t b = static_cast<uint32_t>(p.bias ? p.bias[c] : 0);
          init[c] = static_cast<int32_t>(b - static_cast<uint32_t>(zx) * sw);
        }
        return nt;
      };
      for (int64_t q = 0; q < Q; ++q) {
        if (q == q_lo && q_hi > q_lo) {
          const int nt = taps(q_lo, false);
          ops.qaccum_pixels(xt.data(), wp.data(), nt, d.stride_w * C, q_hi - q_lo, C, init, acc + q_lo * C, C);
          q = q_hi - 1;
          continue;
        }
        const int nt = taps(q, true);
        ops.qaccum_pixels(xt.data(), wp.data(), nt, 0, 1, C, init, acc + q * C, C);
      }
      for (int64_t q = 0; q < Q; ++q)
        output_row(p, res, out.dtype, out.data, ((n * P + pp) * Q + q) * C, acc + q * C, C, 0, 1);
    }, threads);
    return;
  }
  std::vector<int32_t> acc_all(static_cast<size_t>(Q * threads));
  parallel_for(d.n * C, [&](int64_t nc, int thread) {
    const int64_t c = nc % C;
    const TX* plane = static_cast<const TX*>(x.data) + nc * d.h * d.w;
    int32_t* acc = acc_all.data() + thread * Q;
    const int32_t zwc = zw(c);
    for (int64_t pp = 0; pp < P; ++pp) {
      std::fill(acc, acc + Q, p.bias ? p.bias[c] : 0);
      for (int64_t r = 0; r < d.r; ++r) {
        const int64_t h = pp * d.stride_h - d.pad_top + r * d.dilation_h;
        if (h < 0 || h >= d.h) continue;
        for (int64_t s = 0; s < d.s; ++s) {
          const int32_t wv = wq[c * RS + r * d.s + s] - zwc;
          const int64_t off = s * d.dilation_w - d.pad_left;
          const int64_t q0 = off >= 0 ? 0 : (-off + d.stride_w - 1) / d.stride_w;
          const int64_t q1 = d.w - off <= 0 ? 0 : std::min(Q, (d.w - off - 1) / d.stride_w + 1);
          const TX* row = plane + h * d.w + off;
          for (int64_t q = q0; q < q1; ++q) acc[q] += (static_cast<int32_t>(row[q * d.stride_w]) - zx) * wv;
        }
      }
      const int64_t base = (nc * P + pp) * Q;
      output_row(p, res, out.dtype, out.data, base, acc, Q, c, 0);
    }
  }, threads);
}

}  // namespace
}  // namespace aicc::cpu::dwq_detail
