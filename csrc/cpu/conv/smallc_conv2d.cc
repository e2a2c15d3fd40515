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

// NHWC: rows [hp0, hp1) of image n's padded f32 copy: img[(hp*cols + col)*C + c] =
// x[n, hp - pad_top, col - pad_left, c], zero outside the input.
template <DType T>
void fill_rows_t(const Conv2dDesc& d, const void* x, int64_t n, int64_t hp0, int64_t hp1, int64_t cols, float* img) {
  const int64_t C = d.c, H = d.h, W = d.w;
  constexpr int64_t esize = T == DType::kF32 ? 4 : 2;
  const char* xb = static_cast<const char*>(x);
  // Input columns [w0, w1) land at columns [w0 + pad_left, w1 + pad_left).
  const int64_t w0 = std::max<int64_t>(0, -d.pad_left), w1 = std::min<int64_t>(W, cols - d.pad_left);
  for (int64_t hp = hp0; hp < hp1; ++hp) {
    float* row = img + hp * cols * C;
    const int64_t h = hp - d.pad_top;
    if (h < 0 || h >= H || w1 <= w0) {
      std::fill(row, row + cols * C, 0.0f);
      continue;
    }
    const int64_t lo = (w0 + d.pad_left) * C, hi = (w1 + d.pad_left) * C;
    std::fill(row, row + lo, 0.0f);
    std::fill(row + hi, row + cols * C, 0.0f);
    float* dst = row + lo;
    const void* src = xb + ((n * H + h) * W + w0) * C * esize;
    if constexpr (T == DType::kF32) std::memcpy(dst, src, (hi - lo) * sizeof(float));
    else for (int64_t i = 0; i < hi - lo; ++i) dst[i] = to_f32<T>(src, i);
  }
}

void fill_rows(const Conv2dDesc& d, const TensorView& x, int64_t n, int64_t hp0, int64_t hp1, int64_t cols,
               float* img) {
  switch (x.dtype) {
    case DType::kF16: fill_rows_t<DType::kF16>(d, x.data, n, hp0, hp1, cols, img); break;
    case DType::kBF16: fill_rows_t<DType::kBF16>(d, x.data, n, hp0, hp1, cols, img); break;
    default: fill_rows_t<DType::kF32>(d, x.data, n, hp0, hp1, cols, img); break;
  }
}

// Rows of the padded image the output reads.
int64_t padded_rows(const Conv2dDesc& d) { return (d.p() - 1) * d.stride_h + (d.r - 1) * d.dilation_h + 1; }

// NHWC: padded row hp of image n as bf16 bits (x is bf16): dst[col*C + c] = x[n, hp - pad_top,
// col - pad_left, c], +0 outside the input (and for rows past the padded image).
void fill_row_bf16(const Conv2dDesc& d, const TensorView& x, int64_t n, int64_t hp, int64_t cols, uint16_t* dst) {
  const int64_t C = d.c, H = d.h, W = d.w, h = hp - d.pad_top;
  const int64_t w0 = std::max<int64_t>(0, -d.pad_left), w1 = std::min<int64_t>(W, cols - d.pad_left);
  std::fill(dst, dst + cols * C, uint16_t{0});
  if (h < 0 || h >= H || w1 <= w0) return;
  const uint16_t* xs = static_cast<const uint16_t*>(x.data);
  std::memcpy(dst + (w0 + d.pad_left) * C, xs + ((n * H + h) * W + w0) * C, (w1 - w0) * C * sizeof(uint16_t));
}

// The residual (out's shape and layout) as the epilogue's view over the same elements as `view`,
// which starts `offset` elements into out.
MatrixView residual_view(const TensorView& residual, int64_t offset, const MatrixView& view) {
  MatrixView r = view;
  r.data = static_cast<char*>(residual.data) + offset * static_cast<int64_t>(dtype_size(residual.dtype));
  r.dtype = residual.dtype;
  return r;
}

// NCHW geometry: each channel's padded rows split by column stride phase, so the output pixels
// q..q+vl of a tap read vl contiguous floats:
//   img[((c*Hp + hp)*sw + ph)*cp + i] = x[n, c, hp - pad_top, i*sw + ph - pad_left]  (0 outside).
struct NchwGeometry {
  int64_t hp_rows, cp, qv;
  NchwGeometry(const Conv2dDesc& d, int vl) {
    hp_rows = padded_rows(d);
    qv = (d.q() + vl - 1) / vl * vl;                         // pixels computed per output row
    cp = qv + ((d.s - 1) * d.dilation_w) / d.stride_w + 1;  // phase columns those pixels read
  }
  int64_t floats(const Conv2dDesc& d) const { return d.c * hp_rows * d.stride_w * cp; }
};

// NCHW output channels per tile: the supported count that wastes the fewest rows (ties: the larger).
int rows_tile(const int* rows_mr, int64_t k) {
  int mr = rows_mr[0];
  for (const int* m = rows_mr; *m; ++m)
    if ((k + *m - 1) / *m * *m < (k + mr - 1) / mr * mr) mr = *m;
  return mr;
}

template <DType T>
void fill_phase_rows_t(const Conv2dDesc& d, const void* x, int64_t n, const NchwGeometry& g, int64_t row0,
                       int64_t row1, float* img) {
  const int64_t H = d.h, W = d.w, sw = d.stride_w;
  for (int64_t row = row0; row < row1; ++row) {  // row = c*Hp + hp
    const int64_t c = row / g.hp_rows, h = row % g.hp_rows - d.pad_top;
    float* dst = img + row * sw * g.cp;
    if (h < 0 || h >= H) {
      std::fill(dst, dst + sw * g.cp, 0.0f);
      continue;
    }
    const void* src = static_cast<const char*>(x) + (((n * d.c + c) * H + h) * W) * (T == DType::kF32 ? 4 : 2);
    for (int64_t ph = 0; ph < sw; ++ph, dst += g.cp) {
      for (int64_t i = 0; i < g.cp; ++i) {
        const int64_t w = i * sw + ph - d.pad_left;
        dst[i] = (w >= 0 && w < W) ? to_f32<T>(src, w) : 0.0f;
      }
    }
  }
}

// NCHW bf16 pair image (x is bf16): word ((c*Hp + hp)*sw + ph)*cp + i of `img` holds the
// phase-split padded input at row hp (low half) and row hp + dilation_h (high half); with
// `zero_high` the high half is +0 instead (the odd last filter row pairs with zero: never a
// real input times a zero weight, which for an Inf input would be NaN). Only the rows whose
// `need` flag is set are built.
void fill_phase_pair_rows(const Conv2dDesc& d, const void* x, int64_t n, const NchwGeometry& g, int64_t row0,
                          int64_t row1, const std::vector<char>& need, bool zero_high, uint32_t* img) {
  const int64_t H = d.h, W = d.w, sw = d.stride_w;
  const uint16_t* xs = static_cast<const uint16_t*>(x);
  const auto row_ptr = [&](int64_t c, int64_t hp) -> const uint16_t* {
    const int64_t h = hp - d.pad_top;
    return h >= 0 && h < H ? xs + ((n * d.c + c) * H + h) * W : nullptr;
  };
  for (int64_t row = row0; row < row1; ++row) {  // row = c*Hp + hp
    const int64_t c = row / g.hp_rows, hp = row % g.hp_rows;
    if (!need[hp]) continue;
    const uint16_t* lo = row_ptr(c, hp);
    const uint16_t* hi = zero_high ? nullptr : row_ptr(c, hp + d.dilation_h);
    uint32_t* dst = img + row * sw * g.cp;
    for (int64_t ph = 0; ph < sw; ++ph, dst += g.cp) {
      for (int64_t i = 0; i < g.cp; ++i) {
        const int64_t w = i * sw + ph - d.pad_left;
        const bool in = w >= 0 && w < W;
        const uint32_t l = lo && in ? lo[w] : 0u, h = hi && in ? hi[w] : 0u;
        dst[i] = l | h << 16;
      }
    }
  }
}

// The NCHW conv (same contract as smallc_conv2d): output channels x pixel vectors, written
// along the output rows.
void smallc_nchw(const Conv2dDesc& d, const SmallCOps& ops, const TensorView& x, const void* w, DType wdtype,
                 const Conv2dEpilogue& epi, const TensorView& out) {
  const float* bias = epi.bias;
  const Activation activation = epi.activation;
  const int64_t C = d.c, K = d.k, P = d.p(), Q = d.q(), R = d.r, S = d.s;
  const NchwGeometry g(d, ops.vl);
  // bf16 with a bf16 dot product: words pair filter rows r = 2u and 2u + 1 (one c, s), read
  // from a pair image (rows hp, hp + dilation_h per word) and, for an odd R's last row, from a
  // second image whose high halves are +0 (as the NHWC path).
  const bool pairs = ops.tile_rows_pairs != nullptr && x.dtype == DType::kBF16;
  const int mr = rows_tile(pairs ? ops.rows_mr_pairs : ops.rows_mr, K);
  const int64_t kp = (K + mr - 1) / mr * mr;
  const int64_t row_groups = pairs ? (R + 1) / 2 : R;
  const int64_t depth = C * row_groups * S;  // words (pairs) or elements per output pixel
  const bool odd_tail = pairs && R % 2 == 1;
  const int64_t image = g.floats(d);  // 32-bit words of one image
  // wt[t*kp + k]: t = (c*RG + u)*S + s; f32 bits of w[k, c, u, s], or the bf16 bits of
  // w[k, c, 2u, s] (low) and w[k, c, 2u + 1, s] (high, +0 past R).
  std::vector<uint32_t> wt(static_cast<size_t>(depth * kp), 0u);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t u = 0; u < row_groups; ++u)
        for (int64_t s = 0; s < S; ++s) {
          uint32_t word;
          if (pairs) {
            const uint16_t* w16 = static_cast<const uint16_t*>(w);
            const uint32_t lo = w16[((k * C + c) * R + 2 * u) * S + s];
            const uint32_t hi = 2 * u + 1 < R ? w16[((k * C + c) * R + 2 * u + 1) * S + s] : 0u;
            word = lo | hi << 16;
          } else {
            const float v = load_elem(w, wdtype, ((k * C + c) * R + u) * S + s);
            std::memcpy(&word, &v, 4);
          }
          wt[((c * row_groups + u) * S + s) * kp + k] = word;
        }
  std::vector<int32_t> off(static_cast<size_t>(depth));
  for (int64_t c = 0; c < C; ++c)
    for (int64_t u = 0; u < row_groups; ++u)
      for (int64_t s = 0; s < S; ++s) {
        const int64_t r = pairs ? 2 * u : u;
        const int64_t base = odd_tail && u == row_groups - 1 ? image : 0;  // the zero-high image
        const int64_t sd = s * d.dilation_w;
        off[(c * row_groups + u) * S + s] = static_cast<int32_t>(
            base + ((c * g.hp_rows + r * d.dilation_h) * d.stride_w + sd % d.stride_w) * g.cp + sd / d.stride_w);
      }
  // The image rows the tiles read (pairs: rows p*sh + 2u*dh only; the rest is never built).
  std::vector<char> need(static_cast<size_t>(g.hp_rows), pairs ? 0 : 1), need_zero(static_cast<size_t>(g.hp_rows), 0);
  for (int64_t p = 0; pairs && p < P; ++p)
    for (int64_t u = 0; u < row_groups; ++u) {
      const int64_t hp = p * d.stride_h + 2 * u * d.dilation_h;
      if (odd_tail && u == row_groups - 1) need_zero[hp] = 1;
      else need[hp] = 1;
    }

  const bool direct = !epi.scale && !epi.residual &&
                      (activation == Activation::kNone || activation == Activation::kRelu) &&
                      (out.dtype == DType::kF32 || out.dtype == DType::kBF16);
  const gemm_internal::EpilogueFn epilogue = gemm_internal::float_gemm_config(DType::kF32, DType::kF32).epilogue;
  const int64_t esize = static_cast<int64_t>(dtype_size(out.dtype));
  const double flops = 2.0 * static_cast<double>(d.n * P * Q) * static_cast<double>(K * C * R * S);
  const int threads = flops < 1.0e6 ? 1 : 0;
  // f32 image, or the pair image (+ the zero-high one): 32-bit words either way. Pair rows no
  // tile reads are never built (they stay +0).
  std::vector<uint32_t> img(static_cast<size_t>(image * (odd_tail ? 2 : 1)), 0u);
  const int64_t rows = C * g.hp_rows;
  const int64_t fill_block = std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(d.stride_w * g.cp, 1));
  for (int64_t n = 0; n < d.n; ++n) {
    parallel_for(
        (rows + fill_block - 1) / fill_block,
        [&](int64_t task, int) {
          const int64_t r0 = task * fill_block, r1 = std::min(rows, r0 + fill_block);
          float* fimg = reinterpret_cast<float*>(img.data());
          if (pairs) {
            fill_phase_pair_rows(d, x.data, n, g, r0, r1, need, false, img.data());
            if (odd_tail) fill_phase_pair_rows(d, x.data, n, g, r0, r1, need_zero, true, img.data() + image);
            return;
          }
          switch (x.dtype) {
            case DType::kF16: fill_phase_rows_t<DType::kF16>(d, x.data, n, g, r0, r1, fimg); break;
            case DType::kBF16: fill_phase_rows_t<DType::kBF16>(d, x.data, n, g, r0, r1, fimg); break;
            default: fill_phase_rows_t<DType::kF32>(d, x.data, n, g, r0, r1, fimg); break;
          }
        },
        threads);
    gemm_internal::Epilogue e;
    e.bias = bias;
    e.scale = epi.scale;
    e.bias_per_row = true;  // bias and scale per row: rows are channels
    e.activation = activation;
    char* out_n = static_cast<char*>(out.data) + n * K * P * Q * esize;
    e.out = MatrixView{out_n, out.dtype, K, P * Q, P * Q, 1};
    if (epi.residual) e.residual = residual_view(*epi.residual, n * K * P * Q, e.out);
    parallel_for(
        P,
        [&](int64_t p, int) {
          thread_local std::vector<float> tile;
          tile.resize(static_cast<size_t>(mr * ops.vl));
          const uint32_t* row = img.data() + p * d.stride_h * d.stride_w * g.cp;
          const auto run = [&](int64_t k0, int64_t q0, int nq, const SmallCStore& o) {
            if (pairs) ops.tile_rows_pairs(mr, nq, row + q0, off.data(), depth, wt.data() + k0, kp, o);
            else ops.tile_rows(mr, reinterpret_cast<const float*>(row) + q0, off.data(), depth,
                               reinterpret_cast<const float*>(wt.data()) + k0, kp, o);
          };
          for (int64_t k0 = 0; k0 < K; k0 += mr) {
            const int kr = static_cast<int>(std::min<int64_t>(mr, K - k0));
            for (int64_t q0 = 0; q0 < Q;) {
              // Pairs: two pixel vectors per tile while both are whole output pixels of the row.
              if (pairs && direct && kr == mr && q0 + 2 * ops.vl <= Q) {
                run(k0, q0, 2, SmallCStore{out_n + ((k0 * P + p) * Q + q0) * esize, P * Q, bias ? bias + k0 : nullptr,
                                           activation == Activation::kRelu, out.dtype == DType::kBF16});
                q0 += 2 * ops.vl;
                continue;
              }
              const int qc = static_cast<int>(std::min<int64_t>(ops.vl, Q - q0));
              if (direct && kr == mr && qc == ops.vl) {
                run(k0, q0, 1, SmallCStore{out_n + ((k0 * P + p) * Q + q0) * esize, P * Q, bias ? bias + k0 : nullptr,
                                           activation == Activation::kRelu, out.dtype == DType::kBF16});
              } else {
                run(k0, q0, 1, SmallCStore{tile.data(), ops.vl, nullptr, false, false});
                epilogue(e, tile.data(), ops.vl, k0, p * Q + q0, kr, qc);
              }
              q0 += ops.vl;
            }
          }
        },
        threads);
  }
}

}  // namespace

int64_t smallc_workspace_bytes(const Conv2dDesc& d, DType input_dtype) {
  const SmallCOps& ops = smallc_ops();
  if (d.layout == Layout::kNCHW) {
    const NchwGeometry g(d, ops.vl);
    const bool pairs = ops.tile_rows_pairs != nullptr && input_dtype == DType::kBF16;
    const int mr = rows_tile(pairs ? ops.rows_mr_pairs : ops.rows_mr, d.k);
    const int64_t kp = (d.k + mr - 1) / mr * mr;
    const int64_t images = pairs && d.r % 2 == 1 ? 2 : 1;  // + the zero-high image
    const int64_t depth = d.c * (pairs ? (d.r + 1) / 2 : d.r) * d.s;
    return (images * g.floats(d) + depth * kp + mr * ops.vl * get_num_threads()) * static_cast<int64_t>(sizeof(float)) +
           depth * static_cast<int64_t>(sizeof(int32_t));
  }
  const int64_t depth = d.c * d.r * d.s;
  const int64_t kp = (d.k + ops.vl - 1) / ops.vl * ops.vl;
  const int64_t per_thread = kMaxTilePixels * ops.max_nv * ops.vl;  // the edge-tile buffer
  // bf16 pairs with an odd R: + the zero-high image.
  const int64_t images = ops.tile_pairs != nullptr && input_dtype == DType::kBF16 && d.r % 2 == 1 ? 2 : 1;
  return (images * padded_rows(d) * slab_cols(d) * d.c + depth * kp + per_thread * get_num_threads()) *
             static_cast<int64_t>(sizeof(float)) +
         depth * static_cast<int64_t>(sizeof(int32_t));
}

void smallc_conv2d(const Conv2dDesc& d, const TensorView& x, const void* w, DType wdtype, const Conv2dEpilogue& epi,
                   const TensorView& out) {
  const SmallCOps& ops = smallc_ops();
  if (d.layout == Layout::kNCHW) {
    smallc_nchw(d, ops, x, w, wdtype, epi, out);
    return;
  }
  const float* bias = epi.bias;
  const Activation activation = epi.activation;
  const int64_t C = d.c, K = d.k, P = d.p(), Q = d.q(), R = d.r, S = d.s;
  const int64_t cols = slab_cols(d);
  const std::vector<ColumnBlock> blocks = column_blocks(ops, K);
  // bf16 with a bf16 dot product: 32-bit words pairing filter rows r = 2u and 2u + 1 (the
  // same s, c), read from a pair image whose word (hp, col, c) holds input rows hp and
  // hp + dilation_h; an odd last filter row pairs with zero, from a second image whose high
  // halves are +0 (never a real input value times a zero weight: Inf * 0 would be NaN).
  const bool pairs = ops.tile_pairs != nullptr && x.dtype == DType::kBF16;
  const int64_t row_groups = pairs ? (R + 1) / 2 : R;
  const int64_t depth = row_groups * S * C;  // words (pairs) or elements per output pixel
  const int64_t hp_rows = padded_rows(d), image = hp_rows * cols * C;
  const bool odd_tail = pairs && R % 2 == 1;

  // Weights, per column block of bw = nv*vl channels: wp[j0*depth + t*bw + j] = word t of output
  // channel j0 + j (zero past K): t = (r*S + s)*C + c, f32; pairs: t = (u*S + s)*C + c, bf16
  // bits of w[.., 2u, s, c] (low) and w[.., 2u + 1, s, c] (high, +0 past R).
  const int64_t kp = blocks.back().j0 + static_cast<int64_t>(blocks.back().nv) * ops.vl;
  std::vector<uint32_t> wp(static_cast<size_t>(depth * kp), 0u);
  const auto w_index = [&](int64_t k, int64_t r, int64_t s, int64_t c) { return ((k * R + r) * S + s) * C + c; };
  for (const ColumnBlock& b : blocks) {
    const int64_t bw = static_cast<int64_t>(b.nv) * ops.vl;
    uint32_t* dst = wp.data() + b.j0 * depth;
    for (int64_t j = 0; j < std::min(bw, K - b.j0); ++j) {
      const int64_t k = b.j0 + j;
      for (int64_t u = 0; u < row_groups; ++u)
        for (int64_t s = 0; s < S; ++s)
          for (int64_t c = 0; c < C; ++c) {
            uint32_t word;
            if (pairs) {
              const uint16_t* w16 = static_cast<const uint16_t*>(w);
              const uint32_t lo = w16[w_index(k, 2 * u, s, c)];
              const uint32_t hi = 2 * u + 1 < R ? w16[w_index(k, 2 * u + 1, s, c)] : 0u;
              word = lo | hi << 16;
            } else {
              const float v = load_elem(w, wdtype, w_index(k, u, s, c));
              std::memcpy(&word, &v, 4);
            }
            dst[((u * S + s) * C + c) * bw + j] = word;
          }
    }
  }
  std::vector<int32_t> off(static_cast<size_t>(depth));
  for (int64_t u = 0; u < row_groups; ++u) {
    const int64_t r = pairs ? 2 * u : u;
    const int64_t base = odd_tail && u == row_groups - 1 ? image : 0;  // the zero-high image
    for (int64_t s = 0; s < S; ++s)
      for (int64_t c = 0; c < C; ++c)
        off[(u * S + s) * C + c] = static_cast<int32_t>(base + (r * d.dilation_h * cols + s * d.dilation_w) * C + c);
  }

  gemm_internal::Epilogue ep;
  ep.bias = bias;
  ep.scale = epi.scale;
  ep.activation = activation;
  const gemm_internal::EpilogueFn epilogue = gemm_internal::float_gemm_config(DType::kF32, DType::kF32).epilogue;
  const int64_t esize = static_cast<int64_t>(dtype_size(out.dtype));
  const int64_t step = d.stride_w * C;
  // NHWC full tiles with bias / relu and an f32 or bf16 output are finished in registers and
  // stored by the kernel; the rest (scale, residual, gelu, f16) goes through the GEMM's tile
  // epilogue, which keeps the contract's one-operation-at-a-time order.
  const bool direct = !epi.scale && !epi.residual &&
                      (activation == Activation::kNone || activation == Activation::kRelu) &&
                      (out.dtype == DType::kF32 || out.dtype == DType::kBF16);
  const double flops = 2.0 * static_cast<double>(d.n * P * Q) * static_cast<double>(K * C * R * S);

  // f32 image, or the pair image (+ the zero-high one): 32-bit words either way.
  std::vector<uint32_t> img(static_cast<size_t>(image * (odd_tail ? 2 : 1)));
  // The image rows a tile reads (stride 2 with pairs: every other row; the rest is never built).
  std::vector<char> need(static_cast<size_t>(hp_rows), 0), need_zero(static_cast<size_t>(hp_rows), 0);
  for (int64_t p = 0; p < P; ++p)
    for (int64_t u = 0; u < row_groups; ++u) {
      const int64_t hp = p * d.stride_h + (pairs ? 2 * u : u) * d.dilation_h;
      if (odd_tail && u == row_groups - 1) need_zero[hp] = 1;
      else need[hp] = 1;
    }
  const int threads = flops < 1.0e6 ? 1 : 0;
  const int64_t fill_block = std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(cols * C, 1));
  for (int64_t n = 0; n < d.n; ++n) {
    // Image n, padded and converted once: each input row serves about R / stride_h output rows.
    parallel_for(
        (hp_rows + fill_block - 1) / fill_block,
        [&](int64_t task, int) {
          const int64_t hp0 = task * fill_block, hp1 = std::min(hp_rows, (task + 1) * fill_block);
          if (!pairs) {
            fill_rows(d, x, n, hp0, hp1, cols, reinterpret_cast<float*>(img.data()));
          } else {
            thread_local std::vector<uint16_t> lo, hi;
            lo.resize(static_cast<size_t>(cols * C));
            hi.resize(static_cast<size_t>(cols * C));
            for (int64_t hp = hp0; hp < hp1; ++hp) {
              if (!need[hp] && !need_zero[hp]) continue;
              fill_row_bf16(d, x, n, hp, cols, lo.data());
              if (need[hp]) {
                fill_row_bf16(d, x, n, hp + d.dilation_h, cols, hi.data());
                uint32_t* pr = img.data() + hp * cols * C;
                for (int64_t e = 0; e < cols * C; ++e) pr[e] = lo[e] | static_cast<uint32_t>(hi[e]) << 16;
              }
              if (need_zero[hp]) {
                uint32_t* zr = img.data() + image + hp * cols * C;
                for (int64_t e = 0; e < cols * C; ++e) zr[e] = lo[e];
              }
            }
          }
        },
        threads);
    gemm_internal::Epilogue e = ep;
    e.out = MatrixView{out.data, out.dtype, d.n * P * Q, K, K, 1};
    if (epi.residual) e.residual = residual_view(*epi.residual, 0, e.out);
    parallel_for(
        P,
        [&](int64_t p, int) {
          thread_local std::vector<float> tile;
          tile.resize(static_cast<size_t>(kMaxTilePixels * ops.max_nv * ops.vl));
          const uint32_t* slab = img.data() + p * d.stride_h * cols * C;
          for (const ColumnBlock& b : blocks) {
            const int64_t bw = static_cast<int64_t>(b.nv) * ops.vl;
            const int mr = ops.mr(b.nv);
            const int ncols = static_cast<int>(std::min(bw, K - b.j0));
            const uint32_t* wb = wp.data() + b.j0 * depth;
            const auto run = [&](const uint32_t* a, const SmallCStore& o) {
              if (pairs) ops.tile_pairs(b.nv, a, step, off.data(), depth, wb, o);
              else ops.tile(b.nv, reinterpret_cast<const float*>(a), step, off.data(), depth,
                            reinterpret_cast<const float*>(wb), o);
            };
            for (int64_t q0 = 0; q0 < Q; q0 += mr) {
              const int rows = static_cast<int>(std::min<int64_t>(mr, Q - q0));
              const uint32_t* a = slab + q0 * step;
              if (direct && ncols == bw) {  // the last pixels of a row: a full tile, `rows` stored
                run(a, SmallCStore{static_cast<char*>(out.data) + (((n * P + p) * Q + q0) * K + b.j0) * esize, K,
                                   bias ? bias + b.j0 : nullptr, activation == Activation::kRelu,
                                   out.dtype == DType::kBF16, rows});
                continue;
              }
              run(a, SmallCStore{tile.data(), bw, nullptr, false, false});
              epilogue(e, tile.data(), bw, (n * P + p) * Q + q0, b.j0, rows, ncols);
            }
          }
        },
        threads);
  }
}

}  // namespace aicc::cpu
