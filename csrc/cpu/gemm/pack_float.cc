// Packing strided f32/f16/bf16 matrices into microkernel panels (portable path + dispatch).
#include <algorithm>
#include <cstring>

#include "cpu/gemm/float_kernels.h"
#include "cpu/gemm/gemm_driver.h"

namespace aicc::cpu::gemm_internal {
namespace {

// dst[p*w + l] = src(l, p) for l < valid, 0 for valid <= l < w; src(l, p) at
// base + l*ls + p*ps (elements). One template per dtype so the inner loop has no switch.
template <typename Load>
void pack_panel(Load load, int64_t ls, int64_t ps, int64_t valid, int64_t kc, int w, float* dst) {
  for (int64_t p = 0; p < kc; ++p) {
    float* d = dst + p * w;
    int64_t off = p * ps;
    for (int64_t l = 0; l < valid; ++l, off += ls) d[l] = load(off);
    for (int64_t l = valid; l < w; ++l) d[l] = 0.0f;
  }
}

// Packs `count` lanes (rows of A or columns of B) in panels of w; lane l, depth p at
// base + l*ls + p*ps.
template <typename Load>
void pack_lanes(Load load, int64_t ls, int64_t ps, int64_t count, int64_t kc, int w, float* dst) {
  for (int64_t l0 = 0; l0 < count; l0 += w) {
    auto shifted = [&](int64_t off) { return load(off + l0 * ls); };
    pack_panel(shifted, ls, ps, std::min<int64_t>(w, count - l0), kc, w, dst);
    dst += static_cast<int64_t>(w) * kc;
  }
}

void pack_strided(const MatrixView& v, int64_t lane0, int64_t count, int64_t p0, int64_t kc, int w,
                  bool lanes_are_rows, float* dst) {
  const int64_t ls = lanes_are_rows ? v.row_stride : v.col_stride;
  const int64_t ps = lanes_are_rows ? v.col_stride : v.row_stride;
  const int64_t base = lane0 * ls + p0 * ps;
  switch (v.dtype) {
    case DType::kF16: {
      const uint16_t* s = static_cast<const uint16_t*>(v.data) + base;
      pack_lanes([s](int64_t o) { return f16_to_f32(s[o]); }, ls, ps, count, kc, w, dst);
      break;
    }
    case DType::kBF16: {
      const uint16_t* s = static_cast<const uint16_t*>(v.data) + base;
      pack_lanes([s](int64_t o) { return bf16_to_f32(s[o]); }, ls, ps, count, kc, w, dst);
      break;
    }
    default: {
      const float* s = static_cast<const float*>(v.data) + base;
      pack_lanes([s](int64_t o) { return s[o]; }, ls, ps, count, kc, w, dst);
      break;
    }
  }
}

// bf16 pair words: word (lane l, pair q) = bits(src(l, 2q)) | bits(src(l, 2q + 1)) << 16, the
// pair past kc padded with +0. A bf16 source is copied bit for bit (NaN payloads, denormals
// and all); other dtypes round to nearest even (the drivers only pair bf16 data).
void pack_pairs_strided(const MatrixView& v, int64_t lane0, int64_t count, int64_t p0, int64_t kc, int w,
                        bool lanes_are_rows, uint32_t* dst) {
  const int64_t ls = lanes_are_rows ? v.row_stride : v.col_stride;
  const int64_t ps = lanes_are_rows ? v.col_stride : v.row_stride;
  const int64_t base = lane0 * ls + p0 * ps;
  auto bits = [&](int64_t off) -> uint32_t {
    if (v.dtype == DType::kBF16) return static_cast<const uint16_t*>(v.data)[base + off];
    return f32_to_bf16(load_f32(v.data, v.dtype, base + off));
  };
  const int64_t kw = (kc + 1) / 2;
  for (int64_t l0 = 0; l0 < count; l0 += w, dst += static_cast<int64_t>(w) * kw) {
    const int64_t valid = std::min<int64_t>(w, count - l0);
    for (int64_t q = 0; q < kw; ++q) {
      uint32_t* d = dst + q * w;
      const int64_t p = 2 * q;
      for (int64_t l = 0; l < valid; ++l) {
        const int64_t off = (l0 + l) * ls + p * ps;
        const uint32_t lo = bits(off);
        const uint32_t hi = p + 1 < kc ? bits(off + ps) : 0u;
        d[l] = lo | (hi << 16);
      }
      for (int64_t l = valid; l < w; ++l) d[l] = 0u;
    }
  }
}

void pack_words_strided(const MatrixView& v, int64_t lane0, int64_t count, int64_t p0, int64_t kc, int w,
                        bool lanes_are_rows, PanelWord word, void* dst) {
  if (word == PanelWord::kBF16Pair)
    pack_pairs_strided(v, lane0, count, p0, kc, w, lanes_are_rows, static_cast<uint32_t*>(dst));
  else
    pack_strided(v, lane0, count, p0, kc, w, lanes_are_rows, static_cast<float*>(dst));
}

}  // namespace

void pack_a_portable(const MatrixView& a, int64_t i0, int64_t mc, int64_t p0, int64_t kc, int mr, PanelWord word,
                     void* dst) {
  pack_words_strided(a, i0, mc, p0, kc, mr, /*lanes_are_rows=*/true, word, dst);
}

void pack_b_portable(const MatrixView& b, int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr, PanelWord word,
                     void* dst) {
  pack_words_strided(b, j0, nc, p0, kc, nr, /*lanes_are_rows=*/false, word, dst);
}

void MatrixAPacker::pack(const FloatGemmConfig& cfg, int64_t i0, int64_t mc, int64_t p0, int64_t kc,
                         void* dst) const {
  if (cfg.pack_a != nullptr && cfg.pack_a(a_, i0, mc, p0, kc, cfg.mr, dst)) return;
  pack_a_portable(a_, i0, mc, p0, kc, cfg.mr, cfg.word, dst);
}

bool rows_share_l1_sets(int64_t row_stride_bytes, int mr) {
  // 64-byte lines, 64 sets (32-48 KiB, 8-12 ways): rows whose lines fall into one set compete
  // with each other and with the B panel. Measured (f32 12x32, Zen 4): six per set (a 2 KiB
  // stride: 3x3 convs with 512 channels) still gain from in-place reads, twelve (4 KiB: 1x1
  // convs with 1024 channels, square GEMMs of 1024 or 2048) lose 10-15 % against packing.
  int per_set[64] = {};
  for (int r = 0; r < mr; ++r) {
    const int set = static_cast<int>(((static_cast<uint64_t>(r) * static_cast<uint64_t>(row_stride_bytes)) >> 6) & 63);
    if (++per_set[set] > 6) return true;
  }
  return false;
}

// In place: f32 rows as f32 words, or bf16 rows as pair words (two adjacent bf16 of a row are
// one 32-bit word, the lower k in the low half, as the pair packer builds them) when the block
// is a whole number of pairs: an odd tail would pair the last element with whatever follows
// it in memory, where the packer pads with +0.
int MatrixAPacker::direct_segments(const FloatGemmConfig& cfg, int64_t p0, int64_t kc, int64_t* seg_words) const {
  const bool f32 = cfg.word == PanelWord::kF32 && a_.dtype == DType::kF32;
  const bool pairs = cfg.word == PanelWord::kBF16Pair && a_.dtype == DType::kBF16 && kc % 2 == 0 && p0 % 2 == 0;
  if (!(f32 || pairs) || a_.col_stride != 1 || kc <= 0) return 0;
  const int64_t esize = f32 ? 4 : 2;
  if (rows_share_l1_sets(a_.row_stride * esize, cfg.mr)) return 0;
  seg_words[0] = f32 ? kc : kc / 2;
  return 1;
}

void MatrixAPacker::direct_rows(const FloatGemmConfig& cfg, int64_t i, int64_t p0, int nseg,
                                const int64_t* seg_words, const void** rows) const {
  (void)nseg, (void)seg_words;
  const int64_t esize = a_.dtype == DType::kF32 ? 4 : 2;
  const char* base = static_cast<const char*>(a_.data) + p0 * esize;
  for (int r = 0; r < cfg.mr; ++r) rows[r] = base + (i + r) * a_.row_stride * esize;
}

bool columns_share_l1_sets(int64_t col_stride_bytes) {
  if (col_stride_bytes <= 0) return true;
  // The lines of 16 consecutive k steps (those in use and those prefetched 8 ahead): more
  // than 4 in one set of the 8-way L1 leaves too few ways for B's lines and the rest.
  int per_set[64] = {};
  for (int64_t q = 0; q < 16; ++q)
    if (++per_set[(q * col_stride_bytes / 64) % 64] > 4) return true;
  return false;
}

const void* MatrixAPacker::direct_columns(const FloatGemmConfig& cfg, int64_t p0, int64_t kc,
                                          int64_t* lda_words) const {
  if (cfg.word != PanelWord::kF32 || a_.dtype != DType::kF32 || a_.row_stride != 1 || a_.col_stride <= 0 || kc <= 0 ||
      columns_share_l1_sets(a_.col_stride * 4))
    return nullptr;
  *lda_words = a_.col_stride;
  return static_cast<const float*>(a_.data) + p0 * a_.col_stride;
}

void MatrixBPacker::pack(const FloatGemmConfig& cfg, int64_t p0, int64_t kc, int64_t j0, int64_t nc,
                         void* dst) const {
  if (cfg.pack_b != nullptr && cfg.pack_b(b_, p0, kc, j0, nc, cfg.nr, dst)) return;
  pack_b_portable(b_, p0, kc, j0, nc, cfg.nr, cfg.word, dst);
}

}  // namespace aicc::cpu::gemm_internal
