// f16 / bf16 GEMM on tensor cores (sm_80+): mma.sync m16n8k16, f32 accumulation, the float
// epilogue (alpha, beta*C, bias, activation) and one rounding to the output dtype.
#include "mma_gemm_sm80.cuh"

namespace aicc::cuda {
// A named namespace, not an anonymous one: when the arch list includes pre-sm_80 targets
// the kernel body compiles to a trap and never calls the functor, which nvcc would report
// (as an error, with -Werror) for an internal-linkage function.
namespace detail {

// Not inlined: inlining the epilogue (erff for gelu) into each of the 128 unrolled
// accumulator stores made the compiler keep the accumulators in local memory.
__device__ __noinline__ void store_one(const FloatEpilogue& epi, int row, int col, float acc) {
  float_epilogue_store(epi, row, col, acc);
}

struct FloatStore {
  FloatEpilogue epi;
  __device__ void operator()(int row, int col, float acc) const { store_one(epi, row, col, acc); }
};

}  // namespace detail

void gemm_f16_mma(DType in_dtype, const void* a, int64_t lda, const void* bt, int64_t ldb, int m, int n,
                  int k, const FloatEpilogue& epi, std::uintptr_t stream) {
  const int64_t es = 2;  // f16 and bf16
  const detail::FloatStore store{epi};
  if (in_dtype == DType::kF16) {
    mma::launch_mma_gemm<mma::F16Op>(a, lda * es, bt, ldb * es, m, n, int64_t{k} * es, store,
                                     as_stream(stream), "gemm_f16_mma");
  } else if (in_dtype == DType::kBF16) {
    mma::launch_mma_gemm<mma::BF16Op>(a, lda * es, bt, ldb * es, m, n, int64_t{k} * es, store,
                                      as_stream(stream), "gemm_bf16_mma");
  } else {
    throw std::invalid_argument("gemm_f16_mma: expected an f16 or bf16 input dtype");
  }
}

}  // namespace aicc::cuda
