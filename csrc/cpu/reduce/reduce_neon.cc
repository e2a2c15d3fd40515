// NEON reductions: the aarch64 entry "reduce_neon" (csrc/cpu/config/aarch64.cc). Same
// operations in the same order as the portable loops in reduce.cc, so the bits agree:
//  - sum/avg: one fadd per source in source order, then one fdiv (no FMA);
//  - max/min: not FMAX/FMIN (they quiet NaNs and order +0/-0), but the portable rule as a
//    select: a NaN in the accumulator wins, else a NaN in the source, else the larger
//    (smaller), on ties the source — bitwise selects, so NaN payloads pass untouched;
//  - f16 -> f32: FCVTL with the signalling-NaN bit restored (f16_to_f32 keeps it; a
//    signalling NaN operand wins over a quiet one in fadd, so it decides which NaN a sum
//    returns); f32 -> f16: FCVTN (round to nearest even, the bits of f32_to_f16); bf16: the
//    integer rounding of f32_to_bf16;
//  - INT8 blocks: the portable max|x|, finiteness test, x * (127 / max) rounded half-even
//    (FRINTN) and clamped with the portable std::max/std::min compare order (a NaN product,
//    0 * inf when max is subnormal, clamps to -127 as there).
#include <arm_neon.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "common/half.h"
#include "cpu/reduce/reduce.h"

namespace aicc::cpu::detail {

bool reduce_n_neon(DType dtype, ReduceOp op, const void* const* src, int nsrc, void* dst, int64_t n, int divisor);
bool convert_neon(DType from, const void* src, DType to, void* dst, int64_t n);
void quantize_int8_block_neon(const float* x, int64_t len, int8_t* q, float* scale);
void reduce_int8_block_neon(ReduceOp op, const int8_t* const* q, const float* const* scales, int nsrc, int64_t len,
                            int divisor, float* acc);

namespace {

inline uint32x4_t is_nan(float32x4_t a) { return vmvnq_u32(vceqq_f32(a, a)); }
inline float32x4_t vmax(float32x4_t a, float32x4_t b) {
  return vbslq_f32(vorrq_u32(is_nan(a), vcgtq_f32(a, b)), a, b);
}
inline float32x4_t vmin(float32x4_t a, float32x4_t b) {
  return vbslq_f32(vorrq_u32(is_nan(a), vcltq_f32(a, b)), a, b);
}
inline float32x4_t vop(ReduceOp op, float32x4_t a, float32x4_t b) {
  switch (op) {
    case ReduceOp::kMax: return vmax(a, b);
    case ReduceOp::kMin: return vmin(a, b);
    default: return vaddq_f32(a, b);
  }
}
inline float sop(ReduceOp op, float a, float b) {
  switch (op) {
    case ReduceOp::kMax:
      if (std::isnan(a)) return a;
      if (std::isnan(b)) return b;
      return a > b ? a : b;
    case ReduceOp::kMin:
      if (std::isnan(a)) return a;
      if (std::isnan(b)) return b;
      return a < b ? a : b;
    default: return a + b;
  }
}

// f16 bits -> f32 with the bits of f16_to_f32 (FCVTL sets bit 22 of every NaN; put back the
// f16 quiet bit, bit 9, there).
inline float32x4_t widen_f16(uint16x4_t h) {
  const float32x4_t f = vcvt_f32_f16(vreinterpret_f16_u16(h));
  const uint32x4_t h32 = vmovl_u16(h);
  const uint32x4_t nan = vcgtq_u32(vandq_u32(h32, vdupq_n_u32(0x7fffu)), vdupq_n_u32(0x7c00u));
  const uint32x4_t bit22 = vandq_u32(nan, vdupq_n_u32(0x400000u));
  return vreinterpretq_f32_u32(vbslq_u32(bit22, vshlq_n_u32(h32, 13), vreinterpretq_u32_f32(f)));
}
// f32 -> bf16 bits as f32_to_bf16: round half to even in integers; NaN -> (u >> 16) | 0x40.
inline uint16x4_t narrow_bf16(float32x4_t v) {
  const uint32x4_t u = vreinterpretq_u32_f32(v);
  const uint32x4_t lsb = vandq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(1));
  const uint32x4_t rounded = vshrq_n_u32(vaddq_u32(vaddq_u32(u, vdupq_n_u32(0x7fffu)), lsb), 16);
  const uint32x4_t quiet = vorrq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(0x40u));
  const uint32x4_t nan = vcgtq_u32(vandq_u32(u, vdupq_n_u32(0x7fffffffu)), vdupq_n_u32(0x7f800000u));
  return vmovn_u32(vbslq_u32(nan, quiet, rounded));
}

template <int kKind>  // 0: f32, 1: f16, 2: bf16
inline float32x4_t vload(const void* base, int64_t i) {
  if constexpr (kKind == 0) return vld1q_f32(static_cast<const float*>(base) + i);
  else if constexpr (kKind == 1) return widen_f16(vld1_u16(static_cast<const uint16_t*>(base) + i));
  else return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(static_cast<const uint16_t*>(base) + i), 16));
}
template <int kKind>
inline void vstore(void* base, int64_t i, float32x4_t v) {
  if constexpr (kKind == 0) vst1q_f32(static_cast<float*>(base) + i, v);
  else if constexpr (kKind == 1) vst1_u16(static_cast<uint16_t*>(base) + i, vreinterpret_u16_f16(vcvt_f16_f32(v)));
  else vst1_u16(static_cast<uint16_t*>(base) + i, narrow_bf16(v));
}
template <int kKind>
inline float sload(const void* base, int64_t i) {
  if constexpr (kKind == 0) return static_cast<const float*>(base)[i];
  else if constexpr (kKind == 1) return f16_to_f32(static_cast<const uint16_t*>(base)[i]);
  else return bf16_to_f32(static_cast<const uint16_t*>(base)[i]);
}
template <int kKind>
inline void sstore(void* base, int64_t i, float v) {
  if constexpr (kKind == 0) static_cast<float*>(base)[i] = v;
  else if constexpr (kKind == 1) static_cast<uint16_t*>(base)[i] = f32_to_f16(v);
  else static_cast<uint16_t*>(base)[i] = f32_to_bf16(v);
}

// 16 elements (4 q registers) per step: 4 independent chains hide the fadd latency.
template <int kKind>
void reduce_kind(ReduceOp op, const void* const* src, int nsrc, void* dst, int64_t n, int divisor) {
  const bool avg = op == ReduceOp::kAvg;
  const float sd = static_cast<float>(divisor);
  const float32x4_t vd = vdupq_n_f32(sd);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    float32x4_t a0 = vload<kKind>(src[0], i), a1 = vload<kKind>(src[0], i + 4);
    float32x4_t a2 = vload<kKind>(src[0], i + 8), a3 = vload<kKind>(src[0], i + 12);
    for (int r = 1; r < nsrc; ++r) {
      a0 = vop(op, a0, vload<kKind>(src[r], i));
      a1 = vop(op, a1, vload<kKind>(src[r], i + 4));
      a2 = vop(op, a2, vload<kKind>(src[r], i + 8));
      a3 = vop(op, a3, vload<kKind>(src[r], i + 12));
    }
    if (avg) {
      a0 = vdivq_f32(a0, vd);
      a1 = vdivq_f32(a1, vd);
      a2 = vdivq_f32(a2, vd);
      a3 = vdivq_f32(a3, vd);
    }
    vstore<kKind>(dst, i, a0);
    vstore<kKind>(dst, i + 4, a1);
    vstore<kKind>(dst, i + 8, a2);
    vstore<kKind>(dst, i + 12, a3);
  }
  for (; i + 4 <= n; i += 4) {
    float32x4_t a = vload<kKind>(src[0], i);
    for (int r = 1; r < nsrc; ++r) a = vop(op, a, vload<kKind>(src[r], i));
    if (avg) a = vdivq_f32(a, vd);
    vstore<kKind>(dst, i, a);
  }
  for (; i < n; ++i) {
    float a = sload<kKind>(src[0], i);
    for (int r = 1; r < nsrc; ++r) a = sop(op, a, sload<kKind>(src[r], i));
    if (avg) a = a / sd;
    sstore<kKind>(dst, i, a);
  }
}

template <int kFrom, int kTo>
void convert_kind(const void* src, void* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vstore<kTo>(dst, i, vload<kFrom>(src, i));
  for (; i < n; ++i) sstore<kTo>(dst, i, sload<kFrom>(src, i));
}

}  // namespace

bool reduce_n_neon(DType dtype, ReduceOp op, const void* const* src, int nsrc, void* dst, int64_t n, int divisor) {
  switch (dtype) {
    case DType::kF32: reduce_kind<0>(op, src, nsrc, dst, n, divisor); return true;
    case DType::kF16: reduce_kind<1>(op, src, nsrc, dst, n, divisor); return true;
    case DType::kBF16: reduce_kind<2>(op, src, nsrc, dst, n, divisor); return true;
    default: return false;  // f64 and integers: the portable loops (the compiler vectorizes them)
  }
}

bool convert_neon(DType from, const void* src, DType to, void* dst, int64_t n) {
  if (from == DType::kF32 && to == DType::kF16) convert_kind<0, 1>(src, dst, n);
  else if (from == DType::kF32 && to == DType::kBF16) convert_kind<0, 2>(src, dst, n);
  else if (from == DType::kF16 && to == DType::kF32) convert_kind<1, 0>(src, dst, n);
  else if (from == DType::kBF16 && to == DType::kF32) convert_kind<2, 0>(src, dst, n);
  else return false;
  return true;
}

void quantize_int8_block_neon(const float* x, int64_t len, int8_t* q, float* scale) {
  const float32x4_t fmax = vdupq_n_f32(std::numeric_limits<float>::max());
  float32x4_t m = vdupq_n_f32(0.0f);
  uint32x4_t ok = vdupq_n_u32(~0u);
  int64_t i = 0;
  for (; i + 4 <= len; i += 4) {
    const float32x4_t a = vabsq_f32(vld1q_f32(x + i));
    ok = vandq_u32(ok, vcleq_f32(a, fmax));  // false for inf and NaN
    m = vmaxq_f32(m, a);                     // NaN lanes only matter when !finite
  }
  bool finite = vminvq_u32(ok) != 0;
  float mx = vmaxvq_f32(m);  // all lanes >= +0; the max of non-negative finite values
  for (; i < len; ++i) {
    const float a = std::fabs(x[i]);
    if (!(a <= std::numeric_limits<float>::max())) finite = false;
    mx = a > mx ? a : mx;
  }
  if (!finite || mx == 0.0f) {
    *scale = finite ? 0.0f : std::numeric_limits<float>::quiet_NaN();
    std::memset(q, 0, static_cast<size_t>(len));
    return;
  }
  *scale = mx / 127.0f;
  const float inv = 127.0f / mx;
  const float32x4_t vinv = vdupq_n_f32(inv);
  const float32x4_t lo = vdupq_n_f32(-127.0f), hi = vdupq_n_f32(127.0f);
  // std::min(127, std::max(-127, v)): max picks v only when -127 < v, min only when v < 127.
  const auto quant4 = [&](int64_t j) {
    float32x4_t v = vrndnq_f32(vmulq_f32(vld1q_f32(x + j), vinv));
    v = vbslq_f32(vcltq_f32(lo, v), v, lo);
    v = vbslq_f32(vcltq_f32(v, hi), v, hi);
    return vcvtq_s32_f32(v);  // integral and in [-127, 127]: exact
  };
  i = 0;
  for (; i + 16 <= len; i += 16) {
    const int16x8_t ab = vcombine_s16(vmovn_s32(quant4(i)), vmovn_s32(quant4(i + 4)));
    const int16x8_t cd = vcombine_s16(vmovn_s32(quant4(i + 8)), vmovn_s32(quant4(i + 12)));
    vst1q_s8(q + i, vcombine_s8(vmovn_s16(ab), vmovn_s16(cd)));
  }
  for (; i < len; ++i) {
    float v = std::nearbyint(x[i] * inv);
    v = std::min(127.0f, std::max(-127.0f, v));
    q[i] = static_cast<int8_t>(v);
  }
}

void reduce_int8_block_neon(ReduceOp op, const int8_t* const* q, const float* const* scales, int nsrc, int64_t len,
                            int divisor, float* acc) {
  // 8 bytes -> two f32x4 (SXTL twice, SCVTF: exact).
  const auto load8 = [](const int8_t* p, float32x4_t* lo, float32x4_t* hi) {
    const int16x8_t h = vmovl_s8(vld1_s8(p));
    *lo = vcvtq_f32_s32(vmovl_s16(vget_low_s16(h)));
    *hi = vcvtq_f32_s32(vmovl_s16(vget_high_s16(h)));
  };
  const float sd = static_cast<float>(divisor);
  const float32x4_t vd = vdupq_n_f32(sd);
  int64_t i = 0;
  for (; i + 8 <= len; i += 8) {
    float32x4_t a0, a1, b0, b1;
    load8(q[0] + i, &a0, &a1);
    const float32x4_t s0 = vdupq_n_f32(scales[0][0]);
    a0 = vmulq_f32(a0, s0);
    a1 = vmulq_f32(a1, s0);
    for (int r = 1; r < nsrc; ++r) {
      load8(q[r] + i, &b0, &b1);
      const float32x4_t s = vdupq_n_f32(scales[r][0]);
      a0 = vop(op, a0, vmulq_f32(b0, s));
      a1 = vop(op, a1, vmulq_f32(b1, s));
    }
    if (op == ReduceOp::kAvg) {
      a0 = vdivq_f32(a0, vd);
      a1 = vdivq_f32(a1, vd);
    }
    vst1q_f32(acc + i, a0);
    vst1q_f32(acc + i + 4, a1);
  }
  for (; i < len; ++i) {
    float a = static_cast<float>(q[0][i]) * scales[0][0];
    for (int r = 1; r < nsrc; ++r) a = sop(op, a, static_cast<float>(q[r][i]) * scales[r][0]);
    if (op == ReduceOp::kAvg) a = a / sd;
    acc[i] = a;
  }
}

}  // namespace aicc::cpu::detail
