// Portable reductions and the ISA dispatch (reduce_avx2.cc holds the AVX2 path). The
// portable loops define the result bits; the AVX2 path computes the same operations in
// the same order (no FMA contraction, same NaN rule), so both give identical output.
#include "cpu/reduce/reduce.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "aicc/status.h"
#include "cpu/config/registry.h"
#include "common/half.h"
#include "common/thread_pool.h"

namespace aicc::cpu {

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return "sum";
    case ReduceOp::kAvg: return "avg";
    case ReduceOp::kMax: return "max";
    case ReduceOp::kMin: return "min";
  }
  return "?";
}

namespace {

// max/min with the AVX2 rule: a NaN in `a` wins, else a NaN in `b`, else the larger
// (smaller); on ties `b` (matches vmaxps followed by a blend of NaN lanes of `a`).
template <typename T>
inline T pick_max(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(a)) return a;
    if (std::isnan(b)) return b;
  }
  return a > b ? a : b;
}
template <typename T>
inline T pick_min(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(a)) return a;
    if (std::isnan(b)) return b;
  }
  return a < b ? a : b;
}

template <typename T>
inline T wrap_add(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(static_cast<U>(a) + static_cast<U>(b)));
  } else {
    return a + b;
  }
}

// Reduces n elements of native type T (f32, f64, integers).
template <typename T>
void reduce_native(ReduceOp op, const void* const* src, int nsrc, void* dst, int64_t n, int divisor) {
  T* out = static_cast<T*>(dst);
  const T* s0 = static_cast<const T*>(src[0]);
  constexpr int64_t kBlock = 512;
  T acc[kBlock];
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t len = std::min(kBlock, n - b);
    for (int64_t i = 0; i < len; ++i) acc[i] = s0[b + i];
    for (int r = 1; r < nsrc; ++r) {
      const T* s = static_cast<const T*>(src[r]) + b;
      switch (op) {
        case ReduceOp::kSum:
        case ReduceOp::kAvg:
          for (int64_t i = 0; i < len; ++i) acc[i] = wrap_add(acc[i], s[i]);
          break;
        case ReduceOp::kMax:
          for (int64_t i = 0; i < len; ++i) acc[i] = pick_max(acc[i], s[i]);
          break;
        case ReduceOp::kMin:
          for (int64_t i = 0; i < len; ++i) acc[i] = pick_min(acc[i], s[i]);
          break;
      }
    }
    if constexpr (std::is_floating_point_v<T>) {
      if (op == ReduceOp::kAvg) {
        const T d = static_cast<T>(divisor);
        for (int64_t i = 0; i < len; ++i) acc[i] = acc[i] / d;
      }
    }
    std::memcpy(out + b, acc, static_cast<size_t>(len) * sizeof(T));
  }
}

// One step of the f32-accumulated reductions (f16/bf16 and INT8 blocks), and the avg divide
// that ends them: the same operations, in the same order, as the AVX2 kernels.
inline float combine_f32(ReduceOp op, float acc, float v) {
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAvg: return acc + v;
    case ReduceOp::kMax: return pick_max(acc, v);
    case ReduceOp::kMin: return pick_min(acc, v);
  }
  return acc;
}

inline void finish_avg_f32(ReduceOp op, float* acc, int64_t len, int64_t divisor) {
  if (op != ReduceOp::kAvg) return;
  const float d = static_cast<float>(divisor);
  for (int64_t i = 0; i < len; ++i) acc[i] = acc[i] / d;
}

inline float half_to_f32(DType t, uint16_t h) { return t == DType::kF16 ? f16_to_f32(h) : bf16_to_f32(h); }
inline uint16_t f32_to_half(DType t, float f) { return t == DType::kF16 ? f32_to_f16(f) : f32_to_bf16(f); }

// f16 / bf16: widen to f32, reduce in f32 in source order, round once.
void reduce_half(DType t, ReduceOp op, const void* const* src, int nsrc, void* dst, int64_t n, int divisor) {
  uint16_t* out = static_cast<uint16_t*>(dst);
  constexpr int64_t kBlock = 512;
  float acc[kBlock];
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t len = std::min(kBlock, n - b);
    const uint16_t* s0 = static_cast<const uint16_t*>(src[0]) + b;
    for (int64_t i = 0; i < len; ++i) acc[i] = half_to_f32(t, s0[i]);
    for (int r = 1; r < nsrc; ++r) {
      const uint16_t* s = static_cast<const uint16_t*>(src[r]) + b;
      for (int64_t i = 0; i < len; ++i) acc[i] = combine_f32(op, acc[i], half_to_f32(t, s[i]));
    }
    finish_avg_f32(op, acc, len, divisor);
    for (int64_t i = 0; i < len; ++i) out[b + i] = f32_to_half(t, acc[i]);
  }
}

void check_common(DType dtype, ReduceOp op, int nsrc, int64_t n, int divisor) {
  if (nsrc < 1) throw_invalid("nsrc", "at least 1 source", std::to_string(nsrc));
  if (n < 0) throw_invalid("n", "a non-negative count", std::to_string(n));
  if (op == ReduceOp::kAvg) {
    if (divisor < 1) throw_invalid("divisor", "a positive divisor for avg", std::to_string(divisor));
    if (dtype != DType::kF32 && dtype != DType::kF64 && dtype != DType::kF16 && dtype != DType::kBF16)
      throw_invalid("op", "sum, max or min for integer dtypes", std::string("avg over ") + dtype_name(dtype));
  }
}

// Block quantization of one block of len <= kInt8Block values.
void quantize_block(const float* x, int64_t len, int8_t* q, float* scale) {
  float m = 0.0f;
  bool finite = true;
  for (int64_t i = 0; i < len; ++i) {
    const float a = std::fabs(x[i]);
    if (!(a <= std::numeric_limits<float>::max())) finite = false;
    m = a > m ? a : m;
  }
  if (!finite) {
    *scale = std::numeric_limits<float>::quiet_NaN();
    std::memset(q, 0, static_cast<size_t>(len));
    return;
  }
  if (m == 0.0f) {
    *scale = 0.0f;
    std::memset(q, 0, static_cast<size_t>(len));
    return;
  }
  *scale = m / 127.0f;
  const float inv = 127.0f / m;
  for (int64_t i = 0; i < len; ++i) {
    float v = std::nearbyint(x[i] * inv);
    v = std::min(127.0f, std::max(-127.0f, v));
    q[i] = static_cast<int8_t>(v);
  }
}

// The registry's reduction kernels for the active CPU features.
const ReduceKernels& kernels() { return *registry::select(registry::families().reduce).impl; }

}  // namespace

void reduce_n(DType dtype, ReduceOp op, const void* const* src, int nsrc, void* dst, int64_t n, int divisor) {
  check_common(dtype, op, nsrc, n, divisor);
  if (n == 0) return;
  const ReduceKernels& k = kernels();
  if (k.reduce_n != nullptr && k.reduce_n(dtype, op, src, nsrc, dst, n, divisor)) return;
  switch (dtype) {
    case DType::kF32: return reduce_native<float>(op, src, nsrc, dst, n, divisor);
    case DType::kF64: return reduce_native<double>(op, src, nsrc, dst, n, divisor);
    case DType::kF16:
    case DType::kBF16: return reduce_half(dtype, op, src, nsrc, dst, n, divisor);
    case DType::kS8: return reduce_native<int8_t>(op, src, nsrc, dst, n, divisor);
    case DType::kU8: return reduce_native<uint8_t>(op, src, nsrc, dst, n, divisor);
    case DType::kS32: return reduce_native<int32_t>(op, src, nsrc, dst, n, divisor);
    case DType::kS64: return reduce_native<int64_t>(op, src, nsrc, dst, n, divisor);
  }
}

void reduce_n_parallel(DType dtype, ReduceOp op, const void* const* src, int nsrc, void* dst, int64_t n,
                       int divisor, int max_threads) {
  check_common(dtype, op, nsrc, n, divisor);
  constexpr int64_t kTask = int64_t{1} << 16;  // elements per task; a multiple of every vector width
  const int64_t tasks = (n + kTask - 1) / kTask;
  if (tasks <= 1 || max_threads == 1) return reduce_n(dtype, op, src, nsrc, dst, n, divisor);
  const size_t es = dtype_size(dtype);
  parallel_for(tasks, [&](int64_t t, int) {
    const int64_t lo = t * kTask;
    const int64_t len = std::min(kTask, n - lo);
    const void* s[64];
    std::vector<const void*> big;
    const void** sp = s;
    if (nsrc > 64) {
      big.resize(static_cast<size_t>(nsrc));
      sp = big.data();
    }
    for (int r = 0; r < nsrc; ++r) sp[r] = static_cast<const char*>(src[r]) + lo * es;
    reduce_n(dtype, op, sp, nsrc, static_cast<char*>(dst) + lo * es, len, divisor);
  }, max_threads);
}

void convert(DType from, const void* src, DType to, void* dst, int64_t n) {
  if (n <= 0) return;
  if (from == to) {
    std::memmove(dst, src, static_cast<size_t>(n) * dtype_size(from));
    return;
  }
  const ReduceKernels& k = kernels();
  if (k.convert != nullptr && k.convert(from, src, to, dst, n)) return;
  if (from == DType::kF32 && (to == DType::kF16 || to == DType::kBF16)) {
    const float* s = static_cast<const float*>(src);
    uint16_t* d = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) d[i] = f32_to_half(to, s[i]);
    return;
  }
  if (to == DType::kF32 && (from == DType::kF16 || from == DType::kBF16)) {
    const uint16_t* s = static_cast<const uint16_t*>(src);
    float* d = static_cast<float*>(dst);
    for (int64_t i = 0; i < n; ++i) d[i] = half_to_f32(from, s[i]);
    return;
  }
  throw Unsupported(std::string("convert: expected f32 <-> f16/bf16, got ") + dtype_name(from) + " -> " +
                    dtype_name(to));
}

void quantize_int8_blocks(const float* x, int64_t n, int8_t* q, float* scales) {
  const auto quantize = kernels().quantize_int8_block ? kernels().quantize_int8_block : quantize_block;
  for (int64_t b = 0; b * kInt8Block < n; ++b) {
    const int64_t lo = b * kInt8Block;
    const int64_t len = std::min(kInt8Block, n - lo);
    quantize(x + lo, len, q + lo, scales + b);
  }
}

void dequantize_int8_blocks(const int8_t* q, const float* scales, int64_t n, float* out) {
  // Simple enough that the compiler vectorizes it for any ISA; same bits everywhere.
  for (int64_t b = 0; b * kInt8Block < n; ++b) {
    const int64_t lo = b * kInt8Block;
    const int64_t len = std::min(kInt8Block, n - lo);
    const float s = scales[b];
    for (int64_t i = 0; i < len; ++i) out[lo + i] = static_cast<float>(q[lo + i]) * s;
  }
}

void reduce_int8_blocks(ReduceOp op, const int8_t* const* q, const float* const* scales, int nsrc, int64_t n,
                        int divisor, int8_t* q_out, float* scales_out) {
  check_common(DType::kF32, op, nsrc, n, divisor);
  const ReduceKernels& k = kernels();
  const auto quantize = k.quantize_int8_block ? k.quantize_int8_block : quantize_block;
  float acc[kInt8Block];
  const int8_t* qs[64];
  const float* ss[64];
  if (nsrc > 64) throw_invalid("nsrc", "at most 64 sources", std::to_string(nsrc));
  for (int64_t b = 0; b * kInt8Block < n; ++b) {
    const int64_t lo = b * kInt8Block;
    const int64_t len = std::min(kInt8Block, n - lo);
    for (int r = 0; r < nsrc; ++r) {
      qs[r] = q[r] + lo;
      ss[r] = scales[r] + b;
    }
    if (k.reduce_int8_block != nullptr) {
      k.reduce_int8_block(op, qs, ss, nsrc, len, divisor, acc);
    } else {
      for (int64_t i = 0; i < len; ++i) acc[i] = static_cast<float>(qs[0][i]) * ss[0][0];
      for (int r = 1; r < nsrc; ++r) {
        const float s = ss[r][0];
        for (int64_t i = 0; i < len; ++i) acc[i] = combine_f32(op, acc[i], static_cast<float>(qs[r][i]) * s);
      }
      finish_avg_f32(op, acc, len, divisor);
    }
    // Requantize once (the portable quantizer defines the bits; the AVX2 one matches it).
    quantize(acc, len, q_out + lo, scales_out + b);
  }
}


}  // namespace aicc::cpu
