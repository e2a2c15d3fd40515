// INT8 GEMM microkernel, AVX-512 VNNI: a 12x32 int32 tile (24 zmm accumulators) over byte-quad
// panels (A: [kq][12][4] u8, B: [kq][32][4] s8). vpdpbusd adds four exact u8 x s8 products to
// each int32 lane, wrapping (no saturation: the non-"s" form), so the raw sums are exact modulo
// 2^32; the driver folds the zero points in after (qgemm_driver.cc) and the final value fits.
#include <immintrin.h>

#include <cstring>

#include "cpu/gemm/qgemm_internal.h"

namespace aicc::cpu::qgemm_detail {
namespace {

constexpr int MR = kVnniMR;
constexpr int NR = kVnniNR;

// acc += the kq quads of the A and B panels.
__attribute__((always_inline)) inline void dot_quads(int64_t kq, const uint8_t* a, const int8_t* b,
                                                     __m512i (&acc)[MR][2]) {
  for (int64_t p = 0; p < kq; ++p) {
    const __m512i b0 = _mm512_load_si512(b);
    const __m512i b1 = _mm512_load_si512(b + 64);
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      int32_t word;
      std::memcpy(&word, a + 4 * i, sizeof(word));
      const __m512i x = _mm512_set1_epi32(word);
      acc[i][0] = _mm512_dpbusd_epi32(acc[i][0], x, b0);
      acc[i][1] = _mm512_dpbusd_epi32(acc[i][1], x, b1);
    }
    a += 4 * MR;
    b += 4 * NR;
  }
}

}  // namespace

void ukernel_u8s8_12x32_avx512vnni(int64_t kq, const void* a_, const void* b_, int32_t* c, bool accumulate) {
  __m512i acc[MR][2];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    acc[i][0] = accumulate ? _mm512_load_si512(c + i * NR) : _mm512_setzero_si512();
    acc[i][1] = accumulate ? _mm512_load_si512(c + i * NR + 16) : _mm512_setzero_si512();
  }
  dot_quads(kq, static_cast<const uint8_t*>(a_), static_cast<const int8_t*>(b_), acc);
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    _mm512_store_si512(c + i * NR, acc[i][0]);
    _mm512_store_si512(c + i * NR + 16, acc[i][1]);
  }
}

// The last K slice with the int32 output stage fused in (MLAS style): the accumulators start
// from the tile's per-element correction col_add[j] - row_sum[i] * zb[j] (plus the earlier
// slices' sums in c, if any) and go straight to the output, so the tile makes no round trip
// through memory and no separate pass runs over it (at 128^3 that pass was ~13 % of the call).
// All arithmetic wraps modulo 2^32 like the separate stage, so the result is bit-identical.
void ukernel_u8s8_12x32_s32out_avx512vnni(int64_t kq, const void* a_, const void* b_, const int32_t* c, int mr,
                                          int nr, int64_t i0, int64_t j0, const OutputStage& o) {
  __m512i acc[MR][2];
  // Column arrays are padded to whole panels: full loads are in bounds.
  const __m512i add0 = o.col_add ? _mm512_loadu_si512(o.col_add + j0) : _mm512_setzero_si512();
  const __m512i add1 = o.col_add ? _mm512_loadu_si512(o.col_add + j0 + 16) : _mm512_setzero_si512();
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    acc[i][0] = add0;
    acc[i][1] = add1;
  }
  if (o.row_sum != nullptr) {  // row_sum is padded to whole panels too
    const __m512i zb0 = _mm512_loadu_si512(o.col_zb + j0), zb1 = _mm512_loadu_si512(o.col_zb + j0 + 16);
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      const __m512i rs = _mm512_set1_epi32(o.row_sum[i0 + i]);
      acc[i][0] = _mm512_sub_epi32(acc[i][0], _mm512_mullo_epi32(rs, zb0));
      acc[i][1] = _mm512_sub_epi32(acc[i][1], _mm512_mullo_epi32(rs, zb1));
    }
  }
  if (c != nullptr) {
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      acc[i][0] = _mm512_add_epi32(acc[i][0], _mm512_load_si512(c + i * NR));
      acc[i][1] = _mm512_add_epi32(acc[i][1], _mm512_load_si512(c + i * NR + 16));
    }
  }
  dot_quads(kq, static_cast<const uint8_t*>(a_), static_cast<const int8_t*>(b_), acc);
  if (o.relu) {
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      acc[i][0] = _mm512_max_epi32(acc[i][0], _mm512_setzero_si512());
      acc[i][1] = _mm512_max_epi32(acc[i][1], _mm512_setzero_si512());
    }
  }
  int32_t* out = static_cast<int32_t*>(o.data) + i0 * o.row_stride + j0;
  if (mr == MR && nr == NR) {
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      _mm512_storeu_si512(out + i * o.row_stride, acc[i][0]);
      _mm512_storeu_si512(out + i * o.row_stride + 16, acc[i][1]);
    }
    return;
  }
  // Edge tile: only the valid rows and lanes are written.
  const __mmask16 m0 = static_cast<__mmask16>(nr >= 16 ? 0xFFFF : (1u << nr) - 1);
  const __mmask16 m1 = static_cast<__mmask16>(nr >= NR ? 0xFFFF : nr <= 16 ? 0 : (1u << (nr - 16)) - 1);
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    if (i < mr) {
      _mm512_mask_storeu_epi32(out + i * o.row_stride, m0, acc[i][0]);
      _mm512_mask_storeu_epi32(out + i * o.row_stride + 16, m1, acc[i][1]);
    }
  }
}

}  // namespace aicc::cpu::qgemm_detail
