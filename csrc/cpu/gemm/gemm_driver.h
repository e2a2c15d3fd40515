// The blocked GEMM driver, parameterized by operand packers (internal C++ API). One loop nest
// for every word format: f32, bf16 pairs, and the INT8 words (int32 sums in the same 32-bit
// tile and workspace words, the INT8 output stage as the epilogue: QuantEpilogue below).
//
// aicc::cpu::gemm (aicc/gemm.h) is one client: it packs strided f32/f16/bf16 matrices;
// aicc::cpu::qgemm (qgemm_driver.cc) another, through run_qgemm.
// Convolution is another: it supplies packers that build implicit-GEMM (im2col-on-the-fly)
// panels straight from the image, so the unfolded matrix never exists in memory, and it can
// pack its weights once into a PackedB and reuse them across calls.
//
// What is computed:   out[i, j] = epilogue( sum_p  A[i, p] * B[p, j] ),  0 <= i < m, 0 <= j < n
// A is m x k and B is k x n, both as the packers present them (in the word format of the
// registry entry: f32 values, or bf16 pairs for a bf16 dot-product kernel).
//
// The loops (BLIS order):  jc (nc columns) -> pc (kc depth) -> ic (mc rows) -> jr (nr) -> ir (mr).
//   * The B block (kc x nc) is packed once per (jc, pc), shared by all threads.
//   * Each task packs its own A block (mc x kc) and runs the microkernel over its tiles.
//   * Threads split the ic loop and, when there are too few row blocks, the jr loop; K is never
//     split across threads, and k blocking does not depend on the thread count, so every output
//     element's sum is formed in the same order on 1 or N threads: results are bit-identical.
//   * Partial sums between kc blocks live in `out` itself when it is f32 with unit column stride
//     (and is not C with beta != 0), else in an f32 workspace; the epilogue runs once per output
//     tile, after the last kc block, from an L1-resident tile.
//
// Packed layouts (32-bit words, see PanelWord; mr/nr are the microkernel tile of the entry in use,
// kw = ceil(kc / k_per_word) words per lane):
//   A block (mc x kc):  ceil(mc/mr) micro-panels, panel r at word offset r*mr*kw;
//                       inside a panel word (i, q) is at q*mr + i  (k-major, mr rows per word).
//                       Rows past mc are zero.
//   B block (kc x nc):  ceil(nc/nr) micro-panels, panel s at word offset s*nr*kw;
//                       inside a panel word (q, j) is at q*nr + j  (k-major, nr columns per word).
//                       Columns past nc are zero.
//   Zero padding is required: padded lanes are multiplied like real ones, so garbage there
//   (a NaN, an inf) would otherwise be harmless only by luck. Padded rows/columns never reach
//   `out` (edge tiles are written through a tile buffer, never out of bounds).
//
// Contract for packers: pack() may be called concurrently from several threads with disjoint
// destinations, for any block in any order; it must write every word of its destination
// region (ceil(mc/mr)*mr*kw words for A, ceil(nc/nr)*nr*kw for B); kc may be 0.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "aicc/gemm.h"
#include "aicc/tensor.h"
#include "common/cpu_features.h"
#include "cpu/gemm/qgemm_internal.h"

namespace aicc::cpu::gemm_internal {

// What one 32-bit word of a packed panel holds (the registry entry's "k per word").
//   kF32:       one f32 value                       (k per word 1; FMA kernels)
//   kBF16Pair:  two consecutive k of one row/column, (k per word 2; vdpbf16ps, AMX-BF16)
//               the lower k in the low 16 bits
// INT8 words (the entries of the int8_gemm family; int32 sums, csrc/cpu/gemm/qgemm_internal.h):
//   kS16Pair:   two consecutive k as int16 with the zero points already subtracted
//               (vpmaddwd; k per word 2). Nothing to fold after the product.
//   kU8Quad:    four consecutive k as bytes, A in the u8 domain (s8 a + 128), B raw s8
//               (vpdpbusd; k per word 4). Zero points folded after the product.
//   kS8Quad:    the same with A in the s8 domain (u8 a - 128; aarch64 sdot).
//   kU8QuadPair: u8 x s8 quads in the usmmla layout: words in pairs (8 k per lane pair,
//               aarch64_kernels.h), so depth blocks start on a multiple of 8 k.
// Panels of kc elements hold ceil(kc / k_per_word) words per lane; a pair past kc is padded
// with +0.0 on both operands (integer words: 0), so it adds exactly nothing.
enum class PanelWord : int { kF32 = 1, kBF16Pair = 2, kS16Pair = 3, kU8Quad = 4, kS8Quad = 5, kU8QuadPair = 6 };
constexpr int k_per_word(PanelWord w) {
  return w == PanelWord::kF32 ? 1 : (w == PanelWord::kBF16Pair || w == PanelWord::kS16Pair) ? 2 : 4;
}
// Depth blocks start on multiples of this many k (a word, or the usmmla word pair).
constexpr int k_granule(PanelWord w) { return w == PanelWord::kU8QuadPair ? 8 : k_per_word(w); }
constexpr bool is_int8_word(PanelWord w) { return static_cast<int>(w) >= static_cast<int>(PanelWord::kS16Pair); }
// Words whose packed operands are the raw bytes: the zero points are folded in after the
// product with the row sums of A and the column sums of B (docs/INT8_DESIGN.md).
constexpr bool folds_zero_points(PanelWord w) { return is_int8_word(w) && w != PanelWord::kS16Pair; }
constexpr int64_t panel_words(int64_t kc, PanelWord w) { return (kc + k_per_word(w) - 1) / k_per_word(w); }

// Register-tile microkernel: c[mr x nr] (row stride ldc, unit column stride)
//   = sum_{q < kw} a_word(i, q) . b_word(q, j)       (accumulate == 0)
//   = c + that sum                                   (accumulate != 0; the sum is formed first,
//                                                      from zero, then added: a fixed order)
// a and b are packed micro-panels of kw words (layouts above); kw may be 0 (stores zeros /
// leaves c). For kF32 words the dot is one product; for kBF16Pair the sum of the pair's two.
using FloatUkernel = void (*)(int64_t kw, const void* a, const void* b, float* c, int64_t ldc,
                              int accumulate);

// The same tile product with A read in place instead of from a packed panel (XNNPACK's
// "indirect GEMM"): the depth block is split into nseg segments of seg_words[s] words, and
// rows[s * mr + i] points at row i's run of segment s, seg_words[s] contiguous words in memory
// (an input pixel's channels in an NHWC conv, a row of a row-major matrix). B is the usual
// packed panel of sum(seg_words) words. The products and sums are those of FloatUkernel in the
// same order, so a tile is bit for bit the same through either. Saves packing A where A's rows
// are already contiguous runs: the A panel of a conv is otherwise copied (im2col) and packed
// once per block and read back from L2.
using FloatIndirectUkernel = void (*)(int64_t nseg, const int64_t* seg_words, const void* const* rows,
                                      const void* b, float* c, int64_t ldc, int accumulate);

// The same full mr x nr tile product as FloatIndirectUkernel (c read iff accumulate), finished
// in registers instead of stored: the epilogue of rows [i0, i0 + mr), columns [j0, j0 + nr) is
// applied to the sums and the result written to ep.out, with the tile epilogue's operations in
// its order, so the output is bit for bit that of the kernel, then the epilogue. Only for
// epilogues that epilogue_in_registers accepts. Saves the round trip of the f32 tile through
// memory and the epilogue's reloads, most of the epilogue's cost on short-depth GEMMs (a bf16
// 1x1 conv with 64 input channels: 28 % of its time). c may alias ep.out's tile (read first).
struct Epilogue;
using FloatIndirectEpilogueUkernel = void (*)(int64_t nseg, const int64_t* seg_words, const void* const* rows,
                                              const void* b, const float* c, int64_t ldc, int accumulate,
                                              const Epilogue& ep, int64_t i0, int64_t j0);

// The same tile product as FloatUkernel with A read in place from a column-major source: word
// (i, q) of A at a[q * lda + i] (lda in words), i < mr. For operands whose k steps are rows of
// a row-major matrix: a weight gradient's G^T (each pixel's output-channel gradients), a
// trans_a GEMM. The products and sums are FloatUkernel's, in its order: bit for bit the same
// tile. Saves packing A where packing is a copy of mr contiguous values per k step: the copy
// read A from memory on its own, a memory-bound pass before the compute-bound kernel (a fifth
// of a 1x1 weight gradient); read by the kernel, A's lines arrive behind its FMAs.
using FloatStridedAUkernel = void (*)(int64_t kw, const void* a, int64_t lda, const void* b, float* c, int64_t ldc,
                                      int accumulate);

// The FloatUkernel tile product for a tile of rows < mr rows (the last of an M that mr does not
// divide): A is the usual zero-padded mr-row panel, but only its first rows are multiplied (a
// kernel may round the count up to a tile it has) and only `rows` rows of c are read or
// written, so c may point into out itself. Per element the bits are FloatUkernel's.
using FloatRowsUkernel = void (*)(int rows, int64_t kw, const void* a, const void* b, float* c, int64_t ldc,
                                  int accumulate);

// FloatRowsUkernel (rows <= mr; rows == mr: a full tile) with B read in place: row q of the
// panel's 32 (nr) columns is b + q * ldb words, rows of a row-major matrix (the image rows of a
// 1x1 NCHW conv) instead of a packed panel. f32 words only. The same products in the same
// order as through a packed panel: the same bits.
using FloatStridedBUkernel = void (*)(int rows, int64_t kw, const void* a, const void* b, int64_t ldb, float* c,
                                      int64_t ldc, int accumulate);

// Epilogue of one output tile: rows [i0, i0 + mr), columns [j0, j0 + nr), from the f32 sums
// in `tile` (row stride ldt, unit column stride). Defined with Epilogue below.
struct Epilogue;
using EpilogueFn = void (*)(const Epilogue& ep, const float* tile, int64_t ldt, int64_t i0,
                            int64_t j0, int mr, int nr);

// Vectorized packers of a strided matrix into panels of the entry's word format (layouts
// above). They return false for layouts they do not vectorize; the portable packer then runs.
using PackAFn = bool (*)(const MatrixView& a, int64_t i0, int64_t mc, int64_t p0, int64_t kc, int mr, void* dst);
using PackBFn = bool (*)(const MatrixView& b, int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr, void* dst);

// The INT8 half of an entry whose word is an INT8 word (is_int8_word): int32 sums in the same
// 32-bit tile, workspace and panel words as the float entries, so the driver's loop nest,
// threading, partial sums and packed-B blocks serve both. The functions are qgemm_detail's
// (qgemm_internal.h), one set per ISA.
struct Int8Kernels {
  // c[mr x nr] (row-major, pitch nr, 64-byte aligned) = (accumulate ? c : 0) + the kw words of
  // the packed a and b panels, wrapping modulo 2^32.
  void (*ukernel)(int64_t kw, const void* a, const void* b, int32_t* c, bool accumulate);
  // The output stage of a tile (rows [0, mr) x columns [0, nr) of c, pitch ldc) into out(i0 + r, j0 + s).
  void (*output)(const int32_t* c, int ldc, int mr, int nr, int64_t i0, int64_t j0, const qgemm_detail::OutputStage& o);
  // Strided u8/s8 A (rows [i0, i0 + mr) of the view, all its columns, into one mr-lane panel of
  // kw words; kS16Pair: minus za) and s8 B (columns [j0, j0 + n_cols) into consecutive nr-lane
  // panels; kS16Pair: minus zb[s]); raw-byte words also write the row / column sums of what
  // they packed when rowsum / colsum is not nullptr.
  void (*pack_a)(const MatrixView& a, int64_t i0, int mr, int32_t za, int64_t kw, void* dst, int32_t* rowsum);
  void (*pack_b)(const MatrixView& b, int64_t j0, int n_cols, const int32_t* zb, int64_t kw, void* dst,
                 int32_t* colsum);
  // Raw-byte words: the per-lane sums of a packed panel (A: u8 or s8 domain per the word; B: s8),
  // for packers that do not produce them while packing (convolution). nullptr for kS16Pair.
  void (*panel_sums_a)(const void* panel, int64_t kw, int lanes, int32_t* sums);
  void (*panel_sums_b)(const void* panel, int64_t kw, int lanes, int32_t* sums);
  // Optional: the last depth block of a full-K tile with the s32 output stage fused in (s32 out,
  // unit column stride); c: the earlier blocks' sums (pitch nr) or nullptr.
  void (*ukernel_s32_out)(int64_t kw, const void* a, const void* b, const int32_t* c, int mr, int nr, int64_t i0,
                          int64_t j0, const qgemm_detail::OutputStage& o) = nullptr;
};

// One GEMM kernel as the registry lists it (csrc/cpu/config/): microkernel, its tile and
// word format, the cache blocking, the packers and the epilogue. BLIS's "context". Float
// entries fill the float kernels; INT8 entries (an INT8 word) leave them nullptr and fill int8.
struct GemmConfig {
  const char* ukernel_name;  // e.g. "f32_12x32_avx512": dtype_tile_isa
  PanelWord word;
  FloatUkernel ukernel;
  EpilogueFn epilogue;
  PackAFn pack_a;  // nullptr: portable packing only
  PackBFn pack_b;
  int mr, nr;   // register tile
  int mc;       // rows of A per block (multiple of mr; A block mc x kc stays in L2)
  int kc;       // depth per block in elements, a multiple of k_per_word (B micro-panel stays in L1)
  int nc;       // columns of B per block (multiple of nr; B block kc x nc stays in L3)
  // A read in place (FloatIndirectUkernel) for full mr-row tiles whose A source offers it
  // (APacker::direct_segments); nullptr: A is always packed.
  FloatIndirectUkernel ukernel_indirect = nullptr;
  // The indirect kernel with the epilogue in registers, for full tiles (nullptr: none).
  FloatIndirectEpilogueUkernel ukernel_indirect_epilogue = nullptr;
  // A read in place from a column-major source (APacker::direct_columns) for full mr-row
  // tiles; nullptr: such an A is packed.
  FloatStridedAUkernel ukernel_strided_a = nullptr;
  // Tiles of fewer than mr rows (nullptr: the full kernel on the padded panel, through a tile
  // buffer). M = 64 output channels on a 12-row tile (NCHW convs) is 5 tiles and one of 4 rows.
  FloatRowsUkernel ukernel_rows = nullptr;
  // Full nr-column B panels read in place where the B source offers them (BPacker::
  // direct_panel); nullptr: B is always packed.
  FloatStridedBUkernel ukernel_strided_b = nullptr;
  // INT8 entries: the int32 kernels, packers and output stage (nullptr for float entries).
  const Int8Kernels* int8 = nullptr;
};
// The name the float code knew the entries by (every entry is a GemmConfig).
using FloatGemmConfig = GemmConfig;

// The registry's choice for operands of these dtypes under the active CPU features:
// bf16 x bf16 -> the bf16 family (pair words where the CPU has a bf16 dot product), f16 -> the
// f16 family, u8/s8 A -> the INT8 family, everything else -> f32. Defined in
// csrc/cpu/config/registry.cc.
const FloatGemmConfig& float_gemm_config(DType a, DType b);

// ---------------------------------------------------------------------------------------
// Operand packers
// ---------------------------------------------------------------------------------------

// Packs the block A[i0 : i0+mc, p0 : p0+kc] into the A-block layout above (cfg.mr-row panels
// of cfg.word words). dtype(): the element type the packer reads (it picks the registry family).
class APacker {
 public:
  virtual ~APacker() = default;
  virtual DType dtype() const = 0;
  virtual void pack(const FloatGemmConfig& cfg, int64_t i0, int64_t mc, int64_t p0, int64_t kc, void* dst) const = 0;

  // In-place reads of A (for entries with an indirect microkernel). direct_segments splits the
  // depth block [p0, p0 + kc) into runs along which every row of A is contiguous in memory, in
  // the entry's word format, writing at most kMaxDirectSegments lengths (in words) to
  // seg_words; it returns their number, or 0 when this block must be packed (the default: a
  // layout, dtype or word format the source cannot present in place, or reads that would
  // thrash the L1 cache). direct_rows then fills, for the full mr-row tile starting at row i,
  // rows[s * mr + r] = the address of row i + r's run of segment s (a zero run stands for
  // padding). Both may be called concurrently.
  static constexpr int kMaxDirectSegments = 32;
  virtual int direct_segments(const FloatGemmConfig& cfg, int64_t p0, int64_t kc, int64_t* seg_words) const {
    (void)cfg, (void)p0, (void)kc, (void)seg_words;
    return 0;
  }
  virtual void direct_rows(const FloatGemmConfig& cfg, int64_t i, int64_t p0, int nseg, const int64_t* seg_words,
                           const void** rows) const {
    (void)cfg, (void)i, (void)p0, (void)nseg, (void)seg_words, (void)rows;
  }
  // In-place reads of a column-major A (for entries with a strided-A microkernel): the address
  // of A[0, p0], with A[i, p0 + q] at that address + (q * *lda_words + i) words in the entry's
  // word format, for every row of A and q < kc; nullptr when the block must be packed (the
  // default). Called concurrently.
  virtual const void* direct_columns(const FloatGemmConfig& cfg, int64_t p0, int64_t kc, int64_t* lda_words) const {
    (void)cfg, (void)p0, (void)kc, (void)lda_words;
    return nullptr;
  }
  // INT8 entries whose words fold the zero points: pack() plus, when row_sums is not nullptr,
  // the sum of each packed row's values over this depth block into row_sums[0, ceil(mc/mr)*mr)
  // (modulo 2^32; padded rows 0). The default sums the packed panels (Int8Kernels::
  // panel_sums_a); a packer that can sum while it packs overrides it.
  virtual void pack_with_sums(const FloatGemmConfig& cfg, int64_t i0, int64_t mc, int64_t p0, int64_t kc, void* dst,
                              int32_t* row_sums) const;
};

// Packs the block B[p0 : p0+kc, j0 : j0+nc] into the B-block layout above (cfg.nr-column panels).
class BPacker {
 public:
  virtual ~BPacker() = default;
  virtual DType dtype() const = 0;
  virtual void pack(const FloatGemmConfig& cfg, int64_t p0, int64_t kc, int64_t j0, int64_t nc, void* dst) const = 0;

  // In-place reads of B (for entries with a strided-B microkernel): the address of word
  // (p0, j0) of the full nr-column panel [j0, j0 + nr) of depth block [p0, p0 + kc), its rows
  // *ld words apart, or nullptr when that panel must be packed (the default: all of them).
  // Partial panels are always packed. May be called concurrently.
  virtual const void* direct_panel(const FloatGemmConfig& cfg, int64_t p0, int64_t kc, int64_t j0, int64_t* ld) const {
    (void)cfg, (void)p0, (void)kc, (void)j0, (void)ld;
    return nullptr;
  }
  // INT8 entries whose words fold the zero points: pack() plus, when col_sums is not nullptr,
  // each packed column's sum over this depth block into col_sums[0, ceil(nc/nr)*nr) (modulo
  // 2^32). The default sums the packed panels (Int8Kernels::panel_sums_b).
  virtual void pack_with_sums(const FloatGemmConfig& cfg, int64_t p0, int64_t kc, int64_t j0, int64_t nc, void* dst,
                              int32_t* col_sums) const;
};

// Packers for a strided f32 / f16 / bf16 matrix (any non-negative element strides, stride 0
// included), into f32 words (converting) or bf16 pair words (bf16 input only: never a rounding).
// They use the entry's vectorized packer where the layout allows (unit stride along rows or
// columns) and a scalar loop otherwise.
class MatrixAPacker final : public APacker {
 public:
  explicit MatrixAPacker(const MatrixView& a) : a_(a) {}
  DType dtype() const override { return a_.dtype; }
  void pack(const FloatGemmConfig& cfg, int64_t i0, int64_t mc, int64_t p0, int64_t kc, void* dst) const override;
  // In place when A is f32 with unit column stride and a row stride that spreads mr rows over
  // the L1 sets (see rows_share_l1_sets).
  int direct_segments(const FloatGemmConfig& cfg, int64_t p0, int64_t kc, int64_t* seg_words) const override;
  void direct_rows(const FloatGemmConfig& cfg, int64_t i, int64_t p0, int nseg, const int64_t* seg_words,
                   const void** rows) const override;
  // In place when A is f32 with unit row stride (column-major) and a column stride that keeps
  // a kernel's k steps spread over the L1 sets (columns_share_l1_sets).
  const void* direct_columns(const FloatGemmConfig& cfg, int64_t p0, int64_t kc, int64_t* lda_words) const override;

 private:
  MatrixView a_;
};

// True when the lines of consecutive k steps `col_stride_bytes` apart crowd a 64-set, 8-way
// L1: more than 4 of 16 steps' lines in one set, so the lines a strided-A kernel prefetches 8
// steps ahead would evict the ones it is reading (2 KiB, 4 KiB, 4 KiB + 4 B; a 1 KiB stride
// puts 4 in each of 4 sets). Such an A is packed instead.
bool columns_share_l1_sets(int64_t col_stride_bytes);

// True when mr rows `row_stride_bytes` apart would put more than six of their current cache
// lines into one set of a 64-set L1 (row strides near a multiple of 4 KiB): read in place
// they would evict each other every k step, so such an A is packed instead.
bool rows_share_l1_sets(int64_t row_stride_bytes, int mr);

class MatrixBPacker final : public BPacker {
 public:
  explicit MatrixBPacker(const MatrixView& b) : b_(b) {}
  DType dtype() const override { return b_.dtype; }
  void pack(const FloatGemmConfig& cfg, int64_t p0, int64_t kc, int64_t j0, int64_t nc, void* dst) const override;

 private:
  MatrixView b_;
};

// ---------------------------------------------------------------------------------------
// Epilogue: out = round(activation(scale * (alpha * acc) + beta * C + bias + residual)), in
// f32, one operation at a time in that order (each term only when present).
// ---------------------------------------------------------------------------------------
struct QuantEpilogue;
struct Epilogue {
  float alpha = 1.0f;
  float beta = 0.0f;         // beta == 0: C is never read (NaN in C does not leak)
  MatrixView c;              // m x n, f32/f16/bf16, any strides (0 = broadcast); read iff beta != 0
  const float* bias = nullptr;  // nullptr, or f32 of length n (bias_per_row false) or m (true)
  bool bias_per_row = false;    // true: bias[i] and scale[i] (conv with weights as A); false: [j]
  // Per-channel multiplier of the sum (a conv's folded batch norm): nullptr, or f32 indexed
  // like bias. Applied before C and bias, so scale * conv + bias is the folded BN.
  const float* scale = nullptr;
  // A conv's residual input: m x n, f32/f16/bf16, unit column stride; read iff data != nullptr,
  // added after the bias (C is added before it: the two are separate so GEMM keeps its order).
  // May alias out exactly (each element is read before the same out element is written).
  MatrixView residual;
  Activation activation = Activation::kNone;
  MatrixView out;            // m x n, f32/f16/bf16, any positive strides; may alias C exactly
  // INT8 entries: the output stage instead of the float fields above (which are then unused).
  const QuantEpilogue* quant = nullptr;
};

// The output stage of an INT8 entry (qgemm_internal.h OutputStage), with what the driver folds
// in. For words that fold the zero points (the raw products sum a'b over K, with a' the packed
// A and za' its zero point in the packed domain), per element, modulo 2^32:
//   acc = sum a'b + col_add[j] - za' colsum(b)[j] + K za' zb[j] - zb[j] rowsum(a')[i]
// where col_add is stage.col_add (the bias; nullptr = 0). The driver takes the column sums from
// the B packer (or the PackedB), the row sums from the A packer, and passes the stage on with
// col_add and row_sum replaced by the folded per-call arrays. kS16Pair words subtract the zero
// points while packing: only stage.col_add (the bias) is added.
struct QuantEpilogue {
  qgemm_detail::OutputStage stage;  // col_add (bias) and col_zb / col_scale padded to whole nr panels
  int32_t a_zero_point = 0;         // za' (packed domain); raw-byte words only
  bool row_term = false;            // some zb[j] != 0 (raw-byte words): row sums are needed
};

// The epilogues a kernel may apply in registers (FloatIndirectEpilogueUkernel) and the AVX-512
// tile epilogue vectorizes: f32 or bf16 out with unit column stride, no C, no gelu, a residual
// (if any) in f32 or bf16.
inline bool epilogue_in_registers(const Epilogue& ep) {
  const DType o = ep.out.dtype, r = ep.residual.dtype;
  return ep.out.col_stride == 1 && ep.beta == 0.0f && ep.activation != Activation::kGelu &&
         (o == DType::kF32 || o == DType::kBF16) && (!ep.residual.data || r == DType::kF32 || r == DType::kBF16);
}

// ---------------------------------------------------------------------------------------
// Prepacked B (weights): packed once with the blocking of one config, reused across calls.
// ---------------------------------------------------------------------------------------
class PackedB {
 public:
  // Packs all of B (k x n) with the registry's config for b's dtype (on both operands).
  PackedB(const BPacker& b, int64_t k, int64_t n);
  PackedB(const BPacker& b, int64_t k, int64_t n, const FloatGemmConfig& config);

  int64_t k() const { return k_; }
  int64_t n() const { return n_; }
  const FloatGemmConfig& config() const { return *config_; }
  // The packed (jc, pc) block that starts at column j0 (a multiple of nc) and depth block pb.
  const void* block(int64_t j0, int64_t pb) const;
  int64_t kc_block() const { return kc_; }   // depth of every block but possibly the last
  // Raw-byte INT8 words: the column sums of all of B (n padded to whole panels), packed once
  // with the weights; nullptr for other words.
  const int32_t* col_sums() const { return col_sums_.empty() ? nullptr : col_sums_.data(); }

 private:
  const FloatGemmConfig* config_;
  int64_t k_, n_, kc_, num_kb_;
  struct Free {
    void operator()(float* p) const;
  };
  std::vector<int64_t> offsets_;  // per (jc block, pc block), into data_
  std::vector<int32_t> col_sums_;
  std::unique_ptr<float, Free> data_;  // 64-byte aligned
};

// The driver. m, n, k >= 0; ep.out is m x n. `threads` <= 0: the pool's size (small problems
// run on the calling thread regardless). Uses the registry's config for the packers' dtypes,
// or `config` when given (tests run one registry entry this way). INT8 entries need
// ep.quant (run_qgemm builds it); their float epilogue fields are unused.
void run_float_gemm(int64_t m, int64_t n, int64_t k, const APacker& a, const BPacker& b,
                    const Epilogue& ep, int threads = 0, const FloatGemmConfig* config = nullptr);
// Same, with B prepacked (its config is used, so the tile matches its panels).
void run_float_gemm(int64_t m, const APacker& a, const PackedB& b, const Epilogue& ep,
                    int threads = 0);

// The INT8 GEMM on an INT8 entry: out = output stage of sum_p (A[i, p] - za)(B[p, j] - zb[j])
// (aicc::cpu::qgemm's semantics, p and residual as there), with A (m x b.rows, u8/s8) from any
// packer of the entry's words (za = p.a_zero_point: a packer that pads, such as convolution's,
// pads with za) and B a strided s8 matrix. Arguments already checked. Defined in qgemm_driver.cc.
void run_qgemm(int64_t m, const APacker& a, const MatrixView& b, const MatrixView& out, const QGemmParams& p,
               const QResidual* residual, const GemmConfig& cfg);

// The depth of each kc block for a given k (balanced: k = 257 gives 129 + 128, not 256 + 1),
// rounded up to a whole number of words so no word straddles two blocks; a k at most
// kc_max + kc_max / 8 is one block. Independent of the thread count, so results are too.
int64_t balanced_kc(int64_t k, int kc_max, int k_per_word = 1);

// The A zero point in the packed domain of an INT8 word (raw-byte words shift s8 A to u8 or u8
// A to s8 by 128): what the driver folds with the column sums of B.
int32_t packed_a_zero_point(PanelWord w, DType a, int32_t za);

}  // namespace aicc::cpu::gemm_internal
