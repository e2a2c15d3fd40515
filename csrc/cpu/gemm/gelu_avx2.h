// Vectorized exact-form GELU for the AVX2 epilogue (include only from *_avx2.cc files):
//   gelu(x) = x * Phi(x),  Phi(x) = erfc(-x / sqrt 2) / 2.
// With z = |x| / sqrt 2:
//   z < 0.5:  erf(z) = z * P(z^2), P of degree 4 (relative error 1.4e-9), Phi = 1/2 +- erf/2;
//   z >= 0.5: erfc(z) = exp(-z^2) * Q(t), t = 1 / (1 + 0.3 z), Q of degree 9 fitted to
//             erfc(z) exp(z^2) on [0.5, 9.5] (relative error 6.5e-10); exp(-z^2) is taken as
//             exp(-hi/2) * (1 - lo/2) with x^2 = hi + lo split exactly by an FMA, so the
//             rounding of z never enters the exponent; Phi(-|x|) = erfc/2 (no cancellation),
//             Phi(|x|) = 1 - erfc/2.
//   x^2 / 2 > 87 (|x| > 13.2): erfc underflows f32; Phi = 0 or 1.
// Measured maximum error over a dense grid of f32 x in [-13, 13] against a 30-digit reference:
// 4.2 eps(f32) * |gelu(x)| (tests/test_gemm.py checks 6 eps); the tolerance table allows
// 4 eps(f32) |ref| on top of the accumulation bound, which dominates for any x a GEMM produces.
// Coefficients were fitted by least squares on the relative error (mpmath reference).
#pragma once

#include <immintrin.h>

namespace aicc::cpu::gemm_internal {

// exp(x) for x in [-87, 0] (2^n stays a normal number), error < 1 ulp:
// n = round(x / ln 2), r = x - n ln 2 (Cody-Waite two-part ln 2), degree-7 Taylor series.
inline __m256 exp_neg_avx2(__m256 x) {
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

inline __m256 gelu8_avx2(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f), half = _mm256_set1_ps(0.5f);
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  const __m256 ax = _mm256_andnot_ps(sign_mask, x);
  const __m256 z = _mm256_mul_ps(ax, _mm256_set1_ps(0.70710678118654752f));

  // Small |z|: erf(z) = z * P(z^2).
  const __m256 u = _mm256_mul_ps(z, z);
  __m256 pe = _mm256_set1_ps(0.004717326257377863f);
  pe = _mm256_fmadd_ps(pe, u, _mm256_set1_ps(-0.026756851002573967f));
  pe = _mm256_fmadd_ps(pe, u, _mm256_set1_ps(0.11282817274332047f));
  pe = _mm256_fmadd_ps(pe, u, _mm256_set1_ps(-0.37612608075141907f));
  pe = _mm256_fmadd_ps(pe, u, _mm256_set1_ps(1.1283791065216064f));
  const __m256 erf_small = _mm256_mul_ps(z, pe);

  // Large |z|: erfc(z) = exp(-x^2 / 2) * Q(1 / (1 + 0.3 z)).
  const __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(0.3f), z, one));
  __m256 q = _mm256_set1_ps(-0.14483481645584106f);
  q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(0.5611534714698792f));
  q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(-0.6741266250610352f));
  q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(0.7447092533111572f));
  q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(-0.24465131759643555f));
  q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(0.2889474928379059f));
  q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(0.12468825280666351f));
  q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(0.17543070018291473f));
  q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(0.16865575313568115f));
  q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(2.5919294785126112e-05f));
  const __m256 hi = _mm256_mul_ps(x, x);
  const __m256 lo = _mm256_fmsub_ps(x, x, hi);  // x^2 = hi + lo exactly
  const __m256 underflow = _mm256_cmp_ps(hi, _mm256_set1_ps(174.0f), _CMP_GT_OQ);
  const __m256 hi_c = _mm256_min_ps(hi, _mm256_set1_ps(174.0f));  // keeps exp's 2^n normal
  const __m256 lo_c = _mm256_andnot_ps(underflow, lo);              // inf*inf - inf is NaN
  __m256 e = exp_neg_avx2(_mm256_mul_ps(_mm256_set1_ps(-0.5f), hi_c));
  e = _mm256_mul_ps(e, _mm256_fnmadd_ps(half, lo_c, one));
  __m256 erfc_big = _mm256_andnot_ps(underflow, _mm256_mul_ps(q, e));

  // Phi(-|x|) and Phi(|x|), then pick by sign.
  const __m256 small = _mm256_cmp_ps(z, half, _CMP_LT_OQ);
  const __m256 phi_neg = _mm256_blendv_ps(_mm256_mul_ps(half, erfc_big),
                                          _mm256_fnmadd_ps(half, erf_small, half), small);
  const __m256 phi_pos = _mm256_blendv_ps(_mm256_fnmadd_ps(half, erfc_big, one),
                                          _mm256_fmadd_ps(half, erf_small, half), small);
  const __m256 negative = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
  const __m256 phi = _mm256_blendv_ps(phi_pos, phi_neg, negative);
  // x = -inf (and any x with Phi underflowed to 0): the limit is 0, not -inf * 0 = NaN.
  const __m256 zero_out = _mm256_and_ps(negative, underflow);
  return _mm256_andnot_ps(zero_out, _mm256_mul_ps(x, phi));
}

}  // namespace aicc::cpu::gemm_internal
