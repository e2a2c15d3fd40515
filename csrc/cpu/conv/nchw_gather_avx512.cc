// NCHW implicit-GEMM B panels gathered with AVX-512 masked loads (registry family
// `nchw_gather`, entry nchw_gather_avx512; contract: NchwGatherOps in conv2d_common.h, the
// portable gathers in conv2d_common.cc give the same words).
//
// A 32-pixel panel of one depth row (c, r, s) is at most a few runs along output rows; each run
// is one masked load from the input row (lanes in the padding are masked off and stay +0; a
// masked-off element is never read, so the loads may start before or end past the row), so a
// panel row is built in registers and stored once, where the portable gather copied element by
// element with a loop per run (an NCHW bf16 3x3 64@56 conv spent ~30 % of its time there).
// The masks and offsets of a panel's runs depend on the tap (r, s) and not on the channel, so
// they are computed once per panel and tap, and each depth row costs a load per run. Stride 2
// loads a 64-element window per run and keeps its even elements (vpermt2w / vpermt2ps).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "cpu/conv/conv2d_common.h"

namespace aicc::cpu::conv {
namespace {

constexpr int kNr = 32;  // panel width this file is written for (the AVX-512 12x32 entries)

struct Run {
  int64_t lane, len, p, q0;  // first lane in the panel, pixels, output row, first output column
};

// One run of one tap: the lanes it fills (0 where the row is padding), the source elements of
// its stride-2 window, and the element offset from the channel plane's start that lane 0 maps
// to (lane L reads plane[off + L] at stride 1, plane[off + 2L] at stride 2).
struct TapRun {
  uint32_t lanes;
  uint64_t window;
  int64_t off;
};

inline uint32_t lane_mask(int64_t a, int64_t b) {  // bits [a, b) of 32, a < b
  const uint64_t m = ((uint64_t{1} << b) - 1) & ~((uint64_t{1} << a) - 1);
  return static_cast<uint32_t>(m);
}

template <typename T>
inline const T* at(const T* base, int64_t off) {  // base + off without forming it in C++ arithmetic
  return reinterpret_cast<const T*>(reinterpret_cast<uintptr_t>(base) + static_cast<uintptr_t>(off * int64_t{sizeof(T)}));
}

// Calls fn(panel, runs, nruns, cover) for every 32-lane panel that block pixels [m0, m0 + mc)
// of an image touch (pixel j in panel column j + j_off); cover: the lanes the block fills.
template <typename Fn>
void for_each_panel(const Conv2dDesc& d, int64_t m0, int64_t mc, int64_t j_off, Fn&& fn) {
  const int64_t Q = d.q();
  Run runs[kNr];
  for (int64_t j = 0; j < mc;) {
    const int64_t panel = (j + j_off) / kNr, end = (panel + 1) * kNr - j_off;  // block j past the panel
    int nruns = 0;
    uint32_t cover = 0;
    while (j < mc && j < end) {
      const int64_t m = m0 + j, q0 = m % Q, len = std::min({mc - j, Q - q0, end - j});
      const int64_t lane = (j + j_off) % kNr;
      runs[nruns++] = Run{lane, len, m / Q, q0};
      cover |= lane_mask(lane, lane + len);
      j += len;
    }
    fn(panel, runs, nruns, cover);
  }
}

// The tap table of one panel: t[tap * nruns + i] for tap = r * S + s (R * S * nruns entries).
void tap_table(const Conv2dDesc& d, const Run* runs, int nruns, TapRun* t) {
  const int64_t sw = d.stride_w;
  for (int64_t r = 0; r < d.r; ++r)
    for (int64_t s = 0; s < d.s; ++s) {
      const int64_t off = s * d.dilation_w - d.pad_left;
      const int64_t lo_s = std::max<int64_t>(0, (-off + sw - 1) / sw);
      const int64_t hi_s = d.w - off <= 0 ? 0 : (d.w - off + sw - 1) / sw;
      for (int i = 0; i < nruns; ++i, ++t) {
        const Run& run = runs[i];
        const int64_t h = run.p * d.stride_h - d.pad_top + r * d.dilation_h;
        const int64_t q1 = run.q0 + run.len;
        const int64_t lo = std::max(run.q0, lo_s), hi = std::min(q1, hi_s);
        *t = TapRun{0, 0, 0};
        if (h < 0 || h >= d.h || lo >= hi) continue;
        const int64_t a = run.lane + lo - run.q0, b = run.lane + hi - run.q0;
        t->lanes = lane_mask(a, b);
        // Lane L's element: column (q0 + L - lane) * sw + off of input row h.
        t->off = h * d.w + off + (run.q0 - run.lane) * sw;
        if (sw == 2) t->window = ((uint64_t{1} << (2 * b - 1)) - 1) & ~((uint64_t{1} << (2 * a)) - 1);
      }
    }
}

// Depth row of one panel (32 lanes of 16-bit elements) from `plane` through the tap's runs.
template <int kStride>
inline __m512i row16(const uint16_t* plane, const TapRun* tr, int nruns, __m512i even) {
  __m512i v = _mm512_setzero_si512();
  for (int i = 0; i < nruns; ++i) {
    if (tr[i].lanes == 0) continue;
    const uint16_t* p = at(plane, tr[i].off);
    if constexpr (kStride == 1) {
      v = _mm512_mask_loadu_epi16(v, tr[i].lanes, p);
    } else {
      const __m512i lo = _mm512_maskz_loadu_epi16(static_cast<__mmask32>(tr[i].window), p);
      const __m512i hi = _mm512_maskz_loadu_epi16(static_cast<__mmask32>(tr[i].window >> 32), at(p, 32));
      v = _mm512_mask_mov_epi16(v, tr[i].lanes, _mm512_permutex2var_epi16(lo, even, hi));
    }
  }
  return v;
}

// The same for 32-bit elements: lanes 0-15 in v0, 16-31 in v1.
template <int kStride>
inline void row32(const float* plane, const TapRun* tr, int nruns, __m512i even, __m512& v0, __m512& v1) {
  v0 = _mm512_setzero_ps();
  v1 = _mm512_setzero_ps();
  for (int i = 0; i < nruns; ++i) {
    if (tr[i].lanes == 0) continue;
    const float* p = at(plane, tr[i].off);
    const __mmask16 m0 = static_cast<__mmask16>(tr[i].lanes), m1 = static_cast<__mmask16>(tr[i].lanes >> 16);
    if constexpr (kStride == 1) {
      if (m0) v0 = _mm512_mask_loadu_ps(v0, m0, p);
      if (m1) v1 = _mm512_mask_loadu_ps(v1, m1, at(p, 16));
    } else {
      const uint64_t w = tr[i].window;
      if (m0) {
        const __m512 a = _mm512_maskz_loadu_ps(static_cast<__mmask16>(w), p);
        const __m512 b = _mm512_maskz_loadu_ps(static_cast<__mmask16>(w >> 16), at(p, 16));
        v0 = _mm512_mask_mov_ps(v0, m0, _mm512_permutex2var_ps(a, even, b));
      }
      if (m1) {
        const __m512 a = _mm512_maskz_loadu_ps(static_cast<__mmask16>(w >> 32), at(p, 32));
        const __m512 b = _mm512_maskz_loadu_ps(static_cast<__mmask16>(w >> 48), at(p, 48));
        v1 = _mm512_mask_mov_ps(v1, m1, _mm512_permutex2var_ps(a, even, b));
      }
    }
  }
}

inline __m512i even_index16() {
  alignas(64) uint16_t idx[32];
  for (int t = 0; t < 32; ++t) idx[t] = static_cast<uint16_t>(2 * t);
  return _mm512_load_si512(idx);
}

inline __m512i even_index32() {
  alignas(64) uint32_t idx[16];
  for (int t = 0; t < 16; ++t) idx[t] = static_cast<uint32_t>(2 * t);
  return _mm512_load_si512(idx);
}

// vpermt2w indices: word t of the result = (row0[first + t], row1[first + t]), low half first.
inline __m512i pair_index(int first) {
  alignas(64) uint16_t idx[32];
  for (int t = 0; t < 16; ++t) {
    idx[2 * t] = static_cast<uint16_t>(first + t);
    idx[2 * t + 1] = static_cast<uint16_t>(32 + first + t);
  }
  return _mm512_load_si512(idx);
}

// The panels a block touches, with their tap tables: built first, then the depth rows are
// walked once with every panel inside, so one depth row reads one stretch of its channel plane
// (up to 256 pixels of a call) instead of 32 pixels of every plane per panel. Panel by panel,
// the reads of a 1x1 1024->256 @14 conv went to 1024 planes at once, which the hardware
// prefetchers do not follow (a fifth of its time waited on those loads, perf).
struct Panels {
  struct Panel {
    int64_t index;
    int nruns;
    uint32_t cover;
    size_t table;  // offset of its tap table in `tables`
  };
  std::vector<Panel> list;
  std::vector<TapRun> tables;
  void build(const Conv2dDesc& d, int64_t m0, int64_t mc, int64_t j_off) {
    list.clear();
    tables.clear();
    const size_t taps = static_cast<size_t>(d.r * d.s);
    for_each_panel(d, m0, mc, j_off, [&](int64_t panel, const Run* runs, int nruns, uint32_t cover) {
      const size_t at = tables.size();
      tables.resize(at + taps * static_cast<size_t>(nruns));
      tap_table(d, runs, nruns, tables.data() + at);
      list.push_back(Panel{panel, nruns, cover, at});
    });
  }
};

template <int kStride>
void gather_f32(const Conv2dDesc& d, const float* x, int64_t n, int64_t g, int64_t m0, int64_t mc, int64_t p0,
                int64_t kc, float* dst, int64_t j_off) {
  thread_local Panels panels;
  panels.build(d, m0, mc, j_off);
  const int64_t taps = d.r * d.s, hw = d.h * d.w;
  const float* planes = x + (n * d.c + g * d.cg()) * hw;
  const __m512i even = even_index32();
  // The panel list and tables as plain locals: reached through the thread_local in the depth
  // loop, every depth row called __tls_get_addr (this is a shared object) and a vzeroupper
  // before it, a few cycles of each ~40-cycle row (1 thread, same-process A/B: f32 3x3 64@56
  // 1.09x, other 3x3 layers 1.01-1.03x; bf16 1.02-1.11x).
  const Panels::Panel* const list = panels.list.data();
  const size_t npanels = panels.list.size();
  const TapRun* const tables = panels.tables.data();
  int64_t c = p0 / taps, tap = p0 % taps;
  for (int64_t t = 0; t < kc; ++t) {
    for (size_t ip = 0; ip < npanels; ++ip) {
      const Panels::Panel& pn = list[ip];
      __m512 v0, v1;
      row32<kStride>(planes + c * hw, tables + pn.table + tap * pn.nruns, pn.nruns, even, v0, v1);
      float* out = dst + (pn.index * kc + t) * kNr;
      _mm512_mask_storeu_ps(out, static_cast<__mmask16>(pn.cover), v0);
      _mm512_mask_storeu_ps(out + 16, static_cast<__mmask16>(pn.cover >> 16), v1);
    }
    if (++tap == taps) tap = 0, ++c;
  }
}

template <int kStride>
void gather_pairs(const Conv2dDesc& d, const uint16_t* x, int64_t n, int64_t g, int64_t m0, int64_t mc, int64_t p0,
                  int64_t kc, uint32_t* dst, int64_t j_off) {
  thread_local Panels panels;
  panels.build(d, m0, mc, j_off);
  const int64_t taps = d.r * d.s, hw = d.h * d.w, kw = (kc + 1) / 2;
  const uint16_t* planes = x + (n * d.c + g * d.cg()) * hw;
  const __m512i even = even_index16(), lo_idx = pair_index(0), hi_idx = pair_index(16);
  const Panels::Panel* const list = panels.list.data();  // locals, as in gather_f32
  const size_t npanels = panels.list.size();
  const TapRun* const tables = panels.tables.data();
  int64_t c = p0 / taps, tap = p0 % taps;
  for (int64_t t = 0; t < kc; t += 2) {
    // Depth rows t and t + 1 (a depth past kc pairs with +0).
    const int64_t c1 = tap + 1 == taps ? c + 1 : c, tap1 = tap + 1 == taps ? 0 : tap + 1;
    const bool second = t + 1 < kc;
    for (size_t ip = 0; ip < npanels; ++ip) {
      const Panels::Panel& pn = list[ip];
      const TapRun* table = tables + pn.table;
      const __m512i r0 = row16<kStride>(planes + c * hw, table + tap * pn.nruns, pn.nruns, even);
      const __m512i r1 = second ? row16<kStride>(planes + c1 * hw, table + tap1 * pn.nruns, pn.nruns, even)
                                : _mm512_setzero_si512();
      uint32_t* out = dst + (pn.index * kw + t / 2) * kNr;
      _mm512_mask_storeu_epi32(out, static_cast<__mmask16>(pn.cover), _mm512_permutex2var_epi16(r0, lo_idx, r1));
      _mm512_mask_storeu_epi32(out + 16, static_cast<__mmask16>(pn.cover >> 16),
                               _mm512_permutex2var_epi16(r0, hi_idx, r1));
    }
    c = c1, tap = tap1;
    if (second && ++tap == taps) tap = 0, ++c;
  }
}

void panels_f32(const Conv2dDesc& d, const float* x, int64_t n, int64_t g, int64_t m0, int64_t mc, int64_t p0,
                int64_t kc, int64_t nr, float* dst, int64_t j_off) {
  if (nr != kNr || d.stride_w > 2) {
    nchw_gather_ops_portable().panels_f32(d, x, n, g, m0, mc, p0, kc, nr, dst, j_off);
    return;
  }
  if (d.stride_w == 1) gather_f32<1>(d, x, n, g, m0, mc, p0, kc, dst, j_off);
  else gather_f32<2>(d, x, n, g, m0, mc, p0, kc, dst, j_off);
}

void panels_bf16pairs(const Conv2dDesc& d, const uint16_t* x, int64_t n, int64_t g, int64_t m0, int64_t mc,
                      int64_t p0, int64_t kc, int64_t nr, uint32_t* dst, int64_t j_off) {
  if (nr != kNr || d.stride_w > 2) {
    nchw_gather_ops_portable().panels_bf16pairs(d, x, n, g, m0, mc, p0, kc, nr, dst, j_off);
    return;
  }
  if (d.stride_w == 1) gather_pairs<1>(d, x, n, g, m0, mc, p0, kc, dst, j_off);
  else gather_pairs<2>(d, x, n, g, m0, mc, p0, kc, dst, j_off);
}

const NchwGatherOps kOps = {panels_f32, panels_bf16pairs};

}  // namespace

const NchwGatherOps& nchw_gather_ops_avx512() { return kOps; }

}  // namespace aicc::cpu::conv
