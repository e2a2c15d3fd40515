// The aarch64 kernels (NEON, dotprod, i8mm, bf16) that csrc/cpu/config/aarch64.cc registers.
// Compiled only for aarch64 targets (their file suffixes, cmake/AiccIsa.cmake); each file gets
// exactly the -march extensions its registry entry requires, so none runs where the CPU lacks them.
//
// Packed INT8 layouts (the driver's contract, qgemm_internal.h: kw 32-bit words of 4 k per
// row/column; a K slice starting at an even word pc is at panel + pc * mr * 4 bytes):
//   quad routes (sdot, 8x12):  word (q, i) at byte (q * MR + i) * 4, the 4 k of the quad in
//                              order (the VNNI layout). A in the s8 domain (u8 a - 128).
//   pair routes (usmmla, 8x12): two words (8 k) per row, rows in pairs: for the word pair p
//                              (k 8p .. 8p+7), at byte p * 2 * MR * 4, row pair r holds 16 bytes
//                              [row 2r k 8p..8p+7][row 2r+1 k 8p..8p+7] (the 2x8 operand of
//                              usmmla). An odd last word (4 k) holds 8 bytes per row pair
//                              [row 2r, 4 k][row 2r+1, 4 k]. B the same with columns. A in the
//                              u8 domain (s8 a + 128), as VNNI.
#pragma once

#if defined(__aarch64__)
#include <cstdint>

#include "aicc/gemm.h"

namespace aicc::cpu {

namespace gemm_internal {
// f32, NEON fmla by element: 8 rows x 12 columns (24 accumulators), kF32 words.
void ukernel_f32_8x12_neon(int64_t kc, const void* a, const void* b, float* c, int64_t ldc, int accumulate);
// bf16 pairs, bfdot by element: 8 x 12, kBF16Pair words (one bfdot = 4 columns x one k pair).
void ukernel_bf16_8x12_armbf16(int64_t kw, const void* a, const void* b, float* c, int64_t ldc, int accumulate);
}  // namespace gemm_internal

namespace qgemm_detail {
constexpr int kDotMR = 8, kDotNR = 12;  // sdot route tile
constexpr int kMmlaMR = 8, kMmlaNR = 12;  // usmmla route tile

// s8 x s8 quads, sdot by element.
void ukernel_s8s8_8x12_dotprod(int64_t kq, const void* a, const void* b, int32_t* c, bool accumulate);
void pack_a_s8_quads_neon(const MatrixView& a, int64_t i0, int mr, int32_t za, int64_t kq, void* dst,
                          int32_t* rowsum);
void pack_b_s8_quads_neon(const MatrixView& b, int64_t j0, int n_cols, const int32_t* zb, int64_t kq, void* dst,
                          int32_t* colsum);
// u8 x s8 row/column pairs of 8 k, usmmla (2x8 by 8x2 -> 2x2 int32).
void ukernel_u8s8_8x12_i8mm(int64_t kq, const void* a, const void* b, int32_t* c, bool accumulate);
void pack_a_u8_pairs_neon(const MatrixView& a, int64_t i0, int mr, int32_t za, int64_t kq, void* dst,
                          int32_t* rowsum);
void pack_b_s8_pairs_neon(const MatrixView& b, int64_t j0, int n_cols, const int32_t* zb, int64_t kq, void* dst,
                          int32_t* colsum);
}  // namespace qgemm_detail

}  // namespace aicc::cpu
#endif
