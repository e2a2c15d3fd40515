// INT8 GEMM: packing (u8 -> s8 shift, zero padding of K, row sums), the exact zero-point
// corrections, and two accumulation kernels on the same packed operands:
//   sm_80+: mma.sync m16n8k32 s8 x s8 -> s32 (mma_gemm_sm80.cuh);
//   older:  a SIMT kernel on dp4a (4 s8 products per instruction, sm_61+).
//
// Exactness: u8 a is packed as a' = a - 128 (= (a ^ 0x80) read as s8) and its zero point
// becomes za' = za - 128, so (a - za) = (a' - za') and every product is unchanged. The raw
// sum_k a'b never exceeds the validated bound (|a'|, |b| <= 128 <= the zero-pointed
// magnitudes), and the corrections are done modulo 2^32 where the true result, which the
// op layer proved fits in int32, is recovered exactly.
#include "mma_gemm_sm80.cuh"

namespace aicc::cuda {
namespace {

// One warp per row: lanes stride over K, then a shuffle reduction of the row sum.
__global__ void pack_s8_rows_kernel(const unsigned char* __restrict__ src, bool is_u8, int64_t rs, int64_t cs,
                                    int rows, int k, int kp, int8_t* __restrict__ dst,
                                    int32_t* __restrict__ rowsum) {
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int row = static_cast<int>(blockIdx.x) * (blockDim.x / 32) + static_cast<int>(threadIdx.x) / 32;
  if (row >= rows) return;  // whole warps exit together: the row is warp-uniform
  int32_t sum = 0;
  for (int kk = lane; kk < kp; kk += 32) {
    int8_t v = 0;
    if (kk < k) {
      const unsigned char raw = src[row * rs + kk * cs];
      v = static_cast<int8_t>(is_u8 ? raw ^ 0x80u : raw);
    }
    dst[static_cast<int64_t>(row) * kp + kk] = v;
    sum += v;
  }
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
  if (lane == 0) rowsum[row] = sum;
}

struct QuantStore {
  QuantEpilogue e;
  __device__ void operator()(int row, int col, int32_t raw) const {
    // acc = raw - zb*rowsum_a - za*colsum_b + k*za*zb + bias, all modulo 2^32.
    const uint32_t zb = static_cast<uint32_t>(e.zb[col]);
    const uint32_t za = static_cast<uint32_t>(e.za);
    uint32_t acc = static_cast<uint32_t>(raw) - zb * static_cast<uint32_t>(e.rowsum_a[row]) -
                   za * static_cast<uint32_t>(e.colsum_b[col]) + static_cast<uint32_t>(e.k) * za * zb;
    if (e.bias != nullptr) acc += static_cast<uint32_t>(e.bias[col]);
    quant_store(e.out, row * e.ldo + col, static_cast<int32_t>(acc), e.scale, col, e.out_zp, e.relu,
                e.out_dtype);
  }
};

// dp4a SIMT kernel: 64 x 64 output tile, 16 words (64 s8) of K per slice, 4 x 4 per thread.
constexpr int kDpTile = 64, kDpWords = 16, kDpThreads = 256;

__global__ void __launch_bounds__(kDpThreads)
qgemm_dp4a_kernel(const int32_t* __restrict__ a, const int32_t* __restrict__ bt, int m, int n, int kw,
                  const QuantStore store) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 610
  __trap();  // dp4a needs sm_61; the launcher is never asked to run it below that
#endif
  // +1 word of padding: the 4 rows a thread reads at one k land in different banks.
  __shared__ int32_t as[kDpTile][kDpWords + 1];
  __shared__ int32_t bs[kDpTile][kDpWords + 1];
  const int tid = static_cast<int>(threadIdx.x);
  const int row0 = static_cast<int>(blockIdx.x) * kDpTile, col0 = static_cast<int>(blockIdx.y) * kDpTile;
  const int ty = tid / 16, tx = tid % 16;
  int32_t acc[4][4] = {};
  for (int k0 = 0; k0 < kw; k0 += kDpWords) {
#pragma unroll
    for (int l = 0; l < kDpTile * kDpWords / kDpThreads; ++l) {
      const int e = tid + l * kDpThreads;
      const int r = e / kDpWords, w = e % kDpWords;
      const bool kin = k0 + w < kw;
      as[r][w] = (kin && row0 + r < m) ? a[static_cast<int64_t>(row0 + r) * kw + k0 + w] : 0;
      bs[r][w] = (kin && col0 + r < n) ? bt[static_cast<int64_t>(col0 + r) * kw + k0 + w] : 0;
    }
    __syncthreads();
#pragma unroll
    for (int w = 0; w < kDpWords; ++w) {
      int32_t av[4], bv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) av[i] = as[ty + 16 * i][w];
#pragma unroll
      for (int j = 0; j < 4; ++j) bv[j] = bs[tx + 16 * j][w];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 610
          acc[i][j] = __dp4a(av[i], bv[j], acc[i][j]);  // wraps modulo 2^32, like the mma path
#endif
        }
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int row = row0 + ty + 16 * i, col = col0 + tx + 16 * j;
      if (row < m && col < n) store(row, col, acc[i][j]);
    }
}

}  // namespace

void pack_s8_rows(const void* src, bool src_is_u8, int64_t rs, int64_t cs, int rows, int k, int kp,
                  int8_t* dst, int32_t* rowsum, std::uintptr_t stream) {
  if (rows <= 0) return;
  if (kp < k || kp % 16) throw std::invalid_argument("pack_s8_rows: expected kp >= k, a multiple of 16");
  constexpr int kWarps = 8;
  pack_s8_rows_kernel<<<ceil_div(rows, kWarps), kWarps * 32, 0, as_stream(stream)>>>(
      static_cast<const unsigned char*>(src), src_is_u8, rs, cs, rows, k, kp, dst, rowsum);
  check_launch("pack_s8_rows");
}

void qgemm_s8(const int8_t* a8, const int8_t* bt8, int m, int n, int kp, const QuantEpilogue& epi, bool use_mma,
              std::uintptr_t stream) {
  if (m <= 0 || n <= 0) return;
  if (kp % 16) throw std::invalid_argument("qgemm_s8: expected a packed K that is a multiple of 16");
  const QuantStore store{epi};
  if (use_mma) {
    mma::launch_mma_gemm<mma::S8Op>(a8, kp, bt8, kp, m, n, kp, store, as_stream(stream), "qgemm_s8_mma");
    return;
  }
  const unsigned gy = ceil_div(n, kDpTile);
  check_grid_y(gy, "qgemm_s8_dp4a");
  qgemm_dp4a_kernel<<<dim3(ceil_div(m, kDpTile), gy), kDpThreads, 0, as_stream(stream)>>>(
      reinterpret_cast<const int32_t*>(a8), reinterpret_cast<const int32_t*>(bt8), m, n, kp / 4, store);
  check_launch("qgemm_s8_dp4a");
}

}  // namespace aicc::cuda
