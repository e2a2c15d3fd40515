// NEON primitives of the depthwise conv (see depthwise_conv2d.h), registered as the aarch64
// entry "depthwise_neon" (csrc/cpu/config/aarch64.cc). The INT8 depthwise driver
// (depthwise_qconv2d_impl.h) takes its inner primitive, qaccum_pixels, from this table through
// depthwise_ops(); the driver itself needs no aarch64 copy (NEON is the armv8-a baseline, so
// a _neon build of it would be the portable entry's code byte for byte).
//
// The NHWC and backward primitives are depthwise_kernels_impl.h at 4 floats per vector (one
// 128-bit q register), the same lane count as the portable instance, so every sum has the same
// operands in the same order. What the portable instance leaves to the compiler and GCC does
// badly on aarch64 is replaced here by intrinsics, as explicit specializations of the
// template's load/store primitives (declared before float_ops / int8_ops instantiate them):
//  - f16 -> f32 widening (FCVTL instead of a scalar loop), with the one bit FCVTL changes
//    restored: it quiets a signalling NaN, f16_to_f32 (common/half.h) keeps the payload as is,
//    and a signalling NaN operand wins over a quiet one in fmul/fadd, so it can change which
//    NaN a sum returns;
//  - f32 -> f16 row stores (FCVTN: round to nearest even under the default FPCR, the same
//    bits as f32_to_f16 for every input incl. subnormals, overflow and NaN);
//  - u8 / s8 -> int32 widening (UXTL/SXTL twice; GCC 12 scalarizes the 4x convertvector).
// The NCHW forward row kernel is written out here (stride 1 and 2 vectorized) with separate
// multiply and add, as the portable row kernel computes it (the build does not contract
// a * b + c: -std=c++17 means -ffp-contract=off), so no FMA anywhere.
#include <arm_neon.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/half.h"
#include "cpu/conv/depthwise_conv2d.h"

#define AICC_DW_VL 4
#include "cpu/conv/depthwise_kernels_impl.h"

namespace aicc::cpu {

namespace neon_detail {

// f16 bits -> f32 with the bits of f16_to_f32: FCVTL, then bit 22 of the NaN lanes set back to
// the f16 quiet bit (bit 9), which FCVTL forces to 1.
inline float32x4_t widen_f16(uint16x4_t h) {
  const float32x4_t f = vcvt_f32_f16(vreinterpret_f16_u16(h));
  const uint32x4_t h32 = vmovl_u16(h);
  const uint32x4_t nan = vcgtq_u32(vandq_u32(h32, vdupq_n_u32(0x7fffu)), vdupq_n_u32(0x7c00u));
  const uint32x4_t bit22 = vandq_u32(nan, vdupq_n_u32(0x400000u));
  return vreinterpretq_f32_u32(vbslq_u32(bit22, vshlq_n_u32(h32, 13), vreinterpretq_u32_f32(f)));
}
inline float32x4_t widen_bf16(uint16x4_t h) { return vreinterpretq_f32_u32(vshll_n_u16(h, 16)); }

}  // namespace neon_detail

namespace dwk {
namespace {

template <>
inline V ld<F16>(const uint16_t* p) {
  return reinterpret_cast<V>(neon_detail::widen_f16(vld1_u16(p)));
}
template <>
inline V ld<BF16>(const uint16_t* p) {
  return reinterpret_cast<V>(neon_detail::widen_bf16(vld1_u16(p)));
}

template <>
inline VI ldi<uint8_t>(const uint8_t* p) {
  uint32_t w;
  std::memcpy(&w, p, sizeof w);
  const uint16x8_t h = vmovl_u8(vreinterpret_u8_u32(vdup_n_u32(w)));
  return reinterpret_cast<VI>(vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(h))));
}
template <>
inline VI ldi<int8_t>(const int8_t* p) {
  uint32_t w;
  std::memcpy(&w, p, sizeof w);
  const int16x8_t h = vmovl_s8(vreinterpret_s8_u32(vdup_n_u32(w)));
  return reinterpret_cast<VI>(vmovl_s16(vget_low_s16(h)));
}

template <>
void store_row<F16>(const float* src, int64_t n, void* dst_v) {
  uint16_t* dst = static_cast<uint16_t*>(dst_v);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const float16x4_t lo = vcvt_f16_f32(vld1q_f32(src + i));
    vst1q_u16(dst + i, vreinterpretq_u16_f16(vcvt_high_f16_f32(lo, vld1q_f32(src + i + 4))));
  }
  for (; i + 4 <= n; i += 4) vst1_u16(dst + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(src + i))));
  for (; i < n; ++i) dst[i] = f32_to_f16(src[i]);
}

}  // namespace
}  // namespace dwk

namespace {

template <DType T>
inline float load1(const void* p, int64_t i) {
  if constexpr (T == DType::kF32) return static_cast<const float*>(p)[i];
  else if constexpr (T == DType::kF16) return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
  else return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
}

// Elements p[i], p[i + kStride], p[i + 2 kStride], p[i + 3 kStride] as f32. kStride 2 reads
// (and drops) p[i + 7] too: the caller keeps it inside the row.
template <DType T, int kStride>
inline float32x4_t load4(const void* p, int64_t i) {
  if constexpr (T == DType::kF32) {
    const float* f = static_cast<const float*>(p) + i;
    if constexpr (kStride == 1) return vld1q_f32(f);
    else return vld2q_f32(f).val[0];
  } else {
    const uint16_t* h = static_cast<const uint16_t*>(p) + i;
    uint16x4_t v;
    if constexpr (kStride == 1) v = vld1_u16(h);
    else v = vld2_u16(h).val[0];
    if constexpr (T == DType::kF16) return neon_detail::widen_f16(v);
    else return neon_detail::widen_bf16(v);
  }
}

// The portable row kernel's relu: y > 0 ? y : (NaN ? y : +0).
inline float32x4_t relu4(float32x4_t y) {
  const uint32x4_t keep = vorrq_u32(vcgtq_f32(y, vdupq_n_f32(0.0f)), vmvnq_u32(vceqq_f32(y, y)));
  return vbslq_f32(keep, y, vdupq_n_f32(0.0f));
}
inline float relu1(float y) { return y > 0.0f ? y : (std::isnan(y) ? y : 0.0f); }

// One vector group of 4 output columns starting at q (every tap inside the row): the
// portable sum, acc = 0, + x * w per tap in (r, s) order, + bias.
template <DType T, int kStride>
inline float32x4_t group4(const void* const* rows, const float* w, int R, int S, int64_t q, int64_t dil,
                          int64_t pad_left, float32x4_t bias) {
  float32x4_t a = vdupq_n_f32(0.0f);
  for (int r = 0; r < R; ++r) {
    if (!rows[r]) continue;
    for (int s = 0; s < S; ++s)
      a = vaddq_f32(a, vmulq_f32(load4<T, kStride>(rows[r], q * kStride + s * dil - pad_left), vdupq_n_f32(w[r * S + s])));
  }
  return vaddq_f32(a, bias);
}

template <DType T, int kStride>
int64_t row_groups(const void* const* rows, const float* w, int R, int S, int64_t q, int64_t q_hi, int64_t W,
                   int64_t dil, int64_t pad_left, float bias, bool relu, float* dst) {
  const float32x4_t bv = vdupq_n_f32(bias);
  // kStride 2: the last group's deinterleaving load also reads the element after its last column.
  const int64_t extra = kStride - 1;
  for (; q + 4 <= q_hi && (q + 3) * kStride + (S - 1) * dil - pad_left + extra < W; q += 4) {
    const float32x4_t a = group4<T, kStride>(rows, w, R, S, q, dil, pad_left, bv);
    vst1q_f32(dst + q, relu ? relu4(a) : a);
  }
  return q;
}

template <DType T>
void row_nchw(const void* const* rows, const float* w, int R, int S, int64_t Q, int64_t W, int64_t stride,
              int64_t dil, int64_t pad_left, float bias, bool relu, float* dst) {
  int64_t q_lo, q_hi;
  depthwise_interior(Q, W, S, stride, dil, pad_left, &q_lo, &q_hi);
  const auto scalar = [&](int64_t q) {
    float a = 0.0f;
    for (int r = 0; r < R; ++r) {
      if (!rows[r]) continue;
      for (int s = 0; s < S; ++s) {
        const int64_t col = q * stride + s * dil - pad_left;
        if (col >= 0 && col < W) a += load1<T>(rows[r], col) * w[r * S + s];
      }
    }
    a += bias;
    dst[q] = relu ? relu1(a) : a;
  };
  for (int64_t q = 0; q < q_lo; ++q) scalar(q);
  int64_t q = q_lo;
  if (stride == 1) q = row_groups<T, 1>(rows, w, R, S, q, q_hi, W, dil, pad_left, bias, relu, dst);
  else if (stride == 2) q = row_groups<T, 2>(rows, w, R, S, q, q_hi, W, dil, pad_left, bias, relu, dst);
  for (; q < Q; ++q) scalar(q);
}

}  // namespace

const DepthwiseOps& depthwise_ops_neon(DType t) {
  static const DepthwiseOps f32 = dwk::float_ops<float>(row_nchw<DType::kF32>);
  static const DepthwiseOps f16 = dwk::float_ops<dwk::F16>(row_nchw<DType::kF16>);
  static const DepthwiseOps bf16 = dwk::float_ops<dwk::BF16>(row_nchw<DType::kBF16>);
  static const DepthwiseOps u8 = dwk::int8_ops<uint8_t>();
  static const DepthwiseOps s8 = dwk::int8_ops<int8_t>();
  switch (t) {
    case DType::kF16: return f16;
    case DType::kBF16: return bf16;
    case DType::kU8: return u8;
    case DType::kS8: return s8;
    default: return f32;
  }
}

}  // namespace aicc::cpu
