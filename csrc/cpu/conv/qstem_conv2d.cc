// Driver of the direct INT8 stem (design: qstem_conv2d.h, docs/CONV.md "INT8 stem"): the padded
// u8 image, the quads and packed weights, the zero-point folding, threads and the output stage;
// the tile kernel is the registry's (qstem_conv2d_avx512vnni.cc).
#include "cpu/conv/qstem_conv2d.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/thread_pool.h"
#include "cpu/config/registry.h"
#include "cpu/conv/smallc_conv2d.h"

namespace aicc::cpu {

const QStemOps* qstem_ops() { return registry::select(registry::families().smallc_int8).impl; }

bool qstem_eligible(const Conv2dDesc& d) { return smallc_eligible(d); }

namespace {

using qgemm_detail::OutputStage;

// Most pixels a tile computes (mr <= 12): the image is this much wider than Q needs, so a tile
// past the end of an output row reads the margin, never past the image.
constexpr int64_t kMaxTilePixels = 12;
// Bytes after the image: a quad of a run's last bytes reads up to 3 bytes past the run.
constexpr int64_t kTailBytes = 64;

struct Geometry {
  int64_t cols, hp_rows, row_bytes, image_bytes;
  explicit Geometry(const Conv2dDesc& d) {
    cols = (d.q() + kMaxTilePixels - 1) * d.stride_w + (d.s - 1) * d.dilation_w + 1;
    hp_rows = (d.p() - 1) * d.stride_h + (d.r - 1) * d.dilation_h + 1;
    row_bytes = cols * d.c;
    image_bytes = hp_rows * row_bytes;
  }
};

// The quads of one output pixel's taps: byte offset from the pixel's first tap, and which tap
// (k-independent index (r*S + s)*C + c into an NHWC filter) each of its 4 bytes is, or -1.
struct Quads {
  std::vector<int32_t> off;
  std::vector<int32_t> tap;  // 4 per quad
  // Contiguous byte runs of the taps (offset, length): the row sums read these.
  std::vector<std::pair<int64_t, int64_t>> runs;
};

Quads make_quads(const Conv2dDesc& d, const Geometry& g) {
  Quads qd;
  const int64_t C = d.c, S = d.s;
  auto add_run = [&](int64_t offset, int64_t first_tap, int64_t len) {
    qd.runs.emplace_back(offset, len);
    for (int64_t b0 = 0; b0 < len; b0 += 4) {
      qd.off.push_back(static_cast<int32_t>(offset + b0));
      for (int64_t b = b0; b < b0 + 4; ++b) qd.tap.push_back(b < len ? static_cast<int32_t>(first_tap + b) : -1);
    }
  };
  for (int64_t r = 0; r < d.r; ++r) {
    const int64_t row = r * d.dilation_h * g.row_bytes;
    if (d.dilation_w == 1) {
      add_run(row, r * S * C, S * C);  // the S taps of the filter row: S*C contiguous bytes
    } else {
      for (int64_t s = 0; s < S; ++s) add_run(row + s * d.dilation_w * C, (r * S + s) * C, C);
    }
  }
  return qd;
}

// dst[i*C + c] = src[c*plane + i] ^ flip: C planar rows into one interleaved (NHWC) row.
template <int C>
void interleave(const uint8_t* src, int64_t plane, int64_t width, uint8_t flip, uint8_t* dst) {
  for (int64_t i = 0; i < width; ++i)
    for (int c = 0; c < C; ++c) dst[i * C + c] = src[c * plane + i] ^ flip;
}

// Image n padded with the zero point, as u8 (s8 inputs flipped to u8: x + 128), NHWC:
// img[(hp*cols + col)*C + c] = x'[n, hp - pad_top, col - pad_left, c], pad outside the input.
// Rows [hp0, hp1). NCHW inputs are interleaved into the same layout.
void fill_rows(const Conv2dDesc& d, const TensorView& x, const Geometry& g, int64_t n, int64_t hp0, int64_t hp1,
               uint8_t pad, uint8_t flip, uint8_t* img) {
  const int64_t C = d.c, H = d.h, W = d.w;
  const uint8_t* xb = static_cast<const uint8_t*>(x.data);
  const int64_t w0 = std::max<int64_t>(0, -d.pad_left), w1 = std::min<int64_t>(W, g.cols - d.pad_left);
  for (int64_t hp = hp0; hp < hp1; ++hp) {
    uint8_t* row = img + hp * g.row_bytes;
    const int64_t h = hp - d.pad_top;
    if (h < 0 || h >= H || w1 <= w0) {
      std::memset(row, pad, static_cast<size_t>(g.row_bytes));
      continue;
    }
    const int64_t lo = (w0 + d.pad_left) * C, hi = (w1 + d.pad_left) * C;
    std::memset(row, pad, static_cast<size_t>(lo));
    std::memset(row + hi, pad, static_cast<size_t>(g.row_bytes - hi));
    uint8_t* dst = row + lo;
    if (d.layout == Layout::kNHWC) {
      const uint8_t* src = xb + ((n * H + h) * W + w0) * C;
      for (int64_t i = 0; i < hi - lo; ++i) dst[i] = src[i] ^ flip;
    } else {
      const uint8_t* src = xb + (n * C * H + h) * W + w0;  // channel c's row at src + c * H * W
      switch (C) {  // pixel by pixel with C fixed: a channel at a time stored bytes 3 apart (4x slower)
        case 1: interleave<1>(src, H * W, w1 - w0, flip, dst); break;
        case 2: interleave<2>(src, H * W, w1 - w0, flip, dst); break;
        case 3: interleave<3>(src, H * W, w1 - w0, flip, dst); break;
        default: interleave<4>(src, H * W, w1 - w0, flip, dst); break;
      }
    }
  }
}

// NCHW: the finished NHWC row buffer [Q][K] (element size es) into out[n, :, p, :].
void store_nchw_row(const QStemOps& ops, const char* buf, int64_t Q, int64_t K, int64_t es, char* out_np,
                    int64_t plane) {
  if (es == 1) {  // u8 / s8: the ISA's block transpose
    ops.transpose_u8(reinterpret_cast<const uint8_t*>(buf), K, Q, K, reinterpret_cast<uint8_t*>(out_np), plane);
    return;
  }
  const uint32_t* src = reinterpret_cast<const uint32_t*>(buf);  // s32 / f32: moved as bits
  for (int64_t k = 0; k < K; ++k) {
    uint32_t* dst = reinterpret_cast<uint32_t*>(out_np) + k * plane;
    for (int64_t q = 0; q < Q; ++q) dst[q] = src[q * K + k];
  }
}


}  // namespace

int64_t qstem_workspace_bytes(const QStemOps& ops, const Conv2dDesc& d) {
  const Geometry g(d);
  const Quads qd = make_quads(d, g);
  const std::vector<ColumnBlock> blocks = column_blocks(ops, d.k);
  const int64_t kp = blocks.back().j0 + static_cast<int64_t>(blocks.back().nv) * ops.vl;
  const int64_t quads = static_cast<int64_t>(qd.off.size());
  int64_t per_thread = d.q() * 4;  // row sums
  if (d.layout == Layout::kNCHW) per_thread += d.q() * d.k * (4 + 1);
  return g.image_bytes + kTailBytes + quads * kp * 4 + kp * 4 * 3 + per_thread * get_num_threads();
}

void qstem_qconv2d(const QStemOps& ops, const Conv2dDesc& d, const TensorView& x, const TensorView& w,
                   const QGemmParams& p, const TensorView& out, const QResidual* residual) {
  const int64_t C = d.c, K = d.k, P = d.p(), Q = d.q(), T = d.r * d.s * C;
  const Geometry g(d);
  const Quads qd = make_quads(d, g);
  const int64_t quads = static_cast<int64_t>(qd.off.size());
  const std::vector<ColumnBlock> blocks = column_blocks(ops, K);
  const int64_t kp = blocks.back().j0 + static_cast<int64_t>(blocks.back().nv) * ops.vl;

  // The u8 domain of vpdpbusd: s8 x and its zero point shifted by +128 (x ^ 0x80).
  const uint8_t flip = x.dtype == DType::kS8 ? 0x80 : 0x00;
  const uint32_t zx = static_cast<uint32_t>(p.a_zero_point + (x.dtype == DType::kS8 ? 128 : 0));
  const uint8_t pad = static_cast<uint8_t>(zx);

  // Weights, per column block of bw = nv*vl channels: wq[j0*quads*4 + (t*bw + j)*4 + b] = the
  // weight of quad t's byte b for channel j0 + j (0 for bytes past a run and channels past K).
  // The filter is [K, C, R, S] (NCHW) or [K, R, S, C] (NHWC); tap index (r*S + s)*C + c.
  const int8_t* wq_in = static_cast<const int8_t*>(w.data);
  const auto weight = [&](int64_t k, int64_t tap) -> int8_t {
    if (d.layout == Layout::kNHWC) return wq_in[k * T + tap];
    const int64_t c = tap % C, rs = tap / C;
    return wq_in[(k * C + c) * d.r * d.s + rs];
  };
  std::vector<int8_t> wp(static_cast<size_t>(quads * kp * 4), 0);
  std::vector<int32_t> colsum(static_cast<size_t>(kp), 0), zb(static_cast<size_t>(kp), 0),
      col_add(static_cast<size_t>(kp), 0);
  std::vector<float> col_scale;
  for (const ColumnBlock& b : blocks) {
    const int64_t bw = static_cast<int64_t>(b.nv) * ops.vl;
    int8_t* dst = wp.data() + b.j0 * quads * 4;
    for (int64_t j = 0; j < std::min(bw, K - b.j0); ++j)
      for (int64_t t = 0; t < quads; ++t)
        for (int bb = 0; bb < 4; ++bb) {
          const int32_t tap = qd.tap[t * 4 + bb];
          if (tap >= 0) dst[(t * bw + j) * 4 + bb] = weight(b.j0 + j, tap);
        }
  }
  bool row_term = false;
  for (int64_t k = 0; k < K; ++k) {
    int32_t s = 0;
    for (int64_t tap = 0; tap < T; ++tap) s += weight(k, tap);
    colsum[k] = s;
    zb[k] = p.b_zero_point ? p.b_zero_point[p.b_zero_point_len == 1 ? 0 : k] : 0;
    row_term = row_term || zb[k] != 0;
    // bias - zx' colsum + T zx' zw, modulo 2^32 (the sum fits int32; the parts may not).
    col_add[k] = static_cast<int32_t>(static_cast<uint32_t>(p.bias ? p.bias[k] : 0) - zx * static_cast<uint32_t>(s) +
                                      static_cast<uint32_t>(T) * zx * static_cast<uint32_t>(zb[k]));
  }
  if (p.scale != nullptr) {
    col_scale.assign(static_cast<size_t>(kp), 0.0f);
    for (int64_t k = 0; k < K; ++k) col_scale[k] = p.scale[p.scale_len == 1 ? 0 : k];
  }

  OutputStage base;
  base.dtype = out.dtype;
  base.col_stride = 1;
  base.row_stride = K;
  base.col_add = col_add.data();
  base.col_zb = zb.data();
  base.col_scale = col_scale.empty() ? nullptr : col_scale.data();
  base.out_zero_point = p.out_zero_point;
  base.relu = p.activation == Activation::kRelu;
  if (residual != nullptr) {
    base.res_dtype = residual->view.dtype;
    base.res_row_stride = K;
    base.res_col_stride = 1;
    base.res_scale = residual->scale;
    base.res_zero_point = residual->zero_point;
  }
  const bool nchw = d.layout == Layout::kNCHW;
  const int64_t es = static_cast<int64_t>(dtype_size(out.dtype));
  const int64_t step = d.stride_w * C;

  std::vector<uint8_t> img(static_cast<size_t>(g.image_bytes + kTailBytes), pad);
  const double macs = static_cast<double>(d.n * P * Q) * static_cast<double>(K * T);
  const int threads = macs < 5.0e5 ? 1 : 0;
  const int64_t fill_block = std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(g.row_bytes, 1));
  for (int64_t n = 0; n < d.n; ++n) {
    // Image n, padded once: each input row serves about R / stride_h output rows.
    parallel_for(
        (g.hp_rows + fill_block - 1) / fill_block,
        [&](int64_t task, int) {
          const int64_t hp0 = task * fill_block, hp1 = std::min(g.hp_rows, hp0 + fill_block);
          fill_rows(d, x, g, n, hp0, hp1, pad, flip, img.data());
        },
        threads);
    parallel_for(
        P,
        [&](int64_t pp, int) {
          thread_local std::vector<int32_t> rowsum;
          thread_local std::vector<char> obuf, rbuf;
          const uint8_t* slab = img.data() + pp * d.stride_h * g.row_bytes;
          OutputStage o = base;
          if (row_term) {  // sum of the pixel's real taps (x', padding included: zx' there)
            rowsum.resize(static_cast<size_t>(Q));
            for (int64_t q = 0; q < Q; ++q) {
              const uint8_t* a = slab + q * step;
              int32_t s = 0;
              for (const auto& run : qd.runs)
                for (int64_t i = 0; i < run.second; ++i) s += a[run.first + i];
              rowsum[q] = s;
            }
            o.row_sum = rowsum.data();
          }
          const int64_t pix0 = (n * P + pp) * Q;  // first output pixel of the row
          if (nchw) {
            obuf.resize(static_cast<size_t>(Q * K * es));
            o.data = obuf.data();
            if (residual != nullptr) {
              rbuf.resize(static_cast<size_t>(Q * K));
              // res[n, :, p, :] gathered into the NHWC row order [Q][K].
              ops.transpose_u8(static_cast<const uint8_t*>(residual->view.data) + n * K * P * Q + pp * Q, P * Q, K, Q,
                               reinterpret_cast<uint8_t*>(rbuf.data()), K);
              o.res = rbuf.data();
            }
          } else {
            o.data = static_cast<char*>(out.data) + pix0 * K * es;
            if (residual != nullptr) o.res = static_cast<const char*>(residual->view.data) + pix0 * K;
          }
          for (const ColumnBlock& b : blocks) {
            const int64_t bw = static_cast<int64_t>(b.nv) * ops.vl;
            const int mr = ops.mr(b.nv);
            const int ncols = static_cast<int>(std::min(bw, K - b.j0));
            const int8_t* wb = wp.data() + b.j0 * quads * 4;
            for (int64_t q0 = 0; q0 < Q; q0 += mr) {
              const int rows = static_cast<int>(std::min<int64_t>(mr, Q - q0));
              ops.tile(b.nv, slab + q0 * step, step, qd.off.data(), quads, wb, rows, ncols, q0, b.j0, o);
            }
          }
          if (nchw)
            store_nchw_row(ops, obuf.data(), Q, K, es, static_cast<char*>(out.data) + (n * K * P + pp) * Q * es, P * Q);
        },
        threads);
  }
}

}  // namespace aicc::cpu
