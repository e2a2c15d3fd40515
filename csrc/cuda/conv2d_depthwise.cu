// Depthwise conv2d (groups == C, one input channel per group, K = C * multiplier), NHWC:
//   y[n, p, q, k] = act(sum_{r,s} x[n, h, w, k / multiplier] * w[k, r, s, 0] + bias[k]).
// The implicit GEMM would have an N dimension of `multiplier` (usually 1), so one thread
// per output element with the R*S taps in a loop is the better shape; consecutive threads
// take consecutive k, the contiguous direction of x, w's first dimension and y.
#include "conv_common.cuh"

namespace aicc::cuda {
namespace {

template <typename T>
__global__ void conv2d_depthwise_kernel(const ConvIndex ix, const T* __restrict__ x, const T* __restrict__ w,
                                        const float* __restrict__ bias, Activation act, void* y,
                                        DType out_dtype, int64_t total) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= total) return;
  const ConvShape& s = ix.s;
  const int k = static_cast<int>(i % s.k);
  const int64_t npq = i / s.k;
  const int q = static_cast<int>(npq % s.q);
  const int p = static_cast<int>((npq / s.q) % s.p);
  const int n = static_cast<int>(npq / (static_cast<int64_t>(s.q) * s.p));
  const int g = k / ix.kg;  // the input channel (C/groups == 1)
  float acc = 0.0f;
  for (int r = 0; r < s.r; ++r) {
    for (int sx = 0; sx < s.s; ++sx) {
      const int64_t off = ix.input_offset(n, p, q, r, sx, g, 0);
      if (off >= 0) acc += to_f32(x[off]) * to_f32(w[(static_cast<int64_t>(k) * s.r + r) * s.s + sx]);
    }
  }
  if (bias != nullptr) acc += bias[k];
  store_f32_as(y, i, activate(acc, act), out_dtype);
}

template <typename T>
void run(const void* x, const void* w, const float* bias, Activation act, void* y, DType out_dtype,
         const ConvShape& sh, cudaStream_t stream) {
  const int64_t total = static_cast<int64_t>(sh.n) * sh.p * sh.q * sh.k;
  if (total == 0) return;
  constexpr int kThreads = 256;
  const int64_t blocks = (total + kThreads - 1) / kThreads;
  if (blocks > INT32_MAX) throw std::invalid_argument("conv2d_depthwise_fwd: expected fewer than 2^39 outputs");
  conv2d_depthwise_kernel<T><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      ConvIndex(sh), static_cast<const T*>(x), static_cast<const T*>(w), bias, act, y, out_dtype, total);
  check_launch("conv2d_depthwise_fwd");
}

}  // namespace

void conv2d_depthwise_fwd(DType in_dtype, const void* x, const void* w, const float* bias, Activation act,
                          void* y, DType out_dtype, const ConvShape& sh, std::uintptr_t stream) {
  check_conv_shape(sh, "conv2d_depthwise_fwd");
  if (sh.groups != sh.c) throw std::invalid_argument("conv2d_depthwise_fwd: expected groups == C");
  switch (in_dtype) {
    case DType::kF32: run<float>(x, w, bias, act, y, out_dtype, sh, as_stream(stream)); break;
    case DType::kF16: run<__half>(x, w, bias, act, y, out_dtype, sh, as_stream(stream)); break;
    case DType::kBF16: run<__nv_bfloat16>(x, w, bias, act, y, out_dtype, sh, as_stream(stream)); break;
    default: throw std::invalid_argument("conv2d_depthwise_fwd: expected an f32, f16 or bf16 input dtype");
  }
}

}  // namespace aicc::cuda
