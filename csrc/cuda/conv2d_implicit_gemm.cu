// conv2d forward as an implicit GEMM over NHWC (no im2col buffer): per group g,
//   Y[m, j] = sum_kk A[m, kk] B[kk, j],  m = (n, p, q), j = output channel within the group,
//   kk = (r, s, c) with c fastest (the contiguous direction of both x and w),
//   A[m, kk] = x[n, p*sh - ph + r*dh, q*sw - pw + s*dw, g*C/g + c] (0 in the padding),
//   B[kk, j] = w[g*K/g + j, r, s, c].
// Float: f32 accumulation and the float epilogue (bias, activation, one rounding).
// Quantized: exact int32 accumulation of (x - xzp)(w - wzp[k]) (the padding contributes 0,
// i.e. it is xzp), then the INT8 output stage of the GEMM.
#include "conv_common.cuh"
#include "simt_tiled_gemm.cuh"

namespace aicc::cuda {
namespace {

template <typename T>
struct ConvFwdProblem {
  ConvIndex ix;
  const T* x;
  const T* w;
  const float* bias;
  Activation act;
  void* y;
  DType out_dtype;
  int m, n, k;  // N*P*Q, K/groups, R*S*C/groups

  __device__ float load_a(int g, int row, int kk) const {
    const int q = row % ix.s.q, np = row / ix.s.q;
    const int p = np % ix.s.p, nb = np / ix.s.p;
    const int c = kk % ix.cg, rs = kk / ix.cg;
    const int64_t off = ix.input_offset(nb, p, q, rs / ix.s.s, rs % ix.s.s, g, c);
    return off < 0 ? 0.0f : to_f32(x[off]);
  }
  __device__ float load_b(int g, int kk, int col) const {
    return to_f32(w[static_cast<int64_t>(g * ix.kg + col) * k + kk]);
  }
  __device__ void store(int g, int row, int col, float acc) const {
    const int ch = g * ix.kg + col;
    float v = acc;
    if (bias != nullptr) v += bias[ch];
    store_f32_as(y, static_cast<int64_t>(row) * ix.s.k + ch, activate(v, act), out_dtype);
  }
};

template <typename TX>
struct QConvFwdProblem {
  ConvIndex ix;
  const TX* x;
  const int8_t* w;
  QConvParams qp;
  void* y;
  int m, n, k;

  __device__ int32_t load_a(int g, int row, int kk) const {
    const int q = row % ix.s.q, np = row / ix.s.q;
    const int p = np % ix.s.p, nb = np / ix.s.p;
    const int c = kk % ix.cg, rs = kk / ix.cg;
    const int64_t off = ix.input_offset(nb, p, q, rs / ix.s.s, rs % ix.s.s, g, c);
    return off < 0 ? 0 : static_cast<int32_t>(x[off]) - qp.xzp;
  }
  __device__ int32_t load_b(int g, int kk, int col) const {
    const int ch = g * ix.kg + col;
    return static_cast<int32_t>(w[static_cast<int64_t>(ch) * k + kk]) - qp.wzp[ch];
  }
  __device__ void store(int g, int row, int col, int32_t acc) const {
    const int ch = g * ix.kg + col;
    if (qp.bias != nullptr) acc += qp.bias[ch];
    quant_store(y, static_cast<int64_t>(row) * ix.s.k + ch, acc, qp.scale, ch, qp.out_zp, qp.relu, qp.out_dtype);
  }
};

template <typename T>
void run_fwd(const void* x, const void* w, const float* bias, Activation act, void* y, DType out_dtype,
             const ConvShape& sh, cudaStream_t stream) {
  const ConvIndex ix(sh);
  const ConvFwdProblem<T> p{ix, static_cast<const T*>(x), static_cast<const T*>(w), bias, act, y, out_dtype,
                            sh.n * sh.p * sh.q, ix.kg, sh.r * sh.s * ix.cg};
  launch_simt_tiled_gemm<float, 64, 64, 16, 4, 4>(p, sh.groups, stream, "conv2d_fwd");
}

template <typename TX>
void run_qfwd(const void* x, const int8_t* w, const QConvParams& qp, void* y, const ConvShape& sh,
              cudaStream_t stream) {
  const ConvIndex ix(sh);
  const QConvFwdProblem<TX> p{ix, static_cast<const TX*>(x), w, qp, y, sh.n * sh.p * sh.q, ix.kg,
                              sh.r * sh.s * ix.cg};
  launch_simt_tiled_gemm<int32_t, 64, 64, 16, 4, 4>(p, sh.groups, stream, "qconv2d_fwd");
}

}  // namespace

void conv2d_fwd(DType in_dtype, const void* x, const void* w, const float* bias, Activation act, void* y,
                DType out_dtype, const ConvShape& sh, std::uintptr_t stream) {
  check_conv_shape(sh, "conv2d_fwd");
  switch (in_dtype) {
    case DType::kF32: run_fwd<float>(x, w, bias, act, y, out_dtype, sh, as_stream(stream)); break;
    case DType::kF16: run_fwd<__half>(x, w, bias, act, y, out_dtype, sh, as_stream(stream)); break;
    case DType::kBF16: run_fwd<__nv_bfloat16>(x, w, bias, act, y, out_dtype, sh, as_stream(stream)); break;
    default: throw std::invalid_argument("conv2d_fwd: expected an f32, f16 or bf16 input dtype");
  }
}

void qconv2d_fwd(DType x_dtype, const void* x, const int8_t* w, const QConvParams& qp, void* y,
                 const ConvShape& sh, std::uintptr_t stream) {
  check_conv_shape(sh, "qconv2d_fwd");
  if (x_dtype == DType::kU8) {
    run_qfwd<uint8_t>(x, w, qp, y, sh, as_stream(stream));
  } else if (x_dtype == DType::kS8) {
    run_qfwd<int8_t>(x, w, qp, y, sh, as_stream(stream));
  } else {
    throw std::invalid_argument("qconv2d_fwd: expected a u8 or s8 input dtype");
  }
}

}  // namespace aicc::cuda
