// Quantized depthwise conv2d (groups == C == K): a direct kernel with exact int32
// accumulation of (x - x_zero_point)(w - w_zero_point[c]) + bias[c] over the taps inside the
// input (padded taps hold x_zero_point and contribute exactly 0, so they are skipped), then
// the qgemm output stage (aicc/gemm.h QGemmParams, SEMANTICS.md "INT8"), bit-exact.
// Portable C++: the per-channel NHWC loops and per-row NCHW loops are plain int32 arithmetic
// that the compiler vectorizes.
#include "cpu/conv/depthwise_qconv2d.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/thread_pool.h"

namespace aicc::cpu {
namespace {

template <typename TX>
int32_t xval(const void* p, int64_t i) {
  return static_cast<int32_t>(static_cast<const TX*>(p)[i]);
}

// The qgemm output stage for one value of channel c.
struct OutputStage {
  const QGemmParams& p;
  DType out;
  int32_t lo, hi;

  OutputStage(const QGemmParams& params, DType out_dtype) : p(params), out(out_dtype) {
    lo = out == DType::kU8 ? 0 : -128;
    hi = out == DType::kU8 ? 255 : 127;
    if (p.activation == Activation::kRelu) lo = std::max(lo, p.out_zero_point);
  }

  void store(void* dst, int64_t i, int32_t acc, int64_t c) const {
    const bool relu = p.activation == Activation::kRelu;
    if (out == DType::kS32) {
      static_cast<int32_t*>(dst)[i] = relu ? std::max(acc, 0) : acc;
      return;
    }
    const float v = static_cast<float>(acc) * p.scale[p.scale_len == 1 ? 0 : c];
    if (out == DType::kF32) {
      static_cast<float*>(dst)[i] = relu ? std::max(v, 0.0f) : v;
      return;
    }
    double q = static_cast<double>(std::nearbyint(v)) + p.out_zero_point;
    q = std::min<double>(std::max<double>(q, lo), hi);
    if (out == DType::kU8) static_cast<uint8_t*>(dst)[i] = static_cast<uint8_t>(q);
    else static_cast<int8_t*>(dst)[i] = static_cast<int8_t>(q);
  }
};

template <typename TX>
void run(const Conv2dDesc& d, const TensorView& x, const TensorView& w, const QGemmParams& p, const TensorView& out) {
  const int64_t C = d.c, P = d.p(), Q = d.q(), RS = d.r * d.s;
  const int32_t zx = p.a_zero_point;
  const auto zw = [&](int64_t c) { return p.b_zero_point ? p.b_zero_point[p.b_zero_point_len == 1 ? 0 : c] : 0; };
  const OutputStage stage(p, out.dtype);
  const int8_t* wq = static_cast<const int8_t*>(w.data);
  const int threads = get_num_threads();
  if (d.layout == Layout::kNHWC) {
    // Weights minus their zero point, as int32 [R*S][C] (w is [C, R, S, 1]).
    std::vector<int32_t> wt(static_cast<size_t>(RS * C));
    for (int64_t c = 0; c < C; ++c)
      for (int64_t t = 0; t < RS; ++t) wt[t * C + c] = wq[c * RS + t] - zw(c);
    std::vector<int32_t> acc_all(static_cast<size_t>(C * threads));
    parallel_for(d.n * P, [&](int64_t np, int thread) {
      const int64_t n = np / P, pp = np % P;
      int32_t* acc = acc_all.data() + thread * C;
      for (int64_t q = 0; q < Q; ++q) {
        for (int64_t c = 0; c < C; ++c) acc[c] = p.bias ? p.bias[c] : 0;
        for (int64_t r = 0; r < d.r; ++r) {
          const int64_t h = pp * d.stride_h - d.pad_top + r * d.dilation_h;
          if (h < 0 || h >= d.h) continue;
          for (int64_t s = 0; s < d.s; ++s) {
            const int64_t wi = q * d.stride_w - d.pad_left + s * d.dilation_w;
            if (wi < 0 || wi >= d.w) continue;
            const TX* xp = static_cast<const TX*>(x.data) + ((n * d.h + h) * d.w + wi) * C;
            const int32_t* wr = wt.data() + (r * d.s + s) * C;
            for (int64_t c = 0; c < C; ++c) acc[c] += (static_cast<int32_t>(xp[c]) - zx) * wr[c];
          }
        }
        const int64_t base = ((n * P + pp) * Q + q) * C;
        for (int64_t c = 0; c < C; ++c) stage.store(out.data, base + c, acc[c], c);
      }
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
      for (int64_t q = 0; q < Q; ++q) stage.store(out.data, base + q, acc[q], c);
    }
  }, threads);
}

}  // namespace

void depthwise_qconv2d(const Conv2dDesc& d, const TensorView& x, const TensorView& w, const QGemmParams& params,
                       const TensorView& out) {
  if (x.dtype == DType::kU8) run<uint8_t>(d, x, w, params, out);
  else run<int8_t>(d, x, w, params, out);
}

}  // namespace aicc::cpu
