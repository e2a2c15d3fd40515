// INT8 GEMM packing and output stage, AVX2. The packers vectorize the contiguous layouts
// (A row-major; B row-major [K, N] or transposed [N, K] weights) and hand any other strides
// to the portable packers; the output stage works on 8 columns at a time.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "cpu/gemm/qgemm_internal.h"

namespace aicc::cpu::qgemm_detail {
namespace {

// 16 bytes (u8 or s8) -> 16 int16.
inline __m256i widen16(const void* p, bool is_u8) {
  const __m128i v = _mm_loadu_si128(static_cast<const __m128i*>(p));
  return is_u8 ? _mm256_cvtepu8_epi16(v) : _mm256_cvtepi8_epi16(v);
}

}  // namespace

// A row-major (unit column stride), full panel: per 8 K-pairs, widen each row's 16 bytes
// (8 pairs = 8 dwords), then transpose 6 rows x 8 dwords into [kp][6] dword order.
void pack_a_s16_avx2(const MatrixView& a, int64_t i0, int mr, int32_t za, int64_t kp, void* dst_, int32_t*) {
  int16_t* dst = static_cast<int16_t*>(dst_);
  if (a.col_stride != 1 || mr != kMR) {
    pack_a_s16_portable(a, i0, mr, za, kp, dst, nullptr);
    return;
  }
  const bool is_u8 = a.dtype == DType::kU8;
  const uint8_t* base = static_cast<const uint8_t*>(a.data) + i0 * a.row_stride;
  const int64_t k = a.cols;
  const __m256i zav = _mm256_set1_epi16(static_cast<int16_t>(za));
  const int64_t k16 = k / 16 * 16;
  alignas(32) int32_t rows[kMR][8];
  for (int64_t k0 = 0; k0 < k16; k0 += 16) {
    for (int r = 0; r < kMR; ++r) {
      const __m256i w = _mm256_sub_epi16(widen16(base + r * a.row_stride + k0, is_u8), zav);
      _mm256_store_si256(reinterpret_cast<__m256i*>(rows[r]), w);
    }
    int32_t* out = reinterpret_cast<int32_t*>(dst + (k0 / 2) * kMR * 2);
    for (int q = 0; q < 8; ++q)
      for (int r = 0; r < kMR; ++r) out[q * kMR + r] = rows[r][q];
  }
  // Tail (< 16 K): element by element, zero padding to the pair boundary.
  int16_t* tail = dst + (k16 / 2) * kMR * 2;
  std::memset(tail, 0, static_cast<size_t>(kp - k16 / 2) * kMR * 2 * sizeof(int16_t));
  for (int r = 0; r < kMR; ++r) {
    const uint8_t* row = base + r * a.row_stride;
    for (int64_t kk = k16; kk < k; ++kk) {
      const int32_t v = is_u8 ? row[kk] : static_cast<int8_t>(row[kk]);
      tail[((kk - k16) >> 1) * kMR * 2 + r * 2 + (kk & 1)] = static_cast<int16_t>(v - za);
    }
  }
}

namespace {

void pack_b_s16_panel(const MatrixView& b, int64_t j0, int nr, const int32_t* zb, int64_t kp, void* dst_) {
  int16_t* dst = static_cast<int16_t*>(dst_);
  const int64_t k = b.rows;
  const int8_t* data = static_cast<const int8_t*>(b.data);
  // Zero point pattern per output vector: [zb0 zb0 zb1 zb1 ...] for columns 0-7 and 8-15.
  alignas(32) int16_t zpat[2][16];
  for (int s = 0; s < kNR; ++s) zpat[s / 8][(s % 8) * 2] = zpat[s / 8][(s % 8) * 2 + 1] = static_cast<int16_t>(zb[s]);
  const __m256i z0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(zpat[0]));
  const __m256i z1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(zpat[1]));

  if (b.col_stride == 1 && nr == kNR) {
    // Row-major [K, N]: interleave rows k and k+1 bytewise, then widen.
    const int64_t k2 = k / 2 * 2;
    for (int64_t kk = 0; kk < k2; kk += 2) {
      const __m128i r0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + kk * b.row_stride + j0));
      const __m128i r1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + (kk + 1) * b.row_stride + j0));
      const __m256i lo = _mm256_sub_epi16(_mm256_cvtepi8_epi16(_mm_unpacklo_epi8(r0, r1)), z0);
      const __m256i hi = _mm256_sub_epi16(_mm256_cvtepi8_epi16(_mm_unpackhi_epi8(r0, r1)), z1);
      _mm256_store_si256(reinterpret_cast<__m256i*>(dst + kk * kNR), lo);
      _mm256_store_si256(reinterpret_cast<__m256i*>(dst + kk * kNR + 16), hi);
    }
    if (k2 < k) {
      const __m128i r0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + k2 * b.row_stride + j0));
      const __m128i zero = _mm_setzero_si128();
      // The padding row k is zero after the subtraction: mask the odd lanes back to 0.
      const __m256i odd = _mm256_set1_epi32(0x0000FFFF);
      const __m256i lo = _mm256_sub_epi16(_mm256_cvtepi8_epi16(_mm_unpacklo_epi8(r0, zero)), z0);
      const __m256i hi = _mm256_sub_epi16(_mm256_cvtepi8_epi16(_mm_unpackhi_epi8(r0, zero)), z1);
      _mm256_store_si256(reinterpret_cast<__m256i*>(dst + k2 * kNR), _mm256_and_si256(lo, odd));
      _mm256_store_si256(reinterpret_cast<__m256i*>(dst + k2 * kNR + 16), _mm256_and_si256(hi, odd));
    }
    return;
  }
  if (b.row_stride == 1 && nr == kNR) {
    // Transposed weights ([N, K] storage): column j is contiguous in K. Per 8 K-pairs, read
    // 16 bytes of each of the 16 columns and transpose 16 x 8 pair-words (16-bit units).
    const int64_t k16 = k / 16 * 16;
    const int64_t cs = b.col_stride;
    for (int64_t k0 = 0; k0 < k16; k0 += 16) {
      __m128i v[16];
      for (int s = 0; s < 16; ++s) v[s] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + (j0 + s) * cs + k0));
      // 16-bit transpose in three unpack stages over groups of 4, 8, 16 columns.
      __m128i t[16], u[16];
      for (int g = 0; g < 16; g += 2) {
        t[g] = _mm_unpacklo_epi16(v[g], v[g + 1]);      // pairs 0-3 of columns g, g+1
        t[g + 1] = _mm_unpackhi_epi16(v[g], v[g + 1]);  // pairs 4-7
      }
      for (int g = 0; g < 16; g += 4) {
        u[g] = _mm_unpacklo_epi32(t[g], t[g + 2]);      // pairs 0-1 of columns g..g+3
        u[g + 1] = _mm_unpackhi_epi32(t[g], t[g + 2]);  // pairs 2-3
        u[g + 2] = _mm_unpacklo_epi32(t[g + 1], t[g + 3]);  // pairs 4-5
        u[g + 3] = _mm_unpackhi_epi32(t[g + 1], t[g + 3]);  // pairs 6-7
      }
      // u[4c + h] holds, for columns 4c..4c+3, pairs (2h, 2h+1) as [p col0..3 | p+1 col0..3].
      for (int h = 0; h < 4; ++h) {
        const __m128i c0 = u[h], c1 = u[4 + h], c2 = u[8 + h], c3 = u[12 + h];
        const __m128i p_lo01 = _mm_unpacklo_epi64(c0, c1);  // pair 2h, columns 0-7
        const __m128i p_lo23 = _mm_unpacklo_epi64(c2, c3);  // pair 2h, columns 8-15
        const __m128i p_hi01 = _mm_unpackhi_epi64(c0, c1);  // pair 2h+1, columns 0-7
        const __m128i p_hi23 = _mm_unpackhi_epi64(c2, c3);  // pair 2h+1, columns 8-15
        int16_t* o = dst + (k0 / 2 + 2 * h) * kNR * 2;
        _mm256_store_si256(reinterpret_cast<__m256i*>(o), _mm256_sub_epi16(_mm256_cvtepi8_epi16(p_lo01), z0));
        _mm256_store_si256(reinterpret_cast<__m256i*>(o + 16), _mm256_sub_epi16(_mm256_cvtepi8_epi16(p_lo23), z1));
        _mm256_store_si256(reinterpret_cast<__m256i*>(o + 32), _mm256_sub_epi16(_mm256_cvtepi8_epi16(p_hi01), z0));
        _mm256_store_si256(reinterpret_cast<__m256i*>(o + 48), _mm256_sub_epi16(_mm256_cvtepi8_epi16(p_hi23), z1));
      }
    }
    int16_t* tail = dst + (k16 / 2) * kNR * 2;
    std::memset(tail, 0, static_cast<size_t>(kp - k16 / 2) * kNR * 2 * sizeof(int16_t));
    for (int s = 0; s < kNR; ++s) {
      const int8_t* col = data + (j0 + s) * cs;
      for (int64_t kk = k16; kk < k; ++kk)
        tail[((kk - k16) >> 1) * kNR * 2 + s * 2 + (kk & 1)] = static_cast<int16_t>(col[kk] - zb[s]);
    }
    return;
  }
  pack_b_s16_portable(b, j0, nr, zb, kp, dst, nullptr);
}

}  // namespace

void pack_b_s16_avx2(const MatrixView& b, int64_t j0, int n_cols, const int32_t* zb, int64_t kp, void* dst,
                     int32_t*) {
  for (int p0 = 0; p0 < n_cols; p0 += kNR)
    pack_b_s16_panel(b, j0 + p0, std::min(kNR, n_cols - p0), zb + p0, kp,
                     static_cast<int16_t*>(dst) + (p0 / kNR) * kp * kNR * 2);
}

namespace {

// One dtype's store of 8 finished lanes (w <= 8 valid) at dst.
// The residual term of w <= 8 consecutive outputs (unit column stride): res_scale * f32(r - zr).
inline __m256 residual_lanes(const OutputStage& o, int64_t i, int64_t j, int w) {
  const char* src = static_cast<const char*>(o.res) + i * o.res_row_stride + j;
  __m128i bytes;
  if (w == 8) {
    bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(src));
  } else {
    alignas(16) unsigned char lanes[16] = {};
    std::memcpy(lanes, src, static_cast<size_t>(w));
    bytes = _mm_load_si128(reinterpret_cast<const __m128i*>(lanes));
  }
  const __m256i r = o.res_dtype == DType::kU8 ? _mm256_cvtepu8_epi32(bytes) : _mm256_cvtepi8_epi32(bytes);
  const __m256 off = _mm256_cvtepi32_ps(_mm256_sub_epi32(r, _mm256_set1_epi32(o.res_zero_point)));
  return _mm256_mul_ps(_mm256_set1_ps(o.res_scale), off);
}

// res: the residual terms to add after the scale multiply, or nullptr.
template <DType Out>
inline void store_lanes(char* dst, __m256i acc, __m256 scale, __m256i ozp, bool relu, int w,
                        const __m256* res = nullptr) {
  if constexpr (Out == DType::kS32) {
    if (relu) acc = _mm256_max_epi32(acc, _mm256_setzero_si256());
    if (w == 8) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), acc);
    } else {
      alignas(32) int32_t lanes[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc);
      std::memcpy(dst, lanes, static_cast<size_t>(w) * 4);
    }
  } else if constexpr (Out == DType::kF32) {
    __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), scale);  // one f32 multiply
    if (res) v = _mm256_add_ps(v, *res);                         // (-ffp-contract=off: no FMA)
    if (relu) v = _mm256_max_ps(v, _mm256_setzero_ps());        // -0.0 -> +0.0, like the reference
    if (w == 8) {
      _mm256_storeu_ps(reinterpret_cast<float*>(dst), v);
    } else {
      alignas(32) float lanes[8];
      _mm256_store_ps(lanes, v);
      std::memcpy(dst, lanes, static_cast<size_t>(w) * 4);
    }
  } else {
    __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), scale);
    if (res) v = _mm256_add_ps(v, *res);
    // Clamp before rounding so huge values saturate instead of turning into INT_MIN in
    // vcvtps2dq; +-65536 is far outside every reachable output, so results are unchanged.
    v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-65536.0f)), _mm256_set1_ps(65536.0f));
    __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(v), ozp);  // round half to even (MXCSR default)
    if (relu) q = _mm256_max_epi32(q, ozp);
    const __m128i h16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    const __m128i h8 = Out == DType::kU8 ? _mm_packus_epi16(h16, h16) : _mm_packs_epi16(h16, h16);
    if (w == 8) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), h8);
    } else {
      alignas(16) unsigned char lanes[16];
      _mm_store_si128(reinterpret_cast<__m128i*>(lanes), h8);
      std::memcpy(dst, lanes, static_cast<size_t>(w));
    }
  }
}

template <DType Out>
void output_tile(const int32_t* c, int ldc, int mr, int nr, int64_t i0, int64_t j0, const OutputStage& o) {
  constexpr int64_t size = static_cast<int64_t>(dtype_size(Out));
  const __m256i ozp = _mm256_set1_epi32(o.out_zero_point);
  const __m256 one = _mm256_set1_ps(1.0f);
  for (int s0 = 0; s0 < nr; s0 += 8) {
    const int w = std::min(8, nr - s0);
    const int64_t j = j0 + s0;
    // Column arrays are padded to whole tiles: full 8-lane loads are in bounds.
    const __m256i add = o.col_add ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(o.col_add + j))
                                  : _mm256_setzero_si256();
    const __m256i zb = o.row_sum ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(o.col_zb + j))
                                 : _mm256_setzero_si256();
    const __m256 scale = o.col_scale ? _mm256_loadu_ps(o.col_scale + j) : one;
    for (int r = 0; r < mr; ++r) {
      __m256i acc = _mm256_add_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + r * ldc + s0)), add);
      if (o.row_sum) acc = _mm256_sub_epi32(acc, _mm256_mullo_epi32(_mm256_set1_epi32(o.row_sum[i0 + r]), zb));
      char* dst = static_cast<char*>(o.data) + ((i0 + r) * o.row_stride + j) * size;
      if constexpr (Out != DType::kS32) {
        if (o.res) {
          const __m256 res = residual_lanes(o, i0 + r, j, w);
          store_lanes<Out>(dst, acc, scale, ozp, o.relu, w, &res);
          continue;
        }
      }
      store_lanes<Out>(dst, acc, scale, ozp, o.relu, w);
    }
  }
}

}  // namespace

void output_avx2(const int32_t* c, int ldc, int mr, int nr, int64_t i0, int64_t j0, const OutputStage& o) {
  if (o.col_stride != 1 || (o.res && o.res_col_stride != 1)) {
    output_portable(c, ldc, mr, nr, i0, j0, o);
    return;
  }
  switch (o.dtype) {
    case DType::kS32: output_tile<DType::kS32>(c, ldc, mr, nr, i0, j0, o); break;
    case DType::kF32: output_tile<DType::kF32>(c, ldc, mr, nr, i0, j0, o); break;
    case DType::kS8: output_tile<DType::kS8>(c, ldc, mr, nr, i0, j0, o); break;
    case DType::kU8: output_tile<DType::kU8>(c, ldc, mr, nr, i0, j0, o); break;
    default: break;
  }
}

}  // namespace aicc::cpu::qgemm_detail
