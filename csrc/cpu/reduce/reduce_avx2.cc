// AVX2 + F16C reductions. Same operations in the same order as the portable loops in
// reduce.cc (plain mul/add, no FMA; the same NaN rule for max/min), so the bits agree.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "common/half.h"
#include "cpu/reduce/reduce.h"

namespace aicc::cpu::detail {

namespace {

inline __m256 vmax(__m256 a, __m256 b) {
  // vmaxps returns b when either is NaN or on ties; then NaN lanes of a win.
  const __m256 m = _mm256_max_ps(a, b);
  return _mm256_blendv_ps(m, a, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
}
inline __m256 vmin(__m256 a, __m256 b) {
  const __m256 m = _mm256_min_ps(a, b);
  return _mm256_blendv_ps(m, a, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
}
inline __m256 vop(ReduceOp op, __m256 a, __m256 b) {
  switch (op) {
    case ReduceOp::kMax: return vmax(a, b);
    case ReduceOp::kMin: return vmin(a, b);
    default: return _mm256_add_ps(a, b);
  }
}
inline float sop(ReduceOp op, float a, float b) {
  switch (op) {
    case ReduceOp::kMax:
      if (std::isnan(a)) return a;
      if (std::isnan(b)) return b;
      return a > b ? a : b;
    case ReduceOp::kMin:
      if (std::isnan(a)) return a;
      if (std::isnan(b)) return b;
      return a < b ? a : b;
    default: return a + b;
  }
}

inline __m256 load_bf16(const uint16_t* p) {
  const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}
inline void store_bf16(uint16_t* p, __m256 v) {
  const __m256i u = _mm256_castps_si256(v);
  const __m256i abs = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
  const __m256i is_nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7f800000));
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb), 16);
  const __m256i nan = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
  const __m256i r = _mm256_blendv_epi8(rounded, nan, is_nan);
  const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_castsi256_si128(packed));
}
inline __m256 load_f16(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline void store_f16(uint16_t* p, __m256 v) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
}

template <int kKind>  // 0: f32, 1: f16, 2: bf16
inline __m256 vload(const void* base, int64_t i) {
  if constexpr (kKind == 0) return _mm256_loadu_ps(static_cast<const float*>(base) + i);
  else if constexpr (kKind == 1) return load_f16(static_cast<const uint16_t*>(base) + i);
  else return load_bf16(static_cast<const uint16_t*>(base) + i);
}
template <int kKind>
inline void vstore(void* base, int64_t i, __m256 v) {
  if constexpr (kKind == 0) _mm256_storeu_ps(static_cast<float*>(base) + i, v);
  else if constexpr (kKind == 1) store_f16(static_cast<uint16_t*>(base) + i, v);
  else store_bf16(static_cast<uint16_t*>(base) + i, v);
}
template <int kKind>
inline float sload(const void* base, int64_t i) {
  if constexpr (kKind == 0) return static_cast<const float*>(base)[i];
  else if constexpr (kKind == 1) return f16_to_f32(static_cast<const uint16_t*>(base)[i]);
  else return bf16_to_f32(static_cast<const uint16_t*>(base)[i]);
}
template <int kKind>
inline void sstore(void* base, int64_t i, float v) {
  if constexpr (kKind == 0) static_cast<float*>(base)[i] = v;
  else if constexpr (kKind == 1) static_cast<uint16_t*>(base)[i] = f32_to_f16(v);
  else static_cast<uint16_t*>(base)[i] = f32_to_bf16(v);
}

template <int kKind>
void reduce_kind(ReduceOp op, const void* const* src, int nsrc, void* dst, int64_t n, int divisor) {
  const bool avg = op == ReduceOp::kAvg;
  const __m256 vd = _mm256_set1_ps(static_cast<float>(divisor));
  const float sd = static_cast<float>(divisor);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256 a0 = vload<kKind>(src[0], i), a1 = vload<kKind>(src[0], i + 8);
    __m256 a2 = vload<kKind>(src[0], i + 16), a3 = vload<kKind>(src[0], i + 24);
    for (int r = 1; r < nsrc; ++r) {
      a0 = vop(op, a0, vload<kKind>(src[r], i));
      a1 = vop(op, a1, vload<kKind>(src[r], i + 8));
      a2 = vop(op, a2, vload<kKind>(src[r], i + 16));
      a3 = vop(op, a3, vload<kKind>(src[r], i + 24));
    }
    if (avg) {
      a0 = _mm256_div_ps(a0, vd);
      a1 = _mm256_div_ps(a1, vd);
      a2 = _mm256_div_ps(a2, vd);
      a3 = _mm256_div_ps(a3, vd);
    }
    vstore<kKind>(dst, i, a0);
    vstore<kKind>(dst, i + 8, a1);
    vstore<kKind>(dst, i + 16, a2);
    vstore<kKind>(dst, i + 24, a3);
  }
  for (; i + 8 <= n; i += 8) {
    __m256 a = vload<kKind>(src[0], i);
    for (int r = 1; r < nsrc; ++r) a = vop(op, a, vload<kKind>(src[r], i));
    if (avg) a = _mm256_div_ps(a, vd);
    vstore<kKind>(dst, i, a);
  }
  for (; i < n; ++i) {
    float a = sload<kKind>(src[0], i);
    for (int r = 1; r < nsrc; ++r) a = sop(op, a, sload<kKind>(src[r], i));
    if (avg) a = a / sd;
    sstore<kKind>(dst, i, a);
  }
}

}  // namespace

bool reduce_n_avx2(DType dtype, ReduceOp op, const void* const* src, int nsrc, void* dst, int64_t n, int divisor) {
  switch (dtype) {
    case DType::kF32: reduce_kind<0>(op, src, nsrc, dst, n, divisor); return true;
    case DType::kF16: reduce_kind<1>(op, src, nsrc, dst, n, divisor); return true;
    case DType::kBF16: reduce_kind<2>(op, src, nsrc, dst, n, divisor); return true;
    default: return false;
  }
}

bool convert_avx2(DType from, const void* src, DType to, void* dst, int64_t n) {
  int64_t i = 0;
  if (from == DType::kF32 && to == DType::kF16) {
    for (; i + 8 <= n; i += 8) vstore<1>(dst, i, vload<0>(src, i));
    for (; i < n; ++i) sstore<1>(dst, i, sload<0>(src, i));
  } else if (from == DType::kF32 && to == DType::kBF16) {
    for (; i + 8 <= n; i += 8) vstore<2>(dst, i, vload<0>(src, i));
    for (; i < n; ++i) sstore<2>(dst, i, sload<0>(src, i));
  } else if (from == DType::kF16 && to == DType::kF32) {
    for (; i + 8 <= n; i += 8) vstore<0>(dst, i, vload<1>(src, i));
    for (; i < n; ++i) sstore<0>(dst, i, sload<1>(src, i));
  } else if (from == DType::kBF16 && to == DType::kF32) {
    for (; i + 8 <= n; i += 8) vstore<0>(dst, i, vload<2>(src, i));
    for (; i < n; ++i) sstore<0>(dst, i, sload<2>(src, i));
  } else {
    return false;
  }
  return true;
}

void quantize_int8_block_avx2(const float* x, int64_t len, int8_t* q, float* scale) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 fmax = _mm256_set1_ps(std::numeric_limits<float>::max());
  __m256 m = _mm256_setzero_ps();
  __m256 ok = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
  int64_t i = 0;
  for (; i + 8 <= len; i += 8) {
    const __m256 a = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i));
    ok = _mm256_and_ps(ok, _mm256_cmp_ps(a, fmax, _CMP_LE_OQ));
    m = _mm256_max_ps(m, a);
  }
  bool finite = _mm256_movemask_ps(ok) == 0xff;
  float lanes[8];
  _mm256_storeu_ps(lanes, m);
  float mx = 0.0f;
  for (float v : lanes) mx = v > mx ? v : mx;
  for (; i < len; ++i) {
    const float a = std::fabs(x[i]);
    if (!(a <= std::numeric_limits<float>::max())) finite = false;
    mx = a > mx ? a : mx;
  }
  if (!finite || mx == 0.0f) {
    *scale = finite ? 0.0f : std::numeric_limits<float>::quiet_NaN();
    std::memset(q, 0, static_cast<size_t>(len));
    return;
  }
  *scale = mx / 127.0f;
  const float inv = 127.0f / mx;
  const __m256 vinv = _mm256_set1_ps(inv);
  const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
  const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  auto quant8 = [&](int64_t j) {
    __m256i v = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j), vinv));
    return _mm256_min_epi32(hi, _mm256_max_epi32(lo, v));
  };
  i = 0;
  for (; i + 32 <= len; i += 32) {
    const __m256i ab = _mm256_packs_epi32(quant8(i), quant8(i + 8));
    const __m256i cd = _mm256_packs_epi32(quant8(i + 16), quant8(i + 24));
    const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(ab, cd), perm);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i), bytes);
  }
  for (; i < len; ++i) {
    float v = std::nearbyint(x[i] * inv);
    v = std::min(127.0f, std::max(-127.0f, v));
    q[i] = static_cast<int8_t>(v);
  }
}

void reduce_int8_block_avx2(ReduceOp op, const int8_t* const* q, const float* const* scales, int nsrc, int64_t len,
                            int divisor, float* acc) {
  auto load = [](const int8_t* p, int64_t j) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + j))));
  };
  const __m256 vd = _mm256_set1_ps(static_cast<float>(divisor));
  int64_t i = 0;
  for (; i + 8 <= len; i += 8) {
    __m256 a = _mm256_mul_ps(load(q[0], i), _mm256_set1_ps(scales[0][0]));
    for (int r = 1; r < nsrc; ++r) a = vop(op, a, _mm256_mul_ps(load(q[r], i), _mm256_set1_ps(scales[r][0])));
    if (op == ReduceOp::kAvg) a = _mm256_div_ps(a, vd);
    _mm256_storeu_ps(acc + i, a);
  }
  for (; i < len; ++i) {
    float a = static_cast<float>(q[0][i]) * scales[0][0];
    for (int r = 1; r < nsrc; ++r) a = sop(op, a, static_cast<float>(q[r][i]) * scales[r][0]);
    if (op == ReduceOp::kAvg) a = a / static_cast<float>(divisor);
    acc[i] = a;
  }
}

}  // namespace aicc::cpu::detail
