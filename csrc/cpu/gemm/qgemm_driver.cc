// Quantized GEMM driver: packing, blocking and threads around a register-tile microkernel
// (design and layouts: qgemm_internal.h, docs/INT8_DESIGN.md). One driver for every route
// (int16 vpmaddwd on AVX2 and portable C++; u8 x s8 vpdpbusd on AVX-512 VNNI):
//
//   1. Pack A (mr-row panels) and B (nr-column panels) once, over all of K, in parallel.
//   2. The output is cut into mc x nc blocks, one task each (threads split M and N, never K,
//      so every element is computed by the same operations whatever the thread count).
//      Inside a block: K in slices of kc words (a B micro-panel slice stays in L1, the A block
//      slice in L2); for each nr panel, for each mr panel, one microkernel call; after the
//      last K slice the output stage writes the tile straight from the int32 accumulators.
#include <algorithm>
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#if defined(AICC_X86)
#include <immintrin.h>
#endif

#include "aicc/gemm.h"
#include "common/cpu_features.h"
#include "common/thread_pool.h"
#include "cpu/config/registry.h"
#include "cpu/gemm/gemm_checks.h"
#include "cpu/gemm/qgemm_internal.h"

namespace aicc::cpu {
namespace {

using namespace qgemm_detail;

inline void cpu_relax() {
#if defined(AICC_X86)
  _mm_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

// Below this many multiply-adds a call runs on the calling thread only (thread hand-off
// would cost more than it saves). 128^3 (2 M) already gains from the second core: the pool's
// workers still spin from the previous call in a loop of GEMMs (thread_pool.cc).
constexpr int64_t kSerialMacs = int64_t{1} << 20;

// Per calling thread: the packed operands and the accumulator scratch of every worker.
// Kept between calls (no page faults on repeated calls of one size); dropped when large.
struct Workspace {
  AlignedBuffer packed;
  AlignedBuffer scratch;
};
constexpr size_t kKeepBytes = size_t{64} << 20;

}  // namespace

void qgemm(const MatrixView& a, const MatrixView& b, const MatrixView& out, const QGemmParams& p) {
  qgemm_detail::qgemm_with_route(a, b, out, p, *registry::select(registry::families().int8_gemm).impl);
}

void qgemm(const MatrixView& a, const MatrixView& b, const MatrixView& out, const QGemmParams& p,
           const QResidual* residual) {
  qgemm_detail::qgemm_with_route(a, b, out, p, *registry::select(registry::families().int8_gemm).impl, residual);
}

void qgemm_detail::qgemm_with_route(const MatrixView& a, const MatrixView& b, const MatrixView& out,
                                    const QGemmParams& p, const Route& rt, const QResidual* residual) {
  check_qgemm_args(a, b, out, p);
  check_qresidual(out, residual);
  const int64_t m = out.rows, n = out.cols, k = a.cols;
  if (m == 0 || n == 0) return;

  const int64_t mr = rt.mr, nr = rt.nr;
  const int64_t kw = (k + rt.k_per_word - 1) / rt.k_per_word;  // packed 32-bit words per row/column
  const int64_t m_panels = (m + mr - 1) / mr, n_panels = (n + nr - 1) / nr;
  const int64_t a_panel = kw * mr * 4, b_panel = kw * nr * 4;  // bytes

  // Zero point of every packed column (padding columns get 0; they are never written out).
  std::vector<int32_t> zb(static_cast<size_t>(n_panels * nr), 0);
  if (p.b_zero_point != nullptr)
    for (int64_t j = 0; j < n; ++j) zb[j] = p.b_zero_point[p.b_zero_point_len == 1 ? 0 : j];
  // The row term -zb[j] * rowsum(a') vanishes when every zb is 0 (the common per-tensor case):
  // then the packers skip the row sums and the output stage skips the term.
  const bool row_term = rt.folds_zero_points && std::any_of(zb.begin(), zb.end(), [](int32_t z) { return z != 0; });
  std::vector<int32_t> rowsum(row_term ? static_cast<size_t>(m_panels * mr) : 0);


  const bool serial = m * n * std::max<int64_t>(k, 1) < kSerialMacs;

  // Per-column operands of the output stage, padded to whole panels (vector loads).
  std::vector<float> col_scale;
  if (p.scale != nullptr) {
    col_scale.resize(zb.size());
    for (int64_t j = 0; j < n; ++j) col_scale[j] = p.scale[p.scale_len == 1 ? 0 : j];
  }
  std::vector<int32_t> col_add;
  if (rt.folds_zero_points || p.bias != nullptr) {
    col_add.assign(zb.size(), 0);
    if (p.bias != nullptr) std::copy(p.bias, p.bias + n, col_add.begin());
  }
  // The VNNI route's operands are raw bytes with A as u8 (a' = a, +128 for s8; za' likewise):
  //   sum (a' - za')(b - zb) = sum a'b - za' colsum(b) - zb rowsum(a') + K za' zb,
  // computed modulo 2^32 (unsigned): the raw sums may wrap, the final value fits int32. The
  // column terms are added to col_add by the task that packs those columns; the row term is
  // applied in the output stage.
  // (An s8-domain route, a_packed_signed, has a' = a for s8 and a - 128 for u8, za' likewise.)
  const int32_t a_shift = rt.a_packed_signed ? (a.dtype == DType::kU8 ? -128 : 0) : (a.dtype == DType::kS8 ? 128 : 0);
  const uint32_t za_u = static_cast<uint32_t>(p.a_zero_point + a_shift);
  // The column term -za' colsum(b) vanishes when za' = 0 (u8 a with zero point 0): the
  // packers then skip the column sums.
  const bool col_term = rt.folds_zero_points && za_u != 0;
  std::vector<int32_t> colsum(col_term ? static_cast<size_t>(n_panels * nr) : 0);
  auto fold_columns = [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j) {
      const uint32_t term = static_cast<uint32_t>(col_add[j]) - (col_term ? za_u * static_cast<uint32_t>(colsum[j]) : 0u) +
                            static_cast<uint32_t>(k) * za_u * static_cast<uint32_t>(zb[j]);
      col_add[j] = static_cast<int32_t>(term);
    }
  };

  OutputStage o;
  o.dtype = out.dtype;
  o.data = out.data;
  o.row_stride = out.row_stride;
  o.col_stride = out.col_stride;
  o.col_add = col_add.empty() ? nullptr : col_add.data();
  o.row_sum = row_term ? rowsum.data() : nullptr;
  o.col_zb = zb.data();
  o.col_scale = col_scale.empty() ? nullptr : col_scale.data();
  o.out_zero_point = p.out_zero_point;
  o.relu = p.activation == Activation::kRelu;
  if (residual != nullptr) {
    o.res = residual->view.data;
    o.res_dtype = residual->view.dtype;
    o.res_row_stride = residual->view.row_stride;
    o.res_col_stride = residual->view.col_stride;
    o.res_scale = residual->scale;
    o.res_zero_point = residual->zero_point;
  }

  // s32 output, unit column stride: the route's fused last-slice kernel writes the output itself.
  const bool fused_s32 = rt.ukernel_s32_out != nullptr && out.dtype == DType::kS32 && out.col_stride == 1;
  const bool sliced = kw > rt.kc_words;  // several K slices: accumulators live in scratch between them
  const int threads = serial ? 1 : get_num_threads();
  // Compute blocks of at most mc_panels x nc_panels tiles, evened out and made a multiple of the
  // thread count where the problem allows: with the route's blocks as they are, M = 128 on 2
  // threads is one block of 8 row panels and one of 3 (one thread idle 5/11 of the time).
  //
  // Column tasks (whenever every thread can get a B panel: n_panels >= threads): a compute task
  // owns a column block over all of M and packs its own B block first, so the block is read
  // by the microkernel from L2 right after packing (a B packed for the whole call up front is
  // 2.4 MB at K = 768, N = 3072 and comes back from L3), the column sums fold into the task's
  // own columns, and the threads split N with no shared B block. A panels are packed on first
  // use by whichever task needs them (a_state below), so no task waits for a packing phase
  // to end: on a shared, oversubscribed machine a thread descheduled during the packing phase
  // stalled the whole call (2 threads at 512^3 ran slower than 1). With several threads there
  // are about kTasksPerThread column tasks per thread, so a descheduled thread holds back
  // little work. Otherwise (N narrower than the threads) B and A are packed up front by pack
  // tasks and the compute tasks split M as well.
  constexpr int64_t kTasksPerThread = 4;
  const bool column_tasks = n_panels >= threads;
  int64_t m_blocks = (m_panels + rt.mc_panels - 1) / rt.mc_panels;
  int64_t n_blocks = (n_panels + rt.nc_panels - 1) / rt.nc_panels;
  if (threads > 1) {
    if (column_tasks) n_blocks = std::max(n_blocks, std::min(n_panels, kTasksPerThread * threads));
    const int64_t m_split = column_tasks ? 1 : m_blocks;  // blocks that become separate tasks
    while ((m_split * n_blocks) % threads != 0 && n_blocks < n_panels) ++n_blocks;
    if (!column_tasks)
      while ((m_blocks * n_blocks) % threads != 0 && m_blocks < m_panels) ++m_blocks;
  }
  const int64_t mc_panels = (m_panels + m_blocks - 1) / m_blocks;
  const int64_t nc_panels = (n_panels + n_blocks - 1) / n_blocks;
  m_blocks = (m_panels + mc_panels - 1) / mc_panels;
  n_blocks = (n_panels + nc_panels - 1) / nc_panels;
  thread_local Workspace ws;
  // B panels (nr * 4 = 64 or 128 bytes per K word) start 64-byte aligned: the kernels use
  // aligned vector loads on them. Column tasks pack their B block into their thread's own
  // block-sized buffer, reused task after task, so it stays in L2 (packing into a call-wide B
  // buffer wrote 2.4 MB at K = 768, N = 3072, every line fetched from L3 before being written).
  const int64_t a_bytes = (m_panels * a_panel + 63) / 64 * 64;
  const int64_t b_bytes = (column_tasks ? threads * nc_panels : n_panels) * b_panel;
  char* packed_a = static_cast<char*>(ws.packed.grow(std::max<size_t>(static_cast<size_t>(a_bytes + b_bytes), 64)));
  char* packed_b = packed_a + a_bytes;
  const size_t block_elems = static_cast<size_t>(mc_panels * nc_panels * mr * nr);
  int32_t* scratch = sliced ? static_cast<int32_t*>(ws.scratch.grow(block_elems * threads * sizeof(int32_t)))
                            : nullptr;

  // Without column tasks, one pool job packs and computes: tasks [0, pack_tasks) pack (A
  // panels, then B in groups of kPackGroup panels, so rows of B are read in long contiguous
  // runs), the rest compute. Tasks are handed out in increasing order, so every pack task is
  // running or done before any compute task starts; a compute task waits for `packed` to reach
  // pack_tasks. (One job instead of two saves a pool hand-off and its join per call.)
  constexpr int64_t kPackGroup = 8;
  const int64_t pack_tasks = column_tasks ? 0 : m_panels + (n_panels + kPackGroup - 1) / kPackGroup;
  const int64_t compute_tasks = column_tasks ? n_blocks : m_blocks * n_blocks;
  std::atomic<int64_t> packed{0};

  auto pack_a_panel = [&](int64_t ip) {
    const int64_t i0 = ip * mr;
    rt.pack_a(a, i0, static_cast<int>(std::min(mr, m - i0)), p.a_zero_point, kw, packed_a + ip * a_panel,
              row_term ? rowsum.data() + i0 : nullptr);
  };
  // Column tasks: A panel state, 0 = not packed, 1 = being packed, 2 = packed.
  std::unique_ptr<std::atomic<int32_t>[]> a_state;
  if (column_tasks) {
    a_state.reset(new std::atomic<int32_t>[static_cast<size_t>(m_panels)]);
    for (int64_t ip = 0; ip < m_panels; ++ip) a_state[ip].store(0, std::memory_order_relaxed);
  }
  // Makes A panels [ip0, ip1) ready: first packs every one no other thread has claimed, then
  // waits for those another thread is packing (threads arriving together split the work).
  auto ensure_a_panels = [&](int64_t ip0, int64_t ip1) {
    for (int64_t ip = ip0; ip < ip1; ++ip) {
      int32_t expected = 0;
      if (a_state[ip].load(std::memory_order_acquire) != 0 ||
          !a_state[ip].compare_exchange_strong(expected, 1, std::memory_order_acq_rel))
        continue;
      // Marked packed even if packing throws: no task may wait forever (parallel_for rethrows
      // the exception once every task has stopped).
      struct Done {
        std::atomic<int32_t>& s;
        ~Done() { s.store(2, std::memory_order_release); }
      } done{a_state[ip]};
      pack_a_panel(ip);
    }
    for (int64_t ip = ip0; ip < ip1; ++ip)
      for (int spin = 0; a_state[ip].load(std::memory_order_acquire) != 2; ++spin) {
        if (spin < 4096) cpu_relax();
        else std::this_thread::yield();
      }
  };

  // Columns [jp0, jp1) of panels: packed B (at dst) and their column terms in col_add.
  auto pack_b_panels = [&](int64_t jp0, int64_t jp1, char* dst) {
    const int64_t j0 = jp0 * nr, cols = std::min(jp1 * nr, n) - j0;
    rt.pack_b(b, j0, static_cast<int>(cols), zb.data() + j0, kw, dst,
              col_term ? colsum.data() + j0 : nullptr);
    if (rt.folds_zero_points) fold_columns(j0, j0 + cols);
  };

  parallel_for(
      pack_tasks + compute_tasks,
      [&](int64_t t, int thread) {
        if (t < pack_tasks) {
          // Counted even if packing throws: no compute task may wait forever (the exception
          // is rethrown by parallel_for once every task has stopped).
          struct Done {
            std::atomic<int64_t>& n;
            ~Done() { n.fetch_add(1, std::memory_order_release); }
          } done{packed};
          if (t < m_panels) {
            pack_a_panel(t);
          } else {
            const int64_t q = (t - m_panels) * kPackGroup;
            pack_b_panels(q, std::min(n_panels, q + kPackGroup), packed_b + q * b_panel);
          }
          return;
        }
        const int64_t task = t - pack_tasks;
        // Consecutive tasks share a B block (same column block, next row block).
        const int64_t nb = column_tasks ? task : task / m_blocks;
        const int64_t jp0 = nb * nc_panels, jp1 = std::min(n_panels, jp0 + nc_panels);
        char* b_block = packed_b + (column_tasks ? thread * nc_panels : jp0) * b_panel;
        if (column_tasks) pack_b_panels(jp0, jp1, b_block);
        // Spin briefly, then yield: on an oversubscribed machine the thread still packing may
        // be waiting for this very core (pure spinning measured 100x slower at 128^3 there).
        for (int spin = 0; packed.load(std::memory_order_acquire) < pack_tasks; ++spin) {
          if (spin < 4096) cpu_relax();
          else std::this_thread::yield();
        }
        alignas(64) int32_t local[kVnniMR * kVnniNR];
        int32_t* block = sliced ? scratch + block_elems * thread : nullptr;
        const int64_t mb0 = column_tasks ? 0 : task % m_blocks, mb1 = column_tasks ? m_blocks : mb0 + 1;
        for (int64_t mb = mb0; mb < mb1; ++mb) {
          const int64_t ip0 = mb * mc_panels, ip1 = std::min(m_panels, ip0 + mc_panels);
          if (column_tasks) ensure_a_panels(ip0, ip1);
          int64_t pc = 0;
          do {
            const int64_t kc = std::min(rt.kc_words, kw - pc);
            const bool last = pc + kc >= kw;
            for (int64_t jp = jp0; jp < jp1; ++jp) {
              const char* bp = b_block + (jp - jp0) * b_panel + pc * nr * 4;
              const int64_t j0 = jp * nr;
              const int nr_valid = static_cast<int>(std::min(nr, n - j0));
              for (int64_t ip = ip0; ip < ip1; ++ip) {
                int32_t* tile = sliced ? block + ((jp - jp0) * mc_panels + (ip - ip0)) * mr * nr : local;
                const char* ap = packed_a + ip * a_panel + pc * mr * 4;
                const int64_t i0 = ip * mr;
                const int mr_valid = static_cast<int>(std::min(mr, m - i0));
                if (last && fused_s32) {
                  rt.ukernel_s32_out(kc, ap, bp, pc > 0 ? tile : nullptr, mr_valid, nr_valid, i0, j0, o);
                  continue;
                }
                rt.ukernel(kc, ap, bp, tile, pc > 0);
                if (last) rt.output(tile, static_cast<int>(nr), mr_valid, nr_valid, i0, j0, o);
              }
            }
            pc += kc;
          } while (pc < kw);
        }
      },
      threads);  // never more workers than scratch blocks, even if set_num_threads() races

  if (ws.packed.size() > kKeepBytes) ws.packed.release();
  if (ws.scratch.size() > kKeepBytes) ws.scratch.release();
}

}  // namespace aicc::cpu
