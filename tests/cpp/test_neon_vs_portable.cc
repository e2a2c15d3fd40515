// The aarch64 NEON entries of the depthwise and reduce families against the portable entries,
// bit for bit (both promise the same operations in the same order). Each case runs through the
// public kernel entry points twice: with the NEON entry chosen, and with `neon` masked
// (set_feature_mask("-neon"): the registry then picks the portable entry, as it would on a CPU
// without it), and the two outputs must have identical bytes.
//
// Depthwise: f32/f16/bf16 forward (NHWC and NCHW; out in x's dtype through the vector row
// stores, and f32 with relu), backward data and weight, INT8 forward (u8/s8, per-tensor and
// per-channel zero points incl. 255 / -128, s32 and requantized u8 out); channel counts around
// the 4-lane vector (1, 3, 4, 5, 8, 9, 17), 3x3 and 5x5 at stride 1 and 2, dilation 2, and a
// 7x7 (49 taps: the generic tap loop); inputs with NaN, signalling f16 NaN, Inf and -0.
// Reduce: f32/f16/bf16 sum/avg/max/min over 1..5 sources and lengths around the 4- and 16-wide
// loops, inputs of random bit patterns (every NaN, Inf, subnormal, -0) and rounding ties of
// f16/bf16 (normal and subnormal); f32 <-> f16/bf16 conversion of random bits and of ties;
// INT8 block quantization (zero, non-finite, subnormal-max and tie blocks) and block reduction.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "aicc/conv.h"
#include "common/cpu_features.h"
#include "common/half.h"
#include "cpu/config/registry.h"
#include "cpu/conv/depthwise_conv2d.h"
#include "cpu/conv/depthwise_qconv2d.h"
#include "cpu/reduce/reduce.h"

namespace {

using namespace aicc;
namespace reg = aicc::cpu::registry;
using Check = void (*)(bool, const std::string&);

using Bytes = std::vector<uint8_t>;

TensorView view4(Bytes& b, DType t, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
  TensorView v;
  v.data = b.data();
  v.dtype = t;
  v.ndim = 4;
  const int64_t dims[4] = {d0, d1, d2, d3};
  int64_t stride = 1;
  for (int i = 3; i >= 0; --i) {
    v.shape[i] = dims[i];
    v.strides[i] = stride;
    stride *= dims[i];
  }
  return v;
}

// n values of dtype t: normal random values, and with `specials` a NaN, an f16 signalling NaN
// (f16 only), +-Inf and -0 at fixed places.
Bytes random_values(std::mt19937& rng, DType t, int64_t n, bool specials) {
  Bytes b(static_cast<size_t>(n) * dtype_size(t));
  std::normal_distribution<float> d;
  for (int64_t i = 0; i < n; ++i) {
    float x = d(rng);
    if (specials && n > 8) {
      if (i == n / 3) x = std::numeric_limits<float>::quiet_NaN();
      if (i == n / 2) x = std::numeric_limits<float>::infinity();
      if (i == n / 2 + 1) x = -std::numeric_limits<float>::infinity();
      if (i == n / 5) x = -0.0f;
    }
    if (t == DType::kF32) std::memcpy(b.data() + 4 * i, &x, 4);
    else {
      uint16_t h = t == DType::kF16 ? f32_to_f16(x) : f32_to_bf16(x);
      if (specials && t == DType::kF16 && n > 8 && i == (2 * n) / 3) h = 0x7d01;  // signalling
      std::memcpy(b.data() + 2 * i, &h, 2);
    }
  }
  return b;
}

template <class Run>
void neon_vs_portable(Check check, const char* neon_name, const std::string& what, Run run,
                      int* cases) {
  set_feature_mask("");
  const Bytes a = run();
  set_feature_mask("-neon");
  const Bytes b = run();
  set_feature_mask("");
  ++*cases;
  size_t first = a.size();
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) {
      first = i;
      break;
    }
  check(a.size() == b.size() && first == a.size(),
        std::string(neon_name) + " vs portable " + what + ": bytes differ from offset " + std::to_string(first) +
            (first < a.size() ? " (" + std::to_string(a[first]) + " vs " + std::to_string(b[first]) + ")" : ""));
}

struct Geo {
  int64_t r, s, stride, pad, dil;
};

void test_depthwise(Check check, bool quick) {
  const std::vector<int64_t> cs = quick ? std::vector<int64_t>{3, 4, 5, 17} : std::vector<int64_t>{1, 3, 4, 5, 8, 9, 17};
  const std::vector<Geo> geos = {{3, 3, 1, 1, 1}, {3, 3, 2, 1, 1}, {5, 5, 1, 2, 1}, {5, 5, 2, 2, 1},
                                 {3, 3, 1, 2, 2}, {7, 7, 1, 3, 1}};
  std::mt19937 rng(321);
  int cases = 0;
  const auto t_name = [](DType t) { return std::string(dtype_name(t)); };
  for (Layout layout : {Layout::kNHWC, Layout::kNCHW}) {
    const std::string lname = layout == Layout::kNHWC ? "NHWC" : "NCHW";
    for (const Geo& g : geos) {
      for (int64_t c : cs) {
        Conv2dDesc d;
        d.n = 1;
        d.c = d.k = d.groups = c;
        d.h = 7;
        d.w = 21;
        d.r = g.r;
        d.s = g.s;
        d.stride_h = d.stride_w = g.stride;
        d.pad_top = d.pad_bottom = d.pad_left = d.pad_right = g.pad;
        d.dilation_h = d.dilation_w = g.dil;
        d.layout = layout;
        const int64_t P = d.p(), Q = d.q();
        const bool nhwc = layout == Layout::kNHWC;
        const std::string geo = lname + " C=" + std::to_string(c) + " " + std::to_string(g.r) + "x" +
                                std::to_string(g.s) + " stride " + std::to_string(g.stride) + " dil " +
                                std::to_string(g.dil);
        const auto xshape = [&](Bytes& b, DType t) { return nhwc ? view4(b, t, 1, d.h, d.w, c) : view4(b, t, 1, c, d.h, d.w); };
        const auto oshape = [&](Bytes& b, DType t) { return nhwc ? view4(b, t, 1, P, Q, c) : view4(b, t, 1, c, P, Q); };
        const auto wshape = [&](Bytes& b, DType t) { return nhwc ? view4(b, t, c, g.r, g.s, 1) : view4(b, t, c, 1, g.r, g.s); };
        for (DType t : {DType::kF32, DType::kF16, DType::kBF16}) {
          const bool specials = c >= 4;
          Bytes x = random_values(rng, t, d.h * d.w * c, specials);
          Bytes w = random_values(rng, t, c * g.r * g.s, false);
          Bytes go = random_values(rng, t, P * Q * c, specials);
          std::vector<float> bias(static_cast<size_t>(c));
          for (float& v : bias) v = std::normal_distribution<float>()(rng);
          const TensorView xv = xshape(x, t), wv = wshape(w, t), gv = oshape(go, t);
          for (DType ot : {t, DType::kF32}) {
            const Activation act = ot == DType::kF32 ? Activation::kRelu : Activation::kNone;
            neon_vs_portable(check, "depthwise_neon",
                             "forward " + t_name(t) + "->" + t_name(ot) + " " + geo, [&] {
                               Bytes o(static_cast<size_t>(P * Q * c) * dtype_size(ot));
                               cpu::depthwise_conv2d(d, xv, wv, bias.data(), act, oshape(o, ot));
                               return o;
                             }, &cases);
            neon_vs_portable(check, "depthwise_neon",
                             "backward data " + t_name(t) + "->" + t_name(ot) + " " + geo, [&] {
                               Bytes gi(static_cast<size_t>(d.h * d.w * c) * dtype_size(ot));
                               cpu::depthwise_conv2d_backward_data(d, gv, wv, xshape(gi, ot));
                               return gi;
                             }, &cases);
          }
          neon_vs_portable(check, "depthwise_neon", "backward weight " + t_name(t) + " " + geo, [&] {
            Bytes gw(static_cast<size_t>(c * g.r * g.s) * 4);
            cpu::depthwise_conv2d_backward_weight(d, xv, gv, wshape(gw, DType::kF32));
            return gw;
          }, &cases);
        }
        // INT8: zero points incl. the extremes, per tensor and per channel.
        struct Z {
          DType t;
          int32_t zx, zw;
          bool per_channel;
          DType out;
        };
        const Z zs[] = {{DType::kU8, 128, 0, false, DType::kS32}, {DType::kS8, -128, 127, false, DType::kS32},
                        {DType::kU8, 255, -128, true, DType::kU8}, {DType::kS8, 3, -7, true, DType::kS8}};
        for (const Z& z : zs) {
          Bytes x(static_cast<size_t>(d.h * d.w * c)), w(static_cast<size_t>(c * g.r * g.s));
          for (auto& v : x) v = static_cast<uint8_t>(rng());
          for (auto& v : w) v = static_cast<uint8_t>(rng());
          x[0] = z.t == DType::kU8 ? 255 : 0x80;
          w[0] = 0x80;
          std::vector<int32_t> zw(static_cast<size_t>(c)), bias(static_cast<size_t>(c));
          std::vector<float> scale(static_cast<size_t>(c));
          for (int64_t i = 0; i < c; ++i) {
            zw[i] = z.per_channel ? static_cast<int32_t>((z.zw + 37 * i) % 256 + 256) % 256 - 128 : z.zw;
            bias[i] = static_cast<int32_t>(rng() % 20001) - 10000;
            scale[i] = 1.0f / static_cast<float>(100 + 37 * i);
          }
          QGemmParams p;
          p.a_zero_point = z.zx;
          p.b_zero_point = zw.data();
          p.b_zero_point_len = z.per_channel ? c : 1;
          p.bias = bias.data();
          p.scale = scale.data();
          p.scale_len = z.per_channel ? c : 1;
          p.out_zero_point = z.out == DType::kU8 ? 128 : z.out == DType::kS8 ? -3 : 0;
          const TensorView xv = xshape(x, z.t), wv = wshape(w, DType::kS8);
          neon_vs_portable(check, "depthwise_neon",
                           "int8 " + t_name(z.t) + " zx=" + std::to_string(z.zx) + " zw=" + std::to_string(z.zw) +
                               (z.per_channel ? "+37c" : "") + " ->" + t_name(z.out) + " " + geo,
                           [&] {
                             Bytes o(static_cast<size_t>(P * Q * c) * dtype_size(z.out));
                             cpu::depthwise_qconv2d(d, xv, wv, p, oshape(o, z.out));
                             return o;
                           }, &cases);
        }
      }
    }
  }
  std::printf("depthwise depthwise_neon vs portable %4d cases (bit-exact)\n", cases);
}

// ---------------------------------------------------------------------------- reduce

// n half (f16/bf16) values: random bit patterns (all classes), and pairs whose f32 sum is a
// rounding tie of the dtype, at fixed places.
std::vector<uint16_t> random_halves(std::mt19937& rng, DType t, int64_t n, bool tie_partner) {
  std::vector<uint16_t> h(static_cast<size_t>(n));
  std::normal_distribution<float> d;
  for (int64_t i = 0; i < n; ++i) {
    if (i % 3 == 0) {
      h[i] = static_cast<uint16_t>(rng());
    } else if (i % 3 == 1) {
      // a tie with the partner source: 1 + ulp/2 (tie_partner adds ulp/2 to 1 or 1 + ulp).
      const float base = (i % 2) ? 1.0f : (t == DType::kF16 ? 1.0f + 0x1p-10f : 1.0f + 0x1p-7f);
      const float half_ulp = t == DType::kF16 ? 0x1p-11f : 0x1p-8f;
      const float v = tie_partner ? half_ulp : base;
      h[i] = t == DType::kF16 ? f32_to_f16(v) : f32_to_bf16(v);
    } else {
      const float v = d(rng);
      h[i] = t == DType::kF16 ? f32_to_f16(v) : f32_to_bf16(v);
    }
  }
  return h;
}

void test_reduce(Check check, bool quick) {
  std::mt19937 rng(777);
  int cases = 0;
  const cpu::ReduceOp ops[] = {cpu::ReduceOp::kSum, cpu::ReduceOp::kAvg, cpu::ReduceOp::kMax, cpu::ReduceOp::kMin};
  const std::vector<int64_t> ns = quick ? std::vector<int64_t>{3, 17, 70} : std::vector<int64_t>{1, 3, 4, 5, 15, 16, 17, 33, 70};
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (int nsrc : {1, 2, 3, 5}) {
      for (int64_t n : ns) {
        std::vector<Bytes> srcs;
        for (int r = 0; r < nsrc; ++r) {
          Bytes b(static_cast<size_t>(n) * dtype_size(t));
          if (t == DType::kF32) {
            for (int64_t i = 0; i < n; ++i) {
              uint32_t u = static_cast<uint32_t>(rng());
              float f = std::normal_distribution<float>()(rng);
              if (i % 2) std::memcpy(&f, &u, 4);  // every bit pattern: NaNs, Inf, subnormals, -0
              std::memcpy(b.data() + 4 * i, &f, 4);
            }
          } else {
            const std::vector<uint16_t> h = random_halves(rng, t, n, r > 0);
            std::memcpy(b.data(), h.data(), b.size());
          }
          srcs.push_back(std::move(b));
        }
        std::vector<const void*> sp;
        for (const Bytes& b : srcs) sp.push_back(b.data());
        for (cpu::ReduceOp op : ops) {
          for (int divisor : {1, 2, 3}) {
            if (op != cpu::ReduceOp::kAvg && divisor != 1) continue;
            neon_vs_portable(check, "reduce_neon",
                             std::string("reduce_n ") + dtype_name(t) + " " + cpu::reduce_op_name(op) + " nsrc=" +
                                 std::to_string(nsrc) + " n=" + std::to_string(n) + " divisor=" + std::to_string(divisor),
                             [&] {
                               Bytes o(srcs[0].size());
                               cpu::reduce_n(t, op, sp.data(), nsrc, o.data(), n, divisor);
                               return o;
                             }, &cases);
          }
        }
      }
    }
  }
  // f16 subnormal ties through avg: (2k+1) * 2^-24 / 2 lies halfway between two subnormals.
  {
    std::vector<uint16_t> h(64);
    for (size_t i = 0; i < h.size(); ++i) h[i] = static_cast<uint16_t>((i % 2 ? 0x8000 : 0) | (2 * i + 1));
    const void* sp[1] = {h.data()};
    neon_vs_portable(check, "reduce_neon", "reduce_n f16 avg subnormal ties", [&] {
      Bytes o(h.size() * 2);
      cpu::reduce_n(DType::kF16, cpu::ReduceOp::kAvg, sp, 1, o.data(), static_cast<int64_t>(h.size()), 2);
      return o;
    }, &cases);
  }
  // Conversions: random bits, and f32 values on the ties of f16 (low 13 bits 0x1000, normal
  // and subnormal results) and of bf16 (low 16 bits 0x8000).
  for (int64_t n : {1, 5, 67, 1029}) {
    std::vector<uint32_t> f(static_cast<size_t>(n));
    std::vector<uint16_t> h(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      uint32_t u = static_cast<uint32_t>(rng());
      if (i % 4 == 1) u = (u & 0xffffe000u) | 0x1000u;
      if (i % 4 == 2) u = (u & 0xffff0000u) | 0x8000u;
      if (i % 8 == 3) u = (u & 0x80000000u) | ((103u + (u >> 8) % 10) << 23) | 0x1000u;  // f16 subnormal ties
      f[i] = u;
      h[i] = static_cast<uint16_t>(rng());
    }
    for (DType ht : {DType::kF16, DType::kBF16}) {
      neon_vs_portable(check, "reduce_neon", std::string("convert f32->") + dtype_name(ht) + " n=" + std::to_string(n), [&] {
        Bytes o(static_cast<size_t>(n) * 2);
        cpu::convert(DType::kF32, f.data(), ht, o.data(), n);
        return o;
      }, &cases);
      neon_vs_portable(check, "reduce_neon", std::string("convert ") + dtype_name(ht) + "->f32 n=" + std::to_string(n), [&] {
        Bytes o(static_cast<size_t>(n) * 4);
        cpu::convert(ht, h.data(), DType::kF32, o.data(), n);
        return o;
      }, &cases);
    }
  }
  // INT8 blocks: lengths around the block and the 16-wide loop; special blocks.
  for (int64_t n : quick ? std::vector<int64_t>{17, 600} : std::vector<int64_t>{1, 5, 16, 17, 255, 256, 257, 600, 1100}) {
    const int64_t nb = cpu::int8_blocks(n);
    std::vector<float> x(static_cast<size_t>(n));
    for (float& v : x) v = std::normal_distribution<float>()(rng) * 3.0f;
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t lo = b * cpu::kInt8Block, len = std::min(cpu::kInt8Block, n - lo);
      for (int64_t i = 0; i < len; ++i) {
        float& v = x[lo + i];
        switch (b % 5) {
          case 1: v = 0.0f; break;                                                       // all zero
          case 2: if (i == len / 2) v = std::numeric_limits<float>::infinity(); break;  // non-finite
          case 3: v = (i % 3 == 0) ? 1e-45f : (i % 3 == 1 ? 0.0f : -1e-45f); break;     // 127/max = inf
          case 4: v = i == 0 ? 127.0f : static_cast<float>(static_cast<int>(i % 61) - 30) + 0.5f; break;  // ties
          default: break;
        }
      }
    }
    if (n > 40) x[40] = std::numeric_limits<float>::quiet_NaN();
    neon_vs_portable(check, "reduce_neon", "quantize_int8_blocks n=" + std::to_string(n), [&] {
      Bytes o(static_cast<size_t>(n + 4 * nb));
      cpu::quantize_int8_blocks(x.data(), n, reinterpret_cast<int8_t*>(o.data()), reinterpret_cast<float*>(o.data() + n));
      return o;
    }, &cases);
    for (int nsrc : {1, 3}) {
      std::vector<std::vector<int8_t>> q(static_cast<size_t>(nsrc), std::vector<int8_t>(static_cast<size_t>(n)));
      std::vector<std::vector<float>> s(static_cast<size_t>(nsrc), std::vector<float>(static_cast<size_t>(nb)));
      std::vector<const int8_t*> qp;
      std::vector<const float*> sp;
      for (int r = 0; r < nsrc; ++r) {
        for (auto& v : q[r]) v = static_cast<int8_t>(static_cast<int>(rng() % 255) - 127);
        for (int64_t b = 0; b < nb; ++b) s[r][b] = (b + r) % 4 == 3 ? 0.0f : std::uniform_real_distribution<float>(0.001f, 2.0f)(rng);
        qp.push_back(q[r].data());
        sp.push_back(s[r].data());
      }
      if (nsrc > 1 && nb > 1) s[1][1] = std::numeric_limits<float>::quiet_NaN();
      for (cpu::ReduceOp op : ops) {
        neon_vs_portable(check, "reduce_neon",
                         std::string("reduce_int8_blocks ") + cpu::reduce_op_name(op) + " nsrc=" + std::to_string(nsrc) +
                             " n=" + std::to_string(n), [&] {
                           Bytes o(static_cast<size_t>(n + 4 * nb));
                           cpu::reduce_int8_blocks(op, qp.data(), sp.data(), nsrc, n, nsrc,
                                                   reinterpret_cast<int8_t*>(o.data()),
                                                   reinterpret_cast<float*>(o.data() + n));
                           return o;
                         }, &cases);
      }
    }
  }
  std::printf("reduce    reduce_neon vs portable    %4d cases (bit-exact)\n", cases);
}

}  // namespace

void test_neon_vs_portable(FeatureSet detected, bool quick, Check check) {
#if defined(__aarch64__)
  if (!detected.has(CpuFeature::kNeon)) {
    std::printf("skip depthwise_neon / reduce_neon: the CPU lacks neon\n");
    return;
  }
  // The entries compared are the ones chosen (NEON) and masked (portable): prove both choices.
  const reg::Families& f = reg::families();
  check(std::string(reg::select(f.depthwise).name) == "depthwise_neon", "depthwise chose depthwise_neon");
  check(std::string(reg::select(f.reduce).name) == "reduce_neon", "reduce chose reduce_neon");
  set_feature_mask("-neon");
  check(std::string(reg::select(f.depthwise).name) == "depthwise_portable", "masking neon gives depthwise_portable");
  check(std::string(reg::select(f.reduce).name) == "reduce_portable", "masking neon gives reduce_portable");
  set_feature_mask("");
  test_depthwise(check, quick);
  test_reduce(check, quick);
#else
  (void)detected;
  (void)quick;
  (void)check;
  std::printf("skip depthwise_neon / reduce_neon vs portable: aarch64 builds only (tools/test-aarch64.sh)\n");
#endif
}
