// Index arithmetic of the NHWC convolutions (weights [K, R, S, C/groups]), shared by the
// forward, backward and quantized implicit-GEMM problems.
#pragma once

#include "cuda_common.cuh"

namespace aicc::cuda {

struct ConvIndex {
  ConvShape s;
  int cg, kg;  // C / groups, K / groups

  explicit ConvIndex(const ConvShape& shape) : s(shape), cg(shape.c / shape.groups), kg(shape.k / shape.groups) {}

  // Input element feeding output (n, p, q) through filter tap (r, sx), channel c of group
  // g, or -1 where the tap falls in the padding.
  __device__ __forceinline__ int64_t input_offset(int n, int p, int q, int r, int sx, int g, int c) const {
    const int h = p * s.stride_h - s.pad_h + r * s.dil_h;
    const int w = q * s.stride_w - s.pad_w + sx * s.dil_w;
    if (h < 0 || h >= s.h || w < 0 || w >= s.w) return -1;
    return ((static_cast<int64_t>(n) * s.h + h) * s.w + w) * s.c + g * cg + c;
  }
};

inline void check_conv_shape(const ConvShape& s, const char* what) {
  const bool ok = s.n >= 0 && s.h >= 0 && s.w >= 0 && s.c > 0 && s.k > 0 && s.r > 0 && s.s > 0 && s.p >= 0 &&
                  s.q >= 0 && s.groups > 0 && s.c % s.groups == 0 && s.k % s.groups == 0 && s.stride_h > 0 &&
                  s.stride_w > 0 && s.dil_h > 0 && s.dil_w > 0 && s.pad_h >= 0 && s.pad_w >= 0;
  // The implicit-GEMM dimensions are ints: N*P*Q, N*H*W and R*S*C must fit.
  const int64_t big = static_cast<int64_t>(s.n) * (s.h > s.p ? s.h : s.p) * (s.w > s.q ? s.w : s.q);
  const int64_t red = static_cast<int64_t>(s.r) * s.s * (s.c > s.k ? s.c : s.k);
  if (!ok || big > INT32_MAX || red > INT32_MAX) {
    throw std::invalid_argument(std::string(what) + ": expected a valid convolution shape whose GEMM "
                                "dimensions fit in int32");
  }
}

}  // namespace aicc::cuda
