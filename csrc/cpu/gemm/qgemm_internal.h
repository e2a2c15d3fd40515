// Internals of the INT8 GEMM (aicc::cpu::qgemm): packed layouts, the per-ISA kernels, packers
// and output stages, and the output stage parameters. The shared GEMM driver
// (gemm_driver.{h,cc}) owns blocking and threads for INT8 as for float: the registry's INT8
// entries are GemmConfigs with an INT8 panel word; the files below only know their tile.
//
// The exact route (docs/INT8_DESIGN.md): operands are widened to int16 while packing, with
// their zero points already subtracted (|a - za|, |b - zb| <= 255 fit int16), and multiplied
// in K-pairs with vpmaddwd (int16 x int16 -> two products summed in int32; 2 * 255 * 255 cannot
// overflow). No int16-saturating step exists anywhere, so every input is exact. Every partial
// sum of products is bounded by K * max|a - za| * max|b - zb|, which the K check keeps inside
// int32, so the int32 accumulators never overflow in any summation order.
//
// Packed layouts (int16, K padded to an even count with zeros):
//   A panel (kMR rows):    [kp][kMR][2]  -> one 32-bit word (a[i][2kp], a[i][2kp+1]) per row
//   B panel (kNR columns): [kp][kNR][2]  -> one 32-bit word (b[2kp][j], b[2kp+1][j]) per column
//                          (portable route: [kp][2][kNR], planar, for unit-stride column loops)
// The driver packs each depth block of A and B into panels of its own (packers see a sub-view
// of the operand whose columns / rows are the block), so a panel always starts at its first k.
#pragma once

#include <cstddef>
#include <cstdint>

#include "aicc/gemm.h"

namespace aicc::cpu::qgemm_detail {

constexpr int kMR = 6;   // int16 route: register tile rows
constexpr int kNR = 16;  // int16 route: register tile columns (two ymm of 8 int32)
constexpr int kVnniMR = 12;  // u8 x s8 VNNI route (AVX-512): tile rows
constexpr int kVnniNR = 32;  // u8 x s8 VNNI route: tile columns (two zmm of 16 int32)

// Everything the output stage needs, resolved once per call. Column arrays are indexed by
// the output column j and padded to a whole number of tiles, so vector code can load them.
//   acc[i][j] = tile[i][j] + col_add[j] - row_sum[i] * col_zb[j]     (modulo 2^32; the result
//               is the exact accumulator + bias, which fits int32 by the K check)
//   out = output stage of acc (s32 / f32 dequant / s8-u8 requant, relu) with col_scale[j].
struct OutputStage {
  DType dtype = DType::kS32;
  void* data = nullptr;
  int64_t row_stride = 0;
  int64_t col_stride = 1;
  const int32_t* col_add = nullptr;  // bias (+ folded zero-point terms); nullptr = 0
  const int32_t* row_sum = nullptr;  // per output row; nullptr = no row term (then col_zb unused)
  const int32_t* col_zb = nullptr;
  const float* col_scale = nullptr;  // s8/u8/f32 outputs
  int32_t out_zero_point = 0;
  bool relu = false;
  // Residual (aicc/gemm.h QResidual), s8/u8/f32 outputs: v = f32(acc) * scale, then
  // v + res_scale * f32(r - res_zero_point) before rounding. res == nullptr: none.
  const void* res = nullptr;
  DType res_dtype = DType::kU8;
  int64_t res_row_stride = 0, res_col_stride = 1;
  float res_scale = 1.0f;
  int32_t res_zero_point = 0;
};

// The residual term of one output element (exact int offset, one f32 multiply).
inline float residual_term(const OutputStage& o, int64_t i, int64_t j) {
  const int64_t off = i * o.res_row_stride + j * o.res_col_stride;
  const int32_t r = o.res_dtype == DType::kU8 ? static_cast<const uint8_t*>(o.res)[off]
                                              : static_cast<const int8_t*>(o.res)[off];
  return o.res_scale * static_cast<float>(r - o.res_zero_point);
}

// The implementations, one set per ISA path; the registry (csrc/cpu/config/) lists the routes.
void ukernel_s16_6x16_portable(int64_t kp, const void* a, const void* b, int32_t* c, bool accumulate);
void pack_a_s16_portable(const MatrixView& a, int64_t i0, int mr, int32_t za, int64_t kp, void* dst, int32_t*);
// Interleaved B panels ([kp][16][2], the AVX2 layout; the AVX2 packers' fallback for odd strides).
void pack_b_s16_portable(const MatrixView& b, int64_t j0, int n_cols, const int32_t* zb, int64_t kp, void* dst,
                         int32_t*);
// Planar B panels ([kp][2][16]) for the portable microkernel.
void pack_b_s16_planar_portable(const MatrixView& b, int64_t j0, int n_cols, const int32_t* zb, int64_t kp,
                                void* dst, int32_t*);
void output_portable(const int32_t* c, int ldc, int mr, int nr, int64_t i0, int64_t j0, const OutputStage& o);
#if defined(AICC_X86)
void ukernel_s16_6x16_avx2(int64_t kp, const void* a, const void* b, int32_t* c, bool accumulate);
void pack_a_s16_avx2(const MatrixView& a, int64_t i0, int mr, int32_t za, int64_t kp, void* dst, int32_t*);
void pack_b_s16_avx2(const MatrixView& b, int64_t j0, int nr, const int32_t* zb, int64_t kp, void* dst,
                     int32_t*);
void output_avx2(const int32_t* c, int ldc, int mr, int nr, int64_t i0, int64_t j0, const OutputStage& o);
void ukernel_u8s8_12x32_avx512vnni(int64_t kq, const void* a, const void* b, int32_t* c, bool accumulate);
void ukernel_u8s8_12x32_s32out_avx512vnni(int64_t kq, const void* a, const void* b, const int32_t* c, int mr, int nr,
                                          int64_t i0, int64_t j0, const OutputStage& o);
void pack_a_u8s8_avx512vnni(const MatrixView& a, int64_t i0, int mr, int32_t za, int64_t kq, void* dst,
                            int32_t* rowsum);
void pack_b_u8s8_avx512vnni(const MatrixView& b, int64_t j0, int nr, const int32_t* zb, int64_t kq, void* dst,
                            int32_t* colsum);
#endif

// Per-lane sums of packed raw-byte panels (kw words of `lanes` lanes; for packers that do not
// sum while packing, such as convolution's): the quad layout (word (q, l) at byte (q * lanes +
// l) * 4) read as u8 or s8, and the usmmla pair layout (aarch64_kernels.h) likewise. Modulo 2^32.
void panel_sums_quads_u8(const void* panel, int64_t kw, int lanes, int32_t* sums);
void panel_sums_quads_s8(const void* panel, int64_t kw, int lanes, int32_t* sums);
void panel_sums_pairs_u8(const void* panel, int64_t kw, int lanes, int32_t* sums);
void panel_sums_pairs_s8(const void* panel, int64_t kw, int lanes, int32_t* sums);
#if defined(AICC_X86)
// The s8 quad column sums with vpdpbusd (32 lanes, a 64-byte aligned panel).
void panel_sums_b_s8_32_avx512vnni(const void* panel, int64_t kw, int lanes, int32_t* sums);
#endif

}  // namespace aicc::cpu::qgemm_detail

namespace aicc::cpu::gemm_internal {
struct GemmConfig;
}

namespace aicc::cpu::qgemm_detail {
// The INT8 GEMM on one registry entry of the int8_gemm family, through the shared GEMM driver
// (aicc::cpu::qgemm passes the registry's choice; tests pass each registry entry in turn).
void qgemm_with_route(const MatrixView& a, const MatrixView& b, const MatrixView& out, const QGemmParams& p,
                      const gemm_internal::GemmConfig& cfg, const QResidual* residual = nullptr);

}  // namespace aicc::cpu::qgemm_detail
