// Element-wise reductions and INT8 block (de)quantization used by the NCCL communicator
// (the reductions NCCL lacks or that compression needs). f16/bf16 are computed in f32 and
// rounded once per call, the CPU collectives' contract.
#include "cuda_common.cuh"

namespace aicc::cuda {
namespace {

constexpr int kThreads = 256;

unsigned grid_for(int64_t n) {
  // Grid-stride loops below: cap the grid, every element is still visited.
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 65535 * 8 ? blocks : 65535 * 8);
}

__device__ __forceinline__ float combine(float a, float b, ReduceOp op) {
  // max/min propagate NaN (fmaxf would drop it), matching NumPy's maximum / minimum.
  if (op == ReduceOp::kSum) return a + b;
  if (isnan(a) || isnan(b)) return a + b;
  return op == ReduceOp::kMax ? fmaxf(a, b) : fminf(a, b);
}

template <typename T>
__global__ void reduce_inplace_kernel(T* __restrict__ dst, const T* __restrict__ src, int64_t n, ReduceOp op) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    dst[i] = from_f32<T>(combine(to_f32(dst[i]), to_f32(src[i]), op));
  }
}

template <typename T>
__global__ void divide_inplace_kernel(T* __restrict__ dst, float divisor, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    dst[i] = from_f32<T>(__fdiv_rn(to_f32(dst[i]), divisor));
  }
}

template <typename From, typename To>
__global__ void convert_kernel(const From* __restrict__ src, To* __restrict__ dst, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    dst[i] = from_f32<To>(to_f32(src[i]));
  }
}

// One block per quantization block (the CPU collectives' kInt8Block = 256 values): a
// block-wide max|x| (warp shuffles, then shared memory across the 8 warps), then
// q = rint_half_even(x * (127 / max|x|)), scale = max|x| / 127 (the CPU's formula);
// an all-zero block has scale 0, a block with a non-finite value a NaN scale.
template <typename T>
__global__ void quantize_blocks_kernel(const T* __restrict__ x, int64_t n, int block, int8_t* __restrict__ q,
                                       float* __restrict__ scales) {
  __shared__ float warp_max[kThreads / 32];
  const int64_t begin = static_cast<int64_t>(blockIdx.x) * block;
  const int64_t end = begin + block < n ? begin + block : n;
  float amax = 0.0f;
  int bad = 0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const float v = to_f32(x[i]);
    bad |= !isfinite(v);
    amax = fmaxf(amax, fabsf(v));
  }
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
  if ((threadIdx.x & 31) == 0) warp_max[threadIdx.x / 32] = amax;
  bad = __syncthreads_or(bad);  // also the barrier that publishes warp_max
  amax = 0.0f;
#pragma unroll
  for (int wi = 0; wi < kThreads / 32; ++wi) amax = fmaxf(amax, warp_max[wi]);
  const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
  if (threadIdx.x == 0) scales[blockIdx.x] = bad ? __int_as_float(0x7fc00000) : amax / 127.0f;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const float v = bad ? 0.0f : fminf(fmaxf(rintf(to_f32(x[i]) * inv), -127.0f), 127.0f);
    q[i] = static_cast<int8_t>(v);
  }
}

template <typename T>
__global__ void dequantize_blocks_kernel(const int8_t* __restrict__ q, const float* __restrict__ scales, int64_t n,
                                         int block, T* __restrict__ out, bool accumulate) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float v = static_cast<float>(q[i]) * scales[i / block];
    out[i] = from_f32<T>(accumulate ? to_f32(out[i]) + v : v);
  }
}

template <template <typename> class F, typename... Args>
void dispatch_float(DType dt, const char* what, Args&&... args) {
  switch (dt) {
    case DType::kF32: F<float>::run(args...); break;
    case DType::kF16: F<__half>::run(args...); break;
    case DType::kBF16: F<__nv_bfloat16>::run(args...); break;
    default: throw std::invalid_argument(std::string(what) + ": expected an f32, f16 or bf16 dtype");
  }
}

template <typename T> struct ReduceRun {
  static void run(ReduceOp op, void* dst, const void* src, int64_t n, cudaStream_t st) {
    reduce_inplace_kernel<T><<<grid_for(n), kThreads, 0, st>>>(static_cast<T*>(dst), static_cast<const T*>(src), n, op);
  }
};
template <typename T> struct DivideRun {
  static void run(void* dst, float d, int64_t n, cudaStream_t st) {
    divide_inplace_kernel<T><<<grid_for(n), kThreads, 0, st>>>(static_cast<T*>(dst), d, n);
  }
};
template <typename From> struct ConvertFrom {
  template <typename To>
  struct To_ {
    static void run(const void* src, void* dst, int64_t n, cudaStream_t st) {
      convert_kernel<From, To><<<grid_for(n), kThreads, 0, st>>>(static_cast<const From*>(src), static_cast<To*>(dst), n);
    }
  };
  static void run(DType to, const void* src, void* dst, int64_t n, cudaStream_t st) {
    dispatch_float<To_>(to, "convert", src, dst, n, st);
  }
};
template <typename T> struct QuantRun {
  static void run(const void* x, int64_t n, int block, int8_t* q, float* scales, cudaStream_t st) {
    const int64_t blocks = (n + block - 1) / block;
    if (blocks > INT32_MAX) throw std::invalid_argument("quantize_int8_blocks: expected fewer than 2^31 blocks");
    quantize_blocks_kernel<T><<<static_cast<unsigned>(blocks), kThreads, 0, st>>>(static_cast<const T*>(x), n,
                                                                                 block, q, scales);
  }
};
template <typename T> struct DequantRun {
  static void run(const int8_t* q, const float* scales, int64_t n, int block, void* out, bool acc, cudaStream_t st) {
    dequantize_blocks_kernel<T><<<grid_for(n), kThreads, 0, st>>>(q, scales, n, block, static_cast<T*>(out), acc);
  }
};

}  // namespace

void reduce_inplace(DType dtype, ReduceOp op, void* dst, const void* src, int64_t n, std::uintptr_t stream) {
  if (n <= 0) return;
  dispatch_float<ReduceRun>(dtype, "reduce_inplace", op, dst, src, n, as_stream(stream));
  check_launch("reduce_inplace");
}

void divide_inplace(DType dtype, void* dst, int divisor, int64_t n, std::uintptr_t stream) {
  if (n <= 0) return;
  if (divisor <= 0) throw std::invalid_argument("divide_inplace: expected a positive divisor");
  dispatch_float<DivideRun>(dtype, "divide_inplace", dst, static_cast<float>(divisor), n, as_stream(stream));
  check_launch("divide_inplace");
}

void convert(DType from, const void* src, DType to, void* dst, int64_t n, std::uintptr_t stream) {
  if (n <= 0) return;
  dispatch_float<ConvertFrom>(from, "convert", to, src, dst, n, as_stream(stream));
  check_launch("convert");
}

void quantize_int8_blocks(DType dtype, const void* x, int64_t n, int block, int8_t* q, float* scales,
                          std::uintptr_t stream) {
  if (n <= 0) return;
  if (block <= 0) throw std::invalid_argument("quantize_int8_blocks: expected a positive block size");
  dispatch_float<QuantRun>(dtype, "quantize_int8_blocks", x, n, block, q, scales, as_stream(stream));
  check_launch("quantize_int8_blocks");
}

void dequantize_int8_blocks(DType dtype, const int8_t* q, const float* scales, int64_t n, int block, void* out,
                            bool accumulate, std::uintptr_t stream) {
  if (n <= 0) return;
  if (block <= 0) throw std::invalid_argument("dequantize_int8_blocks: expected a positive block size");
  dispatch_float<DequantRun>(dtype, "dequantize_int8_blocks", q, scales, n, block, out, accumulate, as_stream(stream));
  check_launch("dequantize_int8_blocks");
}

}  // namespace aicc::cuda
