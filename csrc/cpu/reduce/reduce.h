// Vector reductions used by the collectives: elementwise sum / avg / max / min over N
// equally long buffers, in a fixed source order, and INT8 block quantization.
//
// Semantics (docs/COLLECTIVES.md):
//  - f32 / f64 / integer types reduce in their own type (integers wrap, like NumPy);
//  - f16 / bf16 are widened to f32, reduced in f32 in source order, and rounded to
//    f16 / bf16 once (round to nearest even) per call;
//  - avg = sum / divisor, computed in the accumulation type before the final rounding
//    (floating-point types only);
//  - max / min propagate NaN (the first NaN in source order wins);
//  - the result depends only on the inputs and their order, never on the ISA path or the
//    thread count, so every rank of a collective that runs it gets the same bits.
#pragma once

#include <cstdint>

#include "aicc/tensor.h"

namespace aicc::cpu {

enum class ReduceOp : int { kSum = 0, kAvg = 1, kMax = 2, kMin = 3 };

const char* reduce_op_name(ReduceOp op);

// dst[i] = op(src[0][i], ..., src[nsrc-1][i]) for i < n. dst may be one of the sources
// (exactly, not partially overlapping). Single-threaded; see reduce_n_parallel.
void reduce_n(DType dtype, ReduceOp op, const void* const* src, int nsrc, void* dst, int64_t n,
              int divisor);

// The same, split over the thread pool in blocks (same result bits) when n is large.
void reduce_n_parallel(DType dtype, ReduceOp op, const void* const* src, int nsrc, void* dst,
                       int64_t n, int divisor, int max_threads);

// Converts n elements between f32 and f16 / bf16 (round to nearest even), or copies when
// the types are equal.
void convert(DType from, const void* src, DType to, void* dst, int64_t n);

// INT8 block quantization: blocks of kInt8Block values share one f32 scale
// s = max|x| / 127; q = round_half_even(x * (127 / max|x|)) in [-127, 127]; an all-zero
// block has s = 0. Non-finite inputs give a NaN scale (the block dequantizes to NaN).
constexpr int64_t kInt8Block = 256;
inline int64_t int8_blocks(int64_t n) { return (n + kInt8Block - 1) / kInt8Block; }

void quantize_int8_blocks(const float* x, int64_t n, int8_t* q, float* scales);
void dequantize_int8_blocks(const int8_t* q, const float* scales, int64_t n, float* out);

// Dequantizes nsrc block-quantized buffers, reduces them in f32 in source order, and
// requantizes the result once: the reduction step of the INT8-compressed allreduce.
void reduce_int8_blocks(ReduceOp op, const int8_t* const* q, const float* const* scales, int nsrc,
                        int64_t n, int divisor, int8_t* q_out, float* scales_out);

// One ISA's reduction kernels, as the registry lists them (csrc/cpu/config/). reduce_n and
// convert return false for the cases they do not handle (the portable loops then run); a
// nullptr member means "the portable loops" for every case.
struct ReduceKernels {
  bool (*reduce_n)(DType dtype, ReduceOp op, const void* const* src, int nsrc, void* dst, int64_t n, int divisor);
  bool (*convert)(DType from, const void* src, DType to, void* dst, int64_t n);
  void (*quantize_int8_block)(const float* x, int64_t n, int8_t* q, float* scale);
  void (*reduce_int8_block)(ReduceOp op, const int8_t* const* q, const float* const* scales, int nsrc, int64_t n,
                            int divisor, float* acc);
};

namespace detail {
// Per-ISA entry points (reduce_avx2.cc); return false when they do not handle the case.
bool reduce_n_avx2(DType dtype, ReduceOp op, const void* const* src, int nsrc, void* dst, int64_t n,
                   int divisor);
bool convert_avx2(DType from, const void* src, DType to, void* dst, int64_t n);
void quantize_int8_block_avx2(const float* x, int64_t n, int8_t* q, float* scale);
void reduce_int8_block_avx2(ReduceOp op, const int8_t* const* q, const float* const* scales, int nsrc,
                            int64_t n, int divisor, float* acc);
}  // namespace detail

}  // namespace aicc::cpu
