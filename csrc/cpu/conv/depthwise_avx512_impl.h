// AVX-512 pieces of the depthwise kernels (depthwise_conv2d_avx512.cc): bf16 widening and
// rounding in registers, and the NHWC forward over whole rows (DepthwiseOps::forward_rows).
// Internal linkage, as the other kernel headers: an including file keeps its own copy.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "cpu/conv/depthwise_conv2d.h"

namespace aicc::cpu::dw512 {
namespace {

// bf16 in registers: 32 channels per step from one 64-byte load, widened without a shuffle: a
// bf16 is the upper half of its f32, so the even channels are the words shifted left by 16 and
// the odd ones the words with the low half cleared. The weights come split into even / odd rows
// (depthwise_split_weights), the bias is split once per channel block; accumulation is f32 FMA
// in tap order from the bias (the generic template's order: the same bits); on store each sum
// is rounded to bf16 in its register (round half to even, NaN made quiet, as f32_to_bf16) and
// the even / odd halves are merged back into channel order by one ternary-logic op.

// The f32 bits whose upper half is f32_to_bf16(v).
inline __m512i bf16_in_high_half(__m512 v) {
  const __m512i u = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
  const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  return _mm512_mask_or_epi32(r, nan, u, _mm512_set1_epi32(0x00400000));
}

// 32 bf16 of channel order from the even (lanes 0, 2, ..) and odd f32 sums.
inline __m512i round_merge(__m512 even, __m512 odd) {
  // (0xffff0000 & odd) | (even >> 16): truth table 0xEA over (A = mask, B = odd, C = even >> 16).
  return _mm512_ternarylogic_epi32(_mm512_set1_epi32(static_cast<int>(0xffff0000u)), bf16_in_high_half(odd),
                                   _mm512_srli_epi32(bf16_in_high_half(even), 16), 0xEA);
}

inline void widen(__m512i x, __m512& even, __m512& odd) {
  even = _mm512_castsi512_ps(_mm512_slli_epi32(x, 16));
  odd = _mm512_castsi512_ps(_mm512_and_si512(x, _mm512_set1_epi32(static_cast<int>(0xffff0000u))));
}

// 32 f32 at p (lanes past the mask 0) split into even / odd channel vectors.
inline void split_f32(const float* p, __mmask32 m, __m512& even, __m512& odd) {
  const __m512 lo = _mm512_maskz_loadu_ps(static_cast<__mmask16>(m), p);
  const __m512 hi = _mm512_maskz_loadu_ps(static_cast<__mmask16>(m >> 16), p + 16);
  const __m512i ie = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i io = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  even = _mm512_permutex2var_ps(lo, ie, hi);
  odd = _mm512_permutex2var_ps(lo, io, hi);
}

// 32 bf16 at p; FULL: all 32 lanes (plain load: no mask on the hot path).
template <bool FULL>
inline __m512i load32(const uint16_t* p, __mmask32 m) {
  if constexpr (FULL) return _mm512_loadu_si512(p);
  else return _mm512_maskz_loadu_epi16(m, p);
}

// Runs group_at(q, NP, CHECK) (NP, CHECK: std::integral_constant / bool_constant tags) over the
// Q output columns of a row in groups of NP consecutive pixels at column stride SW: groups of
// kGroup (8 or 4), then one of 4 where kGroup is 8, then one group of the 1-3 pixels left (a
// group moved back over already written pixels cost 2 of 16 pixel computations on the 14-wide
// layers). CHECK is true where some input column of the group lies outside [0, W): groups
// inside the input load without per-column masks.
template <int kGroup, int SW, int S, class GroupAt>
inline void for_each_pixel_group(int64_t Q, int64_t W, int64_t pad_left, GroupAt&& group_at) {
  const auto group = [&](int64_t q, auto np_tag) {
    constexpr int NL = (decltype(np_tag)::value - 1) * SW + S;
    const int64_t c0 = q * SW - pad_left;
    if (c0 >= 0 && c0 + NL <= W) group_at(q, np_tag, std::false_type{});
    else group_at(q, np_tag, std::true_type{});
  };
  int64_t q = 0;
  for (; q + kGroup <= Q; q += kGroup) group(q, std::integral_constant<int, kGroup>{});
  if constexpr (kGroup == 8)
    if (q + 4 <= Q) group(q, std::integral_constant<int, 4>{}), q += 4;
  switch (Q - q) {
    case 3: group(q, std::integral_constant<int, 3>{}); break;
    case 2: group(q, std::integral_constant<int, 2>{}); break;
    case 1: group(q, std::integral_constant<int, 1>{}); break;
    default: break;
  }
}

// The forward over whole rows (DepthwiseOps::forward_rows): per channel block the R*S weights
// (bf16: their even / odd halves) are loaded once per row into registers; pixels go 4 at a
// time, border pixels included with the taps outside the input skipped (the per-call version
// loaded all the weights again for each border pixel: 5x5 layers at 14x14 have 4 border
// columns of 14).
template <bool BF16, int R, int S, int SW, bool FULL>
inline void forward_rows_block(const Conv2dDesc& d, const char* x, const float* w, int64_t row, const float* bias,
                               bool relu, int64_t np0, int64_t np1, char* out, int64_t c, uint32_t m, int64_t q_lo,
                               int64_t q_hi) {
  constexpr int RS = R * S, H = BF16 ? 2 : 1;
  const int64_t C = d.c, P = d.p(), Q = d.q(), esize = BF16 ? 2 : 4;
  const __mmask16 m16 = static_cast<__mmask16>(m);
  const __m512 zero = _mm512_setzero_ps();
  const auto load = [&](const char* p, __m512& a, __m512& b) {
    if constexpr (BF16) {
      widen(load32<FULL>(reinterpret_cast<const uint16_t*>(p), m), a, b);
    } else {
      a = FULL ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(m16, p);
      b = a;
    }
  };
  const auto store = [&](char* p, __m512 e, __m512 o) {
    if (relu) e = _mm512_max_ps(zero, e), o = _mm512_max_ps(zero, o);  // keeps NaN and -0
    if constexpr (BF16) {
      if constexpr (FULL) _mm512_storeu_si512(p, round_merge(e, o));
      else _mm512_mask_storeu_epi16(p, m, round_merge(e, o));
    } else {
      if constexpr (FULL) _mm512_storeu_ps(p, e);
      else _mm512_mask_storeu_ps(p, m16, e);
    }
  };
  // 5x5 on the grouped-column path streams its weights per group (kStreamW), the others keep
  // them in registers across the row.
  constexpr bool kStreamW = SW > 0 && RS > 9;
  __m512 wv[RS * H];
  if constexpr (!kStreamW)
  for (int t = 0; t < RS; ++t)
    for (int h = 0; h < H; ++h)
      wv[t * H + h] = BF16 ? _mm512_loadu_ps(w + t * row + c + 16 * h)
                           : (FULL ? _mm512_loadu_ps(w + t * row + c) : _mm512_maskz_loadu_ps(m16, w + t * row + c));
  __m512 be = zero, bo = zero;
  if (bias) {
    if constexpr (BF16) split_f32(bias + c, m, be, bo);
    else be = FULL ? _mm512_loadu_ps(bias + c) : _mm512_maskz_loadu_ps(m16, bias + c);
  }
  const char* rows[R];
  const int64_t xstep = d.stride_w * C * esize;
  for (int64_t np = np0; np < np1; ++np) {
    const int64_t n = np / P, p = np % P;
    for (int r = 0; r < R; ++r) {
      const int64_t h = p * d.stride_h - d.pad_top + r * d.dilation_h;
      rows[r] = h < 0 || h >= d.h ? nullptr : x + ((n * d.h + h) * d.w * C + c) * esize;
    }
    char* orow = out + (np * Q * C + c) * esize;
    const auto pixel = [&](int64_t q, bool check) {
      __m512 e = be, o = bo;
#pragma GCC unroll 5
      for (int r = 0; r < R; ++r) {
        if (!rows[r]) continue;
#pragma GCC unroll 5
        for (int s = 0; s < S; ++s) {
          const int64_t col = q * d.stride_w - d.pad_left + s * d.dilation_w;
          if (check && (col < 0 || col >= d.w)) continue;
          __m512 xe, xo;
          load(rows[r] + col * C * esize, xe, xo);
          e = _mm512_fmadd_ps(xe, wv[(r * S + s) * H], e);
          if constexpr (BF16) o = _mm512_fmadd_ps(xo, wv[(r * S + s) * H + 1], o);
        }
      }
      store(orow + q * C * esize, e, o);
    };
    if constexpr (SW == 0) {
      int64_t q = 0;
      for (; q < q_lo; ++q) pixel(q, true);
      for (; q + 4 <= q_hi; q += 4) {
        __m512 e[4] = {be, be, be, be}, o[4] = {bo, bo, bo, bo};
#pragma GCC unroll 5
        for (int r = 0; r < R; ++r) {
          if (!rows[r]) continue;
#pragma GCC unroll 5
          for (int s = 0; s < S; ++s) {
            const char* px = rows[r] + ((q * d.stride_w - d.pad_left + s * d.dilation_w) * C) * esize;
#pragma GCC unroll 4
            for (int i = 0; i < 4; ++i) {
              __m512 xe, xo;
              load(px + i * xstep, xe, xo);
              e[i] = _mm512_fmadd_ps(xe, wv[(r * S + s) * H], e[i]);
              if constexpr (BF16) o[i] = _mm512_fmadd_ps(xo, wv[(r * S + s) * H + 1], o[i]);
            }
          }
        }
#pragma GCC unroll 4
        for (int i = 0; i < 4; ++i) store(orow + (q + i) * C * esize, e[i], o[i]);
      }
      for (; q < q_hi; ++q) pixel(q, false);
      for (; q < Q; ++q) pixel(q, true);
    } else {
      // Stride SW, no column dilation: the NP (4) pixels of a group read the (NP - 1) * SW + S
      // input columns j = i * SW + s once each (3x3: 6 loads for 12 taps per kernel row,
      // where a load per tap made loads, not FMAs, the limit), each feeding every pixel that
      // uses it. Columns outside the input are masked loads of nothing (zeros: the
      // reference's padding, so border pixels run the same code with four FMA chains).
      const auto group_at = [&](int64_t q, auto np_tag, auto check_tag) {
        constexpr int NP = decltype(np_tag)::value, NL = (NP - 1) * SW + S;
        constexpr bool CHECK = decltype(check_tag)::value;  // some column outside the input
        const int64_t c0 = q * SW - d.pad_left;
        __m512 e[NP], o[NP];
        for (int i = 0; i < NP; ++i) e[i] = be, o[i] = bo;
        if constexpr (kStreamW) {
          // 5x5: the input columns of a kernel row in registers (f32 8, bf16 16 zmm), then
          // tap by tap one weight load (per half) feeds the NP pixels: the 25 (bf16: 50)
          // weight vectors do not fit beside them, and as spilled FMA operands they cost a
          // load per FMA.
          const float* wp = w + c;
          asm("" : "+r"(wp));  // per group: keeps the compiler from hoisting (and spilling) them
#pragma GCC unroll 5
          for (int r = 0; r < R; ++r) {
            if (!rows[r]) continue;
            const char* px = rows[r] + c0 * C * esize;
            __m512 xe[NL], xo[NL];
#pragma GCC unroll 11
            for (int j = 0; j < NL; ++j) {
              const bool in = !CHECK || static_cast<uint64_t>(c0 + j) < static_cast<uint64_t>(d.w);
              if constexpr (BF16) {
                widen(_mm512_maskz_loadu_epi16(in ? m : 0u, px + j * C * esize), xe[j], xo[j]);
              } else {
                xe[j] = _mm512_maskz_loadu_ps(in ? m16 : __mmask16{0}, px + j * C * esize);
                xo[j] = xe[j];
              }
            }
#pragma GCC unroll 5
            for (int s = 0; s < S; ++s) {
              const float* wt = wp + (r * S + s) * row;
              const __m512 we = BF16 || FULL ? _mm512_loadu_ps(wt) : _mm512_maskz_loadu_ps(m16, wt);
              const __m512 wo = BF16 ? _mm512_loadu_ps(wt + 16) : we;
#pragma GCC unroll 4
              for (int i = 0; i < NP; ++i) {
                e[i] = _mm512_fmadd_ps(xe[i * SW + s], we, e[i]);
                if constexpr (BF16) o[i] = _mm512_fmadd_ps(xo[i * SW + s], wo, o[i]);
              }
            }
          }
        } else {
#pragma GCC unroll 5
        for (int r = 0; r < R; ++r) {
          if (!rows[r]) continue;
          const char* px = rows[r] + c0 * C * esize;
#pragma GCC unroll 11
          for (int j = 0; j < NL; ++j) {
            const bool in = !CHECK || static_cast<uint64_t>(c0 + j) < static_cast<uint64_t>(d.w);
            __m512 xe, xo;
            if constexpr (BF16) {
              widen(_mm512_maskz_loadu_epi16(in ? m : 0u, px + j * C * esize), xe, xo);
            } else {
              xe = _mm512_maskz_loadu_ps(in ? m16 : __mmask16{0}, px + j * C * esize);
              xo = xe;
            }
#pragma GCC unroll 4
            for (int i = 0; i < NP; ++i) {
              const int s = j - i * SW;
              if (s < 0 || s >= S) continue;
              e[i] = _mm512_fmadd_ps(xe, wv[(r * S + s) * H], e[i]);
              if constexpr (BF16) o[i] = _mm512_fmadd_ps(xo, wv[(r * S + s) * H + 1], o[i]);
            }
          }
        }
        }
#pragma GCC unroll 4
        for (int i = 0; i < NP; ++i) store(orow + (q + i) * C * esize, e[i], o[i]);
      };
      for_each_pixel_group<4, SW, S>(Q, d.w, d.pad_left, group_at);
    }
  }
}

// SW: the column stride of the grouped-column path (1 or 2, no column dilation), or 0
// for any other geometry (interior groups with a load per tap, border pixels one at a time).
template <bool BF16, int R, int S, int SW>
void forward_rows_t(const Conv2dDesc& d, const void* x, const float* w, int64_t row, const float* bias, bool relu,
                    int64_t np0, int64_t np1, void* out) {
  constexpr int64_t kVec = BF16 ? 32 : 16;
  int64_t q_lo, q_hi;
  depthwise_interior(d.q(), d.w, S, d.stride_w, d.dilation_w, d.pad_left, &q_lo, &q_hi);
  const char* xb = static_cast<const char*>(x);
  char* ob = static_cast<char*>(out);
  // Runs of rows whose input (stride_h input rows of W * C per output row) fits in half the
  // L2, the channel blocks inside a run, the rows inside a block: a block's weights are loaded
  // once per run, and the input rows a block reads again for the next output rows are still
  // in L1 (row-outer order streamed all the channels of R input rows through L1 per output
  // row: 5x5 over 14x14x240 f32 is 67 KB of input per row). Measured against runs of one row
  // (the old order) and 64 KB / 2 MB runs in one process: 512 KB was best or tied on every
  // benchmark layer (f32 256@28 1.33 -> 1.82x torch, bf16 5x5 0.78 -> 0.90x).
  constexpr int64_t kRunBytes = 512 * 1024;
  const int64_t row_bytes = std::max<int64_t>(1, d.stride_h * d.w * d.c * (BF16 ? 2 : 4));
  const int64_t run = std::max<int64_t>(1, kRunBytes / row_bytes);
  for (int64_t r0 = np0; r0 < np1; r0 += run) {
    const int64_t r1 = std::min(np1, r0 + run);
    int64_t c = 0;
    for (; c + kVec <= d.c; c += kVec)
      forward_rows_block<BF16, R, S, SW, true>(d, xb, w, row, bias, relu, r0, r1, ob, c, ~0u, q_lo, q_hi);
    if (c < d.c) {
      const uint32_t m = static_cast<uint32_t>((uint64_t{1} << (d.c - c)) - 1);
      forward_rows_block<BF16, R, S, SW, false>(d, xb, w, row, bias, relu, r0, r1, ob, c, m, q_lo, q_hi);
    }
  }
}

}  // namespace
}  // namespace aicc::cpu::dw512
