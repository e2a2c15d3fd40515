// conv2d and qconv2d forward on the GEMM driver (aicc::cpu::gemm / qgemm):
//   1x1 stride-1 unpadded convs are one GEMM over strided views of the input (no copy);
//   everything else goes through im2col in chunks of output pixels whose column buffer
//   never exceeds the layer's output size; depthwise convs use their own kernel.
// GEMM orientation: M = output pixels, N = output channels of the group, K = Cg*R*S, so the
// per-channel bias and the per-channel quantization parameters are GEMM columns.
#include <memory>
#include <string>

#include "aicc/conv.h"
#include "aicc/status.h"
#include "cpu/conv/conv2d_common.h"
#include "cpu/conv/depthwise_conv2d.h"

namespace aicc::cpu {
namespace {

using conv::chunk_pixels;
using conv::im2col;

bool is_float(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

char* byte_ptr(const TensorView& t, int64_t elems) {
  return static_cast<char*>(t.data) + elems * static_cast<int64_t>(dtype_size(t.dtype));
}

void check_common(const Conv2dDesc& d, const TensorView& x, const TensorView& w, const TensorView& out) {
  conv::check_desc(d);
  int64_t xd[4], wd[4], yd[4];
  conv::x_dims(d, xd);
  conv::w_dims(d, wd);
  conv::y_dims(d, yd);
  conv::check_tensor(x, "x", xd[0], xd[1], xd[2], xd[3], false);
  conv::check_tensor(w, "w", wd[0], wd[1], wd[2], wd[3], false);
  conv::check_tensor(out, "out", yd[0], yd[1], yd[2], yd[3], true);
}

// The GEMM operands of one (image, group, pixel chunk): A = pixels x depth, B = depth x Kg,
// out = pixels x Kg. `col` is the chunk's column buffer, or nullptr for a pointwise conv.
struct Operands {
  MatrixView a, b, out;
};

Operands operands(const Conv2dDesc& d, const TensorView& x, const TensorView& w, const TensorView& y,
                  const void* col, int64_t n, int64_t g, int64_t m0, int64_t mc) {
  const int64_t cg = d.cg(), kg = d.kg(), depth = cg * d.r * d.s, pq = d.p() * d.q();
  Operands o;
  o.a.dtype = x.dtype;
  o.a.rows = mc;
  o.a.cols = depth;
  o.b = MatrixView{byte_ptr(w, g * kg * depth), w.dtype, depth, kg, 1, depth};
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
    if (col) {
      o.a.data = const_cast<void*>(col);
      o.a.col_stride = mc;
    } else {
      o.a.data = byte_ptr(x, (n * d.c + g * cg) * d.h * d.w + m0);
      o.a.col_stride = d.h * d.w;
    }
    o.a.row_stride = 1;
    o.out.data = byte_ptr(y, (n * d.k + g * kg) * pq + m0);
    o.out.row_stride = 1;
    o.out.col_stride = pq;
  }
  return o;
}

// Calls fn(operands) for every chunk of the conv, im2col-ing into one reused buffer.
template <typename Fn>
void for_each_chunk(const Conv2dDesc& d, const TensorView& x, const TensorView& w, const TensorView& y,
                    uint32_t pad, Fn&& fn) {
  const bool pointwise = conv::is_pointwise(d);
  const int esize = static_cast<int>(dtype_size(x.dtype));
  const int64_t depth = d.cg() * d.r * d.s;
  const int64_t pixels = d.layout == Layout::kNHWC ? d.n * d.p() * d.q() : d.p() * d.q();
  const int64_t images = d.layout == Layout::kNHWC ? 1 : d.n;
  const int64_t mc_max = pointwise ? pixels : chunk_pixels(d);
  std::unique_ptr<char[]> col;
  if (!pointwise) col.reset(new char[static_cast<size_t>(mc_max * depth * esize)]);
  for (int64_t n = 0; n < images; ++n) {
    for (int64_t g = 0; g < d.groups; ++g) {
      for (int64_t m0 = 0; m0 < pixels; m0 += mc_max) {
        const int64_t mc = std::min(mc_max, pixels - m0);
        if (!pointwise) im2col(d, x.data, esize, pad, n, g, m0, mc, col.get());
        fn(operands(d, x, w, y, col.get(), n, g, m0, mc), g);
      }
    }
  }
}

}  // namespace

int64_t conv2d_workspace_bytes(const Conv2dDesc& d, DType input_dtype) {
  if (conv::is_pointwise(d) || d.n * d.p() * d.q() * d.k == 0) return 0;
  const int64_t esize = static_cast<int64_t>(dtype_size(input_dtype));
  if (conv::is_depthwise(d) && input_dtype != DType::kS8 && input_dtype != DType::kU8)
    return depthwise_workspace_bytes(d);
  return chunk_pixels(d) * d.cg() * d.r * d.s * esize;
}

void conv2d(const Conv2dDesc& d, const TensorView& x, const TensorView& w, const float* bias,
            Activation activation, const TensorView& out) {
  check_common(d, x, w, out);
  if (!is_float(x.dtype)) throw_invalid("x", "dtype f32, f16 or bf16", dtype_name(x.dtype));
  if (w.dtype != x.dtype) throw_invalid("w", std::string("dtype ") + dtype_name(x.dtype), dtype_name(w.dtype));
  if (out.dtype != x.dtype && out.dtype != DType::kF32)
    throw_invalid("out", std::string("dtype ") + dtype_name(x.dtype) + " or f32", dtype_name(out.dtype));
  if (out.numel() == 0) return;
  if (conv::is_depthwise(d)) {
    depthwise_conv2d(d, x, w, bias, activation, out);
    return;
  }
  GemmParams params;
  params.activation = activation;
  const int64_t kg = d.kg();
  for_each_chunk(d, x, w, out, 0u, [&](const Operands& o, int64_t g) {
    params.bias = bias ? bias + g * kg : nullptr;
    gemm(o.a, o.b, nullptr, o.out, params);
  });
}

void qconv2d(const Conv2dDesc& d, const TensorView& x, const TensorView& w, const QGemmParams& params,
             const TensorView& out) {
  check_common(d, x, w, out);
  if (x.dtype != DType::kU8 && x.dtype != DType::kS8) throw_invalid("x", "dtype u8 or s8", dtype_name(x.dtype));
  if (w.dtype != DType::kS8) throw_invalid("w", "dtype s8", dtype_name(w.dtype));
  const auto per_channel = [&](int64_t len, const char* name) {
    if (len != 0 && len != 1 && len != d.k)
      throw_invalid(name, "length 1 or K=" + std::to_string(d.k), std::to_string(len));
  };
  per_channel(params.b_zero_point ? params.b_zero_point_len : 0, "w_zero_point");
  per_channel(params.scale ? params.scale_len : 0, "scale");
  if (out.numel() == 0) return;
  const int64_t kg = d.kg();
  // Padding holds the zero point so that (x - zx) is exactly 0 there.
  const uint32_t pad = static_cast<uint32_t>(params.a_zero_point) & 0xffu;
  for_each_chunk(d, x, w, out, pad, [&](const Operands& o, int64_t g) {
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
    qgemm(o.a, o.b, o.out, p);
  });
}

}  // namespace aicc::cpu
