// The blocked float GEMM driver (loops, threading, partial sums) and aicc::cpu::gemm.
// Design and contracts: gemm_driver.h; measured behaviour: docs/GEMM_DESIGN.md.
#include "cpu/gemm/gemm_driver.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "aicc/gemm.h"
#include "aicc/status.h"
#include "common/thread_pool.h"
#include "cpu/gemm/float_kernels.h"
#include "cpu/gemm/gemm_checks.h"

namespace aicc::cpu {
namespace gemm_internal {
namespace {

// Below this many flops a GEMM runs on the calling thread: waking a worker and the two
// synchronisations cost more than the second core gains (OpenBLAS #1614).
constexpr double kSerialFlops = 1.0e6;

// Partial sums that cannot live in `out` go to an f32 workspace of at most this many floats
// (32 MiB); taller problems are processed in row strips of that size.
constexpr int64_t kMaxWorkspaceFloats = int64_t{8} << 20;

// All of B for one column block up to this size is packed at once and the kc loop runs inside
// each row block (see drive). Past L2 the B blocks come from L3 once per row block, which
// still beats streaming A and the partial sums once per kc block: 1 thread on Zen 4, 3x3
// 128@28 (590 KiB of weights) 88 -> 102 GFLOPS, 256@14 (2.3 MiB) 97 -> 104; square GEMMs of
// 1024 and 2048 and a 3x3 512@7 conv (9 MiB) measured the same either way. The buffer is
// weights-sized scratch of the calling thread, like the B block it replaces.
constexpr int64_t kDepthInnerBytes = int64_t{4} << 20;

constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
constexpr int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// A 64-byte aligned float buffer that only grows; one set per calling thread (thread_local),
// so back-to-back calls neither allocate nor page-fault.
class AlignedBuffer {
 public:
  ~AlignedBuffer() { std::free(data_); }
  float* get(int64_t count) {
    if (count > size_) {
      std::free(data_);
      data_ = nullptr;
      const auto bytes = static_cast<std::size_t>(round_up(std::max<int64_t>(count, 16) * 4, 64));
      data_ = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (data_ == nullptr) throw std::bad_alloc();
      size_ = count;
    }
    return data_;
  }

 private:
  float* data_ = nullptr;
  int64_t size_ = 0;
};

struct Scratch {
  AlignedBuffer b, a, workspace;
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

int effective_threads(int64_t m, int64_t n, int64_t k, int threads) {
  int t = get_num_threads();
  if (threads > 0) t = std::min(t, threads);
  if (2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) < kSerialFlops) t = 1;
  return std::max(t, 1);
}

// Where the B block of one (jc, pc) iteration comes from: packed now into the shared buffer,
// or taken from a PackedB.
struct BSource {
  const BPacker* packer = nullptr;
  const PackedB* packed = nullptr;
};

// Asks for the rows of a partial-sum tile before the microkernel runs, so their cache misses
// (out is usually far larger than L2) overlap its k loop instead of stalling its final
// loads. Done here rather than in the microkernel: there it makes GCC spill an accumulator.
inline void prefetch_tile(const float* p, int64_t ld, int rows, int cols) {
  for (int r = 0; r < rows; ++r, p += ld) {
    __builtin_prefetch(p, 1, 3);
    __builtin_prefetch(p + cols - 1, 1, 3);
  }
}

// AICC_GEMM_DIRECT_A=0 packs A always: a diagnostic switch (the two paths give the same bits,
// so it only changes speed), read once.
// The most B panels a row block may share before a column-major A is packed rather than read
// in place by the strided-A kernel (see block_task).
constexpr int64_t kStridedAMaxPanels = 8;

// Rows-outer tile order for single-kc-block GEMMs of at most this depth (words per lane) whose
// B panels for one row block total at most this many bytes (see block_task).
constexpr int64_t kRowsOuterMaxWords = 128;
constexpr int64_t kRowsOuterMaxBBytes = int64_t{128} << 10;

// AICC_GEMM_B_PER_PANEL=0: always pack a shared B block (a diagnostic switch for A/B timing).
bool b_per_panel_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("AICC_GEMM_B_PER_PANEL");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return enabled;
}

bool direct_a_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("AICC_GEMM_DIRECT_A");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return enabled;
}

// The first 256 bytes of every run of a direct tile (rows[s * mr + r], seg_words[s] floats).
inline void prefetch_runs(const void* const* rows, int nseg, const int64_t* seg_words, int mr) {
  for (int sg = 0; sg < nseg; ++sg) {
    const int64_t bytes = std::min<int64_t>(seg_words[sg] * 4, 256);
    for (int r = 0; r < mr; ++r) {
      const char* p = static_cast<const char*>(rows[sg * mr + r]);
      for (int64_t off = 0; off < bytes; off += 64) __builtin_prefetch(p + off, 0, 3);
    }
  }
}

// The lines of the tile at (i, j) of an output (write intent) or residual (read) view with unit
// column stride, fetched while the kernel computes instead of missing when the in-register
// epilogue reads or stores them. Output, 1 thread, bf16 1x1 64->256 @56 batch 8 (12.8 MB of
// output, K = 64): 5.2-5.4 -> 4.8-4.9 ms; 3x3 layers unchanged or up to 3 % faster. (Before the
// epilogue ran in the kernel's registers it measured no gain: the tile's round trip through
// memory hid the misses.)
template <bool kForWrite>
inline void prefetch_view_tile(const MatrixView& v, int64_t i, int64_t j, int rows, int cols) {
  const int64_t esize = v.dtype == DType::kF32 ? 4 : 2;
  const char* p = static_cast<const char*>(v.data) + (i * v.row_stride + j) * esize;
  const int64_t ld = v.row_stride * esize, last = (cols - 1) * esize;
  for (int r = 0; r < rows; ++r, p += ld) {
    __builtin_prefetch(p, kForWrite ? 1 : 0, 3);
    __builtin_prefetch(p + last, kForWrite ? 1 : 0, 3);
  }
}

void copy_tile(const float* src, int64_t lds, float* dst, int64_t ldd, int rows, int cols) {
  for (int i = 0; i < rows; ++i) std::memcpy(dst + i * ldd, src + i * lds, sizeof(float) * cols);
}

void drive(const FloatGemmConfig& cfg, int64_t m, int64_t n, int64_t k, const APacker& a, const BSource& bsrc,
           const Epilogue& ep, int threads) {
  if (m <= 0 || n <= 0) return;
  // INT8 entries: int32 sums in the same 32-bit words; the tile step and the output stage are
  // theirs (int8_tile below), everything else is shared.
  const Int8Kernels* const q = cfg.int8;
  if (q != nullptr && ep.quant == nullptr) throw Unsupported("GEMM driver: an INT8 entry needs an INT8 output stage");
  const int mr = cfg.mr, nr = cfg.nr;
  const int64_t kc_blk = balanced_kc(k, cfg.kc, k_granule(cfg.word));
  const int64_t kw_blk = panel_words(kc_blk, cfg.word);  // words per lane of a full-depth block
  const int64_t nkb = kc_blk == 0 ? 1 : ceil_div(k, kc_blk);
  const int T = effective_threads(m, n, k, threads);

  // Partial sums between kc blocks: in out when it is f32 with unit column stride (and not
  // also C, which the epilogue still has to read), else in a workspace.
  const bool multi = nkb > 1;
  const bool acc_in_out = multi && !q && ep.out.dtype == DType::kF32 && ep.out.col_stride == 1 &&
                          !(ep.beta != 0.0f && ep.c.data == ep.out.data) && ep.residual.data != ep.out.data;
  const bool use_ws = multi && !acc_in_out;

  // A plain f32 product (alpha 1, no C, bias or activation) needs no epilogue pass: full
  // tiles go straight from the microkernel to out (1 * acc is acc, bit for bit).
  const bool identity = !q && ep.alpha == 1.0f && ep.beta == 0.0f && ep.bias == nullptr && ep.scale == nullptr &&
                        ep.residual.data == nullptr && ep.activation == Activation::kNone && ep.out.dtype == DType::kF32 &&
                        ep.out.col_stride == 1;

  // Full in-place tiles that need an epilogue get it in the kernel's registers (the kernel
  // and then the tile epilogue give the same bits; FloatIndirectEpilogueUkernel).
  const bool finish_in_kernel = cfg.ukernel_indirect_epilogue != nullptr && !identity && epilogue_in_registers(ep);

  int64_t nc_max = bsrc.packed ? cfg.nc : std::min<int64_t>(cfg.nc, round_up(n, nr));
  int64_t strip = m;
  if (use_ws) strip = std::min<int64_t>(m, std::max<int64_t>(mr, kMaxWorkspaceFloats / nc_max / mr * mr));

  Scratch& s = scratch();
  float* bbuf = bsrc.packed ? nullptr : s.b.get(round_up(std::max<int64_t>(kw_blk, 1) * nc_max, 16));
  // (INT8 partial sums are kept tile by tile, mr x nr with pitch nr, the kernels' tile.)
  float* ws = use_ws ? s.workspace.get(q ? round_up(strip, mr) * nc_max : strip * nc_max) : nullptr;
  const int64_t ws_ld = nc_max;

  // Row blocks: mc, shrunk so that the blocks of a strip split evenly over the threads.
  int64_t mc = cfg.mc;
  int64_t nchunks = 1;  // column chunks per row block (when rows are too few to share)
  if (T > 1) {
    const int64_t mb = round_up(std::max<int64_t>(ceil_div(strip, cfg.mc), T), T);
    mc = round_up(ceil_div(strip, mb), mr);
    // Split columns instead when the rows are few, or when the strip fits one row block and
    // the mr-row panels split over the threads worse than the nr-column panels do (12-row
    // panels: M = 128 on 2 threads is 6 + 5 panels, one thread idle 1/12 of the time).
    const int64_t row_panels = ceil_div(strip, mr);
    const int64_t row_max = ceil_div(ceil_div(strip, mc), T) * ceil_div(mc, mr);
    const int64_t col_panels = ceil_div(nc_max, nr);
    const bool cols_even = strip <= cfg.mc && col_panels * row_max > row_panels * ceil_div(col_panels, T);
    if ((mc < 2 * mr && strip < 2 * mr * T) || cols_even) {
      mc = round_up(std::min<int64_t>(strip, cfg.mc), mr);
      nchunks = T;
    }
  }
  const int64_t a_slot = round_up(mc * std::max<int64_t>(kw_blk, 1), 16) + 16 + mr * nr;
  float* abuf = s.a.get(a_slot * T);

  // INT8 entries that fold the zero points (QuantEpilogue): the per-column terms, complete once
  // a column's sums over all of K are known, and the row sums of A, one copy per column chunk
  // (the task of a row block and chunk owns its rows' sums over every depth block).
  const QuantEpilogue* const qe = ep.quant;
  const bool folds = q != nullptr && folds_zero_points(cfg.word);
  const int32_t za_q = folds ? qe->a_zero_point : 0;
  const bool col_term = folds && za_q != 0;
  const bool row_term = folds && qe->row_term;
  const int64_t m_pad = round_up(m, mr);
  std::vector<int32_t> col_base, col_add, colsum, colsum_part, rowsums;
  if (q != nullptr && (folds || qe->stage.col_add != nullptr)) {
    // bias + K za' zb[j], modulo 2^32 (the final value fits int32 by the K check).
    col_base.assign(static_cast<size_t>(round_up(n, nr)), 0);
    for (int64_t j = 0; j < n; ++j) {
      uint32_t t = qe->stage.col_add ? static_cast<uint32_t>(qe->stage.col_add[j]) : 0u;
      if (folds) t += static_cast<uint32_t>(k) * static_cast<uint32_t>(za_q) * static_cast<uint32_t>(qe->stage.col_zb[j]);
      col_base[j] = static_cast<int32_t>(t);
    }
    col_add = col_base;
  }
  // col_add[j] = col_base[j] - za' colsum[j] for columns [j0, j0 + cols), sums[j - j0].
  auto fold_columns = [&](int64_t j0, int64_t cols, const int32_t* sums) {
    for (int64_t j = j0; j < j0 + cols; ++j)
      col_add[j] = static_cast<int32_t>(static_cast<uint32_t>(col_base[j]) -
                                        static_cast<uint32_t>(za_q) * static_cast<uint32_t>(sums[j - j0]));
  };
  if (col_term && bsrc.packed) fold_columns(0, n, bsrc.packed->col_sums());
  if (col_term && !bsrc.packed) {
    colsum.assign(static_cast<size_t>(nc_max), 0);
    colsum_part.assign(static_cast<size_t>(nc_max), 0);
  }
  if (row_term) rowsums.assign(static_cast<size_t>(nchunks * m_pad), 0);
  // Adds a depth block's column sums of columns [jc + j0, + cols) (sums in colsum_part[j0..]) to
  // the column block's; after the last depth block, folds them.
  auto add_col_sums = [&](int64_t jc, int64_t j0, int64_t cols, int64_t pb, const int32_t* part) {
    for (int64_t j = j0; j < j0 + cols; ++j)
      colsum[j] = static_cast<int32_t>((pb == 0 ? 0u : static_cast<uint32_t>(colsum[j])) + static_cast<uint32_t>(part[j - j0]));
    if (pb == nkb - 1) fold_columns(jc + j0, cols, colsum.data() + j0);
  };
  const bool fused_s32 =
      q != nullptr && q->ukernel_s32_out != nullptr && ep.out.dtype == DType::kS32 && ep.out.col_stride == 1;

  // Depth-inner order: when nkb > 1 and all of B for a column block fits in kDepthInnerBytes
  // (conv weights, the B of a tall narrow GEMM), every kc block of B is packed up front and
  // each row block runs its kc blocks back to back, so its A rows (read in place or packed)
  // and its partial sums stay in L2 between them instead of streaming all of M through memory
  // once per kc block. Per element the kc blocks still come in the same order: bit-identical.
  const int64_t kw_total = nkb * kw_blk;  // an upper bound on the words per lane of all blocks
  const bool depth_inner =
      nkb > 1 && (bsrc.packed != nullptr || kw_total * round_up(nc_max, nr) * 4 <= kDepthInnerBytes);
  if (depth_inner && !bsrc.packed) bbuf = s.b.get(round_up(kw_total * round_up(nc_max, nr), 16) + 16 * nkb);
  // One row block (m <= mc: a short, wide GEMM such as BERT's 128 x 3072 x 768): each B panel
  // meets A once per kc block, so a shared B block buys no reuse. Each task packs its panels
  // one at a time into its own L2-resident slot right before the tiles that use them, instead
  // of writing the whole block (MiBs, out to L3 or memory) and reading it back.
  const bool b_per_panel = !bsrc.packed && !depth_inner && strip == m && m <= mc && b_per_panel_enabled();
  const int64_t panel_slot = round_up(nr * std::max<int64_t>(kw_blk, 1), 16) + 16;
  if (b_per_panel) bbuf = s.b.get(panel_slot * T);

  for (int64_t jc = 0; jc < n; jc += nc_max) {
    const int64_t nc = std::min(nc_max, n - jc);
    const int64_t npanels = ceil_div(nc, nr);

    // B read in place for kc block pb (full panels), when the entry has a strided-B kernel and
    // the source offers its first panel; then only the panels it does not offer (a last
    // partial one) are packed, and A is packed (a kernel reads one operand in place, not both).
    auto b_direct = [&](int64_t pb) {
      if (cfg.ukernel_strided_b == nullptr || bsrc.packed != nullptr || nc < nr) return false;
      int64_t ld = 0;
      const int64_t p0 = pb * kc_blk;
      return bsrc.packer->direct_panel(cfg, p0, std::min(kc_blk, k - p0), jc, &ld) != nullptr;
    };
    // Packs kc block pb of this column block into dst (parallel over column panels).
    auto pack_b = [&](int64_t pb, float* dst, bool direct) {
      const int64_t p0 = pb * kc_blk, kc = std::min(kc_blk, k - p0), kw = panel_words(kc, cfg.word);
      if (direct) {  // only the panels not read in place (a partial last one, at least)
        int64_t ld = 0;
        for (int64_t sp = 0; sp < npanels; ++sp) {
          const int64_t j0 = sp * nr, cols = std::min<int64_t>(nr, nc - j0);
          if (cols < nr || bsrc.packer->direct_panel(cfg, p0, kc, jc + j0, &ld) == nullptr)
            bsrc.packer->pack(cfg, p0, kc, jc + j0, cols, dst + sp * nr * kw);
        }
        return;
      }
      const int64_t per = ceil_div(npanels, std::min<int64_t>(T, npanels));
      parallel_for(
          ceil_div(npanels, per),
          [&](int64_t t, int) {
            const int64_t s0 = t * per, s1 = std::min(npanels, s0 + per);
            const int64_t j0 = s0 * nr, cols = std::min(nc, s1 * nr) - j0;
            if (col_term) {  // this task's columns: their sums, folded after the last block
              bsrc.packer->pack_with_sums(cfg, p0, kc, jc + j0, cols, dst + s0 * nr * kw, colsum_part.data() + j0);
              add_col_sums(jc, j0, cols, pb, colsum_part.data() + j0);
            } else {
              bsrc.packer->pack(cfg, p0, kc, jc + j0, cols, dst + s0 * nr * kw);
            }
          },
          T);
    };
    // The B block and the in-place A segments of each kc block.
    std::vector<const float*> bblocks(static_cast<size_t>(nkb));
    std::vector<char> bdirect(static_cast<size_t>(nkb));
    std::vector<int64_t> segs(static_cast<size_t>(nkb * APacker::kMaxDirectSegments));
    std::vector<int> nsegs(static_cast<size_t>(nkb));
    std::vector<const void*> col_base(static_cast<size_t>(nkb));  // column-major A in place
    std::vector<int64_t> col_lda(static_cast<size_t>(nkb));
    auto prepare = [&](int64_t pb, float* dst) {
      const int64_t p0 = pb * kc_blk, kc = std::min(kc_blk, k - p0);
      bdirect[pb] = b_direct(pb);
      if (bsrc.packed) {
        bblocks[pb] = static_cast<const float*>(bsrc.packed->block(jc, pb));
      } else if (b_per_panel) {
        bblocks[pb] = nullptr;  // packed panel by panel in block_task
      } else {
        pack_b(pb, dst, bdirect[pb] != 0);
        bblocks[pb] = dst;
      }
      // A read in place for this depth block (full mr-row tiles), when the entry has an
      // indirect microkernel and the A source can present the block's rows as runs.
      int64_t* sw = segs.data() + pb * APacker::kMaxDirectSegments;
      // (A is packed where B is read in place: a kernel reads one operand in place, not both.)
      nsegs[pb] = cfg.ukernel_indirect && direct_a_enabled() && !bdirect[pb] ? a.direct_segments(cfg, p0, kc, sw) : 0;
      // Else a column-major A read in place, when the entry has a strided-A kernel.
      col_base[pb] = nsegs[pb] == 0 && !bdirect[pb] && cfg.ukernel_strided_a && direct_a_enabled()
                         ? a.direct_columns(cfg, p0, kc, &col_lda[pb])
                         : nullptr;
    };

    for (int64_t i_strip = 0; i_strip < m; i_strip += strip) {
      const int64_t ms = std::min(strip, m - i_strip);
      const int64_t mblocks = ceil_div(ms, mc);
      const int64_t panels_per_chunk = ceil_div(npanels, nchunks);

      // One row block (and column chunk) of `task` against kc block pb.
      auto block_task = [&](int64_t task, int thread, int64_t pb) {
        const int64_t p0 = pb * kc_blk;
        const int64_t kc = std::min(kc_blk, k - p0);
        const int64_t kw = panel_words(kc, cfg.word);
        const bool first = pb == 0, last = pb == nkb - 1;
        const float* bblock = bblocks[pb];
        const int nseg = nsegs[pb];
        const int64_t* seg_words = segs.data() + pb * APacker::kMaxDirectSegments;
        const int64_t ib = task / nchunks, chunk = task % nchunks;
        const int64_t i0 = i_strip + ib * mc;
        const int64_t mcur = std::min(mc, i_strip + ms - i0);
        const int64_t s0 = chunk * panels_per_chunk;
        const int64_t s1 = std::min(npanels, s0 + panels_per_chunk);
        if (s0 >= s1) return;
        float* apack = abuf + thread * a_slot;
        float* tile = apack + a_slot - mr * nr;
        // Direct tiles: row tables, one per full tile, built once per block and reused
        // for every B panel; only a last partial tile is packed.
        const int64_t direct_rows = nseg > 0 ? mcur / mr * mr : 0;
        // Column-major A in place: full tiles read it through the strided-A kernel, when few B
        // panels share this A block. Packing costs one pass over A per block, repaid by every
        // panel's contiguous reads; in place, each panel reads A's strided lines again (from
        // L2, through more TLB pages). 1 thread, Zen 4: a 1x1 weight gradient's G^T against 2
        // panels 11.5 -> 9.7 ms in place; a trans_a 1000 x 2048 x 1000 GEMM (32 panels)
        // 100 -> 88-94 GFLOPS, a 1x1 1024->256 @14 weight gradient (32) 8.8 -> 8.8-11 ms.
        const char* const col_a = static_cast<const char*>(col_base[pb]);
        const int64_t strided_rows = col_a && s1 - s0 <= kStridedAMaxPanels ? mcur / mr * mr : 0;
        thread_local std::vector<const void*> row_table;
        if (direct_rows > 0) {
          const int64_t per_tile = static_cast<int64_t>(nseg) * mr;
          if (static_cast<int64_t>(row_table.size()) < direct_rows / mr * per_tile)
            row_table.resize(static_cast<size_t>(direct_rows / mr * per_tile));
          for (int64_t ir = 0; ir < direct_rows; ir += mr)
            a.direct_rows(cfg, i0 + ir, p0, nseg, seg_words, row_table.data() + ir / mr * per_tile);
        }
        const int64_t in_place = std::max(direct_rows, strided_rows);
        int32_t* const row_sums = row_term ? rowsums.data() + chunk * m_pad + i0 : nullptr;
        if (row_term) {  // INT8: this block's row sums, added to the earlier blocks'
          thread_local std::vector<int32_t> part;
          if (static_cast<int64_t>(part.size()) < round_up(mcur, mr)) part.resize(static_cast<size_t>(round_up(mcur, mr)));
          a.pack_with_sums(cfg, i0, mcur, p0, kc, apack, part.data());
          for (int64_t r = 0; r < mcur; ++r)
            row_sums[r] = static_cast<int32_t>((first ? 0u : static_cast<uint32_t>(row_sums[r])) + static_cast<uint32_t>(part[r]));
        } else if (in_place < mcur) {
          a.pack(cfg, i0 + in_place, mcur - in_place, p0, kc, apack + in_place * kw);
        }
        // INT8: the output stage of this task (its rows' sums, the folded column terms).
        qgemm_detail::OutputStage qo;
        if (q != nullptr) {
          qo = qe->stage;
          qo.col_add = col_add.empty() ? nullptr : col_add.data();
          qo.row_sum = row_term ? rowsums.data() + chunk * m_pad : nullptr;
        }
        // The INT8 step of tile (ir, panel bp): int32 sums in the tile buffer (one depth block) or
        // the workspace's tile (several), the output stage after the last block.
        auto int8_tile = [&](int64_t ir, const float* bp, int64_t i, int64_t j, int rows, int cols) {
          int32_t* acc = reinterpret_cast<int32_t*>(
              multi ? ws + ((i - i_strip) / mr * (nc_max / nr) + (j - jc) / nr) * mr * nr : tile);
          const float* ap = apack + ir * kw;
          if (last && fused_s32) {
            q->ukernel_s32_out(kw, ap, bp, first ? nullptr : acc, rows, cols, i, j, qo);
            return;
          }
          q->ukernel(kw, ap, bp, acc, !first);
          if (last) q->output(acc, nr, rows, cols, i, j, qo);
        };
        // The kernel prefetches each row a few lines ahead of its reads; the first lines of
        // the next tile's runs are asked for here, while this tile computes (from DRAM, 48
        // misses at a tile's start cost a fifth of its time).
        auto prefetch_next = [&](int64_t ir) {
          if (ir + mr < direct_rows) prefetch_runs(row_table.data() + (ir + mr) / mr * nseg * mr, nseg, seg_words, mr);
        };
        // The in-place B panel for the current panel (full panels of a direct block).
        const void* bdir = nullptr;
        int64_t ldb = 0;
        // acc (=) or += the product of tile ir (`rows` rows) and panel bp, through whichever path.
        auto product = [&](int64_t ir, const float* bp, float* c, int64_t ldc, int accumulate, int rows) {
          if (bdir != nullptr) {
            cfg.ukernel_strided_b(rows, kw, apack + ir * kw, bdir, ldb, c, ldc, accumulate);
          } else if (ir < direct_rows) {
            prefetch_next(ir);
            cfg.ukernel_indirect(nseg, seg_words, row_table.data() + ir / mr * nseg * mr, bp, c, ldc, accumulate);
          } else if (ir < strided_rows) {
            cfg.ukernel_strided_a(kw, col_a + (i0 + ir) * 4, col_lda[pb], bp, c, ldc, accumulate);
          } else if (rows < mr && cfg.ukernel_rows != nullptr)
            cfg.ukernel_rows(rows, kw, apack + ir * kw, bp, c, ldc, accumulate);
          else
            cfg.ukernel(kw, apack + ir * kw, bp, c, ldc, accumulate);
        };
        // A tile of fewer than mr rows but all nr columns is written in place (not through the
        // tile buffer) when the entry has a kernel that stores only its rows.
        const bool rows_in_place = cfg.ukernel_rows != nullptr;
        // A residual's rows are asked for a tile or two ahead (two on short depths, where a
        // tile's kernel is too short to hide DRAM latency): 1 thread, bf16 1x1 64->256 @56 b8
        // with a bf16 residual 7.6 -> 6.4-6.6 ms (the plain conv: 5.0).
        const int64_t residual_ahead = (kw <= 128 ? 2 : 1) * mr;
        // The product of a full in-place tile (plus c when accumulating), finished into out.
        auto product_finished = [&](int64_t ir, const float* bp, const float* c, int64_t ldc, int accumulate,
                                    int64_t i, int64_t j) {
          prefetch_next(ir);
          prefetch_view_tile<true>(ep.out, i, j, mr, nr);
          if (ep.residual.data && ir + residual_ahead < direct_rows)
            prefetch_view_tile<false>(ep.residual, i + residual_ahead, j, mr, nr);
          cfg.ukernel_indirect_epilogue(nseg, seg_words, row_table.data() + ir / mr * nseg * mr, bp, c, ldc,
                                        accumulate, ep, i, j);
        };
        float* const my_panel = b_per_panel ? bbuf + thread * panel_slot : nullptr;
        auto tile_step = [&](int64_t ir, const float* bp, int64_t j, int cols) {
          const int64_t i = i0 + ir;
          const int rows = static_cast<int>(std::min<int64_t>(mr, mcur - ir));
          if (q != nullptr) {
            int8_tile(ir, bp, i, j, rows, cols);
            return;
          }
          if (!multi) {
            if (identity && cols == nr && (rows == mr || rows_in_place)) {
              product(ir, bp, static_cast<float*>(ep.out.data) + i * ep.out.row_stride + j, ep.out.row_stride, 0,
                      rows);
              return;
            }
            if (finish_in_kernel && rows == mr && cols == nr && ir < direct_rows) {
              product_finished(ir, bp, nullptr, 0, 0, i, j);
              return;
            }
            product(ir, bp, tile, nr, 0, rows);
            cfg.epilogue(ep, tile, nr, i, j, rows, cols);
            return;
          }
          float* acc;
          int64_t ld;
          if (acc_in_out) {
            acc = static_cast<float*>(ep.out.data) + i * ep.out.row_stride + j;
            ld = ep.out.row_stride;
          } else {
            acc = ws + (i - i_strip) * ws_ld + (j - jc);
            ld = ws_ld;
          }
          if (cols == nr && (rows == mr || rows_in_place)) {
            prefetch_tile(acc, ld, rows, nr);
            if (last && finish_in_kernel && rows == mr && ir < direct_rows) {
              product_finished(ir, bp, acc, ld, 1, i, j);  // last of several blocks: accumulates
            } else {
              product(ir, bp, acc, ld, !first, rows);
              if (last && !(identity && acc_in_out)) cfg.epilogue(ep, acc, ld, i, j, rows, cols);
            }
          } else {  // edge tile: through the tile buffer, never past the matrix
            if (!first) copy_tile(acc, ld, tile, nr, rows, cols);
            product(ir, bp, tile, nr, !first, rows);
            if (last) cfg.epilogue(ep, tile, nr, i, j, rows, cols);
            else copy_tile(tile, nr, acc, ld, rows, cols);
          }
        };
        // Short depth, one kc block: each tile row meets all of the block's B panels before the
        // next row starts (rows outer), so its A rows are read once while in L1 and each output
        // row's lines are written back to back, instead of one line per row per pass over the
        // block's rows. The panels (at most kRowsOuterMaxBBytes together) come from L2.
        // 1 thread, bf16 1x1 64->256 @56 batch 8 (K = 64): 5.2 -> 4.9 ms.
        if (!multi && kw <= kRowsOuterMaxWords && (s1 - s0) * nr * kw * 4 <= kRowsOuterMaxBBytes && !b_per_panel &&
            !bdirect[pb]) {
          for (int64_t ir = 0; ir < mcur; ir += mr)
            for (int64_t sp = s0; sp < s1; ++sp) {
              const int64_t j = jc + sp * nr;
              tile_step(ir, bblock + sp * nr * kw, j, static_cast<int>(std::min<int64_t>(nr, jc + nc - j)));
            }
          return;
        }
        for (int64_t sp = s0; sp < s1; ++sp) {
          const int64_t j = jc + sp * nr;
          const int cols = static_cast<int>(std::min<int64_t>(nr, jc + nc - j));
          bdir = bdirect[pb] && cols == nr ? bsrc.packer->direct_panel(cfg, p0, kc, j, &ldb) : nullptr;
          if (b_per_panel && bdir == nullptr) {
            if (col_term) {  // the one task that packs this panel folds its columns' sums
              int32_t part[64];
              bsrc.packer->pack_with_sums(cfg, p0, kc, j, cols, my_panel, part);
              add_col_sums(jc, j - jc, cols, pb, part);
            } else {
              bsrc.packer->pack(cfg, p0, kc, j, cols, my_panel);
            }
          }
          const float* bp = b_per_panel ? my_panel : bblock + sp * nr * kw;
          for (int64_t ir = 0; ir < mcur; ir += mr) tile_step(ir, bp, j, cols);
        }
      };

      if (depth_inner) {
        if (i_strip == 0) {
          float* dst = bbuf;
          for (int64_t pb = 0; pb < nkb; ++pb) {
            prepare(pb, dst);
            dst += round_up(npanels * nr * panel_words(std::min(kc_blk, k - pb * kc_blk), cfg.word), 16);
          }
        }
        parallel_for(
            mblocks * nchunks,
            [&](int64_t task, int thread) {
              for (int64_t pb = 0; pb < nkb; ++pb) block_task(task, thread, pb);
            },
            T);
      } else {
        for (int64_t pb = 0; pb < nkb; ++pb) {
          prepare(pb, bbuf);
          parallel_for(mblocks * nchunks, [&](int64_t task, int thread) { block_task(task, thread, pb); }, T);
        }
      }
    }
  }
}

}  // namespace

void APacker::pack_with_sums(const FloatGemmConfig& cfg, int64_t i0, int64_t mc, int64_t p0, int64_t kc, void* dst,
                             int32_t* row_sums) const {
  pack(cfg, i0, mc, p0, kc, dst);
  if (row_sums == nullptr) return;
  const int64_t kw = panel_words(kc, cfg.word);
  for (int64_t r = 0; r < mc; r += cfg.mr)
    cfg.int8->panel_sums_a(static_cast<const char*>(dst) + r * kw * 4, kw, cfg.mr, row_sums + r);
}

void BPacker::pack_with_sums(const FloatGemmConfig& cfg, int64_t p0, int64_t kc, int64_t j0, int64_t nc, void* dst,
                             int32_t* col_sums) const {
  pack(cfg, p0, kc, j0, nc, dst);
  if (col_sums == nullptr) return;
  const int64_t kw = panel_words(kc, cfg.word);
  for (int64_t c = 0; c < nc; c += cfg.nr)
    cfg.int8->panel_sums_b(static_cast<const char*>(dst) + c * kw * 4, kw, cfg.nr, col_sums + c);
}

int32_t packed_a_zero_point(PanelWord w, DType a, int32_t za) {
  switch (w) {
    case PanelWord::kU8Quad:
    case PanelWord::kU8QuadPair:
      return za + (a == DType::kS8 ? 128 : 0);
    case PanelWord::kS8Quad:
      return za - (a == DType::kU8 ? 128 : 0);
    default:
      return 0;
  }
}

int64_t balanced_kc(int64_t k, int kc_max, int k_per_word) {
  // A depth at most an eighth past kc_max stays one block: its sums never leave the registers
  // between blocks (for a bf16 or f16 output they went through the f32 workspace), and the
  // 12 % longer B micro-panel and A block still sit in the caches kc_max was chosen for.
  // 1 thread, bf16 NHWC b8 3x3 128@28 (depth 1152 on the 1024-deep bf16 entry), forward and
  // data gradient: +3 %.
  if (k <= kc_max + kc_max / 8) return std::max<int64_t>(k, 0);
  return round_up(ceil_div(k, ceil_div(k, kc_max)), k_per_word);
}

PackedB::PackedB(const BPacker& b, int64_t k, int64_t n)
    : PackedB(b, k, n, float_gemm_config(b.dtype(), b.dtype())) {}

PackedB::PackedB(const BPacker& b, int64_t k, int64_t n, const FloatGemmConfig& config)
    : config_(&config), k_(k), n_(n) {
  kc_ = balanced_kc(k, config.kc, k_granule(config.word));
  num_kb_ = kc_ == 0 ? 1 : ceil_div(k, kc_);
  const int64_t njb = ceil_div(std::max<int64_t>(n, 0), config.nc);
  int64_t total = 0;
  for (int64_t jb = 0; jb < njb; ++jb) {
    const int64_t nc = std::min<int64_t>(config.nc, n - jb * config.nc);
    for (int64_t pb = 0; pb < num_kb_; ++pb) {
      offsets_.push_back(total);
      const int64_t kc = std::min(kc_, k - pb * kc_);
      total += round_up(round_up(nc, config.nr) * panel_words(kc, config.word), 16);  // 64-byte aligned blocks
    }
  }
  float* data = static_cast<float*>(std::aligned_alloc(64, static_cast<std::size_t>(round_up(total + 16, 16)) * 4));
  if (data == nullptr) throw std::bad_alloc();
  data_.reset(data);
  // Raw-byte INT8 words: the column sums of every depth block, added up once packing is done.
  const bool sums = folds_zero_points(config.word);
  const int64_t n_pad = round_up(std::max<int64_t>(n, 0), config.nr);
  std::vector<int32_t> parts(sums ? static_cast<size_t>(num_kb_ * n_pad) : 0);
  parallel_for(static_cast<int64_t>(offsets_.size()), [&](int64_t idx, int) {
    const int64_t jb = idx / num_kb_, pb = idx % num_kb_;
    const int64_t nc = std::min<int64_t>(config.nc, n - jb * config.nc);
    const int64_t kc = std::min(kc_, k - pb * kc_);
    if (sums)
      b.pack_with_sums(config, pb * kc_, kc, jb * config.nc, nc, data_.get() + offsets_[idx],
                       parts.data() + pb * n_pad + jb * config.nc);
    else
      b.pack(config, pb * kc_, kc, jb * config.nc, nc, data_.get() + offsets_[idx]);
  });
  if (sums) {
    col_sums_.assign(static_cast<size_t>(n_pad), 0);
    for (int64_t pb = 0; pb < num_kb_; ++pb)
      for (int64_t j = 0; j < n_pad; ++j)
        col_sums_[j] = static_cast<int32_t>(static_cast<uint32_t>(col_sums_[j]) + static_cast<uint32_t>(parts[pb * n_pad + j]));
  }
}

void PackedB::Free::operator()(float* p) const { std::free(p); }

const void* PackedB::block(int64_t j0, int64_t pb) const {
  return data_.get() + offsets_[(j0 / config_->nc) * num_kb_ + pb];
}

void run_float_gemm(int64_t m, int64_t n, int64_t k, const APacker& a, const BPacker& b, const Epilogue& ep,
                    int threads, const FloatGemmConfig* config) {
  BSource src;
  src.packer = &b;
  drive(config ? *config : float_gemm_config(a.dtype(), b.dtype()), m, n, k, a, src, ep, threads);
}

void run_float_gemm(int64_t m, const APacker& a, const PackedB& b, const Epilogue& ep, int threads) {
  // Pair words hold bf16 bits as they are: an A of another dtype would be rounded into them.
  if (b.config().word == PanelWord::kBF16Pair && a.dtype() != DType::kBF16)
    throw Unsupported("run_float_gemm: bf16-pair packed B needs a bf16 A operand");
  if (is_int8_word(b.config().word) != (a.dtype() == DType::kU8 || a.dtype() == DType::kS8))
    throw Unsupported("run_float_gemm: an INT8 packed B needs a u8/s8 A operand, and only it");
  BSource src;
  src.packed = &b;
  drive(b.config(), m, b.n(), b.k(), a, src, ep, threads);
}

}  // namespace gemm_internal

void gemm(const MatrixView& a, const MatrixView& b, const MatrixView* c, const MatrixView& out,
          const GemmParams& p) {
  check_gemm_args(a, b, c, out, p);
  gemm_internal::Epilogue ep;
  ep.alpha = p.alpha;
  ep.beta = p.beta;
  if (p.beta != 0.0f) ep.c = *c;
  ep.bias = p.bias;
  ep.activation = p.activation;
  ep.out = out;
  const gemm_internal::MatrixAPacker ap(a);
  const gemm_internal::MatrixBPacker bp(b);
  gemm_internal::run_float_gemm(out.rows, out.cols, a.cols, ap, bp, ep);
}

}  // namespace aicc::cpu
