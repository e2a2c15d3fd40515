// AVX-512 NCHW depthwise forward (DepthwiseOps::forward_rows_nchw), included by
// depthwise_conv2d_avx512.cc after depthwise_avx512_impl.h (its bf16 rounding).
//
// In NCHW every channel is an independent 2-D plane, so the vectors run along the output row:
// 16 output columns per zmm. Each input row vector (one tap column) is loaded once and feeds
// every output row of a block of 7 rows that uses it (3x3 stride 1: 9 input rows x 3 columns
// = 27 loads for 63 FMAs in 7 independent chains; a per-row kernel loads 9 for 9 FMAs in one
// chain), with the weights broadcast (3x3: in registers, 5x5: memory operands). Borders are masked loads (lanes outside [0, W) read as 0, which is the reference's
// zero padding: 0 * w adds nothing for finite w), so there is no scalar border loop and no
// padded copy. Stride 2 along the row loads the 32 input columns of 16 outputs as two vectors
// and takes their even lanes with one vpermt2ps.
// 16-bit inputs (bf16, f16) are widened once per input row into an f32 scratch window, not per
// tap (each input row is read by R output rows and S taps). bf16 output is rounded in
// registers with the bits of f32_to_bf16 (dw512::bf16_in_high_half).
// Sums start from the bias and run in kernel-row-major tap order; the result depends only on
// the geometry (never on the thread count or the row block a row falls in).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "cpu/conv/depthwise_avx512_impl.h"
#include "cpu/conv/depthwise_conv2d.h"

namespace aicc::cpu::dw512 {
namespace {

// Lanes [lo, hi) of a 32-bit mask (empty when hi <= lo).
inline uint32_t lane_range(int64_t lo, int64_t hi) {
  lo = std::max<int64_t>(lo, 0);
  hi = std::min<int64_t>(hi, 32);
  if (hi <= lo) return 0;
  const uint32_t upto = hi >= 32 ? ~0u : (1u << hi) - 1;
  return upto & ~((1u << lo) - 1);
}

// One block of PB output rows p..p+PB-1 (rows past `keep` are computed and dropped) over the
// whole row, f32 input rows: row h at xr + (h - h0) * W, present for h0 <= h < h1 (CHECK:
// rows outside are padding and skipped; without CHECK every row the block reads is present).
template <int R, int S, int SH, int SW, int PB, bool CHECK, bool ROUND>
inline void nchw_block(const Conv2dDesc& d, int64_t Q, const float* xr, int64_t h0, int64_t h1, const float* w,
                       __m512 bv, bool relu, int64_t p, int64_t keep, void* dst, int64_t dst_row0) {
  constexpr int KR = (PB - 1) * SH + R;  // input rows the block reads
  const int64_t W = d.w, pl = d.pad_left;
  const __m512 zero = _mm512_setzero_ps();
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const int64_t hb = p * SH - d.pad_top;  // input row of k = 0
  // 5x5: the 25 weights are read as broadcast memory operands of the FMAs (hoisted into
  // registers they left no room for the accumulators and spilled); the empty asm keeps the
  // compiler from hoisting them out of the column loop.
  const float* wp = w;
  for (int64_t q0 = 0; q0 < Q; q0 += 16) {
    if constexpr (R * S > 9) asm("" : "+r"(wp));
    const int64_t nq = std::min<int64_t>(16, Q - q0);
    // Lanes of tap column s: input columns c0 + s + SW * lane inside [0, W), lanes < nq.
    const int64_t c0 = q0 * SW - pl;
    __mmask32 m[S];
#pragma GCC unroll 5
    for (int s = 0; s < S; ++s) m[s] = lane_range(-(c0 + s), std::min<int64_t>(W - (c0 + s), SW * (nq - 1) + 1));
    __m512 acc[PB];
#pragma GCC unroll 8
    for (int i = 0; i < PB; ++i) acc[i] = bv;
#pragma GCC unroll 16
    for (int k = 0; k < KR; ++k) {
      const int64_t h = hb + k;
      if (CHECK && (h < h0 || h >= h1)) continue;
      const float* row = xr + (h - h0) * W + c0;
#pragma GCC unroll 5
      for (int s = 0; s < S; ++s) {
        __m512 xv;
        if constexpr (SW == 1) {
          xv = _mm512_maskz_loadu_ps(static_cast<__mmask16>(m[s]), row + s);
        } else {
          const __m512 lo = _mm512_maskz_loadu_ps(static_cast<__mmask16>(m[s]), row + s);
          const __m512 hi = _mm512_maskz_loadu_ps(static_cast<__mmask16>(m[s] >> 16), row + s + 16);
          xv = _mm512_permutex2var_ps(lo, even, hi);
        }
#pragma GCC unroll 8
        for (int i = 0; i < PB; ++i) {
          const int r = k - i * SH;
          if (r >= 0 && r < R) acc[i] = _mm512_fmadd_ps(xv, _mm512_set1_ps(wp[r * S + s]), acc[i]);
        }
      }
    }
    const __mmask16 mq = static_cast<__mmask16>(lane_range(0, nq));
#pragma GCC unroll 8
    for (int i = 0; i < PB; ++i) {
      if (i >= keep) break;
      const __m512 v = relu ? _mm512_max_ps(zero, acc[i]) : acc[i];  // max(0, NaN) keeps the NaN
      const int64_t at = (p + i - dst_row0) * Q + q0;
      if constexpr (ROUND) {
        const __m256i b = _mm512_cvtepi32_epi16(_mm512_srli_epi32(bf16_in_high_half(v), 16));
        _mm256_mask_storeu_epi16(static_cast<uint16_t*>(dst) + at, mq, b);
      } else {
        _mm512_mask_storeu_ps(static_cast<float*>(dst) + at, mq, v);
      }
    }
  }
}

// Output rows [p0, p1) of one plane (see nchw_block for xr, h0, h1); row p at
// dst + (p - p0) * Q, f32 or (ROUND) bf16. Blocks of PB = 7 rows (the 14 / 28 / 56-row layers
// divide into them; 7 independent accumulator chains hide the FMA latency that 2-4 did not);
// when the rows do not divide, the last block starts PB rows before p1 and recomputes a few
// rows with the same bits. Blocks whose input rows are all inside the plane skip the checks.
template <int R, int S, int SH, int SW, bool ROUND>
void nchw_rows_f32(const Conv2dDesc& d, const float* xr, int64_t h0, int64_t h1, const float* w, float bias,
                   bool relu, int64_t p0, int64_t p1, void* dst) {
  constexpr int PB = 7, KR = (PB - 1) * SH + R;
  const __m512 bv = _mm512_set1_ps(bias);
  const int64_t Q = d.q();
  if (p1 - p0 < PB) {
    nchw_block<R, S, SH, SW, PB, true, ROUND>(d, Q, xr, h0, h1, w, bv, relu, p0, p1 - p0, dst, p0);
    return;
  }
  for (int64_t p = p0; p < p1; p += PB) {
    const int64_t pb = std::min(p, p1 - PB);
    const int64_t hb = pb * SH - d.pad_top;
    if (hb >= h0 && hb + KR <= h1)
      nchw_block<R, S, SH, SW, PB, false, ROUND>(d, Q, xr, h0, h1, w, bv, relu, pb, PB, dst, p0);
    else
      nchw_block<R, S, SH, SW, PB, true, ROUND>(d, Q, xr, h0, h1, w, bv, relu, pb, PB, dst, p0);
  }
}

// Input rows [h0, h1) of a 16-bit plane widened to f32 rows of W floats at ws.
template <bool BF16>
void widen_rows(const uint16_t* x, int64_t W, int64_t h0, int64_t h1, float* ws) {
  const int64_t n = (h1 - h0) * W;
  const uint16_t* src = x + h0 * W;
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = static_cast<__mmask16>(lane_range(0, n - j));
    const __m256i h = _mm256_maskz_loadu_epi16(m, src + j);
    const __m512 f = BF16 ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)) : _mm512_cvtph_ps(h);
    _mm512_mask_storeu_ps(ws + j, m, f);
  }
}

template <int R, int S, int SH, int SW>
void nchw_rows_dispatch_round(bool round, const Conv2dDesc& d, const float* xr, int64_t h0, int64_t h1,
                              const float* w, float bias, bool relu, int64_t p0, int64_t p1, void* dst) {
  if (round) nchw_rows_f32<R, S, SH, SW, true>(d, xr, h0, h1, w, bias, relu, p0, p1, dst);
  else nchw_rows_f32<R, S, SH, SW, false>(d, xr, h0, h1, w, bias, relu, p0, p1, dst);
}

template <int R, int S>
void nchw_rows_dispatch(bool round, const Conv2dDesc& d, const float* xr, int64_t h0, int64_t h1, const float* w,
                        float bias, bool relu, int64_t p0, int64_t p1, void* dst) {
  const bool sh2 = d.stride_h == 2, sw2 = d.stride_w == 2;
  if (sh2 && sw2) nchw_rows_dispatch_round<R, S, 2, 2>(round, d, xr, h0, h1, w, bias, relu, p0, p1, dst);
  else if (sh2) nchw_rows_dispatch_round<R, S, 2, 1>(round, d, xr, h0, h1, w, bias, relu, p0, p1, dst);
  else if (sw2) nchw_rows_dispatch_round<R, S, 1, 2>(round, d, xr, h0, h1, w, bias, relu, p0, p1, dst);
  else nchw_rows_dispatch_round<R, S, 1, 1>(round, d, xr, h0, h1, w, bias, relu, p0, p1, dst);
}

// DepthwiseOps::forward_rows_nchw for input storage T (float, or uint16_t bf16 / f16).
template <typename T, bool BF16 = false>
bool forward_rows_nchw(const Conv2dDesc& d, const void* x, const float* w, float bias, bool relu, int64_t p0,
                       int64_t p1, void* dst, bool round, float* ws) {
  // 3x3 and 5x5, strides 1 and 2, no dilation (rows of a block share input rows by
  // k = i * stride + r, tap columns are constant offsets); anything else keeps the row kernel.
  const bool kernel = (d.r == 3 && d.s == 3) || (d.r == 5 && d.s == 5);
  if (!kernel || d.stride_h > 2 || d.stride_w > 2 || d.dilation_h != 1 || d.dilation_w != 1) return false;
  if (round && !BF16) return false;
  if (p1 <= p0) return true;
  // The input rows the outputs [p0, p1) read, clipped to the plane.
  const int64_t h0 = std::max<int64_t>(0, p0 * d.stride_h - d.pad_top);
  const int64_t h1 = std::min<int64_t>(d.h, (p1 - 1) * d.stride_h - d.pad_top + d.r);
  const float* xr;
  if constexpr (std::is_same_v<T, float>) {
    xr = static_cast<const float*>(x) + h0 * d.w;
  } else {
    if (h1 > h0) widen_rows<BF16>(static_cast<const uint16_t*>(x), d.w, h0, h1, ws);
    xr = ws;
  }
  if (d.r == 3) nchw_rows_dispatch<3, 3>(round, d, xr, h0, h1, w, bias, relu, p0, p1, dst);
  else nchw_rows_dispatch<5, 5>(round, d, xr, h0, h1, w, bias, relu, p0, p1, dst);
  return true;
}

// NCHW weight gradient (DepthwiseOps::wgrad_rows_nchw): part[r*S + s] += sum over output
// pixels (p, q) of rows [p0, p1) of g[p][q] * x[p*stride - pad_top + r][q*stride - pad_left + s]
// (zero outside the input), one plane. The R*S filter accumulators are vectors along the
// output row (16 columns) kept in registers across all the rows; each input row vector is
// loaded once per block of PB output rows and feeds every (output row, tap) pair that reads
// it; the lanes are summed once at the end. 16-bit inputs widen in registers on load.
// KIND: 0 f32, 1 bf16, 2 f16.
template <int KIND>
inline __m512 ld16(const void* base, int64_t i, __mmask16 m) {
  if constexpr (KIND == 0) {
    return _mm512_maskz_loadu_ps(m, static_cast<const float*>(base) + i);
  } else {
    const __m256i h = _mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(base) + i);
    if constexpr (KIND == 1) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    else return _mm512_cvtph_ps(h);
  }
}

template <int KIND, int R, int S, int SH, int SW, int PB>
inline void wgrad_block_nchw(const Conv2dDesc& d, int64_t Q, const void* x, const void* g, int64_t p, __m512* acc) {
  constexpr int KR = (PB - 1) * SH + R;
  const int64_t W = d.w, H = d.h, pl = d.pad_left;
  const int64_t hb = p * SH - d.pad_top;
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  for (int64_t q0 = 0; q0 < Q; q0 += 16) {
    const int64_t nq = std::min<int64_t>(16, Q - q0);
    const int64_t c0 = q0 * SW - pl;
    uint32_t m[S];
#pragma GCC unroll 5
    for (int s = 0; s < S; ++s) m[s] = lane_range(-(c0 + s), std::min<int64_t>(W - (c0 + s), SW * (nq - 1) + 1));
    const __mmask16 mq = static_cast<__mmask16>(lane_range(0, nq));
    __m512 gv[PB];
#pragma GCC unroll 4
    for (int i = 0; i < PB; ++i) gv[i] = ld16<KIND>(g, (p + i) * Q + q0, mq);
#pragma GCC unroll 16
    for (int k = 0; k < KR; ++k) {
      const int64_t h = hb + k;
      if (h < 0 || h >= H) continue;
      const int64_t at = h * W + c0;
#pragma GCC unroll 5
      for (int s = 0; s < S; ++s) {
        __m512 xv;
        if constexpr (SW == 1) {
          xv = ld16<KIND>(x, at + s, static_cast<__mmask16>(m[s]));
        } else {
          const __m512 lo = ld16<KIND>(x, at + s, static_cast<__mmask16>(m[s]));
          const __m512 hi = ld16<KIND>(x, at + s + 16, static_cast<__mmask16>(m[s] >> 16));
          xv = _mm512_permutex2var_ps(lo, even, hi);
        }
#pragma GCC unroll 4
        for (int i = 0; i < PB; ++i) {
          const int r = k - i * SH;
          if (r >= 0 && r < R) acc[r * S + s] = _mm512_fmadd_ps(gv[i], xv, acc[r * S + s]);
        }
      }
    }
  }
}

template <int KIND, int R, int S, int SH, int SW>
void wgrad_rows_nchw_t(const Conv2dDesc& d, const void* x, const void* g, int64_t p0, int64_t p1, float* part) {
  // 3x3: 9 accumulators + 4 grad_out rows; 5x5: 25 + 2 (of the 32 zmm).
  constexpr int PB = R * S <= 9 ? 4 : 2;
  const int64_t Q = d.q();
  __m512 acc[R * S];
  for (int t = 0; t < R * S; ++t) acc[t] = _mm512_setzero_ps();
  int64_t p = p0;
  for (; p + PB <= p1; p += PB) wgrad_block_nchw<KIND, R, S, SH, SW, PB>(d, Q, x, g, p, acc);
  // The rows left: pairs, then one (14-row planes: 3 blocks of 4 and a pair, not two singles
  // that load their input rows once each).
  if constexpr (PB > 2)
    for (; p + 2 <= p1; p += 2) wgrad_block_nchw<KIND, R, S, SH, SW, 2>(d, Q, x, g, p, acc);
  for (; p < p1; ++p) wgrad_block_nchw<KIND, R, S, SH, SW, 1>(d, Q, x, g, p, acc);
  for (int t = 0; t < R * S; ++t) part[t] += _mm512_reduce_add_ps(acc[t]);
}

template <int KIND, int R, int S>
void wgrad_rows_nchw_s(const Conv2dDesc& d, const void* x, const void* g, int64_t p0, int64_t p1, float* part) {
  const bool sh2 = d.stride_h == 2, sw2 = d.stride_w == 2;
  if (sh2 && sw2) wgrad_rows_nchw_t<KIND, R, S, 2, 2>(d, x, g, p0, p1, part);
  else if (sh2) wgrad_rows_nchw_t<KIND, R, S, 2, 1>(d, x, g, p0, p1, part);
  else if (sw2) wgrad_rows_nchw_t<KIND, R, S, 1, 2>(d, x, g, p0, p1, part);
  else wgrad_rows_nchw_t<KIND, R, S, 1, 1>(d, x, g, p0, p1, part);
}

// DepthwiseOps::wgrad_rows_nchw: 3x3 / 5x5, strides 1-2, no dilation; false otherwise.
template <int KIND>
bool wgrad_rows_nchw(const Conv2dDesc& d, const void* x, const void* g, int64_t p0, int64_t p1, float* part) {
  const bool kernel = (d.r == 3 && d.s == 3) || (d.r == 5 && d.s == 5);
  if (!kernel || d.stride_h > 2 || d.stride_w > 2 || d.dilation_h != 1 || d.dilation_w != 1) return false;
  if (p1 <= p0) return true;
  if (d.r == 3) wgrad_rows_nchw_s<KIND, 3, 3>(d, x, g, p0, p1, part);
  else wgrad_rows_nchw_s<KIND, 5, 5>(d, x, g, p0, p1, part);
  return true;
}

}  // namespace
}  // namespace aicc::cpu::dw512
