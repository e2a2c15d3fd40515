// The SIMT tiled GEMM skeleton shared by the f32 GEMM, the implicit-GEMM convolutions and
// the quantized convolution: a BM x BN output tile per block, BK-deep slices of A and B
// staged through shared memory, a TM x TN register tile per thread.
//
// The operands are not matrices in memory but a Problem object that says what A[row, kk]
// and B[kk, col] are (a strided matrix, an im2col view of an NHWC tensor, ...) and what to
// do with each finished accumulator (the epilogue). The kernel bounds-checks every index
// against problem.m / n / k before calling load_a / load_b / store, so a Problem never
// sees an out-of-range index; out-of-range operands read as zero and contribute nothing
// to in-range outputs. grid = (ceil(M/BM), ceil(N/BN), groups); blockIdx.z is the group.
#pragma once

#include "cuda_common.cuh"

namespace aicc::cuda {

template <typename Acc, int BM, int BN, int BK, int TM, int TN, class Problem>
__global__ void __launch_bounds__((BM / TM) * (BN / TN))
simt_tiled_gemm_kernel(const Problem problem) {
  constexpr int kThreadsN = BN / TN;
  constexpr int kThreads = (BM / TM) * kThreadsN;
  static_assert((BM * BK) % kThreads == 0 && (BK * BN) % kThreads == 0, "tile loads must divide evenly");
  // Stored k-major so the inner loop reads a column of A and a row of B contiguously.
  // A's row padding (+4) spreads the transposing stores (consecutive threads: consecutive
  // kk, same row) over distinct banks.
  __shared__ Acc a_tile[BK][BM + 4];
  __shared__ Acc b_tile[BK][BN];

  const int tid = static_cast<int>(threadIdx.x);
  const int group = static_cast<int>(blockIdx.z);
  const int row0 = static_cast<int>(blockIdx.x) * BM;
  const int col0 = static_cast<int>(blockIdx.y) * BN;
  // This thread's rows are ty + i * (BM / TM), its columns tx + j * (BN / TN): interleaved
  // rather than contiguous, so a warp's reads of one b_tile row hit consecutive banks and
  // its stores of one output row are consecutive addresses.
  constexpr int kRowStep = BM / TM, kColStep = BN / TN;
  const int ty = tid / kThreadsN;
  const int tx = tid % kThreadsN;

  Acc acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = Acc(0);

  for (int k0 = 0; k0 < problem.k; k0 += BK) {
    // Consecutive threads take consecutive kk for A and consecutive columns for B, which
    // is the contiguous direction of the common layouts.
#pragma unroll
    for (int l = 0; l < BM * BK / kThreads; ++l) {
      const int e = tid + l * kThreads;
      const int r = e / BK, kk = e % BK;
      const int gr = row0 + r, gk = k0 + kk;
      a_tile[kk][r] = (gr < problem.m && gk < problem.k) ? problem.load_a(group, gr, gk) : Acc(0);
    }
#pragma unroll
    for (int l = 0; l < BK * BN / kThreads; ++l) {
      const int e = tid + l * kThreads;
      const int kk = e / BN, c = e % BN;
      const int gk = k0 + kk, gc = col0 + c;
      b_tile[kk][c] = (gk < problem.k && gc < problem.n) ? problem.load_b(group, gk, gc) : Acc(0);
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      Acc a[TM], b[TN];
#pragma unroll
      for (int i = 0; i < TM; ++i) a[i] = a_tile[kk][ty + i * kRowStep];
#pragma unroll
      for (int j = 0; j < TN; ++j) b[j] = b_tile[kk][tx + j * kColStep];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();  // the next slice overwrites the tiles
  }

#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int gr = row0 + ty + i * kRowStep;
    if (gr >= problem.m) continue;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int gc = col0 + tx + j * kColStep;
      if (gc < problem.n) problem.store(group, gr, gc, acc[i][j]);
    }
  }
}

// Launches the kernel over problem.m x problem.n (x groups).
template <typename Acc, int BM, int BN, int BK, int TM, int TN, class Problem>
void launch_simt_tiled_gemm(const Problem& problem, int groups, cudaStream_t stream, const char* what) {
  if (problem.m <= 0 || problem.n <= 0 || groups <= 0) return;
  const unsigned gy = ceil_div(problem.n, BN);
  check_grid_y(gy, what);
  if (groups > 65535) throw std::invalid_argument(std::string(what) + ": expected at most 65535 groups");
  const dim3 grid(ceil_div(problem.m, BM), gy, static_cast<unsigned>(groups));
  simt_tiled_gemm_kernel<Acc, BM, BN, BK, TM, TN, Problem>
      <<<grid, (BM / TM) * (BN / TN), 0, stream>>>(problem);
  check_launch(what);
}

}  // namespace aicc::cuda
