// Device helpers shared by the kernels: dtype conversion, the float and quantized
// epilogues (the same arithmetic as reference/gemm_kernels.py), launch-error checks.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "launchers.h"

namespace aicc::cuda {

inline void throw_if_failed(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorName(err) + " (" +
                             cudaGetErrorString(err) + ")");
  }
}

// A launch error (bad configuration, no device, missing kernel image) surfaces here;
// errors of the kernel itself surface at the next synchronizing call, as usual in CUDA.
inline void check_launch(const char* what) { throw_if_failed(cudaGetLastError(), what); }

inline cudaStream_t as_stream(std::uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }

inline unsigned ceil_div(int64_t a, int64_t b) { return static_cast<unsigned>((a + b - 1) / b); }

inline void check_grid_y(int64_t blocks, const char* what) {
  if (blocks > 65535) {
    throw std::invalid_argument(std::string(what) + ": expected at most 65535 tiles along the grid's "
                                "y dimension, got " + std::to_string(blocks));
  }
}

// ---- element conversion ---------------------------------------------------------------
template <typename T> __device__ __forceinline__ float to_f32(T v);
template <> __device__ __forceinline__ float to_f32<float>(float v) { return v; }
template <> __device__ __forceinline__ float to_f32<__half>(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ float to_f32<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v);
}

// One round-to-nearest-even from f32: the only rounding of an f16/bf16 result.
template <typename T> __device__ __forceinline__ T from_f32(float v);
template <> __device__ __forceinline__ float from_f32<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_f32<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

__device__ __forceinline__ void store_f32_as(void* out, int64_t index, float v, DType dt) {
  switch (dt) {
    case DType::kF16: static_cast<__half*>(out)[index] = __float2half_rn(v); break;
    case DType::kBF16: static_cast<__nv_bfloat16*>(out)[index] = __float2bfloat16_rn(v); break;
    default: static_cast<float*>(out)[index] = v; break;
  }
}

// ---- float epilogue (reference: alpha * acc + beta * c + bias, then the activation) ------
__device__ __forceinline__ float activate(float x, Activation act) {
  if (act == Activation::kRelu) return isnan(x) ? x : fmaxf(x, 0.0f);
  if (act == Activation::kGelu) {
    if (isinf(x) && x < 0.0f) return 0.0f;  // the limit; -inf * (1 + -1) would be NaN
    return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
  }
  return x;
}

__device__ __forceinline__ void float_epilogue_store(const FloatEpilogue& e, int row, int col, float acc) {
  float v = e.alpha * acc;
  if (e.beta != 0.0f) v += e.beta * e.c[row * e.c_rs + col * e.c_cs];
  if (e.bias != nullptr) v += e.bias[col];
  store_f32_as(e.out, row * e.ldo + col, activate(v, e.act), e.out_dtype);
}

// ---- quantized output stage ----------------------------------------------------------------
// From the exact int32 accumulator (bias included) to the output dtype; identical to
// reference.gemm_kernels.requantize: one f32 multiply, round half to even, saturate.
__device__ __forceinline__ void quant_store(void* out, int64_t index, int32_t acc, const float* scale,
                                            int col, int32_t out_zp, bool relu, DType dt) {
  if (dt == DType::kS32) {
    static_cast<int32_t*>(out)[index] = (relu && acc < 0) ? 0 : acc;
    return;
  }
  const float scaled = __fmul_rn(__int2float_rn(acc), scale[col]);
  if (dt == DType::kF32) {
    static_cast<float*>(out)[index] = (relu && scaled < 0.0f) ? 0.0f : scaled;
    return;
  }
  const int lo_q = dt == DType::kS8 ? -128 : 0;
  const int hi_q = dt == DType::kS8 ? 127 : 255;
  const int lo = relu ? max(lo_q, out_zp) : lo_q;
  // Clamp rint(scaled) to [lo - zp, hi - zp] in f32 (small integers, exact; handles
  // +-inf), then add the zero point: the same as clip(rint(scaled) + zp, lo, hi).
  float r = rintf(scaled);
  r = fminf(fmaxf(r, static_cast<float>(lo - out_zp)), static_cast<float>(hi_q - out_zp));
  const int v = static_cast<int>(r) + out_zp;
  if (dt == DType::kS8) {
    static_cast<int8_t*>(out)[index] = static_cast<int8_t>(v);
  } else {
    static_cast<uint8_t*>(out)[index] = static_cast<uint8_t>(v);
  }
}

}  // namespace aicc::cuda
