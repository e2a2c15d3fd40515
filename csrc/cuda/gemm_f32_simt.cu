// Float GEMM on CUDA cores: f32 (and f16/bf16 inputs on GPUs without the tensor-core path,
// or with operands the tensor-core kernel cannot take), f32 accumulation, any strides.
#include "simt_tiled_gemm.cuh"

namespace aicc::cuda {
namespace {

template <typename T>
struct StridedGemmProblem {
  const T* a;
  int64_t a_rs, a_cs;
  const T* b;
  int64_t b_rs, b_cs;
  int m, n, k;
  FloatEpilogue epi;

  __device__ float load_a(int, int row, int kk) const { return to_f32(a[row * a_rs + kk * a_cs]); }
  __device__ float load_b(int, int kk, int col) const { return to_f32(b[kk * b_rs + col * b_cs]); }
  __device__ void store(int, int row, int col, float acc) const { float_epilogue_store(epi, row, col, acc); }
};

template <typename T>
void run(const void* a, int64_t a_rs, int64_t a_cs, const void* b, int64_t b_rs, int64_t b_cs,
         int m, int n, int k, const FloatEpilogue& epi, cudaStream_t stream) {
  const StridedGemmProblem<T> p{static_cast<const T*>(a), a_rs, a_cs, static_cast<const T*>(b), b_rs,
                                b_cs, m, n, k, epi};
  // 128x128 block tile, 8-deep k slices, 8x8 per thread: 256 threads, 64 f32 accumulators each.
  launch_simt_tiled_gemm<float, 128, 128, 8, 8, 8>(p, 1, stream, "gemm_simt");
}

}  // namespace

void gemm_simt(DType in_dtype, const void* a, int64_t a_rs, int64_t a_cs, const void* b, int64_t b_rs,
               int64_t b_cs, int m, int n, int k, const FloatEpilogue& epi, std::uintptr_t stream) {
  switch (in_dtype) {
    case DType::kF32: run<float>(a, a_rs, a_cs, b, b_rs, b_cs, m, n, k, epi, as_stream(stream)); break;
    case DType::kF16: run<__half>(a, a_rs, a_cs, b, b_rs, b_cs, m, n, k, epi, as_stream(stream)); break;
    case DType::kBF16:
      run<__nv_bfloat16>(a, a_rs, a_cs, b, b_rs, b_cs, m, n, k, epi, as_stream(stream));
      break;
    default: throw std::invalid_argument("gemm_simt: expected an f32, f16 or bf16 input dtype");
  }
}

}  // namespace aicc::cuda
