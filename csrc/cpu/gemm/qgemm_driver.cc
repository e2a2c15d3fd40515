// aicc::cpu::qgemm on the shared GEMM driver (gemm_driver.h): the strided u8/s8 matrix packers
// of the INT8 words and the output stage (zero points, bias, scales, requantization, relu,
// residual) as the driver's INT8 epilogue. Blocking, threading, partial sums and the zero-point
// folding are the driver's; the kernels, packers and output stages are the registry entry's
// (csrc/cpu/config/, design: docs/INT8_DESIGN.md).
#include <algorithm>
#include <vector>

#include "aicc/gemm.h"
#include "common/thread_pool.h"
#include "cpu/config/registry.h"
#include "cpu/gemm/gemm_checks.h"
#include "cpu/gemm/gemm_driver.h"
#include "cpu/gemm/qgemm_internal.h"

namespace aicc::cpu {
namespace {

using gemm_internal::GemmConfig;

// The view of columns [p0, p0 + kc) of a (A's depth block) or rows [p0, p0 + kc) of b (B's).
MatrixView depth_block_a(const MatrixView& a, int64_t p0, int64_t kc) {
  MatrixView v = a;
  v.data = static_cast<char*>(a.data) + p0 * a.col_stride;  // bytes: u8/s8 elements
  v.cols = kc;
  return v;
}
MatrixView depth_block_b(const MatrixView& b, int64_t p0, int64_t kc) {
  MatrixView v = b;
  v.data = static_cast<char*>(b.data) + p0 * b.row_stride;
  v.rows = kc;
  return v;
}

// A strided u8/s8 A into the entry's INT8 words, one mr-row panel at a time; raw-byte words sum
// the rows while packing (the AVX-512 packer with vpsadbw on the bytes it transposes).
class QMatrixAPacker final : public gemm_internal::APacker {
 public:
  QMatrixAPacker(const MatrixView& a, int32_t za) : a_(a), za_(za) {}
  DType dtype() const override { return a_.dtype; }
  void pack(const GemmConfig& cfg, int64_t i0, int64_t mc, int64_t p0, int64_t kc, void* dst) const override {
    pack_with_sums(cfg, i0, mc, p0, kc, dst, nullptr);
  }
  void pack_with_sums(const GemmConfig& cfg, int64_t i0, int64_t mc, int64_t p0, int64_t kc, void* dst,
                      int32_t* row_sums) const override {
    const MatrixView v = depth_block_a(a_, p0, kc);
    const int64_t kw = gemm_internal::panel_words(kc, cfg.word);
    for (int64_t r = 0; r < mc; r += cfg.mr)
      cfg.int8->pack_a(v, i0 + r, static_cast<int>(std::min<int64_t>(cfg.mr, mc - r)), za_, kw,
                       static_cast<char*>(dst) + r * kw * 4, row_sums ? row_sums + r : nullptr);
  }

 private:
  MatrixView a_;
  int32_t za_;
};

// A strided s8 B into nr-column panels; zb: the zero point of every column (padded to whole
// panels), subtracted while packing by the int16 words.
class QMatrixBPacker final : public gemm_internal::BPacker {
 public:
  QMatrixBPacker(const MatrixView& b, const int32_t* zb) : b_(b), zb_(zb) {}
  DType dtype() const override { return b_.dtype; }
  void pack(const GemmConfig& cfg, int64_t p0, int64_t kc, int64_t j0, int64_t nc, void* dst) const override {
    pack_with_sums(cfg, p0, kc, j0, nc, dst, nullptr);
  }
  void pack_with_sums(const GemmConfig& cfg, int64_t p0, int64_t kc, int64_t j0, int64_t nc, void* dst,
                      int32_t* col_sums) const override {
    const int64_t kw = gemm_internal::panel_words(kc, cfg.word);
    cfg.int8->pack_b(depth_block_b(b_, p0, kc), j0, static_cast<int>(nc), zb_ + j0, kw, dst, col_sums);
  }

 private:
  MatrixView b_;
  const int32_t* zb_;
};

}  // namespace

void qgemm(const MatrixView& a, const MatrixView& b, const MatrixView& out, const QGemmParams& p) {
  qgemm_detail::qgemm_with_route(a, b, out, p, *registry::select(registry::families().int8_gemm).impl);
}

void qgemm(const MatrixView& a, const MatrixView& b, const MatrixView& out, const QGemmParams& p,
           const QResidual* residual) {
  qgemm_detail::qgemm_with_route(a, b, out, p, *registry::select(registry::families().int8_gemm).impl, residual);
}

void qgemm_detail::qgemm_with_route(const MatrixView& a, const MatrixView& b, const MatrixView& out,
                                    const QGemmParams& p, const GemmConfig& cfg, const QResidual* residual) {
  check_qgemm_args(a, b, out, p);
  check_qresidual(out, residual);
  gemm_internal::run_qgemm(out.rows, QMatrixAPacker(a, p.a_zero_point), b, out, p, residual, cfg);
}

void gemm_internal::run_qgemm(int64_t m, const APacker& a, const MatrixView& b, const MatrixView& out,
                              const QGemmParams& p, const QResidual* residual, const GemmConfig& cfg) {
  const int64_t n = out.cols, k = b.rows;
  if (m == 0 || n == 0) return;
  const int64_t n_pad = (n + cfg.nr - 1) / cfg.nr * cfg.nr;

  // Per-column operands of the output stage, padded to whole panels (vector loads).
  std::vector<int32_t> zb(static_cast<size_t>(n_pad), 0);
  if (p.b_zero_point != nullptr)
    for (int64_t j = 0; j < n; ++j) zb[j] = p.b_zero_point[p.b_zero_point_len == 1 ? 0 : j];
  std::vector<float> col_scale;
  if (p.scale != nullptr) {
    col_scale.assign(zb.size(), 0.0f);
    for (int64_t j = 0; j < n; ++j) col_scale[j] = p.scale[p.scale_len == 1 ? 0 : j];
  }
  std::vector<int32_t> bias;
  if (p.bias != nullptr) {
    bias.assign(zb.size(), 0);
    std::copy(p.bias, p.bias + n, bias.begin());
  }

  QuantEpilogue qe;
  qgemm_detail::OutputStage& o = qe.stage;
  o.dtype = out.dtype;
  o.data = out.data;
  o.row_stride = out.row_stride;
  o.col_stride = out.col_stride;
  o.col_add = bias.empty() ? nullptr : bias.data();
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
  // Raw-byte words: za' in the packed domain; the row term -zb[j] rowsum(a') only when some
  // zb is nonzero (the common per-tensor zb = 0 skips the row sums altogether).
  qe.a_zero_point = packed_a_zero_point(cfg.word, a.dtype(), p.a_zero_point);
  qe.row_term = std::any_of(zb.begin(), zb.end(), [](int32_t z) { return z != 0; });

  Epilogue ep;
  ep.out = out;
  ep.quant = &qe;
  run_float_gemm(m, n, k, a, QMatrixBPacker(b, zb.data()), ep, 0, &cfg);
}

}  // namespace aicc::cpu
