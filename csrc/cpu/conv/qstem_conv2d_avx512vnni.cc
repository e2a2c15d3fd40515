// The direct INT8 stem's tile kernel on AVX-512 VNNI (qstem_conv2d.h): per quad of taps, one
// broadcast u8 quad per pixel and NV vectors of 16 channels' s8 weight quads, MR*NV vpdpbusd
// (non-saturating: exact int32, wrapping like the reference's modular folding), then the
// output stage on the accumulators in registers.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "cpu/conv/qstem_conv2d.h"

namespace aicc::cpu {
namespace {

using qgemm_detail::OutputStage;

// Accumulators MR*NV <= 24 of the 32 zmm registers, plus NV weight vectors and a broadcast.
constexpr int mr_for(int nv) { return nv >= 4 ? 6 : nv == 3 ? 8 : 12; }

// The output stage's per-column operands of one 16-channel vector (the column arrays are padded
// to whole blocks: full loads are in bounds) and the mask of its valid channels.
struct Cols {
  __m512i add, zb;
  __m512 scale;
  __mmask16 m;
};

inline Cols load_cols(const OutputStage& o, int64_t j, int valid) {
  Cols k;
  k.add = o.col_add ? _mm512_loadu_si512(o.col_add + j) : _mm512_setzero_si512();
  k.zb = o.row_sum ? _mm512_loadu_si512(o.col_zb + j) : _mm512_setzero_si512();
  k.scale = o.col_scale ? _mm512_loadu_ps(o.col_scale + j) : _mm512_set1_ps(1.0f);
  k.m = static_cast<__mmask16>(valid >= 16 ? 0xffff : (1u << valid) - 1);
  return k;
}

// The qgemm output stage (qgemm_internal.h OutputStage; output_portable is the scalar statement
// of it) on one vector of raw dot products of output row i, channels j..j+15: the same
// operations in the same order as the AVX2 and portable stages (this file is built with
// -ffp-contract=off: the scale multiply and the residual's multiply and add stay three
// roundings), so the results are bit for bit theirs. Unit column strides (the driver's views).
template <DType Out>
inline void finish(__m512i acc, const Cols& k, int64_t i, int64_t j, const OutputStage& o) {
  constexpr int64_t size = static_cast<int64_t>(dtype_size(Out));
  acc = _mm512_add_epi32(acc, k.add);
  if (o.row_sum) acc = _mm512_sub_epi32(acc, _mm512_mullo_epi32(_mm512_set1_epi32(o.row_sum[i]), k.zb));
  char* dst = static_cast<char*>(o.data) + (i * o.row_stride + j) * size;
  if constexpr (Out == DType::kS32) {
    if (o.relu) acc = _mm512_max_epi32(acc, _mm512_setzero_si512());
    _mm512_mask_storeu_epi32(dst, k.m, acc);
    return;
  }
  __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), k.scale);
  if (o.res) {
    const __m128i bytes = _mm_maskz_loadu_epi8(k.m, static_cast<const char*>(o.res) + i * o.res_row_stride + j);
    const __m512i rv = o.res_dtype == DType::kU8 ? _mm512_cvtepu8_epi32(bytes) : _mm512_cvtepi8_epi32(bytes);
    const __m512 t = _mm512_mul_ps(_mm512_set1_ps(o.res_scale),
                                   _mm512_cvtepi32_ps(_mm512_sub_epi32(rv, _mm512_set1_epi32(o.res_zero_point))));
    v = _mm512_add_ps(v, t);
  }
  if constexpr (Out == DType::kF32) {
    if (o.relu) v = _mm512_max_ps(v, _mm512_setzero_ps());  // -0.0 -> +0.0, like the reference
    _mm512_mask_storeu_ps(dst, k.m, v);
  } else {
    // Clamped first: saturates, never INT_MIN from vcvtps2dq (+-65536 is past every output).
    v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(-65536.0f)), _mm512_set1_ps(65536.0f));
    const __m512i ozp = _mm512_set1_epi32(o.out_zero_point);
    __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(v), ozp);  // round half to even (MXCSR default)
    if (o.relu) q = _mm512_max_epi32(q, ozp);
    if constexpr (Out == DType::kU8) _mm512_mask_cvtusepi32_storeu_epi8(dst, k.m, _mm512_max_epi32(q, _mm512_setzero_si512()));
    else _mm512_mask_cvtsepi32_storeu_epi8(dst, k.m, q);
  }
}

template <int NV, int MR, DType Out>
void tile_t(const uint8_t* a, int64_t step, const int32_t* off, int64_t quads, const int8_t* w, int rows, int ncols,
            int64_t i0, int64_t j0, const OutputStage& o) {
  // Every loop over MR / NV is unrolled (the pragmas): otherwise GCC keeps the accumulator
  // array in memory, with a stack store per vpdpbusd (4x slower, measured).
  __m512i acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_si512();
  for (int64_t t = 0; t < quads; ++t) {
    const uint8_t* at = a + off[t];
    const int8_t* wt = w + t * NV * 64;
    __m512i wv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) wv[v] = _mm512_loadu_si512(wt + v * 64);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      int32_t quad;
      std::memcpy(&quad, at + i * step, 4);  // unaligned 4-byte load
      const __m512i ai = _mm512_set1_epi32(quad);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbusd_epi32(acc[i][v], ai, wv[v]);
    }
  }
  // The output stage straight from the registers (no int32 tile in memory).
  Cols cols[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) cols[v] = load_cols(o, j0 + v * 16, ncols - v * 16);
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    if (i >= rows) break;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      if (v * 16 < ncols) finish<Out>(acc[i][v], cols[v], i0 + i, j0 + v * 16, o);
  }
}

template <DType Out>
void tile_out(int nv, const uint8_t* a, int64_t step, const int32_t* off, int64_t quads, const int8_t* w, int rows,
              int ncols, int64_t i0, int64_t j0, const OutputStage& o) {
  switch (nv) {
    case 4: tile_t<4, mr_for(4), Out>(a, step, off, quads, w, rows, ncols, i0, j0, o); break;
    case 3: tile_t<3, mr_for(3), Out>(a, step, off, quads, w, rows, ncols, i0, j0, o); break;
    case 2: tile_t<2, mr_for(2), Out>(a, step, off, quads, w, rows, ncols, i0, j0, o); break;
    default: tile_t<1, mr_for(1), Out>(a, step, off, quads, w, rows, ncols, i0, j0, o); break;
  }
}

void tile(int nv, const uint8_t* a, int64_t step, const int32_t* off, int64_t quads, const int8_t* w, int rows,
          int ncols, int64_t i0, int64_t j0, const OutputStage& o) {
  switch (o.dtype) {
    case DType::kS32: tile_out<DType::kS32>(nv, a, step, off, quads, w, rows, ncols, i0, j0, o); break;
    case DType::kF32: tile_out<DType::kF32>(nv, a, step, off, quads, w, rows, ncols, i0, j0, o); break;
    case DType::kS8: tile_out<DType::kS8>(nv, a, step, off, quads, w, rows, ncols, i0, j0, o); break;
    default: tile_out<DType::kU8>(nv, a, step, off, quads, w, rows, ncols, i0, j0, o); break;
  }
}

int mr(int nv) { return mr_for(nv); }

// dst[k*ld + q] = src[q*src_ld + k] for q < rows, k < cols: 16x16 byte blocks through four rounds
// of unpacks (bytes, words, dwords, qwords: rows 2i/2i+1, then pairs, quads, halves), the
// edges one byte at a time.
void transpose_u8(const uint8_t* src, int64_t src_ld, int64_t rows, int64_t cols, uint8_t* dst, int64_t ld) {
  const int64_t rb = rows / 16 * 16, cb = cols / 16 * 16;
  for (int64_t q0 = 0; q0 < rb; q0 += 16)
    for (int64_t k0 = 0; k0 < cb; k0 += 16) {
      __m128i r[16], p[8][2], qd[4][4], o[2][8];
      for (int i = 0; i < 16; ++i) r[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + (q0 + i) * src_ld + k0));
      for (int i = 0; i < 8; ++i) {  // p[i][h]: columns 8h..8h+7 of rows 2i, 2i+1
        p[i][0] = _mm_unpacklo_epi8(r[2 * i], r[2 * i + 1]);
        p[i][1] = _mm_unpackhi_epi8(r[2 * i], r[2 * i + 1]);
      }
      for (int j = 0; j < 4; ++j)  // qd[j][g]: columns 4g..4g+3 of rows 4j..4j+3
        for (int h = 0; h < 2; ++h) {
          qd[j][2 * h] = _mm_unpacklo_epi16(p[2 * j][h], p[2 * j + 1][h]);
          qd[j][2 * h + 1] = _mm_unpackhi_epi16(p[2 * j][h], p[2 * j + 1][h]);
        }
      for (int mm = 0; mm < 2; ++mm)  // o[mm][e]: columns 2e, 2e+1 of rows 8mm..8mm+7
        for (int g = 0; g < 4; ++g) {
          o[mm][2 * g] = _mm_unpacklo_epi32(qd[2 * mm][g], qd[2 * mm + 1][g]);
          o[mm][2 * g + 1] = _mm_unpackhi_epi32(qd[2 * mm][g], qd[2 * mm + 1][g]);
        }
      for (int e = 0; e < 8; ++e) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + (k0 + 2 * e) * ld + q0), _mm_unpacklo_epi64(o[0][e], o[1][e]));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + (k0 + 2 * e + 1) * ld + q0),
                         _mm_unpackhi_epi64(o[0][e], o[1][e]));
      }
    }
  for (int64_t k = 0; k < cols; ++k) {
    uint8_t* d = dst + k * ld;
    for (int64_t q = k < cb ? rb : 0; q < rows; ++q) d[q] = src[q * src_ld + k];
  }
}

const QStemOps kOps = {16, 4, mr, tile, transpose_u8};

}  // namespace

const QStemOps& qstem_ops_avx512vnni() { return kOps; }

}  // namespace aicc::cpu
