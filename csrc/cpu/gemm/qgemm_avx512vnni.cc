// INT8 GEMM packing for the AVX-512 VNNI route: raw bytes in K-quads (A shifted to u8 by
// +128 when s8, so vpdpbusd's unsigned operand holds it exactly), with the row sums of A
// and column sums of B that the driver needs to fold the zero points in after the product.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "cpu/gemm/qgemm_internal.h"
#include "cpu/gemm/transpose8_avx.h"

namespace aicc::cpu::qgemm_detail {
namespace {

// Rows r0, r0 + 1, r0 + 2, r0 + 3 of A (unit column stride), K bytes [0, k64) with k64 a multiple
// of 64, xor-ed with flip: per 64 bytes, four rows of 16 quads are transposed (4x4 dwords in each
// 128-bit lane) so that each quad's four row dwords land in one 16-byte store. Adds the rows'
// byte sums (vpsadbw) to sums[0..3] when sums is not nullptr.
void pack_a_rows4(const uint8_t* const rows[4], int64_t k64, __m512i f, uint8_t* dst, int r0, uint64_t* sums) {
  constexpr int MR = kVnniMR;
  const __m512i zero = _mm512_setzero_si512();
  __m512i s0 = zero, s1 = zero, s2 = zero, s3 = zero;
  for (int64_t kk = 0; kk < k64; kk += 64) {
    const __m512i x0 = _mm512_xor_si512(_mm512_loadu_si512(rows[0] + kk), f);
    const __m512i x1 = _mm512_xor_si512(_mm512_loadu_si512(rows[1] + kk), f);
    const __m512i x2 = _mm512_xor_si512(_mm512_loadu_si512(rows[2] + kk), f);
    const __m512i x3 = _mm512_xor_si512(_mm512_loadu_si512(rows[3] + kk), f);
    if (sums != nullptr) {
      s0 = _mm512_add_epi64(s0, _mm512_sad_epu8(x0, zero));
      s1 = _mm512_add_epi64(s1, _mm512_sad_epu8(x1, zero));
      s2 = _mm512_add_epi64(s2, _mm512_sad_epu8(x2, zero));
      s3 = _mm512_add_epi64(s3, _mm512_sad_epu8(x3, zero));
    }
    const __m512i t0 = _mm512_unpacklo_epi32(x0, x1), t1 = _mm512_unpackhi_epi32(x0, x1);
    const __m512i t2 = _mm512_unpacklo_epi32(x2, x3), t3 = _mm512_unpackhi_epi32(x2, x3);
    // y[j], 128-bit lane L: quad 4L + j of the four rows.
    const __m512i y[4] = {_mm512_unpacklo_epi64(t0, t2), _mm512_unpackhi_epi64(t0, t2),
                          _mm512_unpacklo_epi64(t1, t3), _mm512_unpackhi_epi64(t1, t3)};
    uint8_t* out = dst + (kk / 4 * MR + r0) * 4;
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + (0 + j) * MR * 4), _mm512_castsi512_si128(y[j]));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + (4 + j) * MR * 4), _mm512_extracti32x4_epi32(y[j], 1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + (8 + j) * MR * 4), _mm512_extracti32x4_epi32(y[j], 2));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + (12 + j) * MR * 4), _mm512_extracti32x4_epi32(y[j], 3));
    }
  }
  if (sums != nullptr) {
    sums[0] += static_cast<uint64_t>(_mm512_reduce_add_epi64(s0));
    sums[1] += static_cast<uint64_t>(_mm512_reduce_add_epi64(s1));
    sums[2] += static_cast<uint64_t>(_mm512_reduce_add_epi64(s2));
    sums[3] += static_cast<uint64_t>(_mm512_reduce_add_epi64(s3));
  }
}

}  // namespace

void pack_a_u8s8_avx512vnni(const MatrixView& a, int64_t i0, int mr, int32_t, int64_t kq, void* dst_,
                            int32_t* rowsum) {
  constexpr int MR = kVnniMR;
  uint8_t* dst = static_cast<uint8_t*>(dst_);
  const uint8_t flip = a.dtype == DType::kS8 ? 0x80 : 0x00;
  const int64_t k = a.cols;
  const uint8_t* base = static_cast<const uint8_t*>(a.data);
  if (a.col_stride != 1) {
    std::memset(dst, 0, static_cast<size_t>(kq) * MR * 4);
    for (int r = 0; r < mr; ++r) {
      const uint8_t* row = base + (i0 + r) * a.row_stride;
      uint32_t sum = 0;
      for (int64_t kk = 0; kk < k; ++kk) {
        const uint8_t v = row[kk * a.col_stride] ^ flip;
        dst[(kk / 4) * MR * 4 + r * 4 + (kk % 4)] = v;
        sum += v;
      }
      if (rowsum != nullptr) rowsum[r] = static_cast<int32_t>(sum);
    }
  } else {
    // Groups of four rows over whole 64-byte chunks of K are transposed in registers; what they
    // leave (the K tail, the last mr % 4 rows) is written dword by dword. Only bytes that no
    // row writes are zeroed: the K padding of the last quad and the rows [mr, MR).
    const int64_t k64 = k / 64 * 64, k4 = k / 4 * 4, q64 = k64 / 4;
    const int r4 = mr / 4 * 4;
    const __m512i f = _mm512_set1_epi8(static_cast<char>(flip));
    uint64_t sums[MR] = {};
    for (int r = 0; r < r4; r += 4) {
      const uint8_t* rows[4];
      for (int t = 0; t < 4; ++t) rows[t] = base + (i0 + r + t) * a.row_stride;
      pack_a_rows4(rows, k64, f, dst, r, rowsum != nullptr ? sums + r : nullptr);
    }
    std::memset(dst + q64 * MR * 4, 0, static_cast<size_t>(kq - q64) * MR * 4);
    if (mr < MR)
      for (int64_t q = 0; q < q64; ++q) std::memset(dst + (q * MR + mr) * 4, 0, static_cast<size_t>(MR - mr) * 4);
    const uint32_t flip4 = flip * 0x01010101u;
    for (int r = 0; r < mr; ++r) {
      const uint8_t* row = base + (i0 + r) * a.row_stride;
      uint32_t* out = reinterpret_cast<uint32_t*>(dst) + r;
      const int64_t q0 = r < r4 ? q64 : 0;  // the first quad the groups above did not write
      uint32_t sum = 0;
      for (int64_t q = q0; q < k4 / 4; ++q) {
        uint32_t w;
        std::memcpy(&w, row + 4 * q, 4);
        w ^= flip4;
        out[q * MR] = w;
        if (rowsum != nullptr) sum += (w & 0xFF) + ((w >> 8) & 0xFF) + ((w >> 16) & 0xFF) + (w >> 24);
      }
      // Last partial quad: the padding stays 0 (not the shifted zero), so it adds nothing.
      for (int64_t kk = k4; kk < k; ++kk) {
        const uint8_t v = row[kk] ^ flip;
        dst[(kk / 4) * MR * 4 + r * 4 + (kk % 4)] = v;
        sum += v;
      }
      if (rowsum != nullptr) rowsum[r] = static_cast<int32_t>(static_cast<uint32_t>(sums[r]) + sum);
    }
  }
  if (rowsum != nullptr)
    for (int r = mr; r < MR; ++r) rowsum[r] = 0;
}

namespace {

// 8 x 8 transpose of 32-bit words: rows r[0..7] -> columns (the float packers' transpose8:
// unpack/shuffle/permute move bits unchanged, so it serves integer words as well).
inline void transpose8x8(__m256i r[8]) {
  __m256 f[8];
  for (int i = 0; i < 8; ++i) f[i] = _mm256_castsi256_ps(r[i]);
  gemm_internal::transpose8(f);
  for (int i = 0; i < 8; ++i) r[i] = _mm256_castps_si256(f[i]);
}

// Row-major [K, N], `panels` full panels: per K-quad, 4 rows x 32 columns of each panel become
// 32 column dwords; the rows are read contiguously across all the panels.
void pack_rows(const int8_t* data, int64_t row_stride, int64_t quads, int panels, int64_t panel_bytes,
               int8_t* dst) {
  constexpr int NR = kVnniNR;
  for (int64_t q = 0; q < quads; ++q) {
    const int8_t* src = data + 4 * q * row_stride;
    for (int p = 0; p < panels; ++p) {
      const int8_t* s = src + p * NR;
      const __m256i r0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s));
      const __m256i r1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + row_stride));
      const __m256i r2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 2 * row_stride));
      const __m256i r3 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 3 * row_stride));
      const __m256i t0 = _mm256_unpacklo_epi8(r0, r1), t1 = _mm256_unpackhi_epi8(r0, r1);
      const __m256i t2 = _mm256_unpacklo_epi8(r2, r3), t3 = _mm256_unpackhi_epi8(r2, r3);
      const __m256i u0 = _mm256_unpacklo_epi16(t0, t2);  // columns 0-3 | 16-19
      const __m256i u1 = _mm256_unpackhi_epi16(t0, t2);  // columns 4-7 | 20-23
      const __m256i u2 = _mm256_unpacklo_epi16(t1, t3);  // columns 8-11 | 24-27
      const __m256i u3 = _mm256_unpackhi_epi16(t1, t3);  // columns 12-15 | 28-31
      __m256i* out = reinterpret_cast<__m256i*>(dst + p * panel_bytes + q * NR * 4);
      _mm256_store_si256(out + 0, _mm256_permute2x128_si256(u0, u1, 0x20));
      _mm256_store_si256(out + 1, _mm256_permute2x128_si256(u2, u3, 0x20));
      _mm256_store_si256(out + 2, _mm256_permute2x128_si256(u0, u1, 0x31));
      _mm256_store_si256(out + 3, _mm256_permute2x128_si256(u2, u3, 0x31));
    }
  }
}

// Transposed weights ([N, K] storage, one full panel): column j's quads are consecutive
// dwords; 8 columns x 8 quads are transposed in registers into 8 rows of the panel.
void pack_cols(const int8_t* data, int64_t col_stride, int64_t quads, int8_t* dst) {
  constexpr int NR = kVnniNR;
  const int64_t q8 = quads / 8 * 8;
  for (int64_t q = 0; q < q8; q += 8) {
    for (int g = 0; g < NR; g += 8) {
      __m256i r[8];
      for (int c = 0; c < 8; ++c)
        r[c] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(data + (g + c) * col_stride + 4 * q));
      transpose8x8(r);
      for (int d = 0; d < 8; ++d) _mm256_store_si256(reinterpret_cast<__m256i*>(dst + (q + d) * NR * 4 + g * 4), r[d]);
    }
  }
  for (int s = 0; s < NR; ++s)
    for (int64_t q = q8; q < quads; ++q) std::memcpy(dst + q * NR * 4 + s * 4, data + s * col_stride + 4 * q, 4);
}

}  // namespace

void pack_b_u8s8_avx512vnni(const MatrixView& b, int64_t j0, int n_cols, const int32_t*, int64_t kq, void* dst_,
                            int32_t* colsum) {
  constexpr int NR = kVnniNR;
  int8_t* dst = static_cast<int8_t*>(dst_);
  const int8_t* data = static_cast<const int8_t*>(b.data);
  const int64_t k = b.rows, k4 = k / 4 * 4;
  const int64_t panel_bytes = kq * NR * 4;
  const int full = n_cols / NR;
  const int panels = (n_cols + NR - 1) / NR;
  // Fast paths cover full panels and whole quads; what they leave is done element by element.
  int fast_panels = 0;
  if (b.col_stride == 1 && full > 0) {
    pack_rows(data + j0, b.row_stride, k4 / 4, full, panel_bytes, dst);
    fast_panels = full;
  } else if (b.row_stride == 1 && full > 0) {
    for (int p = 0; p < full; ++p) pack_cols(data + (j0 + p * NR) * b.col_stride, b.col_stride, k4 / 4, dst + p * panel_bytes);
    fast_panels = full;
  }
  for (int p = 0; p < panels; ++p) {
    int8_t* panel = dst + p * panel_bytes;
    const int nr = std::min(NR, n_cols - p * NR);
    const int64_t q_done = p < fast_panels ? k4 / 4 : 0;
    std::memset(panel + q_done * NR * 4, 0, static_cast<size_t>(kq - q_done) * NR * 4);
    for (int64_t kk = q_done * 4; kk < k; ++kk)
      for (int s = 0; s < nr; ++s)
        panel[(kk / 4) * NR * 4 + s * 4 + (kk % 4)] = data[kk * b.row_stride + (j0 + p * NR + s) * b.col_stride];
    if (colsum != nullptr) panel_sums_b_s8_32_avx512vnni(panel, kq, NR, colsum + p * NR);  // za' = 0: not needed
  }
}

// Column sums from the packed panel (L1/L2-hot): vpdpbusd with all-ones u8 adds each column's
// 4 bytes; two quads per step into four accumulators (the dependency chain of one accumulator
// per half was the loop's bound). Padded columns and k are zero, so they sum to 0.
void panel_sums_b_s8_32_avx512vnni(const void* panel_, int64_t kq, int, int32_t* colsum) {
  constexpr int NR = kVnniNR;
  const int8_t* panel = static_cast<const int8_t*>(panel_);
  const __m512i ones = _mm512_set1_epi8(1);
  __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
  __m512i s2 = _mm512_setzero_si512(), s3 = _mm512_setzero_si512();
  int64_t q = 0;
  for (; q + 2 <= kq; q += 2) {
    s0 = _mm512_dpbusd_epi32(s0, ones, _mm512_load_si512(panel + q * NR * 4));
    s1 = _mm512_dpbusd_epi32(s1, ones, _mm512_load_si512(panel + q * NR * 4 + 64));
    s2 = _mm512_dpbusd_epi32(s2, ones, _mm512_load_si512(panel + q * NR * 4 + 128));
    s3 = _mm512_dpbusd_epi32(s3, ones, _mm512_load_si512(panel + q * NR * 4 + 192));
  }
  if (q < kq) {
    s0 = _mm512_dpbusd_epi32(s0, ones, _mm512_load_si512(panel + q * NR * 4));
    s1 = _mm512_dpbusd_epi32(s1, ones, _mm512_load_si512(panel + q * NR * 4 + 64));
  }
  _mm512_storeu_si512(colsum, _mm512_add_epi32(s0, s2));
  _mm512_storeu_si512(colsum + 16, _mm512_add_epi32(s1, s3));
}

}  // namespace aicc::cpu::qgemm_detail
