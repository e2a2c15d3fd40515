// AVX-512BW packers of bf16 matrices into kBF16Pair panels (layouts in gemm_driver.h) for the
// two layouts that matter: B with unit column stride (row-major weights: two k rows are
// interleaved 16 bits at a time with vpermt2w) and A with unit column stride (row-major
// activations: a k pair of one row is already one 32-bit word, so packing is a transpose of
// 32-bit words). Bits are copied as they are. Other layouts and dtypes return false (portable
// packer).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "cpu/gemm/float_kernels.h"
#include "cpu/gemm/transpose8_avx.h"

namespace aicc::cpu::gemm_internal {
namespace {

// vpermt2w indices: out word t = (row0[t], row1[t]) for t in [first, first + 16).
inline __m512i pair_index(int first) {
  alignas(64) uint16_t idx[32];
  for (int t = 0; t < 16; ++t) {
    idx[2 * t] = static_cast<uint16_t>(first + t);
    idx[2 * t + 1] = static_cast<uint16_t>(32 + first + t);
  }
  return _mm512_load_si512(idx);
}

}  // namespace

namespace {

// B with unit row stride (column-major: a transposed weight matrix, such as a conv's [K, R*S*C]
// weights read as B = W^T): a k pair of one column is already one 32-bit word, so packing is a
// transpose of 32-bit words, 8x8 at a time (transpose8_avx.h), for the full 32-column panels;
// the k tail word by word, a last odd k as (B[k, j], 0). The scalar packer it replaces was 14 %
// of a bf16 3x3 512@7 conv (4.7 MB of weights packed per call).
void pack_b_pairs_colmajor(const MatrixView& b, int64_t p0, int64_t kc, int64_t j0, int64_t panels, uint32_t* dst) {
  const uint16_t* src = static_cast<const uint16_t*>(b.data);
  const int64_t cs = b.col_stride, kw = (kc + 1) / 2, full_words = kc / 2;
  for (int64_t pn = 0; pn < panels; ++pn, dst += 32 * kw) {
    const uint16_t* col0 = src + (j0 + pn * 32) * cs + p0;
    int64_t q = 0;
    for (; q + 8 <= full_words; q += 8) {
      for (int g = 0; g < 4; ++g) {
        __m256 v[8];
        for (int c = 0; c < 8; ++c)
          v[c] = _mm256_castsi256_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(col0 + (g * 8 + c) * cs + 2 * q)));
        transpose8(v);
        for (int w = 0; w < 8; ++w) _mm256_storeu_ps(reinterpret_cast<float*>(dst + (q + w) * 32 + g * 8), v[w]);
      }
    }
    for (; q < kw; ++q)
      for (int c = 0; c < 32; ++c) {
        const uint16_t* e = col0 + c * cs + 2 * q;
        dst[q * 32 + c] = static_cast<uint32_t>(e[0]) | (2 * q + 1 < kc ? static_cast<uint32_t>(e[1]) << 16 : 0u);
      }
  }
}

}  // namespace

bool pack_b_bf16pair_avx512(const MatrixView& b, int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr,
                            void* dst_words) {
  if (b.dtype != DType::kBF16 || nr != 32) return false;
  if (b.row_stride == 1 && b.col_stride != 1) {
    const int64_t panels = nc / 32, kw = (kc + 1) / 2;
    auto* dst = static_cast<uint32_t*>(dst_words);
    pack_b_pairs_colmajor(b, p0, kc, j0, panels, dst);
    if (nc % 32) pack_b_portable(b, p0, kc, j0 + panels * 32, nc % 32, 32, PanelWord::kBF16Pair, dst + panels * 32 * kw);
    return true;
  }
  if (b.col_stride != 1) return false;
  const uint16_t* src = static_cast<const uint16_t*>(b.data);
  const __m512i lo_idx = pair_index(0), hi_idx = pair_index(16);
  const int64_t kw = (kc + 1) / 2;
  __m512i* dst = static_cast<__m512i*>(dst_words);
  for (int64_t j = 0; j < nc; j += 32) {
    const int valid = static_cast<int>(std::min<int64_t>(32, nc - j));
    const __mmask32 cols = valid == 32 ? ~__mmask32{0} : (__mmask32{1} << valid) - 1;
    const uint16_t* row = src + p0 * b.row_stride + j0 + j;
    for (int64_t q = 0; q < kw; ++q, row += 2 * b.row_stride, dst += 2) {
      const __m512i r0 = _mm512_maskz_loadu_epi16(cols, row);
      const __m512i r1 = 2 * q + 1 < kc ? _mm512_maskz_loadu_epi16(cols, row + b.row_stride) : _mm512_setzero_si512();
      _mm512_store_si512(dst, _mm512_permutex2var_epi16(r0, lo_idx, r1));
      _mm512_store_si512(dst + 1, _mm512_permutex2var_epi16(r0, hi_idx, r1));
    }
  }
  return true;
}

namespace {

// Rows 0-7 and rows 8-11 (4 zero rows) x 8 words transposed as floats (transpose8_avx.h: bits
// move unchanged), each group of 12 words written as 8 + 4. A word-by-word copy scattered at a
// 12-word stride ran at about a third of the multiply's rate on K = 64 layers (1x1 64->256
// @56: packing was most of the time).
// Words [0, words8) of a full 12-row panel, 8 at a time; `src` = the panel's first row at p0.
void pack_a_pairs12(const uint16_t* src, int64_t rs, int64_t words8, uint32_t* dst) {
  for (int64_t q = 0; q < words8; q += 8) {
    __m256 v[8], w[8];
    for (int i = 0; i < 8; ++i) v[i] = _mm256_loadu_ps(reinterpret_cast<const float*>(src + i * rs + 2 * q));
    for (int i = 0; i < 4; ++i) w[i] = _mm256_loadu_ps(reinterpret_cast<const float*>(src + (8 + i) * rs + 2 * q));
    w[4] = w[5] = w[6] = w[7] = _mm256_setzero_ps();
    transpose8(v);
    transpose8(w);
    float* g = reinterpret_cast<float*>(dst + q * 12);
    for (int t = 0; t < 8; ++t) {
      _mm256_storeu_ps(g + t * 12, v[t]);
      _mm_storeu_ps(g + t * 12 + 8, _mm256_castps256_ps128(w[t]));
    }
  }
}

}  // namespace

namespace {

// A with unit row stride (column-major: a conv's grad_out^T in the weight gradient, [N*P*Q, K]
// read as K x N*P*Q): the mr = 12 rows of one k are contiguous, so a pair word row is two k
// rows (12 elements each) interleaved 16 bits at a time, one vpermt2w per word row. The
// scalar packer it replaces was 36 % of a bf16 weight gradient of a 1x1 64->256 conv.
void pack_a_pairs_colmajor12(const uint16_t* src, int64_t cs, int64_t kc, int valid, uint32_t* dst) {
  const int64_t kw = (kc + 1) / 2;
  const __mmask16 rows = static_cast<__mmask16>((1u << valid) - 1);
  const __m512i idx = pair_index(0);
  for (int64_t q = 0; q < kw; ++q, dst += 12) {
    const __m512i r0 = _mm512_castsi256_si512(_mm256_maskz_loadu_epi16(rows, src + 2 * q * cs));
    const __m512i r1 = 2 * q + 1 < kc ? _mm512_castsi256_si512(_mm256_maskz_loadu_epi16(rows, src + (2 * q + 1) * cs))
                                      : _mm512_setzero_si512();
    // Words 0-11 of this row (12-15 are zero): unmasked except on the panel's last row, where
    // the 4 extra words would land past it (the next row overwrites them otherwise).
    const __m512i words = _mm512_permutex2var_epi16(r0, idx, r1);
    if (q + 1 < kw) _mm512_storeu_si512(dst, words);
    else _mm512_mask_storeu_epi32(dst, 0x0fff, words);
  }
}

}  // namespace

bool pack_a_bf16pair_avx512(const MatrixView& a, int64_t i0, int64_t mc, int64_t p0, int64_t kc, int mr,
                            void* dst_words) {
  if (a.dtype != DType::kBF16) return false;
  if (a.row_stride == 1 && a.col_stride != 1) {
    if (mr != 12) return false;
    const int64_t kw = (kc + 1) / 2;
    const uint16_t* src = static_cast<const uint16_t*>(a.data);
    uint32_t* dst = static_cast<uint32_t*>(dst_words);
    for (int64_t r0 = 0; r0 < mc; r0 += 12, dst += 12 * kw) {
      const int valid = static_cast<int>(std::min<int64_t>(12, mc - r0));
      pack_a_pairs_colmajor12(src + p0 * a.col_stride + i0 + r0, a.col_stride, kc, valid, dst);
    }
    return true;
  }
  if (a.col_stride != 1) return false;
  const uint16_t* src = static_cast<const uint16_t*>(a.data);
  const int64_t full = kc / 2, kw = (kc + 1) / 2;
  const int64_t words8 = mr == 12 ? full / 8 * 8 : 0;  // words the transposes cover
  uint32_t* dst = static_cast<uint32_t*>(dst_words);
  for (int64_t r0 = 0; r0 < mc; r0 += mr, dst += static_cast<int64_t>(mr) * kw) {
    const int valid = static_cast<int>(std::min<int64_t>(mr, mc - r0));
    const int64_t q0 = valid == mr ? words8 : 0;
    if (q0 > 0) pack_a_pairs12(src + (i0 + r0) * a.row_stride + p0, a.row_stride, q0, dst);
    for (int i = 0; i < valid; ++i) {
      const uint16_t* row = src + (i0 + r0 + i) * a.row_stride + p0;
      uint32_t* d = dst + i;
      for (int64_t q = q0; q < full; ++q) std::memcpy(d + q * mr, row + 2 * q, 4);  // little endian: lo = even k
      if (kw > full) d[full * mr] = row[kc - 1];  // odd kc: the last pair's high half is +0
    }
    for (int i = valid; i < mr; ++i)
      for (int64_t q = 0; q < kw; ++q) dst[q * mr + i] = 0u;
  }
  return true;
}

}  // namespace aicc::cpu::gemm_internal
