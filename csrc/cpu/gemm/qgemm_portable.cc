// INT8 GEMM packing and output stage, portable C++ (any strides, any CPU). The AVX2 file
// (qgemm_avx2.cc) takes the contiguous layouts and falls back to these for the rest.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "cpu/gemm/qgemm_internal.h"

namespace aicc::cpu::qgemm_detail {
namespace {

inline int32_t load_a(const MatrixView& a, int64_t i, int64_t k) {
  const int64_t off = i * a.row_stride + k * a.col_stride;
  return a.dtype == DType::kU8 ? static_cast<const uint8_t*>(a.data)[off] : static_cast<const int8_t*>(a.data)[off];
}

}  // namespace

void pack_a_s16_portable(const MatrixView& a, int64_t i0, int mr, int32_t za, int64_t kp, void* dst_, int32_t*) {
  int16_t* dst = static_cast<int16_t*>(dst_);
  const int64_t k_total = a.cols;
  std::memset(dst, 0, static_cast<size_t>(kp) * kMR * 2 * sizeof(int16_t));
  for (int r = 0; r < mr; ++r) {
    // Row by row: reads follow the row's storage; K past the end stays 0 (not -za).
    for (int64_t k = 0; k < k_total; ++k)
      dst[(k >> 1) * kMR * 2 + r * 2 + (k & 1)] = static_cast<int16_t>(load_a(a, i0 + r, k) - za);
  }
}

namespace {

// B panels of the int16 route; planar: [kp][2][kNR] (portable microkernel), else [kp][kNR][2].
void pack_b_s16(const MatrixView& b, int64_t j0, int n_cols, const int32_t* zb, int64_t kp, int16_t* dst_all,
                bool planar) {
  const int64_t k_total = b.rows;
  const int8_t* data = static_cast<const int8_t*>(b.data);
  const int64_t k_step = planar ? kNR : 1, s_step = planar ? 1 : 2;
  for (int p0 = 0; p0 < n_cols; p0 += kNR) {
    const int nr = std::min(kNR, n_cols - p0);
    int16_t* dst = dst_all + (p0 / kNR) * kp * kNR * 2;
    std::memset(dst, 0, static_cast<size_t>(kp) * kNR * 2 * sizeof(int16_t));
    for (int64_t k = 0; k < k_total; ++k) {
      int16_t* row = dst + (k >> 1) * kNR * 2 + (k & 1) * k_step;
      const int8_t* src = data + k * b.row_stride + (j0 + p0) * b.col_stride;
      for (int s = 0; s < nr; ++s) row[s * s_step] = static_cast<int16_t>(src[s * b.col_stride] - zb[p0 + s]);
    }
  }
}

}  // namespace

void pack_b_s16_portable(const MatrixView& b, int64_t j0, int n_cols, const int32_t* zb, int64_t kp, void* dst,
                         int32_t*) {
  pack_b_s16(b, j0, n_cols, zb, kp, static_cast<int16_t*>(dst), /*planar=*/false);
}

void pack_b_s16_planar_portable(const MatrixView& b, int64_t j0, int n_cols, const int32_t* zb, int64_t kp,
                                void* dst, int32_t*) {
  pack_b_s16(b, j0, n_cols, zb, kp, static_cast<int16_t*>(dst), /*planar=*/true);
}

void output_portable(const int32_t* c, int ldc, int mr, int nr, int64_t i0, int64_t j0, const OutputStage& o) {
  const bool u8 = o.dtype == DType::kU8;
  const float lo = u8 ? 0.0f : -128.0f, hi = u8 ? 255.0f : 127.0f;
  const float zp = static_cast<float>(o.out_zero_point);
  const float floor_q = o.relu ? std::max(lo, zp) : lo;
  for (int r = 0; r < mr; ++r) {
    const int64_t row = (i0 + r) * o.row_stride;
    for (int s = 0; s < nr; ++s) {
      const int64_t j = j0 + s;
      uint32_t wrapped = static_cast<uint32_t>(c[r * ldc + s]);
      if (o.col_add) wrapped += static_cast<uint32_t>(o.col_add[j]);
      if (o.row_sum) wrapped -= static_cast<uint32_t>(o.row_sum[i0 + r]) * static_cast<uint32_t>(o.col_zb[j]);
      const int32_t acc = static_cast<int32_t>(wrapped);
      const int64_t off = row + j * o.col_stride;
      if (o.dtype == DType::kS32) {
        static_cast<int32_t*>(o.data)[off] = o.relu && acc < 0 ? 0 : acc;
        continue;
      }
      float v = static_cast<float>(acc) * o.col_scale[j];
      if (o.res) v = v + residual_term(o, i0 + r, j);  // after the scale, its own rounding
      if (o.dtype == DType::kF32) {
        static_cast<float*>(o.data)[off] = o.relu ? (v > 0.0f ? v : 0.0f) : v;
        continue;
      }
      // Clamp before rounding so huge values saturate instead of overflowing the cast;
      // +-65536 is far outside every reachable output, so the result is unchanged.
      const float clamped = std::min(std::max(v, -65536.0f), 65536.0f);
      float q = std::nearbyint(clamped) + zp;  // round half to even (default rounding mode)
      q = std::min(std::max(q, floor_q), hi);
      if (u8) static_cast<uint8_t*>(o.data)[off] = static_cast<uint8_t>(q);
      else static_cast<int8_t*>(o.data)[off] = static_cast<int8_t>(q);
    }
  }
}

}  // namespace aicc::cpu::qgemm_detail
