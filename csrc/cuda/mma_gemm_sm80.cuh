// The tensor-core GEMM skeleton for sm_80+: mma.sync (m16n8k16 for f16/bf16, m16n8k32 for
// s8), operands brought to registers with ldmatrix, a 3-stage cp.async pipeline.
//
// Both operands are K-contiguous ("TN"): A is [M, K] row-major, B is given as Bt [N, K]
// row-major. Viewed as bytes, one 16x8 k-step of either mma is 32 bytes of K for both
// element types, so a single byte-level tiling serves f16, bf16 and s8:
//   block tile 128 x 128, 64 bytes of K per stage (32 f16 or 64 s8), 4 warps in 2 x 2,
//   each warp 64 x 64 (4 m16 tiles x 8 n8 tiles), 2 k-steps per stage.
// Shared-memory rows are 80 bytes (64 + 16 padding): the 8 row addresses of one ldmatrix
// then fall on 8 distinct 16-byte bank groups (r * 80 mod 128 = 0, 80, 32, 112, ...).
//
// Requirements (checked by the launchers): K * sizeof(T), lda and ldb in bytes multiples
// of 16, base pointers 16-byte aligned. Rows past M or N and K past the end are filled with
// zeros by cp.async's src-size operand (the address stays in bounds: the base pointer).
#pragma once

#include "cuda_common.cuh"

namespace aicc::cuda::mma {

constexpr int kBM = 128, kBN = 128, kBKBytes = 64, kStages = 3, kThreads = 128;
constexpr int kRowBytes = kBKBytes + 16;
constexpr int kTileBytes = kBM * kRowBytes;           // one operand, one stage (kBM == kBN)
constexpr int kSmemBytes = kStages * 2 * kTileBytes;  // 61440: needs the opt-in attribute
static_assert(kBM == kBN, "A and B stage tiles share one size");

struct F16Op {
  using Acc = float;
  static __device__ __forceinline__ void mma(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
                 "{%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
  }
};

struct BF16Op {
  using Acc = float;
  static __device__ __forceinline__ void mma(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
                 "{%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
  }
};

// Integer accumulation wraps modulo 2^32 (no .satfinite): the zero-point corrections in
// the epilogue rely on exact modular arithmetic.
struct S8Op {
  using Acc = int32_t;
  static __device__ __forceinline__ void mma(int32_t (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
                 "{%8,%9}, {%0,%1,%2,%3};\n"
                 : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
  }
};

__device__ __forceinline__ void cp_async_16(void* smem, const void* gmem, int src_bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(src_bytes));
#endif
}

__device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}

template <int N>
__device__ __forceinline__ void cp_async_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#endif
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* smem) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
#endif
}

// Copies one stage: the 128 x 64-byte slices of A and Bt starting at K byte `kbyte`.
// 512 16-byte chunks per operand, 4 per thread; chunk id -> (row = id / 4, chunk = id % 4).
__device__ __forceinline__ void load_stage(unsigned char* sa, unsigned char* sb, const unsigned char* a,
                                           int64_t lda_bytes, const unsigned char* bt, int64_t ldb_bytes,
                                           int m, int n, int64_t k_bytes, int row0, int col0, int64_t kbyte) {
  const int tid = static_cast<int>(threadIdx.x);
#pragma unroll
  for (int i = 0; i < (kBM * kBKBytes / 16) / kThreads; ++i) {
    const int id = tid + i * kThreads;
    const int r = id >> 2, chunk = id & 3;
    const int64_t kb = kbyte + chunk * 16;
    const bool in_k = kb < k_bytes;
    const bool a_ok = in_k && row0 + r < m;
    const bool b_ok = in_k && col0 + r < n;
    const unsigned char* a_src = a_ok ? a + (row0 + r) * lda_bytes + kb : a;
    const unsigned char* b_src = b_ok ? bt + (col0 + r) * ldb_bytes + kb : bt;
    cp_async_16(sa + r * kRowBytes + chunk * 16, a_src, a_ok ? 16 : 0);
    cp_async_16(sb + r * kRowBytes + chunk * 16, b_src, b_ok ? 16 : 0);
  }
}

// Epilogue: a functor with `__device__ void operator()(int row, int col, Acc acc) const`,
// called once per in-range output element.
template <class Op, class Epilogue>
__global__ void __launch_bounds__(kThreads)
mma_gemm_kernel(const unsigned char* __restrict__ a, int64_t lda_bytes, const unsigned char* __restrict__ bt,
                int64_t ldb_bytes, int m, int n, int64_t k_bytes, const Epilogue epilogue) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using Acc = typename Op::Acc;
  extern __shared__ __align__(128) unsigned char smem[];
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int warp = static_cast<int>(threadIdx.x) >> 5;
  const int warp_m = (warp >> 1) * 64, warp_n = (warp & 1) * 64;
  const int row0 = static_cast<int>(blockIdx.x) * kBM;
  const int col0 = static_cast<int>(blockIdx.y) * kBN;
  auto stage_a = [&](int s) { return smem + s * 2 * kTileBytes; };
  auto stage_b = [&](int s) { return smem + s * 2 * kTileBytes + kTileBytes; };

  Acc acc[4][8][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = Acc(0);

  const int k_tiles = static_cast<int>((k_bytes + kBKBytes - 1) / kBKBytes);
  // Prologue: stages 0 .. kStages-2 in flight, one commit group each (empty ones too, so
  // that group i always holds tile i and wait_group counts stay exact).
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < k_tiles) {
      load_stage(stage_a(s), stage_b(s), a, lda_bytes, bt, ldb_bytes, m, n, k_bytes, row0, col0,
                 static_cast<int64_t>(s) * kBKBytes);
    }
    cp_async_commit();
  }

  for (int kt = 0; kt < k_tiles; ++kt) {
    // Groups committed so far: kStages-1+kt. Leaving kStages-2 pending means groups
    // 0..kt are complete, so tile kt has landed (for this thread; the barrier makes it
    // visible to all and also guarantees every warp has finished reading stage (kt-1),
    // which the prefetch below overwrites).
    cp_async_wait<kStages - 2>();
    __syncthreads();
    const int next = kt + kStages - 1;
    if (next < k_tiles) {
      load_stage(stage_a(next % kStages), stage_b(next % kStages), a, lda_bytes, bt, ldb_bytes, m, n,
                 k_bytes, row0, col0, static_cast<int64_t>(next) * kBKBytes);
    }
    cp_async_commit();

    const unsigned char* sa = stage_a(kt % kStages);
    const unsigned char* sb = stage_b(kt % kStages);
#pragma unroll
    for (int ks = 0; ks < kBKBytes / 32; ++ks) {
      uint32_t af[4][4], bf[8][2];
#pragma unroll
      for (int mi = 0; mi < 4; ++mi) {
        // Lanes 0-15 address rows 0-15 at the k-step's first 16 bytes, lanes 16-31 the
        // same rows at the second 16 bytes: registers come back in mma A-fragment order.
        const int r = warp_m + mi * 16 + (lane & 15);
        ldmatrix_x4(af[mi], sa + r * kRowBytes + ks * 32 + (lane >> 4) * 16);
      }
#pragma unroll
      for (int nj = 0; nj < 4; ++nj) {
        // Matrices: (n 0-7, bytes 0-15), (n 0-7, bytes 16-31), (n 8-15, 0-15), (n 8-15, 16-31)
        // = b0, b1 of n8 tile 2*nj, then b0, b1 of tile 2*nj+1.
        const int r = warp_n + nj * 16 + (lane & 7) + ((lane >> 4) << 3);
        uint32_t t[4];
        ldmatrix_x4(t, sb + r * kRowBytes + ks * 32 + ((lane >> 3) & 1) * 16);
        bf[2 * nj][0] = t[0];
        bf[2 * nj][1] = t[1];
        bf[2 * nj + 1][0] = t[2];
        bf[2 * nj + 1][1] = t[3];
      }
#pragma unroll
      for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int ni = 0; ni < 8; ++ni) Op::mma(acc[mi][ni], af[mi], bf[ni]);
    }
  }
  cp_async_wait<0>();  // only empty groups can remain; drain them before exit

  // Accumulator layout of m16n8: c0,c1 at (row g, cols 2t, 2t+1), c2,c3 at row g+8,
  // with g = lane / 4, t = lane % 4.
#pragma unroll
  for (int mi = 0; mi < 4; ++mi) {
#pragma unroll
    for (int ni = 0; ni < 8; ++ni) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int row = row0 + warp_m + mi * 16 + (lane >> 2) + (e >> 1) * 8;
        const int col = col0 + warp_n + ni * 8 + (lane & 3) * 2 + (e & 1);
        if (row < m && col < n) epilogue(row, col, acc[mi][ni][e]);
      }
    }
  }
#else
  __trap();  // launchers never select this kernel below sm_80
#endif
}

template <class Op, class Epilogue>
void launch_mma_gemm(const void* a, int64_t lda_bytes, const void* bt, int64_t ldb_bytes, int m, int n,
                     int64_t k_bytes, const Epilogue& epilogue, cudaStream_t stream, const char* what) {
  if (m <= 0 || n <= 0) return;
  if (k_bytes % 16 || lda_bytes % 16 || ldb_bytes % 16 || reinterpret_cast<std::uintptr_t>(a) % 16 ||
      reinterpret_cast<std::uintptr_t>(bt) % 16) {
    throw std::invalid_argument(std::string(what) + ": expected 16-byte aligned operands with K and "
                                "leading dimensions in multiples of 16 bytes");
  }
  const unsigned gy = ceil_div(n, kBN);
  check_grid_y(gy, what);
  auto kernel = mma_gemm_kernel<Op, Epilogue>;
  throw_if_failed(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes),
                  what);
  kernel<<<dim3(ceil_div(m, kBM), gy), kThreads, kSmemBytes, stream>>>(
      static_cast<const unsigned char*>(a), lda_bytes, static_cast<const unsigned char*>(bt), ldb_bytes, m,
      n, k_bytes, epilogue);
  check_launch(what);
}

}  // namespace aicc::cuda::mma
