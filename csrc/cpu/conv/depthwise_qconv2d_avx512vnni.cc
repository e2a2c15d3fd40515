// Quantized depthwise conv2d on AVX-512 VNNI (vpdpbusd), NHWC; NCHW runs the AVX2 entry's kernel
// (the template compiled with AVX-512 flags measured slower: 256@28 batch 8, 7.8 -> 11.9 ms).
//
// vpdpbusd sums 4 u8 x s8 products per int32 lane, exactly. In a depthwise conv each channel
// is its own dot product over the taps, so a lane must hold 4 *input positions* of one
// channel: 4 loads of 64 channels (one per position), two levels of byte/word unpacks, give
// 4 vectors of 16 channels x 4 positions. The lanes come out permuted (vector v, 128-bit lane
// L, dword j holds channel 16L + 4v + j); the packed weights and the start values use the same
// order, and the accumulators are put back in channel order by 8 block shuffles before the
// output stage.
//
// Positions are shared between neighbouring outputs: with stride 1 and no column dilation,
// the S + 1 input columns q - pad .. q - pad + S serve output columns q and q + 1 (weights
// w[0..S-1] at byte offset 0 for the first and 1 for the second), so each quad of positions is
// built once for two outputs (3x3: one quad per kernel row feeds two pixels). Otherwise one
// output at a time, positions s * dilation.
//
// Zero points, with no pass over the input: s8 inputs are moved to u8 by flipping the sign bit
// in registers (x' = x + 128, zx' = zx + 128). Positions in the padding read a row of zx bytes,
// so every output sums over all R*S taps and sum_t (x'_t - zx') w_t = sum_t x'_t w_t - zx' sum_t
// w_t: the second term is folded into the per-channel start value once. A non-zero weight zero
// point adds - zw sum_t x'_t + R*S zx' zw: the x sums come from a second vpdpbusd with 0/1
// weights (only then). Modulo 2^32 throughout: the reference's bits.
//
// The output stage (scale, residual, round half to even, zero point, saturation, relu) runs on
// the accumulators in registers, 16 channels at a time, the same operations in the same order
// as depthwise_qconv2d_impl.h's output_row (bit-exact; this file is compiled with
// -ffp-contract=off so the residual's multiply and add stay two roundings).
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/thread_pool.h"
#include "cpu/conv/depthwise_qconv2d.h"

namespace aicc::cpu {
namespace {

constexpr int kBlock = 64;  // channels per block: one zmm of bytes per input position

// 64 bytes on a 64-byte boundary (C++17 aligned new), so every vector load is one cache line.
struct alignas(64) Line {
  int8_t b[64];
};

// The output stage of one call, fixed for the whole tensor.
struct OutputStage {
  DType out;
  void* dst;
  bool relu;
  bool per_channel;
  const float* scale;
  float zp, lo, hi;
  const void* residual = nullptr;  // out's layout and shape
  bool residual_u8 = true;
  float residual_scale = 1.0f;
  int32_t residual_zp = 0;

  // u8/s8 output without a residual: the stage runs on the accumulators in their permuted lane
  // order (scale given in that order), and the two levels of in-lane int32 -> int16 -> int8
  // packs put the 64 channels back in order (each 128-bit lane holds channels 16L + 4v + j of
  // vector v: packing v = 0, 1 then 2, 3 lane by lane yields 16L + 0..15).
  bool packed = false;
  bool out_u8 = true;
  int32_t zp_i = 0, lo_i = 0;

  // rint(v) + zp, clamped to [lo, hi]: v is clamped to +-65536 first (beyond that the result
  // saturates whatever the zero point), so the rounding conversion (half to even, as rint in
  // the default mode) cannot overflow and + zp is exact in int32; the packs saturate to the
  // dtype's range, the relu's lower bound zp is a max.
  inline __m512i pack64(const __m512i a[4], const float* scale_perm) const {
    __m512i qi[4];
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) {
      const __m512 s = per_channel ? _mm512_load_ps(scale_perm + 16 * v) : _mm512_set1_ps(scale[0]);
      __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(a[v]), s);
      f = _mm512_min_ps(_mm512_set1_ps(65536.0f), _mm512_max_ps(_mm512_set1_ps(-65536.0f), f));
      qi[v] = _mm512_add_epi32(_mm512_cvt_roundps_epi32(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
                               _mm512_set1_epi32(zp_i));
      if (relu) qi[v] = _mm512_max_epi32(qi[v], _mm512_set1_epi32(lo_i));
    }
    const __m512i w01 = _mm512_packs_epi32(qi[0], qi[1]), w23 = _mm512_packs_epi32(qi[2], qi[3]);
    return out_u8 ? _mm512_packus_epi16(w01, w23) : _mm512_packs_epi16(w01, w23);
  }

  // Element idx .. idx+15 of out (channels c0 .. c0+15, lanes past m masked off).
  inline void finish16(__m512i a, int64_t idx, int64_t c0, __mmask16 m) const {
    if (out == DType::kS32) {
      if (relu) a = _mm512_max_epi32(a, _mm512_setzero_si512());
      _mm512_mask_storeu_epi32(static_cast<int32_t*>(dst) + idx, m, a);
      return;
    }
    const __m512 s = per_channel ? _mm512_maskz_loadu_ps(m, scale + c0) : _mm512_set1_ps(scale[0]);
    __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(a), s);
    if (residual != nullptr) {
      const __m128i rb = _mm_maskz_loadu_epi8(m, static_cast<const uint8_t*>(residual) + idx);
      const __m512i ri = residual_u8 ? _mm512_cvtepu8_epi32(rb) : _mm512_cvtepi8_epi32(rb);
      const __m512 rv = _mm512_cvtepi32_ps(_mm512_sub_epi32(ri, _mm512_set1_epi32(residual_zp)));
      v = _mm512_add_ps(v, _mm512_mul_ps(_mm512_set1_ps(residual_scale), rv));
    }
    if (out == DType::kF32) {
      // max(0, v) returns v for v = -0 and NaN, as std::max(v, 0.0f) does.
      if (relu) v = _mm512_max_ps(_mm512_setzero_ps(), v);
      _mm512_mask_storeu_ps(static_cast<float*>(dst) + idx, m, v);
      return;
    }
    // Clamped first with a residual: v may exceed int range where the result saturates anyway.
    if (residual != nullptr)
      v = _mm512_min_ps(_mm512_set1_ps(65536.0f), _mm512_max_ps(_mm512_set1_ps(-65536.0f), v));
    __m512 q = _mm512_add_ps(_mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
                             _mm512_set1_ps(zp));
    q = _mm512_min_ps(_mm512_set1_ps(hi), _mm512_max_ps(_mm512_set1_ps(lo), q));
    const __m128i b = _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(q));
    _mm_mask_storeu_epi8(static_cast<char*>(dst) + idx, m, b);
  }
};

// The 4 accumulators of a 64-channel block, permuted lanes -> channel order (4x4 transpose of
// 128-bit blocks).
inline void to_channel_order(__m512i a[4]) {
  const __m512i t0 = _mm512_shuffle_i32x4(a[0], a[1], 0x44), t1 = _mm512_shuffle_i32x4(a[0], a[1], 0xEE);
  const __m512i t2 = _mm512_shuffle_i32x4(a[2], a[3], 0x44), t3 = _mm512_shuffle_i32x4(a[2], a[3], 0xEE);
  a[0] = _mm512_shuffle_i32x4(t0, t2, 0x88);
  a[1] = _mm512_shuffle_i32x4(t0, t2, 0xDD);
  a[2] = _mm512_shuffle_i32x4(t1, t3, 0x88);
  a[3] = _mm512_shuffle_i32x4(t1, t3, 0xDD);
}

// Channel of byte quad (v, L, j) of a block: the lane order the unpacks produce.
inline int64_t permuted_channel(int v, int lane) { return 16 * (lane / 4) + 4 * v + lane % 4; }

// G outputs per step (2: stride 1, unit column dilation; else 1), NQ quads of positions per
// kernel row, ZW: some weight zero point is not 0, FLIP: s8 input (sign bit flipped to u8).
// TWIN (C <= 32): the vector's upper 32 byte lanes hold the next step's outputs (q + G) instead
// of channels 32..63, which such a layer does not have: half of every instruction would work on
// nothing otherwise (MobileNet's 32-channel layers).
template <int G, bool ZW, bool FLIP, bool TWIN>
void run_nhwc(const Conv2dDesc& d, const uint8_t* x, const int8_t* w, const QGemmParams& p, const OutputStage& os,
              int nq) {
  const int64_t C = d.c, P = d.p(), Q = d.q(), R = d.r, S = d.s, RS = R * S;
  const int64_t nb = (C + kBlock - 1) / kBlock;
  constexpr int kSlots = TWIN ? 2 : 1;  // steps per vector
  constexpr int64_t kLanes = TWIN ? 32 : kBlock;  // byte lanes per step
  const int npos = G == 2 ? static_cast<int>(S) + 1 : static_cast<int>(S);
  const auto zw = [&](int64_t c) { return p.b_zero_point ? p.b_zero_point[p.b_zero_point_len == 1 ? 0 : c] : 0; };
  const int32_t zx1 = p.a_zero_point + (FLIP ? 128 : 0);  // the zero point in the u8 domain
  // Packed weights, [block][r][g][quad][v][64 bytes]: byte (L*16 + j*4 + b) of vector v is the
  // weight of channel permuted_channel(v, 4L + j) at position 4*quad + b for output g of the step.
  const int64_t per_block = R * G * nq * 4 * 64;
  std::vector<Line> wpk_lines(static_cast<size_t>(nb * per_block / 64)), ones_lines(ZW ? wpk_lines.size() : 1);
  std::vector<Line> init_lines(static_cast<size_t>(nb * 4)), zw_lines(static_cast<size_t>(nb * 4));
  int8_t* wpk = reinterpret_cast<int8_t*>(wpk_lines.data());  // value-initialized: zero weights everywhere not set below
  int8_t* ones = reinterpret_cast<int8_t*>(ones_lines.data());
  int32_t* init = reinterpret_cast<int32_t*>(init_lines.data());
  int32_t* zwp = reinterpret_cast<int32_t*>(zw_lines.data());
  std::vector<Line> scale_lines(os.packed && os.per_channel ? static_cast<size_t>(nb * 4) : 1);
  float* scale_p = reinterpret_cast<float*>(scale_lines.data());  // os.scale in the accumulators' lane order
  for (int64_t cb = 0; cb < nb; ++cb)
    for (int v = 0; v < 4; ++v)
      for (int lane = 0; lane < 16; ++lane) {
        const int64_t c = cb * kBlock + permuted_channel(v, lane) % kLanes;
        const int64_t slot = cb * kBlock + v * 16 + lane;
        if (c >= C) {
          init[slot] = 0, zwp[slot] = 0;
          continue;
        }
        if (os.packed && os.per_channel) scale_p[slot] = os.scale[c];
        uint32_t sum_w = 0;
        for (int64_t t = 0; t < RS; ++t) sum_w += static_cast<uint32_t>(static_cast<int32_t>(w[c * RS + t]));
        const uint32_t b = static_cast<uint32_t>(p.bias ? p.bias[c] : 0);
        const uint32_t z = static_cast<uint32_t>(zw(c));
        init[slot] = static_cast<int32_t>(b - static_cast<uint32_t>(zx1) * sum_w +
                                          static_cast<uint32_t>(RS) * static_cast<uint32_t>(zx1) * z);
        zwp[slot] = static_cast<int32_t>(z);
        for (int64_t r = 0; r < R; ++r)
          for (int g = 0; g < G; ++g)
            for (int pos = 0; pos < 4 * nq; ++pos) {
              const int64_t s = G == 2 ? pos - g : pos;  // the tap at this position for output g
              if (s < 0 || s >= S || pos >= npos) continue;
              const int64_t at = cb * per_block + (((r * G + g) * nq + pos / 4) * 4 + v) * 64 + lane * 4 + pos % 4;
              wpk[at] = w[c * RS + r * S + s];
              if (ZW) ones[at] = 1;
            }
      }
  // The padding: one row of zero points (raw, flipped with everything else on load).
  std::vector<uint8_t> zrow(static_cast<size_t>(nb * kBlock), static_cast<uint8_t>(p.a_zero_point));
  const int64_t col_step = G == 2 ? 1 : d.dilation_w;
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));

  parallel_for(d.n * P, [&](int64_t np, int) {
    const int64_t n = np / P, pp = np % P;
    std::vector<const uint8_t*> ptr(static_cast<size_t>(kSlots * R * nq * 4));
    std::vector<const uint8_t*> rows(static_cast<size_t>(R));
    for (int64_t r = 0; r < R; ++r) {
      const int64_t h = pp * d.stride_h - d.pad_top + r * d.dilation_h;
      rows[r] = (h < 0 || h >= d.h) ? nullptr : x + (n * d.h + h) * d.w * C;
    }
    // Between two steps whose positions all lie inside the row, every source pointer moves by
    // the same amount (0 for a kernel row in the padding): no per-position tests there.
    std::vector<int64_t> delta(static_cast<size_t>(R * nq * 4));
    for (int64_t r = 0; r < R; ++r)
      for (int pos = 0; pos < 4 * nq; ++pos) delta[r * nq * 4 + pos] = rows[r] ? G * d.stride_w * C : 0;
    const int64_t span = (npos - 1) * col_step;
    if (TWIN)
      for (auto& dv : delta) dv *= 2;
    bool prev_inside[kSlots] = {};
    for (int64_t q = 0; q < Q; q += G * kSlots) {
      for (int sl = 0; sl < kSlots; ++sl) {
        // Each position's source: x, or the zero-point row in the padding (and past the row's end).
        const int64_t col0 = (q + sl * G) * d.stride_w - d.pad_left;
        const bool inside = q + sl * G < Q && col0 >= 0 && col0 + span < d.w;
        const uint8_t** ps = ptr.data() + sl * R * nq * 4;
        if (inside && prev_inside[sl]) {
          for (int64_t i = 0; i < R * nq * 4; ++i) ps[i] += delta[i];
        } else {
          for (int64_t r = 0; r < R; ++r)
            for (int pos = 0; pos < 4 * nq; ++pos) {
              const int64_t col = col0 + std::min(pos, npos - 1) * col_step;
              ps[r * nq * 4 + pos] =
                  q + sl * G < Q && rows[r] && col >= 0 && col < d.w ? rows[r] + col * C : zrow.data();
            }
        }
        prev_inside[sl] = inside;
      }
      for (int64_t cb = 0; cb < nb; ++cb) {
        const int64_t c0 = cb * kBlock, rem = C - c0;
        const __mmask64 m = rem >= kBlock ? ~__mmask64{0} : (__mmask64{1} << rem) - 1;
        const __mmask32 m32 = static_cast<__mmask32>(m);
        // 64 bytes of one position: channels c0.. of this step, or (TWIN) 32 of each step.
        const auto load = [&](const uint8_t* const* pr, int i) {
          if constexpr (TWIN) {
            const __m256i lo = _mm256_maskz_loadu_epi8(m32, pr[i]);
            const __m256i hi = _mm256_maskz_loadu_epi8(m32, pr[R * nq * 4 + i]);
            return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
          } else {
            return _mm512_maskz_loadu_epi8(m, pr[i] + c0);
          }
        };
        const __m512i* wv = reinterpret_cast<const __m512i*>(wpk + cb * per_block);
        const __m512i* ov = reinterpret_cast<const __m512i*>(ones + cb * per_block);
        __m512i acc[G][4], accx[G][4];
        for (int g = 0; g < G; ++g)
          for (int v = 0; v < 4; ++v) {
            acc[g][v] = _mm512_load_si512(init + c0 + v * 16);
            if (ZW) accx[g][v] = _mm512_setzero_si512();
          }
        for (int64_t r = 0; r < R; ++r)
          for (int k = 0; k < nq; ++k) {
            const uint8_t* const* pr = ptr.data() + (r * nq + k) * 4;
            __m512i x0 = load(pr, 0), x1 = load(pr, 1), x2 = load(pr, 2), x3 = load(pr, 3);
            if (FLIP) {
              x0 = _mm512_xor_si512(x0, flip), x1 = _mm512_xor_si512(x1, flip);
              x2 = _mm512_xor_si512(x2, flip), x3 = _mm512_xor_si512(x3, flip);
            }
            const __m512i a = _mm512_unpacklo_epi8(x0, x1), b = _mm512_unpackhi_epi8(x0, x1);
            const __m512i c = _mm512_unpacklo_epi8(x2, x3), e = _mm512_unpackhi_epi8(x2, x3);
            const __m512i quad[4] = {_mm512_unpacklo_epi16(a, c), _mm512_unpackhi_epi16(a, c),
                                     _mm512_unpacklo_epi16(b, e), _mm512_unpackhi_epi16(b, e)};
#pragma GCC unroll 2
            for (int g = 0; g < G; ++g) {
              const int64_t at = ((r * G + g) * nq + k) * 4;
#pragma GCC unroll 4
              for (int v = 0; v < 4; ++v) {
                acc[g][v] = _mm512_dpbusd_epi32(acc[g][v], quad[v], _mm512_load_si512(wv + at + v));
                if (ZW) accx[g][v] = _mm512_dpbusd_epi32(accx[g][v], quad[v], _mm512_load_si512(ov + at + v));
              }
            }
          }
        for (int g = 0; g < G; ++g) {
          if (q + g >= Q) break;
          if (ZW)
            for (int v = 0; v < 4; ++v)
              acc[g][v] = _mm512_sub_epi32(acc[g][v],
                                           _mm512_mullo_epi32(_mm512_load_si512(zwp + c0 + v * 16), accx[g][v]));
          const int64_t base = ((n * P + pp) * Q + q + g) * C + c0;
          const int64_t base1 = base + G * C;  // TWIN: the same output of the next step
          const bool second = TWIN && q + G + g < Q;
          if (os.packed) {
            const __m512i b = os.pack64(acc[g], scale_p + c0);
            if constexpr (TWIN) {
              _mm256_mask_storeu_epi8(static_cast<char*>(os.dst) + base, m32, _mm512_castsi512_si256(b));
              if (second) _mm256_mask_storeu_epi8(static_cast<char*>(os.dst) + base1, m32, _mm512_extracti64x4_epi64(b, 1));
            } else {
              _mm512_mask_storeu_epi8(static_cast<char*>(os.dst) + base, m, b);
            }
            continue;
          }
          to_channel_order(acc[g]);
          for (int u = 0; u < 4; ++u) {
            // TWIN: vectors 0, 1 are channels 0..31 of this step, 2, 3 of the next.
            const int64_t cu = TWIN ? 16 * (u % 2) : 16 * u;
            if (cu >= rem || (TWIN && u >= 2 && !second)) continue;
            const int64_t left = rem - cu;
            const __mmask16 mu = left >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
            os.finish16(acc[g][u], (TWIN && u >= 2 ? base1 : base) + cu, c0 + cu, mu);
          }
        }
      }
    }
  }, get_num_threads());
}

template <bool FLIP>
void dispatch(const Conv2dDesc& d, const uint8_t* x, const int8_t* w, const QGemmParams& p, const OutputStage& os) {
  bool zw = false;
  for (int64_t i = 0; p.b_zero_point && i < p.b_zero_point_len; ++i) zw |= p.b_zero_point[i] != 0;
  const bool pairs = d.stride_w == 1 && d.dilation_w == 1;
  const int nq = static_cast<int>((d.s + (pairs ? 1 : 0) + 3) / 4);
  const bool twin = d.c <= 32;
#define AICC_DWQ_RUN(G, TWIN) \
  return zw ? run_nhwc<G, true, FLIP, TWIN>(d, x, w, p, os, nq) : run_nhwc<G, false, FLIP, TWIN>(d, x, w, p, os, nq);
  if (pairs) {
    if (twin) AICC_DWQ_RUN(2, true)
    AICC_DWQ_RUN(2, false)
  }
  if (twin) AICC_DWQ_RUN(1, true)
  AICC_DWQ_RUN(1, false)
#undef AICC_DWQ_RUN
}

}  // namespace

void depthwise_qconv2d_avx512vnni(const Conv2dDesc& d, const TensorView& x, const TensorView& w,
                                  const QGemmParams& params, const TensorView& out, const QResidual* residual) {
  // NCHW, and an s32 output with a residual (refused by the op layer; kept for C++ callers):
  // the AVX2 entry.
  if (d.layout != Layout::kNHWC || (residual != nullptr && out.dtype == DType::kS32)) {
    depthwise_qconv2d_avx2(d, x, w, params, out, residual);
    return;
  }
  OutputStage os{};
  os.out = out.dtype;
  os.dst = out.data;
  os.relu = params.activation == Activation::kRelu;
  os.per_channel = params.scale_len != 1;
  os.scale = params.scale;
  os.zp = static_cast<float>(params.out_zero_point);
  os.lo = out.dtype == DType::kU8 ? 0.0f : -128.0f;
  os.hi = out.dtype == DType::kU8 ? 255.0f : 127.0f;
  if (os.relu) os.lo = std::max(os.lo, os.zp);
  os.packed = residual == nullptr && (out.dtype == DType::kU8 || out.dtype == DType::kS8);
  os.out_u8 = out.dtype == DType::kU8;
  os.zp_i = params.out_zero_point;
  os.lo_i = static_cast<int32_t>(os.lo);
  if (residual != nullptr) {
    os.residual = residual->view.data;
    os.residual_u8 = residual->view.dtype == DType::kU8;
    os.residual_scale = residual->scale;
    os.residual_zp = residual->zero_point;
  }
  const uint8_t* xb = static_cast<const uint8_t*>(x.data);
  const int8_t* wb = static_cast<const int8_t*>(w.data);
  if (x.dtype == DType::kU8) dispatch<false>(d, xb, wb, params, os);
  else dispatch<true>(d, xb, wb, params, os);
}

}  // namespace aicc::cpu
