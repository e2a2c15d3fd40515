// Driver of the small-C direct conv (design: smallc_conv2d.h, docs/CONV.md "Stem"): the slab
// of each output row, the packed weights, threading and the epilogue; the tile kernel is the
// registry's (smallc_kernels_impl.h per ISA).
#include "cpu/conv/smallc_conv2d.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/half.h"
#include "common/thread_pool.h"
#include "cpu/config/registry.h"
#include "cpu/gemm/gemm_driver.h"

#define AICC_SMALLC_VL 4
#define AICC_SMALLC_ACC 12
#include "cpu/conv/smallc_kernels_impl.h"

namespace aicc::cpu {

const SmallCOps& smallc_ops() { return registry::select(registry::families().smallc).impl(); }
const SmallCOps& smallc_ops_portable() { return smallck::ops(); }

bool smallc_eligible(const Conv2dDesc& d) {
  const bool pointwise = d.r == 1 && d.s == 1 && d.stride_h == 1 && d.stride_w == 1 && d.pad_top == 0 &&
                         d.pad_bottom == 0 && d.pad_left == 0 && d.pad_right == 0;
  return d.groups == 1 && d.c >= 1 && d.c <= kSmallCMaxChannels && !pointwise;
}

namespace {

// Most pixels a tile of any entry computes (mr <= 12): the slab is this much wider than Q
// needs, so a tile past the end of an output row reads zeros, never past the slab.
constexpr int64_t kMaxTilePixels = 12;

// Slab width in pixels-columns: every column a tile of the row may read.
int64_t slab_cols(const Conv2dDesc& d) {
  return (d.q() + kMaxTilePixels - 1) * d.stride_w + (d.s - 1) * d.dilation_w + 1;
}

// Column blocks of the output channels: nv vectors each, the last one what is left.
struct ColumnBlock {
  int64_t j0;
  int nv;
};

std::vector<ColumnBlock> column_blocks(const SmallCOps& ops, int64_t k) {
  std::vector<ColumnBlock> blocks;
  for (int64_t j = 0; j < k;) {
    const int nv = static_cast<int>(std::min<int64_t>(ops.max_nv, (k - j + ops.vl - 1) / ops.vl));
    blocks.push_back({j, nv});
    j += static_cast<int64_t>(nv) * ops.vl;
  }
  return blocks;
}

float load_elem(const void* p, DType t, int64_t i) {
  switch (t) {
    case DType::kF16: return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::kBF16: return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
    default: return static_cast<const float*>(p)[i];
  }
}

template <DType T>
inline float to_f32(const void* p, int64_t i) {
  if constexpr (T == DType::kF32) {
    return static_cast<const float*>(p)[i];
  } else if constexpr (T == DType::kBF16) {
    const uint32_t bits = static_cast<uint32_t>(static_cast<const uint16_t*>(p)[i]) << 16;  // a shift: vectorizes
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  } else {
    return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
  }
}

// The slab of output row (n, p): slab[(r*cols + col)*C + c] = x[n, h_r, col - pad_left, c]
// (f32), zero where h_r or the column is outside the input.
template <DType T>
void fill_slab_t(const Conv2dDesc& d, const void* x, int64_t n, int64_t p, int64_t cols, float* slab) {
  const int64_t C = d.c, H = d.h, W = d.w;
  constexpr int64_t esize = T == DType::kF32 ? 4 : 2;
  const char* xb = static_cast<const char*>(x);
  // Input columns [w0, w1) land at slab columns [w0 + pad_left, w1 + pad_left).
  const int64_t w0 = std::max<int64_t>(0, -d.pad_left), w1 = std::min<int64_t>(W, cols - d.pad_left);
  for (int64_t r = 0; r < d.r; ++r) {
    float* row = slab + r * cols * C;
    const int64_t h = p * d.stride_h - d.pad_top + r * d.dilation_h;
    if (h < 0 || h >= H || w1 <= w0) {
      std::fill(row, row + cols * C, 0.0f);
      continue;
    }
    const int64_t lo = (w0 + d.pad_left) * C, hi = (w1 + d.pad_left) * C;
    std::fill(row, row + lo, 0.0f);
    std::fill(row + hi, row + cols * C, 0.0f);
    float* dst = row + lo;
    if (d.layout == Layout::kNHWC) {
      const void* src = xb + ((n * H + h) * W + w0) * C * esize;
      if constexpr (T == DType::kF32) std::memcpy(dst, src, (hi - lo) * sizeof(float));
      else for (int64_t i = 0; i < hi - lo; ++i) dst[i] = to_f32<T>(src, i);
    } else {
      // NCHW: C planes interleaved into pixels (C <= kSmallCMaxChannels).
      const char* plane0 = xb + ((n * C * H + h) * W + w0) * esize;
      const int64_t plane = H * W * esize;
      for (int64_t w = 0; w < w1 - w0; ++w)
        for (int64_t c = 0; c < C; ++c) dst[w * C + c] = to_f32<T>(plane0 + c * plane, w);
    }
  }
}

void fill_slab(const Conv2dDesc& d, const TensorView& x, int64_t n, int64_t p, int64_t cols, float* slab) {
  switch (x.dtype) {
    case DType::kF16: fill_slab_t<DType::kF16>(d, x.data, n, p, cols, slab); break;
    case DType::kBF16: fill_slab_t<DType::kBF16>(d, x.data, n, p, cols, slab); break;
    default: fill_slab_t<DType::kF32>(d, x.data, n, p, cols, slab); break;
  }
}

}  // namespace

int64_t smallc_workspace_bytes(const Conv2dDesc& d) {
  const SmallCOps& ops = smallc_ops();
  const int64_t depth = d.c * d.r * d.s;
  const int64_t kp = (d.k + ops.vl - 1) / ops.vl * ops.vl;
  const int64_t per_thread = d.r * slab_cols(d) * d.c + 2 * kMaxTilePixels * ops.max_nv * ops.vl;
  return (depth * kp + per_thread * get_num_threads()) * static_cast<int64_t>(sizeof(float)) +
         depth * static_cast<int64_t>(sizeof(int32_t));
}

void smallc_conv2d(const Conv2dDesc& d, const TensorView& x, const void* w, DType wdtype, const float* bias,
                   Activation activation, const TensorView& out) {
  const SmallCOps& ops = smallc_ops();
  const int64_t C = d.c, K = d.k, P = d.p(), Q = d.q(), R = d.r, S = d.s;
  const int64_t depth = C * R * S, cols = slab_cols(d);
  const std::vector<ColumnBlock> blocks = column_blocks(ops, K);

  // Weights, per column block of bw = nv*vl channels: wp[j0*depth + t*bw + j] = w[j0 + j][t]
  // with t = (r*S + s)*C + c (zero past K), f32.
  const int64_t kp = blocks.back().j0 + static_cast<int64_t>(blocks.back().nv) * ops.vl;
  std::vector<float> wp(static_cast<size_t>(depth * kp), 0.0f);
  for (const ColumnBlock& b : blocks) {
    const int64_t bw = static_cast<int64_t>(b.nv) * ops.vl;
    float* dst = wp.data() + b.j0 * depth;
    for (int64_t j = 0; j < std::min(bw, K - b.j0); ++j) {
      const int64_t k = b.j0 + j;
      for (int64_t r = 0; r < R; ++r)
        for (int64_t s = 0; s < S; ++s)
          for (int64_t c = 0; c < C; ++c) {
            // NHWC weights are [K, R, S, C], NCHW [K, C, R, S].
            const int64_t src = d.layout == Layout::kNHWC ? ((k * R + r) * S + s) * C + c : ((k * C + c) * R + r) * S + s;
            dst[((r * S + s) * C + c) * bw + j] = load_elem(w, wdtype, src);
          }
    }
  }
  std::vector<int32_t> off(static_cast<size_t>(depth));
  for (int64_t r = 0; r < R; ++r)
    for (int64_t s = 0; s < S; ++s)
      for (int64_t c = 0; c < C; ++c)
        off[(r * S + s) * C + c] = static_cast<int32_t>((r * cols + s * d.dilation_w) * C + c);

  gemm_internal::Epilogue ep;
  ep.bias = bias;
  ep.activation = activation;
  const bool nchw = d.layout == Layout::kNCHW;
  ep.bias_per_row = nchw;  // NCHW tiles are written transposed: rows are channels
  const gemm_internal::EpilogueFn epilogue = gemm_internal::float_gemm_config(DType::kF32, DType::kF32).epilogue;
  const int64_t esize = static_cast<int64_t>(dtype_size(out.dtype));
  const int64_t step = d.stride_w * C;
  // A plain f32 NHWC output takes full tiles straight from the kernel (1 * acc is acc).
  const bool direct = !nchw && bias == nullptr && activation == Activation::kNone && out.dtype == DType::kF32;
  const double flops = 2.0 * static_cast<double>(d.n * P * Q) * static_cast<double>(K * depth);

  parallel_for(
      d.n * P,
      [&](int64_t task, int) {
        const int64_t n = task / P, p = task % P;
        thread_local std::vector<float> slab, tile, tile_t;
        slab.resize(static_cast<size_t>(R * cols * C));
        const size_t tile_elems = static_cast<size_t>(kMaxTilePixels * ops.max_nv * ops.vl);
        tile.resize(tile_elems);
        tile_t.resize(tile_elems);
        fill_slab(d, x, n, p, cols, slab.data());
        gemm_internal::Epilogue e = ep;
        if (nchw) e.out = MatrixView{static_cast<char*>(out.data) + n * K * P * Q * esize, out.dtype, K, P * Q, P * Q, 1};
        else e.out = MatrixView{out.data, out.dtype, d.n * P * Q, K, K, 1};
        for (const ColumnBlock& b : blocks) {
          const int64_t bw = static_cast<int64_t>(b.nv) * ops.vl;
          const int mr = ops.mr(b.nv);
          const int ncols = static_cast<int>(std::min(bw, K - b.j0));
          const float* wb = wp.data() + b.j0 * depth;
          for (int64_t q0 = 0; q0 < Q; q0 += mr) {
            const int rows = static_cast<int>(std::min<int64_t>(mr, Q - q0));
            const float* a = slab.data() + q0 * step;
            if (direct && rows == mr && ncols == bw) {
              ops.tile(b.nv, a, step, off.data(), depth, wb, static_cast<float*>(out.data) + ((n * P + p) * Q + q0) * K + b.j0, K);
              continue;
            }
            ops.tile(b.nv, a, step, off.data(), depth, wb, tile.data(), bw);
            if (!nchw) {
              epilogue(e, tile.data(), bw, (n * P + p) * Q + q0, b.j0, rows, ncols);
            } else {
              for (int i = 0; i < rows; ++i)
                for (int j = 0; j < ncols; ++j) tile_t[j * mr + i] = tile[i * bw + j];
              epilogue(e, tile_t.data(), mr, b.j0, p * Q + q0, ncols, rows);
            }
          }
        }
      },
      flops < 1.0e6 ? 1 : 0);
}

}  // namespace aicc::cpu
