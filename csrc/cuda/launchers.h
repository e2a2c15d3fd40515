// Host entry points of the CUDA kernels: plain C++ (no CUDA headers), so the pybind11
// glue compiles as ordinary C++. Pointers are device pointers; `stream` is a cudaStream_t
// passed as an integer (0 = the legacy default stream). Every launcher only enqueues work
// on `stream` and returns; launch errors are thrown as std::runtime_error.
//
// Arguments arrive validated by aicc_kernels.ops and laid out by the Python backend
// (aicc_kernels/backends/cuda/); the launchers re-check what could make a kernel read
// or write out of bounds (sizes, grid limits), nothing more.
#pragma once

#include <cstdint>
#include <string>

namespace aicc::cuda {

enum class DType : int { kF32 = 0, kF16 = 1, kBF16 = 2, kS8 = 3, kU8 = 4, kS32 = 5 };
enum class Activation : int { kNone = 0, kRelu = 1, kGelu = 2 };

// ---- device / runtime -------------------------------------------------------------
// Number of usable devices, or -1 with `reason` set to the runtime's error string.
int device_count(std::string* reason);
int compute_capability(int device);  // major*10 + minor
int runtime_version();
int driver_version();  // 0 without a driver
void synchronize_device();

// ---- float GEMM ---------------------------------------------------------------------
// out[i, j] = act(alpha * sum_k A[i,k] B[k,j] + beta * C[i,j] + bias[j]), f32 accumulation.
struct FloatEpilogue {
  float alpha = 1.0f;
  float beta = 0.0f;          // C is read only when beta != 0
  const float* c = nullptr;   // f32, element strides c_rs / c_cs (0 allowed: broadcast)
  int64_t c_rs = 0, c_cs = 0;
  const float* bias = nullptr;  // f32 [N] or null
  Activation act = Activation::kNone;
  void* out = nullptr;          // out_dtype, row stride ldo (elements), unit column stride
  int64_t ldo = 0;
  DType out_dtype = DType::kF32;
};

// SIMT tiled GEMM (shared memory, 8x8 register tile per thread). Any element strides;
// A/B dtype f32, f16 or bf16 (converted to f32 on load). Runs on every architecture.
void gemm_simt(DType in_dtype, const void* a, int64_t a_rs, int64_t a_cs, const void* b,
               int64_t b_rs, int64_t b_cs, int m, int n, int k, const FloatEpilogue& epi,
               std::uintptr_t stream);

// Tensor-core GEMM for f16/bf16 (mma.sync m16n8k16, ldmatrix, 3-stage cp.async; sm_80+).
// A is [M, K] row-major with row stride lda, B is given transposed: Bt [N, K] row-major
// with row stride ldb. Requires K, lda, ldb multiples of 8 and 16-byte aligned bases.
void gemm_f16_mma(DType in_dtype, const void* a, int64_t lda, const void* bt, int64_t ldb,
                  int m, int n, int k, const FloatEpilogue& epi, std::uintptr_t stream);
bool gemm_mma_supported(int device);  // sm_80 or newer

// ---- INT8 GEMM ----------------------------------------------------------------------
// Packing: dst[r, kk] = s8(src[r, kk]) for kk < k (u8 is shifted by -128, exactly:
// (x ^ 0x80) as s8), 0 for k <= kk < kp; rowsum[r] = sum over kk < k of dst[r, kk].
// src element (r, kk) is at src + r*rs + kk*cs (any strides, in elements).
void pack_s8_rows(const void* src, bool src_is_u8, int64_t rs, int64_t cs, int rows, int k,
                  int kp, int8_t* dst, int32_t* rowsum, std::uintptr_t stream);

struct QuantEpilogue {
  // acc[i, j] = sum_k (a'[i,k] - za)(b[j,k] - zb[j]) + bias[j], computed modulo 2^32 as
  //   raw - zb[j]*rowsum_a[i] - za*colsum_b[j] + k*za*zb[j] + bias[j]
  // (exact: the validated true value fits in int32). a' is the packed (shifted) A and za
  // its zero point in the same shifted domain.
  const int32_t* rowsum_a = nullptr;  // [M]
  const int32_t* colsum_b = nullptr;  // [N]
  int32_t za = 0;
  const int32_t* zb = nullptr;        // [N]
  const int32_t* bias = nullptr;      // [N] or null
  int k = 0;                          // the true K (not padded)
  // Output stage (SEMANTICS.md "INT8"): s32 as is; f32 = f32(acc) * scale[j];
  // s8/u8 = saturate(rint_half_even(f32(acc) * scale[j]) + out_zp). relu: s32/f32 max(., 0),
  // s8/u8 clamp at out_zp.
  const float* scale = nullptr;       // [N] (null for s32)
  int32_t out_zp = 0;
  bool relu = false;
  void* out = nullptr;
  int64_t ldo = 0;
  DType out_dtype = DType::kS32;
};

// a8: [M, kp] packed s8 (row stride kp), bt8: [N, kp] packed s8. kp: multiple of 16.
// use_mma: mma.sync m16n8k32 (sm_80+); otherwise the dp4a SIMT kernel (sm_61+).
void qgemm_s8(const int8_t* a8, const int8_t* bt8, int m, int n, int kp, const QuantEpilogue& epi,
              bool use_mma, std::uintptr_t stream);

// ---- convolution (NHWC, weights [K, R, S, C/groups], contiguous) ------------------------
struct ConvShape {
  int n = 0, h = 0, w = 0, c = 0;  // input
  int k = 0, r = 0, s = 0;         // filters
  int p = 0, q = 0;                // output spatial size
  int stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1, groups = 1;
};

// y = act(conv(x, w) + bias); x, w in dtype (f32/f16/bf16), f32 accumulation; y out_dtype.
// Implicit GEMM: M = N*P*Q, N = K/groups, reduction R*S*C/groups, one grid z-slice per group.
void conv2d_fwd(DType in_dtype, const void* x, const void* w, const float* bias, Activation act,
                void* y, DType out_dtype, const ConvShape& sh, std::uintptr_t stream);
// Depthwise (groups == C, C/groups == 1, K = C * multiplier): one thread per output.
void conv2d_depthwise_fwd(DType in_dtype, const void* x, const void* w, const float* bias,
                          Activation act, void* y, DType out_dtype, const ConvShape& sh,
                          std::uintptr_t stream);
// dx = conv2d_backward_data(dy, w): implicit GEMM, M = N*H*W, N = C/groups, reduction K/groups*R*S.
void conv2d_bwd_data(DType dtype, const void* dy, const void* w, void* dx, const ConvShape& sh,
                     std::uintptr_t stream);
// dw = conv2d_backward_weight(x, dy): implicit GEMM, M = K/groups, N = R*S*C/groups, reduction N*P*Q.
void conv2d_bwd_weight(DType dtype, const void* x, const void* dy, void* dw, const ConvShape& sh,
                       std::uintptr_t stream);

// Quantized conv: acc = sum (x - xzp)(w - wzp[k]) + bias[k] (padding contributes 0, i.e.
// the padded input equals xzp), then the QuantEpilogue output stage (rowsum/colsum unused).
struct QConvParams {
  int32_t xzp = 0;
  const int32_t* wzp = nullptr;  // [K]
  const int32_t* bias = nullptr;  // [K] or null
  const float* scale = nullptr;   // [K] (null for s32)
  int32_t out_zp = 0;
  bool relu = false;
  DType out_dtype = DType::kS32;
};
void qconv2d_fwd(DType x_dtype, const void* x, const int8_t* w, const QConvParams& qp, void* y,
                 const ConvShape& sh, std::uintptr_t stream);

// ---- reductions for the collectives ----------------------------------------------------
enum class ReduceOp : int { kSum = 0, kMax = 1, kMin = 2 };
// dst[i] = op(dst[i], src[i]) for i < n, in f32, rounded once to dtype (f32/f16/bf16).
void reduce_inplace(DType dtype, ReduceOp op, void* dst, const void* src, int64_t n,
                    std::uintptr_t stream);
// dst[i] = dst[i] / divisor (f32 division, one rounding): the "avg" finish, as on the CPU
// (sum, then one division).
void divide_inplace(DType dtype, void* dst, int divisor, int64_t n, std::uintptr_t stream);
// dst[i] = to(src[i]) between f32 / f16 / bf16 (one round-to-nearest-even): the fp16 /
// bf16 compression of the collectives (CuPy cannot cast to bfloat16 itself).
void convert(DType from, const void* src, DType to, void* dst, int64_t n, std::uintptr_t stream);
// Block INT8 quantization of f32/f16/bf16 x, the CPU collectives' format: per block of
// `block` elements, scale = max|x| / 127 (f32), q = rint_half_even(x * (127 / max|x|)) in
// [-127, 127]; an all-zero block has scale 0, one with a non-finite value a NaN scale.
void quantize_int8_blocks(DType dtype, const void* x, int64_t n, int block, int8_t* q, float* scales,
                          std::uintptr_t stream);
// out[i] (+)= q[i] * scales[i / block] in f32, rounded once to dtype; accumulate=false overwrites.
void dequantize_int8_blocks(DType dtype, const int8_t* q, const float* scales, int64_t n, int block,
                            void* out, bool accumulate, std::uintptr_t stream);

}  // namespace aicc::cuda
