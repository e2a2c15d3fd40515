// The NHWC depthwise primitives (depthwise_conv2d.h, DepthwiseOps) as templates over GCC
// vector types, compiled once per ISA file with its own lane count AICC_DW_VL (portable 4,
// avx2 8, avx512 16 floats) so one source gives SSE, AVX2 and AVX-512 code.
//
// Every primitive walks `npix` pixels that share one tap pattern (a tap = a source pointer
// plus a per-channel weight row, the source advancing `step` elements per pixel), so the
// weights of all taps of a channel block are loaded once into registers and reused across the
// pixels, and 4 pixels are accumulated side by side (forward, backward data, INT8), or the
// per-tap filter accumulators stay in registers across all pixels (backward weight).
// Sums are formed in tap order (pixel order for the weight gradient): results depend only on
// the geometry, never on the thread count.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__F16C__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "common/half.h"
#include "cpu/conv/depthwise_conv2d.h"

#ifndef AICC_DW_VL
#error "define AICC_DW_VL (floats per vector) before including depthwise_kernels_impl.h"
#endif

namespace aicc::cpu::dwk {
// Internal linkage: each ISA file keeps its own copy (see depthwise_qconv2d_impl.h).
namespace {

constexpr int VL = AICC_DW_VL;
typedef float V __attribute__((vector_size(VL * 4)));
typedef int32_t VI __attribute__((vector_size(VL * 4)));
typedef uint32_t VU __attribute__((vector_size(VL * 4)));
typedef uint16_t VH __attribute__((vector_size(VL * 2)));
typedef uint8_t VB __attribute__((vector_size(VL)));
typedef int8_t VSB __attribute__((vector_size(VL)));

struct F16 {};   // tag: uint16_t holding IEEE half
struct BF16 {};  // tag: uint16_t holding bfloat16

template <typename T> struct Storage { using type = T; };
template <> struct Storage<F16> { using type = uint16_t; };
template <> struct Storage<BF16> { using type = uint16_t; };

template <typename T>
inline V ld(const typename Storage<T>::type* p) {
  if constexpr (std::is_same_v<T, float>) {
    V v;
    std::memcpy(&v, p, sizeof v);
    return v;
  } else if constexpr (std::is_same_v<T, BF16>) {
    VH h;
    std::memcpy(&h, p, sizeof h);
    return reinterpret_cast<V>(__builtin_convertvector(h, VU) << 16);
  } else {
#if defined(__F16C__) && AICC_DW_VL == 16
    return reinterpret_cast<V>(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))));
#elif defined(__F16C__) && AICC_DW_VL == 8
    return reinterpret_cast<V>(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
#else
    V v;
    for (int i = 0; i < VL; ++i) v[i] = f16_to_f32(p[i]);
    return v;
#endif
  }
}

template <typename T>
inline float ld1(const typename Storage<T>::type* p) {
  if constexpr (std::is_same_v<T, float>) return *p;
  else if constexpr (std::is_same_v<T, BF16>) return bf16_to_f32(*p);
  else return f16_to_f32(*p);
}

inline V ldf(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void stf(float* p, V v) { std::memcpy(p, &v, sizeof v); }
// relu keeping NaN: only lanes that compare below zero become 0.
inline V relu(V v) { return v < 0 ? V{} : v; }
inline float relu1(float v) { return v < 0 ? 0.0f : v; }

// Bytes widened to int32 lanes. GCC 12 scalarizes a 4x-widening __builtin_convertvector, so
// the x86 paths use the vpmov{zx,sx}bd intrinsics.
template <typename X>
inline VI ldi(const X* p) {
#if defined(__AVX512F__) && AICC_DW_VL == 16
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if constexpr (std::is_same_v<X, uint8_t>) return reinterpret_cast<VI>(_mm512_cvtepu8_epi32(b));
  else return reinterpret_cast<VI>(_mm512_cvtepi8_epi32(b));
#elif defined(__AVX2__) && AICC_DW_VL == 8
  const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  if constexpr (std::is_same_v<X, uint8_t>) return reinterpret_cast<VI>(_mm256_cvtepu8_epi32(b));
  else return reinterpret_cast<VI>(_mm256_cvtepi8_epi32(b));
#endif
  if constexpr (std::is_same_v<X, uint8_t>) {
    VB b;
    std::memcpy(&b, p, sizeof b);
    return __builtin_convertvector(b, VI);
  } else {
    VSB b;
    std::memcpy(&b, p, sizeof b);
    return __builtin_convertvector(b, VI);
  }
}
inline VI ldi32(const int32_t* p) {
  VI v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// dst[i*dst_step + c] = relu?(bias[c] + sum_t src[t][i*step + c] * w[t][c]), i < npix, c < C.
// NT > 0: the tap count, known at compile time (weights live in registers); NT == 0: `ntaps`.
template <typename T, int NT>
void accum_pixels_t(const void* const* src_v, const float* const* w, int ntaps, int64_t step, int64_t npix,
                    int64_t C, const float* bias, bool do_relu, float* dst, int64_t dst_step) {
  using S = typename Storage<T>::type;
  const S* const* src = reinterpret_cast<const S* const*>(src_v);
  constexpr int kMax = NT > 0 ? NT : 1;
  const int nt = NT > 0 ? NT : ntaps;
  int64_t c = 0;
  for (; c + VL <= C; c += VL) {
    V wv[kMax];
    if constexpr (NT > 0)
      for (int t = 0; t < NT; ++t) wv[t] = ldf(w[t] + c);
    const V b = bias ? ldf(bias + c) : V{};
    int64_t i = 0;
    for (; i + 4 <= npix; i += 4) {
      V a0 = b, a1 = b, a2 = b, a3 = b;
      for (int t = 0; t < nt; ++t) {
        const V wt = NT > 0 ? wv[t] : ldf(w[t] + c);
        const S* s = src[t] + i * step + c;
        a0 += ld<T>(s) * wt;
        a1 += ld<T>(s + step) * wt;
        a2 += ld<T>(s + 2 * step) * wt;
        a3 += ld<T>(s + 3 * step) * wt;
      }
      if (do_relu) a0 = relu(a0), a1 = relu(a1), a2 = relu(a2), a3 = relu(a3);
      float* o = dst + i * dst_step + c;
      stf(o, a0);
      stf(o + dst_step, a1);
      stf(o + 2 * dst_step, a2);
      stf(o + 3 * dst_step, a3);
    }
    for (; i < npix; ++i) {
      V a = b;
      for (int t = 0; t < nt; ++t) a += ld<T>(src[t] + i * step + c) * (NT > 0 ? wv[t] : ldf(w[t] + c));
      stf(dst + i * dst_step + c, do_relu ? relu(a) : a);
    }
  }
  for (; c < C; ++c) {
    for (int64_t i = 0; i < npix; ++i) {
      float a = bias ? bias[c] : 0.0f;
      for (int t = 0; t < nt; ++t) a += ld1<T>(src[t] + i * step + c) * w[t][c];
      dst[i * dst_step + c] = do_relu ? relu1(a) : a;
    }
  }
}

// wacc[t][c] += sum_i g[i*gstep + c] * src[t][i*step + c], i in order, c < C.
template <typename T, int NT>
void wgrad_pixels_t(const void* g_v, int64_t gstep, const void* const* src_v, int ntaps, int64_t step,
                    int64_t npix, int64_t C, float* const* wacc) {
  using S = typename Storage<T>::type;
  const S* g = static_cast<const S*>(g_v);
  const S* const* src = reinterpret_cast<const S* const*>(src_v);
  const int nt = NT > 0 ? NT : ntaps;
  int64_t c = 0;
  for (; c + VL <= C; c += VL) {
    if constexpr (NT > 0) {
      V a[NT];
      for (int t = 0; t < NT; ++t) a[t] = ldf(wacc[t] + c);
      for (int64_t i = 0; i < npix; ++i) {
        const V gv = ld<T>(g + i * gstep + c);
        for (int t = 0; t < NT; ++t) a[t] += gv * ld<T>(src[t] + i * step + c);
      }
      for (int t = 0; t < NT; ++t) stf(wacc[t] + c, a[t]);
    } else {
      for (int t = 0; t < nt; ++t) {
        V a = ldf(wacc[t] + c);
        for (int64_t i = 0; i < npix; ++i) a += ld<T>(g + i * gstep + c) * ld<T>(src[t] + i * step + c);
        stf(wacc[t] + c, a);
      }
    }
  }
  for (; c < C; ++c)
    for (int t = 0; t < nt; ++t) {
      float a = wacc[t][c];
      for (int64_t i = 0; i < npix; ++i) a += ld1<T>(g + i * gstep + c) * ld1<T>(src[t] + i * step + c);
      wacc[t][c] = a;
    }
}

// INT8: dst[i*dst_step + c] = init[c] + sum_t src[t][i*step + c] * w[t][c] in int32, exactly
// (|x| <= 255, |w - w_zero_point| <= 255: every product and partial sum fits with room).
// The caller folds the x zero point into init (init = bias - zx * sum_t w[t]).
template <typename X, int NT>
void qaccum_pixels_t(const void* const* src_v, const int32_t* const* w, int ntaps, int64_t step, int64_t npix,
                     int64_t C, const int32_t* init, int32_t* dst, int64_t dst_step) {
  const X* const* src = reinterpret_cast<const X* const*>(src_v);
  constexpr int kMax = NT > 0 ? NT : 1;
  const int nt = NT > 0 ? NT : ntaps;
  int64_t c = 0;
  for (; c + VL <= C; c += VL) {
    VI wv[kMax];
    if constexpr (NT > 0)
      for (int t = 0; t < NT; ++t) wv[t] = ldi32(w[t] + c);
    const VI b = ldi32(init + c);
    int64_t i = 0;
    for (; i + 4 <= npix; i += 4) {
      VI a0 = b, a1 = b, a2 = b, a3 = b;
      for (int t = 0; t < nt; ++t) {
        const VI wt = NT > 0 ? wv[t] : ldi32(w[t] + c);
        const X* s = src[t] + i * step + c;
        a0 += ldi(s) * wt;
        a1 += ldi(s + step) * wt;
        a2 += ldi(s + 2 * step) * wt;
        a3 += ldi(s + 3 * step) * wt;
      }
      int32_t* o = dst + i * dst_step + c;
      std::memcpy(o, &a0, sizeof a0);
      std::memcpy(o + dst_step, &a1, sizeof a1);
      std::memcpy(o + 2 * dst_step, &a2, sizeof a2);
      std::memcpy(o + 3 * dst_step, &a3, sizeof a3);
    }
    for (; i < npix; ++i) {
      VI a = b;
      for (int t = 0; t < nt; ++t) a += ldi(src[t] + i * step + c) * (NT > 0 ? wv[t] : ldi32(w[t] + c));
      std::memcpy(dst + i * dst_step + c, &a, sizeof a);
    }
  }
  for (; c < C; ++c)
    for (int64_t i = 0; i < npix; ++i) {
      int32_t a = init[c];
      for (int t = 0; t < nt; ++t) a += static_cast<int32_t>(src[t][i * step + c]) * w[t][c];
      dst[i * dst_step + c] = a;
    }
}

// Runtime tap count -> the compile-time instance for the counts depthwise 3x3 / 5x5 layers
// produce (full kernels 9 / 25, rows 3 / 5, stride-2 phases 1, 2, 4, 6, the border rows and
// columns of a 5x5: 12, 15, 16, 20), else the generic loop (weights reloaded per pixel).
#define AICC_DW_DISPATCH(FN, TYPE, NTAPS, ...)                         \
  switch (NTAPS) {                                                     \
    case 1: return FN<TYPE, 1>(__VA_ARGS__);                           \
    case 2: return FN<TYPE, 2>(__VA_ARGS__);                           \
    case 3: return FN<TYPE, 3>(__VA_ARGS__);                           \
    case 4: return FN<TYPE, 4>(__VA_ARGS__);                           \
    case 5: return FN<TYPE, 5>(__VA_ARGS__);                           \
    case 6: return FN<TYPE, 6>(__VA_ARGS__);                           \
    case 9: return FN<TYPE, 9>(__VA_ARGS__);                           \
    case 12: return FN<TYPE, 12>(__VA_ARGS__);                         \
    case 15: return FN<TYPE, 15>(__VA_ARGS__);                         \
    case 16: return FN<TYPE, 16>(__VA_ARGS__);                         \
    case 20: return FN<TYPE, 20>(__VA_ARGS__);                         \
    case 25: return FN<TYPE, 25>(__VA_ARGS__);                         \
    default: return FN<TYPE, 0>(__VA_ARGS__);                          \
  }

template <typename T>
void accum_pixels(const void* const* src, const float* const* w, int ntaps, int64_t step, int64_t npix, int64_t C,
                  const float* bias, bool do_relu, float* dst, int64_t dst_step) {
  AICC_DW_DISPATCH(accum_pixels_t, T, ntaps, src, w, ntaps, step, npix, C, bias, do_relu, dst, dst_step)
}

template <typename T>
void wgrad_pixels(const void* g, int64_t gstep, const void* const* src, int ntaps, int64_t step, int64_t npix,
                  int64_t C, float* const* wacc) {
  AICC_DW_DISPATCH(wgrad_pixels_t, T, ntaps, g, gstep, src, ntaps, step, npix, C, wacc)
}

template <typename X>
void qaccum_pixels(const void* const* src, const int32_t* const* w, int ntaps, int64_t step, int64_t npix,
                   int64_t C, const int32_t* init, int32_t* dst, int64_t dst_step) {
  AICC_DW_DISPATCH(qaccum_pixels_t, X, ntaps, src, w, ntaps, step, npix, C, init, dst, dst_step)
}

// dst[i] = src[i] rounded to the storage type T (round half to even; NaN stays NaN), i < n:
// bit-identical to f32_to_bf16 / f32_to_f16 (common/half.h).
template <typename T>
void store_row(const float* src, int64_t n, void* dst_v) {
  using S = typename Storage<T>::type;
  S* dst = static_cast<S*>(dst_v);
  if constexpr (std::is_same_v<T, float>) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
    return;
  }
  int64_t i = 0;
  if constexpr (std::is_same_v<T, BF16>) {
    for (; i + VL <= n; i += VL) {
      const VU u = reinterpret_cast<VU>(ldf(src + i));
      const VU rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
      const VU quiet = (u >> 16) | 0x40u;
      const VU r = (u & 0x7fffffffu) > 0x7f800000u ? quiet : rounded;
      const VH h = __builtin_convertvector(r, VH);
      std::memcpy(dst + i, &h, sizeof h);
    }
    for (; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
  } else {
#if defined(__F16C__) && AICC_DW_VL == 16
    for (; i + VL <= n; i += VL)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i),
                          _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#elif defined(__F16C__) && AICC_DW_VL == 8
    for (; i + VL <= n; i += VL)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                       _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#endif
    for (; i < n; ++i) dst[i] = f32_to_f16(src[i]);
  }
}

// NCHW, vectors over columns. dst[j] = sum_t src[t][j] * w[t], j < npix (contiguous rows).
template <typename T, int NT>
void accum_cols_t(const void* const* src_v, const float* w, int ntaps, int64_t npix, float* dst) {
  using S = typename Storage<T>::type;
  const S* const* src = reinterpret_cast<const S* const*>(src_v);
  const int nt = NT > 0 ? NT : ntaps;
  int64_t j = 0;
  for (; j + 2 * VL <= npix; j += 2 * VL) {
    V a0{}, a1{};
    for (int t = 0; t < nt; ++t) {
      const V wv = V{} + w[t];
      a0 += ld<T>(src[t] + j) * wv;
      a1 += ld<T>(src[t] + j + VL) * wv;
    }
    stf(dst + j, a0);
    stf(dst + j + VL, a1);
  }
  for (; j + VL <= npix; j += VL) {
    V a{};
    for (int t = 0; t < nt; ++t) a += ld<T>(src[t] + j) * (V{} + w[t]);
    stf(dst + j, a);
  }
  for (; j < npix; ++j) {
    float a = 0.0f;
    for (int t = 0; t < nt; ++t) a += ld1<T>(src[t] + j) * w[t];
    dst[j] = a;
  }
}

// out[t] += sum_j g[j] * src[t][j*step], j < npix: lane sums across the row (per-tap
// accumulators in registers), then the lanes added in lane order.
template <typename T, int NT>
void dot_cols_t(const void* g_v, const void* const* src_v, int ntaps, int64_t step, int64_t npix, float* out) {
  using S = typename Storage<T>::type;
  const S* g = static_cast<const S*>(g_v);
  const S* const* src = reinterpret_cast<const S* const*>(src_v);
  constexpr int kMax = NT > 0 ? NT : 32;
  const int nt = NT > 0 ? NT : ntaps;
  for (int t0 = 0; t0 < nt; t0 += kMax) {
    const int t1 = nt - t0 < kMax ? nt : t0 + kMax;
    V acc[kMax];
    for (int t = t0; t < t1; ++t) acc[t - t0] = V{};
    int64_t j = 0;
    for (; j + VL <= npix; j += VL) {
      const V gv = ld<T>(g + j);
      for (int t = t0; t < t1; ++t) {
        V xv;
        if (step == 1) {
          xv = ld<T>(src[t] + j);
        } else {
          for (int l = 0; l < VL; ++l) xv[l] = ld1<T>(src[t] + (j + l) * step);
        }
        acc[t - t0] += gv * xv;
      }
    }
    for (int t = t0; t < t1; ++t) {
      float sum = 0.0f;
      for (int l = 0; l < VL; ++l) sum += acc[t - t0][l];
      for (int64_t i = j; i < npix; ++i) sum += ld1<T>(g + i) * ld1<T>(src[t] + i * step);
      out[t] += sum;
    }
  }
}

template <typename T>
void accum_cols(const void* const* src, const float* w, int ntaps, int64_t npix, float* dst) {
  AICC_DW_DISPATCH(accum_cols_t, T, ntaps, src, w, ntaps, npix, dst)
}

template <typename T>
void dot_cols(const void* g, const void* const* src, int ntaps, int64_t step, int64_t npix, float* out) {
  AICC_DW_DISPATCH(dot_cols_t, T, ntaps, g, src, ntaps, step, npix, out)
}

#undef AICC_DW_DISPATCH

// The table entries of this ISA for a float storage type T (with the NCHW forward row kernel
// given) and for an INT8 type X.
template <typename T>
DepthwiseOps float_ops(decltype(DepthwiseOps::row_nchw) row_nchw) {
  return DepthwiseOps{accum_pixels<T>, wgrad_pixels<T>, row_nchw, accum_cols<T>, dot_cols<T>, store_row<T>, nullptr};
}
template <typename X>
DepthwiseOps int8_ops() {
  return DepthwiseOps{nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, qaccum_pixels<X>};
}

}  // namespace
}  // namespace aicc::cpu::dwk
