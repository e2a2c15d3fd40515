// AVX-512 primitives of the depthwise conv (see depthwise_conv2d.h): the NHWC kernels of
// depthwise_kernels_impl.h at 16 floats per vector (one zmm: a 16-channel block per tap, so
// the 9 or 25 weights of a 3x3 / 5x5 kernel and four pixels' accumulators fit the 32
// registers), and a bf16 kernel of its own (below). NCHW forward: the plane kernel of
// depthwise_nchw_avx512_impl.h for 3x3 / 5x5 at strides 1-2; other NCHW shapes run the AVX2 row kernel.
#include <immintrin.h>

#include "common/half.h"
#include "cpu/conv/depthwise_conv2d.h"

#define AICC_DW_VL 16
#include "cpu/conv/depthwise_kernels_impl.h"
#include "cpu/conv/depthwise_avx512_impl.h"
#include "cpu/conv/depthwise_nchw_avx512_impl.h"

namespace aicc::cpu {
namespace {

using namespace dw512;

// bf16 NHWC forward per call (accum_pixels_round) on the widening of depthwise_avx512_impl.h.

// One block of 32 channels (FULL) or the last, partial one.
template <int NT, bool FULL>
inline void accum_block(const uint16_t* const* src, const float* const* w, int ntaps, int64_t step, int64_t npix,
                        int64_t c, __mmask32 m, const float* bias, bool relu, uint16_t* dst, int64_t dst_step) {
  constexpr int kMax = NT > 0 ? NT : 1;
  const int nt = NT > 0 ? NT : ntaps;
  const __m512 zero = _mm512_setzero_ps();
  {
    __m512 we[kMax], wo[kMax];
    if constexpr (NT > 0)
      for (int t = 0; t < NT; ++t) we[t] = _mm512_loadu_ps(w[t] + c), wo[t] = _mm512_loadu_ps(w[t] + c + 16);
    __m512 be = zero, bo = zero;
    if (bias) split_f32(bias + c, m, be, bo);
    const auto finish = [&](__m512 e, __m512 o, int64_t i) {
      if (relu) e = _mm512_max_ps(zero, e), o = _mm512_max_ps(zero, o);  // keeps NaN and -0
      if constexpr (FULL) _mm512_storeu_si512(dst + i * dst_step + c, round_merge(e, o));
      else _mm512_mask_storeu_epi16(dst + i * dst_step + c, m, round_merge(e, o));
    };
    int64_t i = 0;
    for (; i + 4 <= npix; i += 4) {
      __m512 e0 = be, e1 = be, e2 = be, e3 = be, o0 = bo, o1 = bo, o2 = bo, o3 = bo;
#pragma GCC unroll 25
      for (int t = 0; t < nt; ++t) {
        __m512 wte, wto;
        if constexpr (NT > 0) wte = we[t], wto = wo[t];
        else wte = _mm512_loadu_ps(w[t] + c), wto = _mm512_loadu_ps(w[t] + c + 16);
        const uint16_t* s = src[t] + i * step + c;
        __m512 xe, xo;
        widen(load32<FULL>(s, m), xe, xo);
        e0 = _mm512_fmadd_ps(xe, wte, e0), o0 = _mm512_fmadd_ps(xo, wto, o0);
        widen(load32<FULL>(s + step, m), xe, xo);
        e1 = _mm512_fmadd_ps(xe, wte, e1), o1 = _mm512_fmadd_ps(xo, wto, o1);
        widen(load32<FULL>(s + 2 * step, m), xe, xo);
        e2 = _mm512_fmadd_ps(xe, wte, e2), o2 = _mm512_fmadd_ps(xo, wto, o2);
        widen(load32<FULL>(s + 3 * step, m), xe, xo);
        e3 = _mm512_fmadd_ps(xe, wte, e3), o3 = _mm512_fmadd_ps(xo, wto, o3);
      }
      finish(e0, o0, i), finish(e1, o1, i + 1), finish(e2, o2, i + 2), finish(e3, o3, i + 3);
    }
    for (; i < npix; ++i) {
      __m512 e = be, o = bo;
      for (int t = 0; t < nt; ++t) {
        __m512 wte, wto;
        if constexpr (NT > 0) wte = we[t], wto = wo[t];
        else wte = _mm512_loadu_ps(w[t] + c), wto = _mm512_loadu_ps(w[t] + c + 16);
        __m512 xe, xo;
        widen(load32<FULL>(src[t] + i * step + c, m), xe, xo);
        e = _mm512_fmadd_ps(xe, wte, e), o = _mm512_fmadd_ps(xo, wto, o);
      }
      finish(e, o, i);
    }
  }
}

template <int NT>
void accum_pixels_bf16_t(const void* const* src_v, const float* const* w, int ntaps, int64_t step, int64_t npix,
                         int64_t C, const float* bias, bool relu, void* dst_v, int64_t dst_step) {
  const uint16_t* const* src = reinterpret_cast<const uint16_t* const*>(src_v);
  uint16_t* dst = static_cast<uint16_t*>(dst_v);
  int64_t c = 0;
  for (; c + 32 <= C; c += 32)
    accum_block<NT, true>(src, w, ntaps, step, npix, c, ~__mmask32{0}, bias, relu, dst, dst_step);
  if (c < C)
    accum_block<NT, false>(src, w, ntaps, step, npix, c, (__mmask32{1} << (C - c)) - 1, bias, relu, dst, dst_step);
}

// Tap counts of 3x3 / 5x5 layers (full kernels, border rows and columns, stride-2 phases).
void accum_pixels_bf16(const void* const* src, const float* const* w, int ntaps, int64_t step, int64_t npix,
                       int64_t C, const float* bias, bool relu, void* dst, int64_t dst_step) {
#define AICC_DW_BF16(N) \
  case N: return accum_pixels_bf16_t<N>(src, w, ntaps, step, npix, C, bias, relu, dst, dst_step);
  switch (ntaps) {
    AICC_DW_BF16(1) AICC_DW_BF16(2) AICC_DW_BF16(3) AICC_DW_BF16(4) AICC_DW_BF16(6) AICC_DW_BF16(9)
    AICC_DW_BF16(12) AICC_DW_BF16(15) AICC_DW_BF16(16) AICC_DW_BF16(20) AICC_DW_BF16(25)
    default: return accum_pixels_bf16_t<0>(src, w, ntaps, step, npix, C, bias, relu, dst, dst_step);
  }
#undef AICC_DW_BF16
}

// bf16 NHWC weight gradient: wacc[t][c] += sum_i g[i][c] * x_t[i][c] in pixel order, on the
// same even / odd widening; the accumulators are in the split layout (the caller's partial
// filters), so they load and store as they lie. Up to 12 taps keep both halves of every tap's
// accumulator in registers across the pixels (2 * 12 + 4 of the 32 zmm); more taps run one tap
// at a time (the 5x5 layers' g is reread per tap, from L1).
template <int NT, bool FULL>
inline void wgrad_block(const uint16_t* g, int64_t gstep, const uint16_t* const* src, int ntaps, int64_t step,
                        int64_t npix, int64_t c, __mmask32 m, float* const* wacc) {
  if constexpr (NT > 0) {
    __m512 ae[NT], ao[NT];
    for (int t = 0; t < NT; ++t) ae[t] = _mm512_loadu_ps(wacc[t] + c), ao[t] = _mm512_loadu_ps(wacc[t] + c + 16);
    for (int64_t i = 0; i < npix; ++i) {
      __m512 ge, go;
      widen(load32<FULL>(g + i * gstep + c, m), ge, go);
#pragma GCC unroll 12
      for (int t = 0; t < NT; ++t) {
        __m512 xe, xo;
        widen(load32<FULL>(src[t] + i * step + c, m), xe, xo);
        ae[t] = _mm512_fmadd_ps(ge, xe, ae[t]), ao[t] = _mm512_fmadd_ps(go, xo, ao[t]);
      }
    }
    for (int t = 0; t < NT; ++t) _mm512_storeu_ps(wacc[t] + c, ae[t]), _mm512_storeu_ps(wacc[t] + c + 16, ao[t]);
  } else {
    for (int t = 0; t < ntaps; ++t) {
      __m512 ae = _mm512_loadu_ps(wacc[t] + c), ao = _mm512_loadu_ps(wacc[t] + c + 16);
      for (int64_t i = 0; i < npix; ++i) {
        __m512 ge, go, xe, xo;
        widen(load32<FULL>(g + i * gstep + c, m), ge, go);
        widen(load32<FULL>(src[t] + i * step + c, m), xe, xo);
        ae = _mm512_fmadd_ps(ge, xe, ae), ao = _mm512_fmadd_ps(go, xo, ao);
      }
      _mm512_storeu_ps(wacc[t] + c, ae), _mm512_storeu_ps(wacc[t] + c + 16, ao);
    }
  }
}

template <int NT>
void wgrad_pixels_bf16_t(const void* g_v, int64_t gstep, const void* const* src_v, int ntaps, int64_t step,
                         int64_t npix, int64_t C, float* const* wacc) {
  const uint16_t* g = static_cast<const uint16_t*>(g_v);
  const uint16_t* const* src = reinterpret_cast<const uint16_t* const*>(src_v);
  int64_t c = 0;
  for (; c + 32 <= C; c += 32) wgrad_block<NT, true>(g, gstep, src, ntaps, step, npix, c, ~__mmask32{0}, wacc);
  if (c < C) wgrad_block<NT, false>(g, gstep, src, ntaps, step, npix, c, (__mmask32{1} << (C - c)) - 1, wacc);
}

void wgrad_pixels_bf16(const void* g, int64_t gstep, const void* const* src, int ntaps, int64_t step, int64_t npix,
                       int64_t C, float* const* wacc) {
#define AICC_DW_BF16(N) \
  case N: return wgrad_pixels_bf16_t<N>(g, gstep, src, ntaps, step, npix, C, wacc);
  switch (ntaps) {
    AICC_DW_BF16(1) AICC_DW_BF16(2) AICC_DW_BF16(3) AICC_DW_BF16(4) AICC_DW_BF16(6) AICC_DW_BF16(9)
    AICC_DW_BF16(12)
    default: return wgrad_pixels_bf16_t<0>(g, gstep, src, ntaps, step, npix, C, wacc);
  }
#undef AICC_DW_BF16
}

// The weight gradient over whole rows (DepthwiseOps::wgrad_rows): one channel block at a time,
// every tap's accumulator in registers from the first row of the chunk to the last (the
// per-call version reloaded and stored them for every row and for each border pixel apart,
// about a third of the work on 14x14 layers). BF16: 32 channels as even / odd halves.
template <bool BF16, int R, int S, bool FULL>
inline void wgrad_rows_block(const Conv2dDesc& d, const char* x, const char* g, int64_t np0, int64_t np1,
                             float* wacc, int64_t row, int64_t c, uint32_t m, int64_t q_lo, int64_t q_hi) {
  constexpr int RS = R * S, H = BF16 ? 2 : 1;
  const int64_t C = d.c, P = d.p(), Q = d.q(), esize = BF16 ? 2 : 4;
  const __mmask16 m16 = static_cast<__mmask16>(m);
  // (even, odd) f32 halves of 32 bf16, or 16 f32 and nothing.
  const auto load = [&](const char* p, __m512& a, __m512& b) {
    if constexpr (BF16) {
      widen(load32<FULL>(reinterpret_cast<const uint16_t*>(p), m), a, b);
    } else {
      a = FULL ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(m16, p);
      b = a;
    }
  };
  // f32 rows are C floats long: the last block's accumulators are masked (the split bf16 rows
  // are padded to whole blocks).
  constexpr bool kMaskAcc = !BF16 && !FULL;
  __m512 acc[RS * H];
  for (int t = 0; t < RS; ++t)
    for (int h = 0; h < H; ++h)
      acc[t * H + h] = kMaskAcc ? _mm512_maskz_loadu_ps(m16, wacc + t * row + c)
                                : _mm512_loadu_ps(wacc + t * row + c + 16 * h);
  const char* rows[R];
  for (int64_t np = np0; np < np1; ++np) {
    const int64_t n = np / P, p = np % P;
    for (int r = 0; r < R; ++r) {
      const int64_t h = p * d.stride_h - d.pad_top + r * d.dilation_h;
      rows[r] = h < 0 || h >= d.h ? nullptr : x + ((n * d.h + h) * d.w * C + c) * esize;
    }
    const char* grow = g + (np * Q * C + c) * esize;
    const auto pixel = [&](int64_t q, bool check) {
      __m512 ge, go;
      load(grow + q * C * esize, ge, go);
#pragma GCC unroll 5
      for (int r = 0; r < R; ++r) {
        if (!rows[r]) continue;
#pragma GCC unroll 5
        for (int s = 0; s < S; ++s) {
          const int64_t col = q * d.stride_w - d.pad_left + s * d.dilation_w;
          if (check && (col < 0 || col >= d.w)) continue;
          __m512 xe, xo;
          load(rows[r] + col * C * esize, xe, xo);
          acc[(r * S + s) * H] = _mm512_fmadd_ps(ge, xe, acc[(r * S + s) * H]);
          if constexpr (BF16) acc[(r * S + s) * H + 1] = _mm512_fmadd_ps(go, xo, acc[(r * S + s) * H + 1]);
        }
      }
    };
    int64_t q = 0;
    for (; q < q_lo; ++q) pixel(q, true);
    for (; q < q_hi; ++q) pixel(q, false);
    for (; q < Q; ++q) pixel(q, true);
  }
  for (int t = 0; t < RS; ++t)
    for (int h = 0; h < H; ++h) {
      if constexpr (kMaskAcc) _mm512_mask_storeu_ps(wacc + t * row + c, m16, acc[t * H + h]);
      else _mm512_storeu_ps(wacc + t * row + c + 16 * h, acc[t * H + h]);
    }
}

template <bool BF16, int R, int S>
void wgrad_rows_t(const Conv2dDesc& d, const void* x, const void* g, int64_t np0, int64_t np1, float* wacc,
                  int64_t row) {
  constexpr int64_t kVec = BF16 ? 32 : 16;
  int64_t q_lo, q_hi;
  depthwise_interior(d.q(), d.w, S, d.stride_w, d.dilation_w, d.pad_left, &q_lo, &q_hi);
  const char* xb = static_cast<const char*>(x);
  const char* gb = static_cast<const char*>(g);
  int64_t c = 0;
  for (; c + kVec <= d.c; c += kVec)
    wgrad_rows_block<BF16, R, S, true>(d, xb, gb, np0, np1, wacc, row, c, ~0u, q_lo, q_hi);
  if (c < d.c) {
    const uint32_t m = static_cast<uint32_t>((uint64_t{1} << (d.c - c)) - 1);
    wgrad_rows_block<BF16, R, S, false>(d, xb, gb, np0, np1, wacc, row, c, m, q_lo, q_hi);
  }
}

// 3x3 and 5x5 (f32: 25 accumulators + 2 of the 32 zmm; bf16 5x5 would need 50: per-call path).
template <bool BF16>
bool wgrad_rows(const Conv2dDesc& d, const void* x, const void* g, int64_t np0, int64_t np1, float* wacc,
                int64_t row) {
  if (d.r == 3 && d.s == 3) return wgrad_rows_t<BF16, 3, 3>(d, x, g, np0, np1, wacc, row), true;
  if constexpr (!BF16)
    if (d.r == 5 && d.s == 5) return wgrad_rows_t<BF16, 5, 5>(d, x, g, np0, np1, wacc, row), true;
  return false;
}

template <bool BF16, int R, int S>
void forward_rows_sw(const Conv2dDesc& d, const void* x, const float* w, int64_t row, const float* bias, bool relu,
                     int64_t np0, int64_t np1, void* out) {
  const bool grouped = d.dilation_w == 1;
  if (grouped && d.stride_w == 1) forward_rows_t<BF16, R, S, 1>(d, x, w, row, bias, relu, np0, np1, out);
  else if (grouped && d.stride_w == 2) forward_rows_t<BF16, R, S, 2>(d, x, w, row, bias, relu, np0, np1, out);
  else forward_rows_t<BF16, R, S, 0>(d, x, w, row, bias, relu, np0, np1, out);
}

template <bool BF16>
bool forward_rows(const Conv2dDesc& d, const void* x, const float* w, int64_t row, const float* bias, bool relu,
                  int64_t np0, int64_t np1, void* out) {
  if (d.r == 3 && d.s == 3) return forward_rows_sw<BF16, 3, 3>(d, x, w, row, bias, relu, np0, np1, out), true;
  if (d.r == 5 && d.s == 5) return forward_rows_sw<BF16, 5, 5>(d, x, w, row, bias, relu, np0, np1, out), true;
  return false;
}

}  // namespace

const DepthwiseOps& depthwise_ops_avx512(DType t) {
  static const DepthwiseOps f32 = [] {
    DepthwiseOps ops = dwk::float_ops<float>(depthwise_ops_avx2(DType::kF32).row_nchw);
    ops.wgrad_rows = wgrad_rows<false>;
    ops.forward_rows = forward_rows<false>;
    ops.forward_rows_nchw = forward_rows_nchw<float>;
    ops.wgrad_rows_nchw = wgrad_rows_nchw<0>;
    return ops;
  }();
  static const DepthwiseOps f16 = [] {
    DepthwiseOps ops = dwk::float_ops<dwk::F16>(depthwise_ops_avx2(DType::kF16).row_nchw);
    ops.forward_rows_nchw = forward_rows_nchw<uint16_t, false>;
    ops.wgrad_rows_nchw = wgrad_rows_nchw<2>;
    return ops;
  }();
  static const DepthwiseOps bf16 = [] {
    DepthwiseOps ops = dwk::float_ops<dwk::BF16>(depthwise_ops_avx2(DType::kBF16).row_nchw);
    ops.accum_pixels_round = accum_pixels_bf16;
    ops.wgrad_pixels_split = wgrad_pixels_bf16;
    ops.wgrad_rows = wgrad_rows<true>;
    ops.forward_rows = forward_rows<true>;
    ops.forward_rows_nchw = forward_rows_nchw<uint16_t, true>;
    ops.wgrad_rows_nchw = wgrad_rows_nchw<1>;
    return ops;
  }();
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
