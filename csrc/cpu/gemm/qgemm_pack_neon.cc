// INT8 GEMM packing for the aarch64 routes (layouts in aarch64_kernels.h): raw bytes, with the
// row sums of the packed A and the column sums of B that the driver needs to fold the zero
// points in after the product (qgemm_driver.cc). Plain C++ over any strides: the bytes are
// read once per call (O(mk + kn) against the kernels' O(mnk)), and the same code serves both
// word layouts through their index functions.
#include <algorithm>
#include <cstring>

#include "cpu/gemm/aarch64_kernels.h"
#include "cpu/gemm/qgemm_internal.h"

namespace aicc::cpu::qgemm_detail {
namespace {

// Byte offset of (lane l, k index kk) in a quad panel of `lanes` lanes.
inline int64_t quad_offset(int lanes, int64_t /*kq*/, int l, int64_t kk) {
  return (kk / 4 * lanes + l) * 4 + kk % 4;
}

// Byte offset of (lane l, k index kk) in a pair panel of `lanes` lanes and kq words: word pairs
// (8 k) hold 16 bytes per lane pair; an odd last word holds 8 bytes per lane pair.
inline int64_t pair_offset(int lanes, int64_t kq, int l, int64_t kk) {
  const int64_t q = kk / 4;
  if (q < kq / 2 * 2) return (q / 2) * 2 * lanes * 4 + (l / 2) * 16 + (l % 2) * 8 + kk % 8;
  return q * lanes * 4 + (l / 2) * 8 + (l % 2) * 4 + kk % 4;
}

// Rows [i0, i0 + mr) of A, all K, xor-ed with flip (0x80 moves s8 <-> u8 by 128), into one
// panel of MR lanes; rowsum[r] = sum of row r's packed bytes read as Signed (s8) or u8.
template <bool Signed>
void pack_a(int64_t (*offset)(int, int64_t, int, int64_t), int MR, const MatrixView& a, int64_t i0, int mr,
            uint8_t flip, int64_t kq, uint8_t* dst, int32_t* rowsum) {
  std::memset(dst, 0, static_cast<size_t>(kq) * MR * 4);  // padding: zero in either domain adds nothing
  const uint8_t* base = static_cast<const uint8_t*>(a.data);
  const int64_t k = a.cols;
  for (int r = 0; r < mr; ++r) {
    const uint8_t* row = base + (i0 + r) * a.row_stride;
    uint32_t sum = 0;  // modulo 2^32, as the driver folds it
    for (int64_t kk = 0; kk < k; ++kk) {
      const uint8_t v = row[kk * a.col_stride] ^ flip;
      dst[offset(MR, kq, r, kk)] = v;
      sum += Signed ? static_cast<uint32_t>(static_cast<int32_t>(static_cast<int8_t>(v))) : v;
    }
    if (rowsum != nullptr) rowsum[r] = static_cast<int32_t>(sum);
  }
  if (rowsum != nullptr)
    for (int r = mr; r < MR; ++r) rowsum[r] = 0;
}

// Columns [j0, j0 + n_cols) of B (s8), all K, into ceil(n_cols / NR) panels of NR lanes;
// colsum[s] = sum of column s.
void pack_b(int64_t (*offset)(int, int64_t, int, int64_t), int NR, const MatrixView& b, int64_t j0, int n_cols,
            int64_t kq, uint8_t* dst, int32_t* colsum) {
  const int8_t* base = static_cast<const int8_t*>(b.data);
  const int64_t k = b.rows, panel_bytes = kq * NR * 4;
  const int panels = (n_cols + NR - 1) / NR;
  std::memset(dst, 0, static_cast<size_t>(panels * panel_bytes));
  for (int p = 0; p < panels; ++p) {
    uint8_t* panel = dst + p * panel_bytes;
    const int nr = std::min(NR, n_cols - p * NR);
    for (int s = 0; s < nr; ++s) {
      const int8_t* col = base + (j0 + p * NR + s) * b.col_stride;
      uint32_t sum = 0;  // modulo 2^32, as the driver folds it
      for (int64_t kk = 0; kk < k; ++kk) {
        const int8_t v = col[kk * b.row_stride];
        panel[offset(NR, kq, s, kk)] = static_cast<uint8_t>(v);
        sum += static_cast<uint32_t>(static_cast<int32_t>(v));
      }
      if (colsum != nullptr) colsum[p * NR + s] = static_cast<int32_t>(sum);
    }
  }
}

}  // namespace

void pack_a_s8_quads_neon(const MatrixView& a, int64_t i0, int mr, int32_t, int64_t kq, void* dst, int32_t* rowsum) {
  pack_a<true>(quad_offset, kDotMR, a, i0, mr, a.dtype == DType::kU8 ? 0x80 : 0x00, kq, static_cast<uint8_t*>(dst),
               rowsum);
}

void pack_b_s8_quads_neon(const MatrixView& b, int64_t j0, int n_cols, const int32_t*, int64_t kq, void* dst,
                          int32_t* colsum) {
  pack_b(quad_offset, kDotNR, b, j0, n_cols, kq, static_cast<uint8_t*>(dst), colsum);
}

void pack_a_u8_pairs_neon(const MatrixView& a, int64_t i0, int mr, int32_t, int64_t kq, void* dst, int32_t* rowsum) {
  pack_a<false>(pair_offset, kMmlaMR, a, i0, mr, a.dtype == DType::kS8 ? 0x80 : 0x00, kq, static_cast<uint8_t*>(dst),
                rowsum);
}

void pack_b_s8_pairs_neon(const MatrixView& b, int64_t j0, int n_cols, const int32_t*, int64_t kq, void* dst,
                          int32_t* colsum) {
  pack_b(pair_offset, kMmlaNR, b, j0, n_cols, kq, static_cast<uint8_t*>(dst), colsum);
}

}  // namespace aicc::cpu::qgemm_detail
