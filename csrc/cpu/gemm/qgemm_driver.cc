// Quantized GEMM driver: packing, blocking and threads around the int16 vpmaddwd microkernel
// (design and layouts: qgemm_internal.h, docs/INT8_DESIGN.md).
//
//   1. Pack A (kMR-row panels) and B (kNR-column panels) once, over all of K, widening to int16
//      with the zero points subtracted; panels are packed in parallel.
//   2. The output is cut into kMC x kNC blocks, one task each (threads split M and N, never K,
//      so every element is computed by the same operations whatever the thread count).
//      Inside a block: K in slices of kKC pairs (a B micro-panel slice stays in L1, the A block
//      slice in L2); for each kNR panel, for each kMR panel, one microkernel call; after the
//      last K slice the output stage writes the tile straight from the int32 accumulators.
#include <algorithm>
#include <vector>

#include "aicc/gemm.h"
#include "common/cpu_features.h"
#include "common/thread_pool.h"
#include "cpu/gemm/gemm_checks.h"
#include "cpu/gemm/qgemm_internal.h"

namespace aicc::cpu {
namespace {

using namespace qgemm_detail;

// Block sizes, in panels / K-pairs (chosen by measurement, docs/INT8_DESIGN.md).
constexpr int64_t kMCPanels = 16;   // 96 rows: the A block slice is 96 x 2*kKC int16 = 96 KiB
constexpr int64_t kNCPanels = 16;   // 256 columns per task
constexpr int64_t kKC = 256;        // K pairs per slice: a B micro-panel slice is 16 KiB
// Below this many multiply-adds a call runs on the calling thread only (thread hand-off
// would cost more than it saves).
constexpr int64_t kSerialMacs = int64_t{1} << 22;

struct KernelSet {
  void (*ukernel)(int64_t, const int16_t*, const int16_t*, int32_t*, bool);
  void (*pack_a)(const MatrixView&, int64_t, int, int32_t, int64_t, int16_t*);
  void (*pack_b)(const MatrixView&, int64_t, int, const int32_t*, int64_t, int16_t*);
  void (*output)(const int32_t*, int, int, int64_t, int64_t, const OutputStage&);
};

KernelSet kernels_for(Isa isa) {
#if defined(AICC_X86)
  if (isa >= Isa::kAvx2) return {ukernel_s16_6x16_avx2, pack_a_avx2, pack_b_avx2, output_avx2};
#endif
  (void)isa;
  return {ukernel_s16_6x16_portable, pack_a_portable, pack_b_portable, output_portable};
}

// Per calling thread: the packed operands and the accumulator scratch of every worker.
// Kept between calls (no page faults on repeated calls of one size); dropped when large.
struct Workspace {
  AlignedBuffer packed;
  AlignedBuffer scratch;
};
constexpr size_t kKeepBytes = size_t{64} << 20;

}  // namespace

void qgemm(const MatrixView& a, const MatrixView& b, const MatrixView& out, const QGemmParams& p) {
  check_qgemm_args(a, b, out, p);
  const int64_t m = out.rows, n = out.cols, k = a.cols;
  if (m == 0 || n == 0) return;

  OutputStage o;
  o.dtype = out.dtype;
  o.data = out.data;
  o.row_stride = out.row_stride;
  o.col_stride = out.col_stride;
  o.scale = p.scale;
  o.scale_per_column = p.scale != nullptr && p.scale_len != 1;
  o.bias = p.bias;
  o.out_zero_point = p.out_zero_point;
  o.relu = p.activation == Activation::kRelu;

  const KernelSet ks = kernels_for(active_isa());
  const int64_t kp = (k + 1) / 2;
  const int64_t m_panels = (m + kMR - 1) / kMR, n_panels = (n + kNR - 1) / kNR;
  const int64_t a_panel = kp * kMR * 2, b_panel = kp * kNR * 2;  // int16 elements

  // Zero point of every packed column (padding columns get 0; they are never written out).
  std::vector<int32_t> zb(static_cast<size_t>(n_panels * kNR), 0);
  if (p.b_zero_point != nullptr)
    for (int64_t j = 0; j < n; ++j) zb[j] = p.b_zero_point[p.b_zero_point_len == 1 ? 0 : j];

  const bool serial = m * n * std::max<int64_t>(k, 1) < kSerialMacs;
  const int max_threads = serial ? 1 : 0;

  thread_local Workspace ws;
  // B panels (64 * kp bytes each) start on a 64-byte boundary: the kernels use aligned loads.
  const int64_t a_elems = (m_panels * a_panel + 31) / 32 * 32;
  const size_t packed_bytes = static_cast<size_t>(a_elems + n_panels * b_panel) * sizeof(int16_t);
  int16_t* packed_a = static_cast<int16_t*>(ws.packed.grow(std::max<size_t>(packed_bytes, 64)));
  int16_t* packed_b = packed_a + a_elems;

  parallel_for(
      m_panels + n_panels,
      [&](int64_t t, int) {
        if (t < m_panels) {
          const int64_t i0 = t * kMR;
          ks.pack_a(a, i0, static_cast<int>(std::min<int64_t>(kMR, m - i0)), p.a_zero_point, kp,
                    packed_a + t * a_panel);
        } else {
          const int64_t q = t - m_panels, j0 = q * kNR;
          ks.pack_b(b, j0, static_cast<int>(std::min<int64_t>(kNR, n - j0)), zb.data() + j0, kp,
                    packed_b + q * b_panel);
        }
      },
      max_threads);

  const int64_t m_blocks = (m_panels + kMCPanels - 1) / kMCPanels;
  const int64_t n_blocks = (n_panels + kNCPanels - 1) / kNCPanels;
  const bool sliced = kp > kKC;  // several K slices: accumulators live in scratch between them
  const int threads = serial ? 1 : get_num_threads();
  const size_t tile_elems = static_cast<size_t>(kMCPanels * kNCPanels) * kMR * kNR;
  int32_t* scratch = sliced ? static_cast<int32_t*>(ws.scratch.grow(tile_elems * threads * sizeof(int32_t)))
                            : nullptr;

  parallel_for(
      m_blocks * n_blocks,
      [&](int64_t task, int thread) {
        // Consecutive tasks share a B block (same column block, next row block).
        const int64_t nb = task / m_blocks, mb = task % m_blocks;
        const int64_t ip0 = mb * kMCPanels, ip1 = std::min(m_panels, ip0 + kMCPanels);
        const int64_t jp0 = nb * kNCPanels, jp1 = std::min(n_panels, jp0 + kNCPanels);
        alignas(64) int32_t local[kMR * kNR];
        int32_t* block = sliced ? scratch + tile_elems * thread : nullptr;
        for (int64_t pc = 0; pc < kp || pc == 0; pc += kKC) {
          const int64_t kc = std::min(kKC, kp - pc);
          const bool last = pc + kc >= kp;
          for (int64_t jp = jp0; jp < jp1; ++jp) {
            const int16_t* bp = packed_b + jp * b_panel + pc * kNR * 2;
            const int64_t j0 = jp * kNR;
            const int nr = static_cast<int>(std::min<int64_t>(kNR, n - j0));
            for (int64_t ip = ip0; ip < ip1; ++ip) {
              int32_t* tile = sliced ? block + ((jp - jp0) * kMCPanels + (ip - ip0)) * kMR * kNR : local;
              ks.ukernel(kc, packed_a + ip * a_panel + pc * kMR * 2, bp, tile, pc > 0);
              if (last) {
                const int64_t i0 = ip * kMR;
                ks.output(tile, static_cast<int>(std::min<int64_t>(kMR, m - i0)), nr, i0, j0, o);
              }
            }
          }
          if (kp == 0) break;
        }
      },
      max_threads);

  if (ws.packed.size() > kKeepBytes) ws.packed.release();
  if (ws.scratch.size() > kKeepBytes) ws.scratch.release();
}

}  // namespace aicc::cpu
