#include "cpu/conv/depthwise_conv2d.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "common/cpu_features.h"
#include "common/half.h"
#include "common/thread_pool.h"

namespace aicc::cpu {
namespace {

float load(DType t, const void* p, int64_t i) {
  switch (t) {
    case DType::kF16: return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::kBF16: return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
    default: return static_cast<const float*>(p)[i];
  }
}

template <DType T>
void madd_vv_portable(float* acc, const void* x, const float* w, int64_t n) {
  for (int64_t i = 0; i < n; ++i) acc[i] += load(T, x, i) * w[i];
}

template <DType T>
void madd_vs_portable(float* acc, const void* x, int64_t stride, float w, int64_t n) {
  for (int64_t i = 0; i < n; ++i) acc[i] += load(T, x, i * stride) * w;
}

float activate(float y, Activation a) {
  if (a == Activation::kRelu) return y > 0.0f ? y : (std::isnan(y) ? y : 0.0f);
  if (a == Activation::kGelu) return std::isinf(y) && y < 0 ? 0.0f : 0.5f * y * (1.0f + std::erf(y * 0.70710678118654752f));
  return y;
}

void store(DType t, void* p, int64_t i, float v) {
  switch (t) {
    case DType::kF16: static_cast<uint16_t*>(p)[i] = f32_to_f16(v); break;
    case DType::kBF16: static_cast<uint16_t*>(p)[i] = f32_to_bf16(v); break;
    default: static_cast<float*>(p)[i] = v; break;
  }
}

const DepthwiseRowOps& row_ops(DType t) {
#if defined(AICC_X86)
  if (active_isa() >= Isa::kAvx2) return depthwise_row_ops_avx2(t);
#endif
  return depthwise_row_ops_portable(t);
}

}  // namespace

const DepthwiseRowOps& depthwise_row_ops_portable(DType t) {
  static const DepthwiseRowOps f32{madd_vv_portable<DType::kF32>, madd_vs_portable<DType::kF32>};
  static const DepthwiseRowOps f16{madd_vv_portable<DType::kF16>, madd_vs_portable<DType::kF16>};
  static const DepthwiseRowOps bf16{madd_vv_portable<DType::kBF16>, madd_vs_portable<DType::kBF16>};
  return t == DType::kF16 ? f16 : t == DType::kBF16 ? bf16 : f32;
}

int64_t depthwise_workspace_bytes(const Conv2dDesc& d) {
  // f32 weights (transposed to [R*S][C] for NHWC) and one f32 accumulator row per thread.
  const int64_t row = d.layout == Layout::kNHWC ? d.c : d.q();
  return (d.c * d.r * d.s + row * get_num_threads()) * static_cast<int64_t>(sizeof(float));
}

void depthwise_conv2d(const Conv2dDesc& d, const TensorView& x, const TensorView& w, const float* bias,
                      Activation activation, const TensorView& out) {
  const DepthwiseRowOps& ops = row_ops(x.dtype);
  const int64_t C = d.c, P = d.p(), Q = d.q(), RS = d.r * d.s;
  const int64_t xsize = static_cast<int64_t>(dtype_size(x.dtype));
  const char* xb = static_cast<const char*>(x.data);
  const int threads = get_num_threads();
  if (d.layout == Layout::kNHWC) {
    // Weights as f32 [R*S][C], so each tap is one vector multiply-add over the channels.
    std::vector<float> wt(static_cast<size_t>(RS * C));
    for (int64_t c = 0; c < C; ++c)
      for (int64_t t = 0; t < RS; ++t) wt[t * C + c] = load(w.dtype, w.data, c * RS + t);
    std::vector<float> acc_all(static_cast<size_t>(C * threads));
    parallel_for(d.n * P, [&](int64_t np, int thread) {
      const int64_t n = np / P, p = np % P;
      float* acc = acc_all.data() + thread * C;
      for (int64_t q = 0; q < Q; ++q) {
        std::fill(acc, acc + C, 0.0f);
        for (int64_t r = 0; r < d.r; ++r) {
          const int64_t h = p * d.stride_h - d.pad_top + r * d.dilation_h;
          if (h < 0 || h >= d.h) continue;
          for (int64_t s = 0; s < d.s; ++s) {
            const int64_t wi = q * d.stride_w - d.pad_left + s * d.dilation_w;
            if (wi < 0 || wi >= d.w) continue;
            ops.madd_vv(acc, xb + ((n * d.h + h) * d.w + wi) * C * xsize, wt.data() + (r * d.s + s) * C, C);
          }
        }
        const int64_t base = ((n * P + p) * Q + q) * C;
        for (int64_t c = 0; c < C; ++c) store(out.dtype, out.data, base + c, activate(acc[c] + (bias ? bias[c] : 0.0f), activation));
      }
    }, threads);
    return;
  }
  // NCHW: one task per (image, channel) plane; the inner loop runs along an output row.
  std::vector<float> wf(static_cast<size_t>(C * RS));
  for (int64_t i = 0; i < C * RS; ++i) wf[i] = load(w.dtype, w.data, i);
  std::vector<float> acc_all(static_cast<size_t>(Q * threads));
  parallel_for(d.n * C, [&](int64_t nc, int thread) {
    const int64_t c = nc % C;
    const char* plane = xb + nc * d.h * d.w * xsize;
    float* acc = acc_all.data() + thread * Q;
    const float b = bias ? bias[c] : 0.0f;
    for (int64_t p = 0; p < P; ++p) {
      std::fill(acc, acc + Q, 0.0f);
      for (int64_t r = 0; r < d.r; ++r) {
        const int64_t h = p * d.stride_h - d.pad_top + r * d.dilation_h;
        if (h < 0 || h >= d.h) continue;
        for (int64_t s = 0; s < d.s; ++s) {
          // Output columns q whose input column q*sw - pl + s*dw lies inside [0, W).
          const int64_t off = s * d.dilation_w - d.pad_left;
          const int64_t q0 = off >= 0 ? 0 : (-off + d.stride_w - 1) / d.stride_w;
          const int64_t q1 = d.w - off <= 0 ? 0 : std::min(Q, (d.w - off - 1) / d.stride_w + 1);
          if (q1 <= q0) continue;
          ops.madd_vs(acc + q0, plane + (h * d.w + q0 * d.stride_w + off) * xsize, d.stride_w,
                      wf[c * RS + r * d.s + s], q1 - q0);
        }
      }
      const int64_t base = (nc * P + p) * Q;
      for (int64_t q = 0; q < Q; ++q) store(out.dtype, out.data, base + q, activate(acc[q] + b, activation));
    }
  }, threads);
}

}  // namespace aicc::cpu
