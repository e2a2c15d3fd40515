// AVX2/F16C packers (6x16 and 12x32 tiles) for the layouts worth vectorizing: unit stride along the k dimension or
// along the panel lanes (row-major and column-major A / B, the usual and the transposed
// operand). f16 converts with vcvtph2ps, bf16 by a 16-bit shift; both exact.
#include <immintrin.h>

#include <algorithm>

#include "cpu/gemm/float_kernels.h"
#include "cpu/gemm/transpose8_avx.h"

namespace aicc::cpu::gemm_internal {
namespace {

template <DType T>
inline __m256 load8(const void* base, int64_t off) {
  if constexpr (T == DType::kF32) {
    return _mm256_loadu_ps(static_cast<const float*>(base) + off);
  } else if constexpr (T == DType::kF16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + off)));
  } else {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + off));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
}

// B with unit column stride (row-major): each k row of an NR-column panel is NR contiguous
// elements (NR = 16 or 32).
template <DType T, int NR>
void pack_b_rows(const MatrixView& b, int64_t p0, int64_t kc, int64_t j0, int64_t panels, float* dst) {
  for (int64_t s = 0; s < panels; ++s) {
    int64_t off = p0 * b.row_stride + j0 + s * NR;
    float* d = dst + s * NR * kc;
    for (int64_t p = 0; p < kc; ++p, off += b.row_stride, d += NR)
      for (int v = 0; v < NR; v += 8) _mm256_store_ps(d + v, load8<T>(b.data, off + v));
  }
}

// B with unit row stride (column-major, e.g. trans_b): each column is contiguous in k, so
// 8x8 blocks are transposed into the panel.
template <DType T, int NR>
void pack_b_cols(const MatrixView& b, int64_t p0, int64_t kc, int64_t j0, int64_t panels, float* dst) {
  const int64_t cs = b.col_stride;
  for (int64_t s = 0; s < panels; ++s) {
    const int64_t base = p0 + (j0 + s * NR) * cs;
    float* d = dst + s * NR * kc;
    int64_t p = 0;
    for (; p + 8 <= kc; p += 8) {
      for (int part = 0; part < NR / 8; ++part) {
        __m256 r[8];
        for (int q = 0; q < 8; ++q) r[q] = load8<T>(b.data, base + (part * 8 + q) * cs + p);
        transpose8(r);
        for (int q = 0; q < 8; ++q) _mm256_store_ps(d + (p + q) * NR + part * 8, r[q]);
      }
    }
    for (; p < kc; ++p)
      for (int j = 0; j < NR; ++j) d[p * NR + j] = load_f32(b.data, T, base + j * cs + p);
  }
}

// A with unit row stride (column-major, e.g. trans_a): MR contiguous values per k.
template <DType T, int MR>
void pack_a_cols(const MatrixView& a, int64_t i0, int64_t p0, int64_t kc, int64_t panels, float* dst) {
  for (int64_t r = 0; r < panels; ++r) {
    int64_t off = i0 + r * MR + p0 * a.col_stride;
    float* d = dst + r * MR * kc;
    for (int64_t p = 0; p < kc; ++p, off += a.col_stride, d += MR)
      for (int i = 0; i < MR; ++i) d[i] = load_f32(a.data, T, off + i);
  }
}

// A with unit column stride (row-major), 6-row panels: 6 rows x 8 k are loaded, transposed
// (2 zero rows pad the 8x8 block) and written as 8 groups of 6.
template <DType T>
void pack_a_rows6(const MatrixView& a, int64_t i0, int64_t p0, int64_t kc, int64_t panels, float* dst) {
  const int64_t rs = a.row_stride;
  for (int64_t r = 0; r < panels; ++r) {
    const int64_t base = (i0 + r * 6) * rs + p0;
    float* d = dst + r * 6 * kc;
    int64_t p = 0;
    for (; p + 8 <= kc; p += 8) {
      __m256 v[8];
      for (int i = 0; i < 6; ++i) v[i] = load8<T>(a.data, base + i * rs + p);
      v[6] = v[7] = _mm256_setzero_ps();
      transpose8(v);
      float* g = d + p * 6;
      // Groups are 6 floats apart; the 8-wide stores overlap and each later one rewrites the
      // two spare lanes of the one before; the last group is stored as 4 + 2 to stay in bounds.
      for (int q = 0; q < 7; ++q) _mm256_storeu_ps(g + q * 6, v[q]);
      _mm_storeu_ps(g + 42, _mm256_castps256_ps128(v[7]));
      _mm_storel_pi(reinterpret_cast<__m64*>(g + 46), _mm256_extractf128_ps(v[7], 1));
    }
    for (; p < kc; ++p)
      for (int i = 0; i < 6; ++i) d[p * 6 + i] = load_f32(a.data, T, base + i * rs + p);
  }
}

// A with unit column stride (row-major), 12-row panels: rows 0-7 and rows 8-11 (with 4 zero
// rows) x 8 k are transposed; each group of 12 is written as 8 + 4 floats.
template <DType T>
void pack_a_rows12(const MatrixView& a, int64_t i0, int64_t p0, int64_t kc, int64_t panels, float* dst) {
  const int64_t rs = a.row_stride;
  for (int64_t r = 0; r < panels; ++r) {
    const int64_t base = (i0 + r * 12) * rs + p0;
    float* d = dst + r * 12 * kc;
    int64_t p = 0;
    for (; p + 8 <= kc; p += 8) {
      __m256 v[8], w[8];
      for (int i = 0; i < 8; ++i) v[i] = load8<T>(a.data, base + i * rs + p);
      for (int i = 0; i < 4; ++i) w[i] = load8<T>(a.data, base + (8 + i) * rs + p);
      w[4] = w[5] = w[6] = w[7] = _mm256_setzero_ps();
      transpose8(v);
      transpose8(w);
      float* g = d + p * 12;
      for (int q = 0; q < 8; ++q) {
        _mm256_storeu_ps(g + q * 12, v[q]);
        _mm_storeu_ps(g + q * 12 + 8, _mm256_castps256_ps128(w[q]));
      }
    }
    for (; p < kc; ++p)
      for (int i = 0; i < 12; ++i) d[p * 12 + i] = load_f32(a.data, T, base + i * rs + p);
  }
}

template <DType T, int MR>
bool pack_a_typed(const MatrixView& a, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float* dst) {
  const int64_t panels = mc / MR;
  if (a.col_stride == 1 && kc >= 8) {
    if constexpr (MR == 6) pack_a_rows6<T>(a, i0, p0, kc, panels, dst);
    else pack_a_rows12<T>(a, i0, p0, kc, panels, dst);
  } else if (a.row_stride == 1) {
    pack_a_cols<T, MR>(a, i0, p0, kc, panels, dst);
  } else {
    return false;
  }
  if (mc % MR) pack_a_portable(a, i0 + panels * MR, mc % MR, p0, kc, MR, PanelWord::kF32, dst + panels * MR * kc);
  return true;
}

template <DType T, int NR>
bool pack_b_typed(const MatrixView& b, int64_t p0, int64_t kc, int64_t j0, int64_t nc, float* dst) {
  const int64_t panels = nc / NR;
  if (b.col_stride == 1) pack_b_rows<T, NR>(b, p0, kc, j0, panels, dst);
  else if (b.row_stride == 1 && kc >= 8) pack_b_cols<T, NR>(b, p0, kc, j0, panels, dst);
  else return false;
  if (nc % NR) pack_b_portable(b, p0, kc, j0 + panels * NR, nc % NR, NR, PanelWord::kF32, dst + panels * NR * kc);
  return true;
}

template <int MR>
bool pack_a_tile(const MatrixView& a, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float* dst) {
  switch (a.dtype) {
    case DType::kF32: return pack_a_typed<DType::kF32, MR>(a, i0, mc, p0, kc, dst);
    case DType::kF16: return pack_a_typed<DType::kF16, MR>(a, i0, mc, p0, kc, dst);
    case DType::kBF16: return pack_a_typed<DType::kBF16, MR>(a, i0, mc, p0, kc, dst);
    default: return false;
  }
}

template <int NR>
bool pack_b_tile(const MatrixView& b, int64_t p0, int64_t kc, int64_t j0, int64_t nc, float* dst) {
  switch (b.dtype) {
    case DType::kF32: return pack_b_typed<DType::kF32, NR>(b, p0, kc, j0, nc, dst);
    case DType::kF16: return pack_b_typed<DType::kF16, NR>(b, p0, kc, j0, nc, dst);
    case DType::kBF16: return pack_b_typed<DType::kBF16, NR>(b, p0, kc, j0, nc, dst);
    default: return false;
  }
}

}  // namespace

bool pack_a_avx2(const MatrixView& a, int64_t i0, int64_t mc, int64_t p0, int64_t kc, int mr, void* dst_words) {
  float* dst = static_cast<float*>(dst_words);  // kF32 words
  if (mr == 6) return pack_a_tile<6>(a, i0, mc, p0, kc, dst);
  if (mr == 12) return pack_a_tile<12>(a, i0, mc, p0, kc, dst);
  return false;
}

bool pack_b_avx2(const MatrixView& b, int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr, void* dst_words) {
  float* dst = static_cast<float*>(dst_words);
  if (nr == 16) return pack_b_tile<16>(b, p0, kc, j0, nc, dst);
  if (nr == 32) return pack_b_tile<32>(b, p0, kc, j0, nc, dst);
  return false;
}

}  // namespace aicc::cpu::gemm_internal
