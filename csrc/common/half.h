// Scalar IEEE binary16 and bfloat16 conversions, bit-exact round-to-nearest-even.
// Vectorized (F16C / AVX2) converters live next to the kernels that use them; these are
// the portable definitions they must agree with.
#pragma once

#include <cstdint>
#include <cstring>

namespace aicc {

inline uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
inline float bits_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline float bf16_to_f32(uint16_t h) { return bits_f32(static_cast<uint32_t>(h) << 16); }

inline uint16_t f32_to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);  // round half to even
  return static_cast<uint16_t>(u >> 16);
}

inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (mant << 13));  // inf / nan
  if (exp == 0) {
    if (mant == 0) return bits_f32(sign);
    // subnormal: value = mant * 2^-24
    float v = static_cast<float>(mant) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  return bits_f32(sign | ((exp + 112u) << 23) | (mant << 13));
}

inline uint16_t f32_to_f16(float f) {
  const uint32_t u = f32_bits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));  // NaN
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow (incl. inf) after rounding
  if (abs < 0x38800000u) {  // result is subnormal or zero in f16: round at 2^-24
    // Adding 0.5 (2^-1 with exponent aligned) makes the FPU do round-half-even at the
    // 2^-24 quantum; the low mantissa bits of the sum are the f16 subnormal mantissa.
    const float v = bits_f32(abs) + 0.5f;
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(f32_bits(v) - f32_bits(0.5f)));
  }
  uint32_t r = abs + 0xfffu + ((abs >> 13) & 1u);  // round half to even at bit 13
  r -= 112u << 23;                                   // rebias exponent 127 -> 15
  return static_cast<uint16_t>(sign | (r >> 13));
}

}  // namespace aicc
