// bf16 NHWC depthwise forward of 5x5 kernels on vdpbf16ps (AVX512_BF16): registry entry
// depthwise_avx512bf16, which is the AVX-512 entry (depthwise_conv2d_avx512.cc) in every other
// respect.
//
// The AVX-512 entry widens every bf16 input to f32 and issues one FMA per channel and tap.
// Here two kernel rows are taken together: for one input column, the vectors of rows r and
// r + 1 are interleaved into pair words (x[r][c], x[r+1][c]), and one vdpbf16ps adds both rows'
// products for 16 channels, against weight pairs (w[r][s][c], w[r+1][s][c]) built once per
// channel block: half the multiply instructions for the same integer work (a pair costs a
// shift and a blend per half, as widening one row did). The odd last row is paired with zeros
// on both sides (0 * 0 adds nothing).
//
// Only 5x5 takes it: measured in one process against the widening kernel (1 thread, bf16,
// batch 8, each call after one of torch's, medians of 31), 5x5 stride 1 at 14x14 (240, 480,
// 1152 channels at 7x7) 1.14-1.22x, at 28x28 1.31x, 5x5/2 72@56 1.13x, 672@14 0.96x; 3x3 layers
// ran the same (0.98-1.03x: they wait on memory, not on multiplies) and 3x3/2 32@112 0.92x, so
// 3x3 keeps the widening kernel.
//
// Lanes follow the AVX-512 entry's even / odd channel split (depthwise_avx512_impl.h): the
// "even" vectors hold channels 0, 2, .., 30 of a 32-channel block, the "odd" ones 1, 3, .., 31,
// so the split weights, the split bias and the rounding merge are the existing ones. The pair
// of one channel takes the bf16 at its position from each row: (x_r & 0xffff) | (x_{r+1} << 16)
// for the even channels, (x_r >> 16) | (x_{r+1} & 0xffff0000) for the odd ones, a word blend
// each.
//
// Numerics (docs/SEMANTICS.md, "bf16 x bf16 on a bf16 dot-product kernel"): products of bf16
// values are exact in f32 and added one after the other with round to nearest even, but in
// row-pair order (rows 0 and 1 of tap column 0, of column 1, ...; then rows 2 and 3; then row
// 4) rather than the reference's tap order, and vdpbf16ps reads subnormal bf16 inputs as zero
// and flushes subnormal partial sums. AICC_CPU_FEATURES=-avx512_bf16 selects the widening
// entry, whose sums are in tap order with subnormals kept. A kernel row in the padding
// contributes 0 * w like the reference's zero padding (the widening kernel skips it).
#include <immintrin.h>

#include <cstdint>
#include <type_traits>

#include "cpu/conv/depthwise_avx512_impl.h"
#include "cpu/conv/depthwise_conv2d.h"

namespace aicc::cpu {
namespace {

using dw512::load32;
using dw512::round_merge;
using dw512::split_f32;

constexpr __mmask32 kOddWords = 0xAAAAAAAAu;

inline __m512bh as_bh(__m512i v) { return reinterpret_cast<__m512bh>(v); }

// Pair words of two rows' 32 channels (a: row r, b: row r + 1), even and odd channels.
inline void pair_rows(__m512i a, __m512i b, __m512i& even, __m512i& odd) {
  even = _mm512_mask_blend_epi16(kOddWords, a, _mm512_slli_epi32(b, 16));
  odd = _mm512_mask_blend_epi16(kOddWords, _mm512_srli_epi32(a, 16), b);
}

// Weight pairs of one 32-channel block: for row pair rp and tap column s, [even, odd] at
// wp[(rp * S + s) * 2 + h]. From the split f32 rows (exact bf16 values: the f32 bits' upper
// halves are the weights' bf16 bits).
template <int R, int S>
void build_weight_pairs(const float* w, int64_t row, int64_t c, __m512i* wp) {
  constexpr int RP = (R + 1) / 2;
  for (int rp = 0; rp < RP; ++rp)
    for (int s = 0; s < S; ++s)
      for (int h = 0; h < 2; ++h) {
        const int r0 = 2 * rp, r1 = 2 * rp + 1;
        const __m512i lo = _mm512_srli_epi32(_mm512_castps_si512(_mm512_loadu_ps(w + (r0 * S + s) * row + c + 16 * h)), 16);
        const __m512i hi = r1 < R ? _mm512_castps_si512(_mm512_loadu_ps(w + (r1 * S + s) * row + c + 16 * h))
                                  : _mm512_setzero_si512();
        wp[(rp * S + s) * 2 + h] =
            _mm512_or_si512(lo, _mm512_and_si512(hi, _mm512_set1_epi32(static_cast<int>(0xffff0000u))));
      }
}

// One 32-channel block (FULL: all 32; else mask m) of output rows np0 <= n*P + p < np1, in
// groups of 8 pixels (16 independent vdpbf16ps chains: groups of 4 left the kernel waiting on
// the instruction's latency), column stride SW (1 or 2), no column dilation. The weight pairs
// (30 vectors for 5x5) are vdpbf16ps memory operands from an L1-resident buffer.
template <int R, int S, int SW, bool FULL>
void forward_block(const Conv2dDesc& d, const char* x, const float* w, int64_t row, const float* bias, bool relu,
                   int64_t np0, int64_t np1, char* out, int64_t c, uint32_t m) {
  constexpr int RP = (R + 1) / 2;
  const int64_t C = d.c, P = d.p(), Q = d.q();
  alignas(64) __m512i wbuf[RP * S * 2];
  build_weight_pairs<R, S>(w, row, c, wbuf);
  __m512 be = _mm512_setzero_ps(), bo = _mm512_setzero_ps();
  if (bias) split_f32(bias + c, m, be, bo);
  const __m512 zero = _mm512_setzero_ps();
  const char* rows[R + 1];
  rows[R] = nullptr;  // the zero partner of an odd last row
  for (int64_t np = np0; np < np1; ++np) {
    const int64_t n = np / P, p = np % P;
    for (int r = 0; r < R; ++r) {
      const int64_t h = p * d.stride_h - d.pad_top + r * d.dilation_h;
      rows[r] = h < 0 || h >= d.h ? nullptr : x + ((n * d.h + h) * d.w * C + c) * 2;
    }
    char* orow = out + (np * Q * C + c) * 2;
    const auto group_at = [&](int64_t q, auto np_tag, auto check_tag) {
      constexpr int NP = decltype(np_tag)::value, NL = (NP - 1) * SW + S;
      constexpr bool CHECK = decltype(check_tag)::value;  // some column outside the input
      const int64_t c0 = q * SW - d.pad_left;
      // Per group: keeps the compiler from hoisting the weight pairs into registers (and
      // spilling them beside the 16 accumulators).
      const __m512i* wp = wbuf;
      asm("" : "+r"(wp));
      __m512 e[NP], o[NP];
      for (int i = 0; i < NP; ++i) e[i] = be, o[i] = bo;
#pragma GCC unroll 3
      for (int rp = 0; rp < RP; ++rp) {
        const char* p0 = rows[2 * rp];
        const char* p1 = rows[2 * rp + 1];
        if (!p0 && !p1) continue;
#pragma GCC unroll 19
        for (int j = 0; j < NL; ++j) {
          const bool in = !CHECK || static_cast<uint64_t>(c0 + j) < static_cast<uint64_t>(d.w);
          const __mmask32 lm = in ? static_cast<__mmask32>(m) : __mmask32{0};
          const int64_t off = (c0 + j) * C * 2;
          const __m512i a = p0 ? (FULL && !CHECK ? _mm512_loadu_si512(p0 + off) : _mm512_maskz_loadu_epi16(lm, p0 + off))
                               : _mm512_setzero_si512();
          const __m512i b = p1 ? (FULL && !CHECK ? _mm512_loadu_si512(p1 + off) : _mm512_maskz_loadu_epi16(lm, p1 + off))
                               : _mm512_setzero_si512();
          __m512i xe, xo;
          pair_rows(a, b, xe, xo);
#pragma GCC unroll 8
          for (int i = 0; i < NP; ++i) {
            const int s = j - i * SW;
            if (s < 0 || s >= S) continue;
            const __m512i* wt = wp + (rp * S + s) * 2;
            e[i] = _mm512_dpbf16_ps(e[i], as_bh(xe), as_bh(wt[0]));
            o[i] = _mm512_dpbf16_ps(o[i], as_bh(xo), as_bh(wt[1]));
          }
        }
      }
#pragma GCC unroll 8
      for (int i = 0; i < NP; ++i) {
        __m512 ev = e[i], ov = o[i];
        if (relu) ev = _mm512_max_ps(zero, ev), ov = _mm512_max_ps(zero, ov);  // keeps NaN
        char* dst = orow + (q + i) * C * 2;
        if constexpr (FULL) _mm512_storeu_si512(dst, round_merge(ev, ov));
        else _mm512_mask_storeu_epi16(dst, m, round_merge(ev, ov));
      }
    };
    // Groups of 8 pixels, then one of 4, then the 1-3 pixels left.
    dw512::for_each_pixel_group<8, SW, S>(Q, d.w, d.pad_left, group_at);
  }
}

template <int R, int S, int SW>
void forward_rows_t(const Conv2dDesc& d, const void* x, const float* w, int64_t row, const float* bias, bool relu,
                    int64_t np0, int64_t np1, void* out) {
  const char* xb = static_cast<const char*>(x);
  char* ob = static_cast<char*>(out);
  // Runs of output rows whose input fits in half the L2, channel blocks inside a run (as the
  // AVX-512 entry: a block's weight pairs are built once per run, and the input rows a block
  // reads again for the next output rows are still in L1).
  constexpr int64_t kRunBytes = 512 * 1024;
  const int64_t row_bytes = std::max<int64_t>(1, d.stride_h * d.w * d.c * 2);
  const int64_t run = std::max<int64_t>(1, kRunBytes / row_bytes);
  for (int64_t r0 = np0; r0 < np1; r0 += run) {
    const int64_t r1 = std::min(np1, r0 + run);
    int64_t c = 0;
    for (; c + 32 <= d.c; c += 32) forward_block<R, S, SW, true>(d, xb, w, row, bias, relu, r0, r1, ob, c, ~0u);
    if (c < d.c) {
      const uint32_t m = static_cast<uint32_t>((uint64_t{1} << (d.c - c)) - 1);
      forward_block<R, S, SW, false>(d, xb, w, row, bias, relu, r0, r1, ob, c, m);
    }
  }
}

// The AVX-512 entry's bf16 forward_rows, for the geometries this kernel does not take.
bool (*widening_forward_rows)(const Conv2dDesc&, const void*, const float*, int64_t, const float*, bool, int64_t,
                              int64_t, void*) = nullptr;

// 5x5, column stride 1 or 2, no column dilation (row stride and dilation: any); everything
// else on the widening kernel.
bool forward_rows(const Conv2dDesc& d, const void* x, const float* w, int64_t row, const float* bias, bool relu,
                  int64_t np0, int64_t np1, void* out) {
  if (d.r == 5 && d.s == 5 && d.dilation_w == 1 && d.stride_w == 1)
    return forward_rows_t<5, 5, 1>(d, x, w, row, bias, relu, np0, np1, out), true;
  if (d.r == 5 && d.s == 5 && d.dilation_w == 1 && d.stride_w == 2)
    return forward_rows_t<5, 5, 2>(d, x, w, row, bias, relu, np0, np1, out), true;
  return widening_forward_rows(d, x, w, row, bias, relu, np0, np1, out);
}

}  // namespace

const DepthwiseOps& depthwise_ops_avx512bf16(DType t) {
  static const DepthwiseOps bf16 = [] {
    DepthwiseOps ops = depthwise_ops_avx512(DType::kBF16);
    widening_forward_rows = ops.forward_rows;
    ops.forward_rows = forward_rows;
    return ops;
  }();
  return t == DType::kBF16 ? bf16 : depthwise_ops_avx512(t);
}

}  // namespace aicc::cpu
