// Internals of the INT8 GEMM (aicc::cpu::qgemm): packed layouts, the per-ISA kernel table
// and the output stage parameters. The driver (qgemm_driver.cc) owns blocking and threads;
// the files below only know their tile.
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
// A K-slice [p0, p1) of a panel starts at panel + p0 * kMR * 2 (resp. kNR * 2).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

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

// One compute route: its tile, its packed-word width (K elements per 32-bit word: 2 int16
// or 4 bytes) and its functions. The driver is the same for every route.
struct Route {
  int mr, nr;
  int k_per_word;        // 2 (int16 pairs, vpmaddwd) or 4 (byte quads, vpdpbusd)
  int64_t kc_words;      // K words per slice
  int64_t mc_panels, nc_panels;
  // Raw operand sums are needed (zero points folded after the product: the VNNI route,
  // whose packed operands are the raw bytes, A shifted to u8).
  bool folds_zero_points;
  // c[mr][nr] (row-major int32) = (accumulate ? c : 0) + sum over kw words of packed a x b.
  void (*ukernel)(int64_t kw, const void* a, const void* b, int32_t* c, bool accumulate);
  // Packs rows [i0, i0 + mr_valid) of A, all K, into one A panel of kw words. int16 route:
  // minus za. VNNI route: raw bytes (s8 shifted by +128 to u8), row sums into rowsum[0, mr)
  // unless rowsum is nullptr (every zb is 0: the row term vanishes and the sums are skipped).
  void (*pack_a)(const MatrixView& a, int64_t i0, int mr_valid, int32_t za, int64_t kw, void* dst,
                 int32_t* rowsum);
  // Packs columns [j0, j0 + n_cols) of B into ceil(n_cols / nr) consecutive B panels of kw
  // words (kw * nr * 4 bytes each; several panels per call let the packer read rows of B
  // contiguously). int16 route: minus zb (zb[s] for column j0 + s, padded to whole panels).
  // VNNI route: raw s8, column sums into colsum[0, n_cols) unless colsum is nullptr (za' = 0).
  void (*pack_b)(const MatrixView& b, int64_t j0, int n_cols, const int32_t* zb, int64_t kw, void* dst,
                 int32_t* colsum);
  // Applies bias + output stage to rows [0, mr) x columns [0, nr) of the tile c (row pitch
  // ldc int32) and writes them to out(i0 + r, j0 + s). Never touches other elements.
  void (*output)(const int32_t* c, int ldc, int mr, int nr, int64_t i0, int64_t j0, const OutputStage& o);
  // folds_zero_points routes only: the domain of the packed A bytes. false: u8 (u8 a as is, s8
  // a + 128; vpdpbusd, usmmla). true: s8 (s8 a as is, u8 a - 128; aarch64 sdot, which has no
  // mixed-sign form without i8mm). The driver shifts the A zero point into the same domain.
  bool a_packed_signed = false;
  // Optional (nullptr: the route has none): the last K slice of a tile with the int32 output
  // stage fused in, used for s32 outputs with unit column stride. c: the earlier slices' sums
  // (row-major, ldc = nr) or nullptr; writes rows [0, mr) x columns [0, nr) of the tile to
  // out(i0 + r, j0 + s) exactly as `output` would.
  void (*ukernel_s32_out)(int64_t kw, const void* a, const void* b, const int32_t* c, int mr, int nr, int64_t i0,
                          int64_t j0, const OutputStage& o) = nullptr;
};

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

// The INT8 GEMM on one route (aicc::cpu::qgemm passes the registry's choice; tests pass each
// registry entry in turn).
void qgemm_with_route(const MatrixView& a, const MatrixView& b, const MatrixView& out, const QGemmParams& p,
                      const Route& route, const QResidual* residual = nullptr);

// A 64-byte aligned, growable scratch buffer (never shrinks while alive; contents are
// not preserved across grow()).
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { std::free(data_); }

  void* grow(size_t bytes) {
    if (bytes > size_) {
      std::free(data_);
      data_ = nullptr;
      size_ = 0;
      const size_t rounded = (bytes + 63) / 64 * 64;
      data_ = std::aligned_alloc(64, rounded);
      if (data_ == nullptr) throw std::bad_alloc();
      size_ = rounded;
    }
    return data_;
  }
  void release() {
    std::free(data_);
    data_ = nullptr;
    size_ = 0;
  }
  size_t size() const { return size_; }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace aicc::cpu::qgemm_detail
