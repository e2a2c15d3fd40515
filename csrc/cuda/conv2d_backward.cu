// conv2d backward passes (NHWC, weights [K, R, S, C/groups]) as implicit GEMMs, f32
// accumulation, one rounding to the input dtype. Per group g:
//
// data:   dx[(n,h,w), c] = sum over kk = (r, s, k) of dy[n, p, q, g*K/g + k] * w[g*K/g + k, r, s, c]
//         where h = p*sh - ph + r*dh, i.e. p = (h + ph - r*dh) / sh when that divides exactly
//         and lands in [0, P) (likewise q); every other tap contributes 0.
// weight: dw[g*K/g + k, (r, s, c)] = sum over m = (n, p, q) of dy[m, g*K/g + k] * x[n, h, w, g*C/g + c]
//         with h, w as in the forward pass (0 in the padding).
#include "conv_common.cuh"
#include "simt_tiled_gemm.cuh"

namespace aicc::cuda {
namespace {

template <typename T>
struct ConvBwdDataProblem {
  ConvIndex ix;
  const T* dy;
  const T* w;
  T* dx;
  int m, n, k;  // N*H*W, C/groups, R*S*K/groups

  __device__ float load_a(int g, int row, int kk) const {
    const int wi = row % ix.s.w, nh = row / ix.s.w;
    const int h = nh % ix.s.h, nb = nh / ix.s.h;
    const int kc = kk % ix.kg, rs = kk / ix.kg;
    const int r = rs / ix.s.s, sx = rs % ix.s.s;
    const int ph = h + ix.s.pad_h - r * ix.s.dil_h;
    const int pw = wi + ix.s.pad_w - sx * ix.s.dil_w;
    if (ph < 0 || pw < 0 || ph % ix.s.stride_h || pw % ix.s.stride_w) return 0.0f;
    const int p = ph / ix.s.stride_h, q = pw / ix.s.stride_w;
    if (p >= ix.s.p || q >= ix.s.q) return 0.0f;
    return to_f32(dy[((static_cast<int64_t>(nb) * ix.s.p + p) * ix.s.q + q) * ix.s.k + g * ix.kg + kc]);
  }
  __device__ float load_b(int g, int kk, int col) const {
    const int kc = kk % ix.kg, rs = kk / ix.kg;
    return to_f32(w[(static_cast<int64_t>(g * ix.kg + kc) * ix.s.r * ix.s.s + rs) * ix.cg + col]);
  }
  __device__ void store(int g, int row, int col, float acc) const {
    dx[static_cast<int64_t>(row) * ix.s.c + g * ix.cg + col] = from_f32<T>(acc);
  }
};

template <typename T>
struct ConvBwdWeightProblem {
  ConvIndex ix;
  const T* x;
  const T* dy;
  T* dw;
  int m, n, k;  // K/groups, R*S*C/groups, N*P*Q

  __device__ float load_a(int g, int row, int kk) const {
    return to_f32(dy[static_cast<int64_t>(kk) * ix.s.k + g * ix.kg + row]);
  }
  __device__ float load_b(int g, int kk, int col) const {
    const int q = kk % ix.s.q, np = kk / ix.s.q;
    const int p = np % ix.s.p, nb = np / ix.s.p;
    const int c = col % ix.cg, rs = col / ix.cg;
    const int64_t off = ix.input_offset(nb, p, q, rs / ix.s.s, rs % ix.s.s, g, c);
    return off < 0 ? 0.0f : to_f32(x[off]);
  }
  __device__ void store(int g, int row, int col, float acc) const {
    dw[static_cast<int64_t>(g * ix.kg + row) * n + col] = from_f32<T>(acc);
  }
};

template <typename T>
void run_data(const void* dy, const void* w, void* dx, const ConvShape& sh, cudaStream_t stream) {
  const ConvIndex ix(sh);
  const ConvBwdDataProblem<T> p{ix, static_cast<const T*>(dy), static_cast<const T*>(w), static_cast<T*>(dx),
                                sh.n * sh.h * sh.w, ix.cg, sh.r * sh.s * ix.kg};
  launch_simt_tiled_gemm<float, 64, 64, 16, 4, 4>(p, sh.groups, stream, "conv2d_bwd_data");
}

template <typename T>
void run_weight(const void* x, const void* dy, void* dw, const ConvShape& sh, cudaStream_t stream) {
  const ConvIndex ix(sh);
  const ConvBwdWeightProblem<T> p{ix, static_cast<const T*>(x), static_cast<const T*>(dy), static_cast<T*>(dw),
                                  ix.kg, sh.r * sh.s * ix.cg, sh.n * sh.p * sh.q};
  launch_simt_tiled_gemm<float, 64, 64, 16, 4, 4>(p, sh.groups, stream, "conv2d_bwd_weight");
}

}  // namespace

void conv2d_bwd_data(DType dtype, const void* dy, const void* w, void* dx, const ConvShape& sh,
                     std::uintptr_t stream) {
  check_conv_shape(sh, "conv2d_bwd_data");
  switch (dtype) {
    case DType::kF32: run_data<float>(dy, w, dx, sh, as_stream(stream)); break;
    case DType::kF16: run_data<__half>(dy, w, dx, sh, as_stream(stream)); break;
    case DType::kBF16: run_data<__nv_bfloat16>(dy, w, dx, sh, as_stream(stream)); break;
    default: throw std::invalid_argument("conv2d_bwd_data: expected an f32, f16 or bf16 dtype");
  }
}

void conv2d_bwd_weight(DType dtype, const void* x, const void* dy, void* dw, const ConvShape& sh,
                       std::uintptr_t stream) {
  check_conv_shape(sh, "conv2d_bwd_weight");
  switch (dtype) {
    case DType::kF32: run_weight<float>(x, dy, dw, sh, as_stream(stream)); break;
    case DType::kF16: run_weight<__half>(x, dy, dw, sh, as_stream(stream)); break;
    case DType::kBF16: run_weight<__nv_bfloat16>(x, dy, dw, sh, as_stream(stream)); break;
    default: throw std::invalid_argument("conv2d_bwd_weight: expected an f32, f16 or bf16 dtype");
  }
}

}  // namespace aicc::cuda
