// Every GEMM entry of the kernel registry that this CPU can run, against a scalar reference, on
// edge cases derived from the entry itself (its mr, nr, k per word and kc): m, n and k at
// 1, tile - 1, tile, tile + 1, 2 tile + 1; k also around one and two kc blocks / K slices;
// strided and column-major operands, an output that is a window of a wider buffer (the
// elements around it must stay untouched), the fused epilogue. INT8 is compared bit-exactly.
// Then the registry's choices: under the detected features, and with features masked.
// Then (aarch64) the NEON depthwise and reduction entries against the portable entries, bit
// for bit (test_neon_vs_portable.cc).
//
// Architecture-neutral C++: tools/test-aarch64.sh cross-compiles it for aarch64 and runs it
// under qemu-aarch64 with CPU models that have and lack dotprod / i8mm / bf16; it builds and
// runs natively on x86-64 too. Prints one line per check group and "N passed, N failed".
//
//   test_registry_kernels [--expect-features=neon,dotprod,...] [--quick]
//     --expect-features: the detected feature set must be exactly this (proves which CPU model
//     the emulator presented, so a fallback run really ran without the masked instructions).
//   test_registry_kernels --run-unsupported=NAME
//     runs INT8 entry NAME once although the CPU lacks its features: on such a CPU it must die
//     of SIGILL (the script checks), which proves the emulated CPU model really lacks them.
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "aicc/gemm.h"
#include "aicc/status.h"
#include "common/cpu_features.h"
#include "common/half.h"
#include "common/thread_pool.h"
#include "cpu/config/registry.h"
#include "cpu/conv/conv2d_common.h"
#include "cpu/gemm/float_kernels.h"
#include "cpu/gemm/gemm_driver.h"
#include "cpu/gemm/qgemm_internal.h"

// test_neon_vs_portable.cc: the NEON depthwise / reduce entries against the portable ones.
void test_neon_vs_portable(aicc::FeatureSet detected, bool quick, void (*check)(bool, const std::string&));

namespace {

using namespace aicc;
namespace reg = aicc::cpu::registry;
namespace gi = aicc::cpu::gemm_internal;
namespace qd = aicc::cpu::qgemm_detail;

int g_passed = 0, g_failed = 0;

void check(bool ok, const std::string& what) {
  if (ok) {
    ++g_passed;
    return;
  }
  // The first failures say what broke; thousands of lines would hide it.
  if (++g_failed <= 20) std::printf("FAIL %s\n", what.c_str());
  if (g_failed == 20) std::printf("(further failures are counted, not printed)\n");
}

std::vector<int64_t> around(int64_t t) {
  std::set<int64_t> s{1, t - 1, t, t + 1, 2 * t + 1};
  s.erase(0);
  return {s.begin(), s.end()};
}

// ---------------------------------------------------------------------------- float entries

struct FloatMatrix {
  DType dtype;
  std::vector<uint16_t> h;  // bf16 / f16 storage
  std::vector<float> f;     // f32 storage, or the exact f32 values of h
  int64_t rows, cols;
  bool col_major;
  MatrixView view() {
    MatrixView v;
    v.dtype = dtype;
    v.data = dtype == DType::kF32 ? static_cast<void*>(f.data()) : static_cast<void*>(h.data());
    v.rows = rows;
    v.cols = cols;
    v.row_stride = col_major ? 1 : cols;
    v.col_stride = col_major ? rows : 1;
    return v;
  }
  float at(int64_t i, int64_t j) const { return f[col_major ? j * rows + i : i * cols + j]; }
};

FloatMatrix random_float(std::mt19937& rng, DType t, int64_t rows, int64_t cols, bool col_major) {
  std::normal_distribution<float> d;
  FloatMatrix m{t, {}, {}, rows, cols, col_major};
  m.f.resize(static_cast<size_t>(rows * cols));
  if (t != DType::kF32) m.h.resize(m.f.size());
  for (size_t i = 0; i < m.f.size(); ++i) {
    const float x = d(rng);
    if (t == DType::kBF16) {
      m.h[i] = f32_to_bf16(x);
      m.f[i] = bf16_to_f32(m.h[i]);
    } else if (t == DType::kF16) {
      m.h[i] = f32_to_f16(x);
      m.f[i] = f16_to_f32(m.h[i]);
    } else {
      m.f[i] = x;
    }
  }
  return m;
}

// One float GEMM through `cfg`; out is a window of a wider buffer. Returns "" or the failure.
std::string run_float_case(std::mt19937& rng, const gi::FloatGemmConfig& cfg, DType t, int64_t m, int64_t n,
                           int64_t k, bool col_major, bool bias_relu, int threads) {
  FloatMatrix a = random_float(rng, t, m, k, col_major), b = random_float(rng, t, k, n, col_major);
  const int64_t ld = n + 5;
  const float sentinel = 7.25f;
  std::vector<float> buf(static_cast<size_t>(m * ld), sentinel), bias(static_cast<size_t>(n));
  for (float& x : bias) x = std::normal_distribution<float>()(rng);
  gi::Epilogue ep;
  ep.out.data = buf.data() + 2;
  ep.out.dtype = DType::kF32;
  ep.out.rows = m;
  ep.out.cols = n;
  ep.out.row_stride = ld;
  ep.out.col_stride = 1;
  if (bias_relu) {
    ep.bias = bias.data();
    ep.activation = Activation::kRelu;
  }
  gi::MatrixAPacker ap(a.view());
  gi::MatrixBPacker bp(b.view());
  gi::run_float_gemm(m, n, k, ap, bp, ep, threads, &cfg);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < ld; ++j) {
      const float got = buf[i * ld + j];
      if (j < 2 || j >= 2 + n) {
        if (got != sentinel) return "wrote outside out at row " + std::to_string(i) + " col " + std::to_string(j);
        continue;
      }
      double ref = 0, mag = 0;
      for (int64_t p = 0; p < k; ++p) {
        ref += static_cast<double>(a.at(i, p)) * b.at(p, j - 2);
        mag += std::fabs(static_cast<double>(a.at(i, p)) * b.at(p, j - 2));
      }
      if (bias_relu) {
        ref += bias[j - 2];
        mag += std::fabs(bias[j - 2]);
        ref = ref > 0 ? ref : 0;
      }
      // docs/SEMANTICS.md: |C - C_ref| <= c K eps(f32) (|A| @ |B|), c = 4 (+ the bias add).
      const double tol = 4.0 * (k + 2) * 1.1920929e-7 * mag + 1e-30;
      if (!(std::fabs(got - ref) <= tol))
        return "(" + std::to_string(i) + "," + std::to_string(j - 2) + ") got " + std::to_string(got) + " want " +
               std::to_string(ref) + " tol " + std::to_string(tol);
    }
  }
  return "";
}

// The indirect kernel that finishes its tile in registers (FloatIndirectEpilogueUkernel)
// against the indirect kernel's stored tile (`tile`, from c_in when accumulating) put through
// the entry's tile epilogue: the outputs must be bit-identical, for every epilogue the fused
// kernel takes (f32/bf16 out; alpha, per-row or per-column scale and bias, an f32 or bf16
// residual, relu), written at an offset inside a larger output.
std::string run_indirect_epilogue_cases(std::mt19937& rng, const gi::FloatGemmConfig& cfg,
                                        const std::vector<int64_t>& segs, const std::vector<const void*>& rows,
                                        const float* bpanel, const std::vector<float>& c_in,
                                        const std::vector<float>& tile, int64_t ldc, bool accumulate) {
  const int mr = cfg.mr, nr = cfg.nr;
  const int64_t i0 = 5, j0 = 3, orows = i0 + mr + 2, ocols = j0 + nr + 4;
  std::normal_distribution<float> d;
  std::vector<float> vec(static_cast<size_t>(orows + ocols));
  for (float& x : vec) x = d(rng);
  std::vector<float> res32(static_cast<size_t>(orows * ocols));
  std::vector<uint16_t> res16(res32.size());
  for (size_t i = 0; i < res32.size(); ++i) {
    res32[i] = d(rng);
    res16[i] = aicc::f32_to_bf16(d(rng));
  }
  res32[static_cast<size_t>(i0 * ocols + j0)] = std::numeric_limits<float>::infinity();
  // Variant 4 scales the sums into the f32 subnormal range, where vcvtne2ps2bf16 (which reads
  // subnormals as zero) must not be used for the bf16 rounding. Variants 5..20 are the 16
  // epilogue shapes the AVX-512 kernels finish with compile-time code (alpha 1, no scale, no
  // per-row bias; out dtype x relu x column bias x residual, the residual f32 or bf16).
  constexpr int kFixedShapes = 16;
  for (int variant = 0; variant < 5 + kFixedShapes; ++variant) {
    const int shape = variant - 5;
    const bool fixed = shape >= 0;
    const DType out_t = fixed ? (shape & 1 ? DType::kBF16 : DType::kF32)
                              : (variant % 2 == 0 ? DType::kBF16 : DType::kF32);
    gi::Epilogue ep;
    ep.alpha = variant == 2 ? 0.5f : variant == 4 ? 1e-39f : 1.0f;
    ep.bias_per_row = variant == 1;
    ep.bias = fixed ? (shape & 4 ? vec.data() : nullptr) : variant != 3 && variant != 4 ? vec.data() : nullptr;
    ep.scale = variant == 1 || variant == 2 ? vec.data() + 1 : nullptr;
    const bool relu = fixed ? (shape & 2) != 0 : !(variant == 2 || variant == 4);
    ep.activation = relu ? aicc::Activation::kRelu : aicc::Activation::kNone;
    if (fixed ? (shape & 8) != 0 : variant == 2 || variant == 3) {
      const bool bf = fixed ? (shape & 2) == 0 : variant == 2;
      ep.residual = aicc::MatrixView{bf ? static_cast<void*>(res16.data()) : static_cast<void*>(res32.data()),
                                     bf ? DType::kBF16 : DType::kF32, orows, ocols, ocols, 1};
    }
    const size_t esize = out_t == DType::kF32 ? 4 : 2;
    std::vector<unsigned char> want(static_cast<size_t>(orows * ocols) * esize, 0xAB), got = want;
    ep.out = aicc::MatrixView{want.data(), out_t, orows, ocols, ocols, 1};
    cfg.epilogue(ep, tile.data(), ldc, i0, j0, mr, nr);
    ep.out.data = got.data();
    cfg.ukernel_indirect_epilogue(static_cast<int64_t>(segs.size()), segs.data(), rows.data(), bpanel, c_in.data(),
                                  ldc, accumulate, ep, i0, j0);
    for (size_t e = 0; e < want.size(); e += esize) {
      if (std::memcmp(&want[e], &got[e], esize) == 0) continue;
      const float w = aicc::cpu::gemm_internal::load_f32(want.data(), out_t, static_cast<int64_t>(e / esize));
      const float g = aicc::cpu::gemm_internal::load_f32(got.data(), out_t, static_cast<int64_t>(e / esize));
      if (std::isnan(w) && std::isnan(g)) continue;  // NaN payloads: see run_indirect_case
      return "epilogue variant " + std::to_string(variant) + ", out element " + std::to_string(e / esize) +
             ": tile+epilogue " + std::to_string(w) + " in registers " + std::to_string(g);
    }
  }
  return "";
}

// The indirect microkernel (A read in place through row pointers) against the packed one on the
// same words: the tiles must be bit-identical (same products, same order), for segment splits
// of every short length, empty segment lists, accumulate on/off, and NaN/Inf in A. The words
// are f32 normals; read as bf16 pairs (the bf16 entry) their halves are arbitrary bit patterns,
// NaN, Inf and denormals included.
std::string run_indirect_case(std::mt19937& rng, const gi::FloatGemmConfig& cfg, const std::vector<int64_t>& segs,
                              bool accumulate, bool specials) {
  const int mr = cfg.mr, nr = cfg.nr;
  int64_t kc = 0;
  for (int64_t len : segs) kc += len;
  std::normal_distribution<float> d;
  // A row-major with a padded row stride; each segment's runs start at a different column.
  const int64_t lda = kc + 3 + static_cast<int64_t>(segs.size());
  // Packed panels are 64-byte aligned in the driver (the kernels use aligned loads).
  auto aligned = [](std::vector<float>& v, size_t n) {
    v.assign(n + 16, 0.0f);
    return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(v.data()) + 63) & ~uintptr_t{63});
  };
  std::vector<float> a(static_cast<size_t>(mr * lda + 1)), bstore, astore;
  float* bpanel = aligned(bstore, static_cast<size_t>(std::max<int64_t>(kc, 1) * nr));
  float* apanel = aligned(astore, static_cast<size_t>(std::max<int64_t>(kc, 1) * mr));
  for (float& x : a) x = d(rng);
  for (int64_t i = 0; i < std::max<int64_t>(kc, 1) * nr; ++i) bpanel[i] = d(rng);
  if (specials && kc > 0) {
    a[0] = std::numeric_limits<float>::infinity();
    a[static_cast<size_t>((mr - 1) * lda + kc - 1)] = std::numeric_limits<float>::quiet_NaN();
  }
  // Segment s of row r starts at column (sum of earlier lengths) + s: a gap of one element
  // between runs, so a kernel that read past a run would pick up the wrong value.
  std::vector<const void*> rows(segs.size() * static_cast<size_t>(mr));
  int64_t p = 0;
  for (size_t sg = 0; sg < segs.size(); ++sg) {
    for (int r = 0; r < mr; ++r) {
      const float* run = a.data() + r * lda + p + static_cast<int64_t>(sg);
      rows[sg * mr + r] = run;
      for (int64_t q = 0; q < segs[sg]; ++q) apanel[(p + q) * mr + r] = run[q];
    }
    p += segs[sg];
  }
  const int64_t ldc = nr + 7;
  std::vector<float> c0(static_cast<size_t>(mr * ldc)), c1;
  for (float& x : c0) x = d(rng);
  c1 = c0;
  const std::vector<float> c_in = c0;
  cfg.ukernel(kc, apanel, bpanel, c0.data(), ldc, accumulate);
  cfg.ukernel_indirect(static_cast<int64_t>(segs.size()), segs.data(), rows.data(), bpanel, c1.data(), ldc,
                       accumulate);
  if (cfg.ukernel_indirect_epilogue != nullptr) {
    const std::string err = run_indirect_epilogue_cases(rng, cfg, segs, rows, bpanel, c_in, c1, ldc, accumulate);
    if (!err.empty()) return err;
  }
  // NaN vs NaN of another sign or payload counts as equal: which operand's NaN an instruction
  // propagates depends on the operand roles (vdpbf16ps with the A word broadcast from memory
  // instead of from a register), and no NaN payload is part of the contract (SEMANTICS.md).
  for (size_t i = 0; i < c0.size(); ++i)
    if (std::memcmp(&c0[i], &c1[i], sizeof(float)) != 0 && !(std::isnan(c0[i]) && std::isnan(c1[i])))
      return "element " + std::to_string(i) + ": packed " + std::to_string(c0[i]) + " indirect " + std::to_string(c1[i]);
  return "";
}

// The entry's vectorized packers against the portable ones, word for word, on f32 / f16 / bf16
// matrices in both layouts (row-major and column-major, padded strides), for block offsets and
// sizes around the tile (full panels plus a partial one) and depths with every tail mod 4 (the
// AVX-512 column-major packer moves four k steps at a time). A packer that declines a layout
// (returns false) is not compared: the driver then uses the portable one.
// `words` 32-bit words, 64-byte aligned, filled with a pattern no packer writes by chance.
struct Aligned64 {
  explicit Aligned64(size_t words) : n(words), store(words + 16, 0xDEADBEEF) {}
  uint32_t* data() { return reinterpret_cast<uint32_t*>((reinterpret_cast<uintptr_t>(store.data()) + 63) & ~uintptr_t{63}); }
  bool same(Aligned64& o) { return std::memcmp(data(), o.data(), n * sizeof(uint32_t)) == 0; }
  size_t n;
  std::vector<uint32_t> store;
};

// The strided-A microkernel (a column-major A read in place) against the packed one on the same
// values: bit-identical tiles, for depths around the unroll (0, tails of 1-3, kc), column
// strides from barely wider than the tile to a weight gradient's 1 KiB, accumulate on/off, and
// NaN/Inf in A.
std::string run_strided_a_case(std::mt19937& rng, const gi::FloatGemmConfig& cfg, int64_t kc, int64_t lda,
                               bool accumulate, bool specials) {
  const int mr = cfg.mr, nr = cfg.nr;
  std::normal_distribution<float> d;
  std::vector<float> a(static_cast<size_t>(std::max<int64_t>(kc, 1) * lda + 1)), astore, bstore;
  for (float& x : a) x = d(rng);
  if (specials && kc > 0) {
    a[0] = std::numeric_limits<float>::infinity();
    a[static_cast<size_t>((kc - 1) * lda + mr - 1)] = std::numeric_limits<float>::quiet_NaN();
  }
  Aligned64 apanel(static_cast<size_t>(std::max<int64_t>(kc, 1) * mr)), bpanel(static_cast<size_t>(std::max<int64_t>(kc, 1) * nr));
  float* ap = reinterpret_cast<float*>(apanel.data());
  float* bp = reinterpret_cast<float*>(bpanel.data());
  for (int64_t q = 0; q < kc; ++q)
    for (int i = 0; i < mr; ++i) ap[q * mr + i] = a[static_cast<size_t>(q * lda + i + 1)];  // A starts at a + 1
  for (int64_t e = 0; e < std::max<int64_t>(kc, 1) * nr; ++e) bp[e] = d(rng);
  const int64_t ldc = nr + 5;
  std::vector<float> c0(static_cast<size_t>(mr * ldc)), c1;
  for (float& x : c0) x = d(rng);
  c1 = c0;
  cfg.ukernel(kc, ap, bp, c0.data(), ldc, accumulate);
  cfg.ukernel_strided_a(kc, a.data() + 1, lda, bp, c1.data(), ldc, accumulate);
  for (size_t i = 0; i < c0.size(); ++i)
    if (std::memcmp(&c0[i], &c1[i], sizeof(float)) != 0 && !(std::isnan(c0[i]) && std::isnan(c1[i])))
      return "element " + std::to_string(i) + ": packed " + std::to_string(c0[i]) + " strided " + std::to_string(c1[i]);
  return "";
}

std::string run_packer_cases(std::mt19937& rng, const gi::FloatGemmConfig& cfg, DType t) {
  if (cfg.pack_a == nullptr && cfg.pack_b == nullptr) return "";
  const int mr = cfg.mr, nr = cfg.nr;
  std::normal_distribution<float> d;
  const int64_t rows = 3 * std::max(mr, nr) + 5, cols = 3 * std::max(mr, nr) + 7;
  std::vector<unsigned char> store(static_cast<size_t>((rows + 2) * (cols + 3)) * 4);
  for (int64_t e = 0; e < (rows + 2) * (cols + 3); ++e) gi::store_f32(store.data(), t, e, d(rng));
  for (int col_major = 0; col_major < 2; ++col_major) {
    // rows x cols view with a padded leading stride.
    const MatrixView v{store.data(), t, rows, cols, col_major ? 1 : cols + 3, col_major ? rows + 2 : 1};
    for (int64_t k : {int64_t{1}, int64_t{2}, int64_t{3}, int64_t{4}, int64_t{5}, int64_t{6}, int64_t{7}, int64_t{8},
                      int64_t{13}, int64_t{cols - 2}}) {
      const int64_t kw = gi::panel_words(k, cfg.word);
      for (int64_t off : {int64_t{0}, int64_t{1}}) {
        // A block: mc rows from row `off`, depth k from column 1.
        const int64_t mc = std::min<int64_t>(2 * mr + 1 + off, rows - off);
        const size_t awords = static_cast<size_t>((mc + mr - 1) / mr * mr * kw);
        // The driver's panels are 64-byte aligned; the packers may store aligned.
        Aligned64 want(awords), got(awords);
        gi::pack_a_portable(v, off, mc, 1, k, mr, cfg.word, want.data());
        if (cfg.pack_a && cfg.pack_a(v, off, mc, 1, k, mr, got.data()) && !want.same(got))
          return std::string("pack_a ") + (col_major ? "column-major" : "row-major") + " mc=" + std::to_string(mc) +
                 " k=" + std::to_string(k) + " i0=" + std::to_string(off);
        // B block: depth k from row 1, nc columns from column `off`.
        if (k > rows - 1) continue;
        const int64_t nc = std::min<int64_t>(2 * nr + 1 + off, cols - off);
        const size_t bwords = static_cast<size_t>((nc + nr - 1) / nr * nr * kw);
        Aligned64 bw(bwords), bg(bwords);
        gi::pack_b_portable(v, 1, k, off, nc, nr, cfg.word, bw.data());
        if (cfg.pack_b && cfg.pack_b(v, 1, k, off, nc, nr, bg.data()) && !bw.same(bg))
          return std::string("pack_b ") + (col_major ? "column-major" : "row-major") + " nc=" + std::to_string(nc) +
                 " k=" + std::to_string(k) + " j0=" + std::to_string(off);
      }
    }
  }
  return "";
}

// ukernel_rows (a tile of rows < mr rows) against the full kernel on the same zero-padded
// panel: the computed rows bit for bit (NaN vs NaN of any payload counts as equal, as above),
// and c's rows from `rows` on never touched, so the driver may point c into out itself.
std::string run_rows_case(std::mt19937& rng, const gi::FloatGemmConfig& cfg, int rows, int64_t kw, bool accumulate,
                          bool specials) {
  const int mr = cfg.mr, nr = cfg.nr;
  std::normal_distribution<float> d;
  auto aligned = [](std::vector<float>& v, size_t n) {
    v.assign(n + 16, 0.0f);
    return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(v.data()) + 63) & ~uintptr_t{63});
  };
  std::vector<float> astore, bstore;
  float* apanel = aligned(astore, static_cast<size_t>(std::max<int64_t>(kw, 1) * mr));
  float* bpanel = aligned(bstore, static_cast<size_t>(std::max<int64_t>(kw, 1) * nr));
  for (int64_t q = 0; q < kw; ++q)  // rows past `rows` are the panel's zero padding
    for (int i = 0; i < rows; ++i) apanel[q * mr + i] = d(rng);
  for (int64_t i = 0; i < kw * nr; ++i) bpanel[i] = d(rng);
  if (specials && kw > 0) {
    apanel[0] = std::numeric_limits<float>::infinity();
    apanel[(kw - 1) * mr + rows - 1] = std::numeric_limits<float>::quiet_NaN();
    bpanel[kw * nr - 1] = -std::numeric_limits<float>::infinity();
  }
  const int64_t ldc = nr + 5;
  std::vector<float> c_full(static_cast<size_t>(mr * ldc)), c_rows;
  for (float& x : c_full) x = d(rng);
  c_rows = c_full;
  const std::vector<float> c_in = c_full;
  cfg.ukernel(kw, apanel, bpanel, c_full.data(), ldc, accumulate);
  cfg.ukernel_rows(rows, kw, apanel, bpanel, c_rows.data(), ldc, accumulate);
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < ldc; ++j) {
      const size_t e = static_cast<size_t>(i * ldc + j);
      const float want = i < rows && j < nr ? c_full[e] : c_in[e];
      if (std::memcmp(&want, &c_rows[e], sizeof(float)) != 0 && !(std::isnan(want) && std::isnan(c_rows[e])))
        return "row " + std::to_string(i) + " col " + std::to_string(j) + ": want " + std::to_string(want) + " got " +
               std::to_string(c_rows[e]);
    }
  return "";
}

// ukernel_strided_b (B rows read in place, ldb words apart, any alignment) against the packed
// kernel on the same values: bit for bit, `rows` rows stored (rows == mr: the full tile).
std::string run_strided_b_case(std::mt19937& rng, const gi::FloatGemmConfig& cfg, int rows, int64_t kw, int64_t ldb,
                               int64_t b_offset, bool accumulate, bool specials) {
  const int mr = cfg.mr, nr = cfg.nr;
  std::normal_distribution<float> d;
  auto aligned = [](std::vector<float>& v, size_t n) {
    v.assign(n + 16, 0.0f);
    return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(v.data()) + 63) & ~uintptr_t{63});
  };
  std::vector<float> astore, bstore;
  float* apanel = aligned(astore, static_cast<size_t>(std::max<int64_t>(kw, 1) * mr));
  float* bpanel = aligned(bstore, static_cast<size_t>(std::max<int64_t>(kw, 1) * nr));
  for (int64_t q = 0; q < kw; ++q)
    for (int i = 0; i < rows; ++i) apanel[q * mr + i] = d(rng);
  // B in place: kw rows of nr values, ldb apart, starting b_offset floats into the buffer.
  std::vector<float> bmat(static_cast<size_t>(b_offset + std::max<int64_t>(kw, 1) * ldb + nr), 0.0f);
  for (int64_t q = 0; q < kw; ++q)
    for (int j = 0; j < nr; ++j) bpanel[q * nr + j] = bmat[static_cast<size_t>(b_offset + q * ldb + j)] = d(rng);
  if (specials && kw > 0) {
    apanel[0] = std::numeric_limits<float>::infinity();
    bpanel[(kw - 1) * nr + nr - 1] = bmat[static_cast<size_t>(b_offset + (kw - 1) * ldb + nr - 1)] =
        std::numeric_limits<float>::quiet_NaN();
  }
  const int64_t ldc = nr + 3;
  std::vector<float> c_packed(static_cast<size_t>(mr * ldc)), c_strided;
  for (float& x : c_packed) x = d(rng);
  c_strided = c_packed;
  const std::vector<float> c_in = c_packed;
  if (rows == mr) cfg.ukernel(kw, apanel, bpanel, c_packed.data(), ldc, accumulate);
  else cfg.ukernel_rows(rows, kw, apanel, bpanel, c_packed.data(), ldc, accumulate);
  cfg.ukernel_strided_b(rows, kw, apanel, bmat.data() + b_offset, ldb, c_strided.data(), ldc, accumulate);
  for (size_t e = 0; e < c_packed.size(); ++e) {
    const bool stored = static_cast<int64_t>(e) / ldc < rows && static_cast<int64_t>(e) % ldc < nr;
    const float want = stored ? c_packed[e] : c_in[e];
    if (std::memcmp(&want, &c_strided[e], sizeof(float)) != 0 && !(std::isnan(want) && std::isnan(c_strided[e])))
      return "element " + std::to_string(e) + ": want " + std::to_string(want) + " got " + std::to_string(c_strided[e]);
  }
  return "";
}

void test_float_family(const char* family, const std::vector<reg::Entry<const gi::FloatGemmConfig*>>& entries,
                       DType t, FeatureSet detected, bool quick) {
  std::set<const gi::FloatGemmConfig*> seen;
  for (const auto& e : entries) {
    const gi::FloatGemmConfig& cfg = *e.impl;
    // bf16-pair entries take bf16 operands only (the driver converts nothing into pairs).
    if (cfg.word == gi::PanelWord::kBF16Pair && t != DType::kBF16) continue;
    if (!seen.insert(&cfg).second) continue;
    if (!detected.contains(e.required)) {
      std::printf("skip %s %s: the CPU lacks %s\n", family, e.name, feature_names(e.required.without(detected)).c_str());
      continue;
    }
    std::mt19937 rng(1234);
    const int kpw = gi::k_per_word(cfg.word);
    const std::vector<int64_t> ms = around(cfg.mr), ns = around(cfg.nr);
    std::vector<int64_t> ks = {1, kpw, kpw + 1, 2 * kpw + 1, cfg.kc - 1, cfg.kc, cfg.kc + 1};
    if (!quick) ks.push_back(2 * cfg.kc + 1);
    std::set<int64_t> kset(ks.begin(), ks.end());
    const int64_t kmid = 37;
    int cases = 0, fails = 0;
    auto one = [&](int64_t m, int64_t n, int64_t k, bool cm, bool br, int threads) {
      std::string err;
      try {
        err = run_float_case(rng, cfg, t, m, n, k, cm, br, threads);
      } catch (const std::exception& ex) {
        err = std::string("exception: ") + ex.what();
      }
      ++cases;
      if (!err.empty()) {
        ++fails;
        check(false, std::string(family) + " " + e.name + " m=" + std::to_string(m) + " n=" + std::to_string(n) +
                         " k=" + std::to_string(k) + (cm ? " col-major" : "") + (br ? " bias+relu" : "") + ": " + err);
      } else {
        check(true, "");
      }
    };
    for (int64_t m : ms)
      for (int64_t n : ns) one(m, n, kmid, false, false, 1);
    for (int64_t k : kset) one(ms.back(), ns.back(), k, false, false, 1);
    // Column-major operands, the fused epilogue, several threads and several row/column blocks.
    one(ms.back(), ns.back(), cfg.kc + 1, true, true, 1);
    one(2 * cfg.mc + cfg.mr + 3, 3 * cfg.nr + 1, 19, false, true, 0);
    if (cfg.ukernel_indirect != nullptr) {
      const std::vector<std::vector<int64_t>> splits = {
          {}, {1}, {2}, {3}, {4}, {5}, {7}, {cfg.kc}, {1, 1, 1}, {3, 4, 5, 6}, {16, 16, 16, 16}, {64, 1, 64},
          {cfg.kc - 1, 1}};
      for (const auto& segs : splits)
        for (int acc = 0; acc < 2; ++acc)
          for (int sp = 0; sp < 2; ++sp) {
            const std::string err = run_indirect_case(rng, cfg, segs, acc != 0, sp != 0);
            ++cases;
            if (!err.empty()) ++fails;
            check(err.empty(), std::string(family) + " " + e.name + " indirect, " + std::to_string(segs.size()) +
                                   " segments" + (acc ? ", accumulate" : "") + (sp ? ", NaN/Inf" : "") + ": " + err);
          }
    }
    if (cfg.ukernel_strided_a != nullptr) {
      for (int64_t kc : {int64_t{0}, int64_t{1}, int64_t{3}, int64_t{4}, int64_t{5}, int64_t{7}, int64_t{cfg.kc}})
        for (int64_t lda : {int64_t{cfg.mr + 1}, int64_t{37}, int64_t{256}})
          for (int acc = 0; acc < 2; ++acc) {
            const std::string err = run_strided_a_case(rng, cfg, kc, lda, acc != 0, kc % 2 == 1);
            ++cases;
            if (!err.empty()) ++fails;
            check(err.empty(), std::string(family) + " " + e.name + " strided A, kc=" + std::to_string(kc) +
                                   " lda=" + std::to_string(lda) + (acc ? ", accumulate" : "") + ": " + err);
          }
    }
    {
      const std::string err = run_packer_cases(rng, cfg, t);
      ++cases;
      if (!err.empty()) ++fails;
      check(err.empty(), std::string(family) + " " + e.name + " packers against the portable ones: " + err);
    }
    if (cfg.ukernel_rows != nullptr) {
      for (int rows = 1; rows < cfg.mr; ++rows)
        for (int64_t kw : {int64_t{0}, int64_t{1}, int64_t{3}, int64_t{4}, int64_t{9}, int64_t{64}})
          for (int acc = 0; acc < 2; ++acc) {
            const bool sp = kw > 0 && rows % 3 == 0;
            const std::string err = run_rows_case(rng, cfg, rows, kw, acc != 0, sp);
            ++cases;
            if (!err.empty()) ++fails;
            check(err.empty(), std::string(family) + " " + e.name + " rows=" + std::to_string(rows) + " kw=" +
                                   std::to_string(kw) + (acc ? ", accumulate" : "") + (sp ? ", NaN/Inf" : "") + ": " + err);
          }
    }
    if (cfg.ukernel_strided_b != nullptr && cfg.ukernel_rows != nullptr) {
      for (int rows : {1, 4, 5, 8, 11, cfg.mr})
        for (int64_t kw : {int64_t{0}, int64_t{1}, int64_t{5}, int64_t{64}})
          for (int64_t ldb : {int64_t{cfg.nr}, int64_t{cfg.nr + 5}, int64_t{3136}})
            for (int64_t off : {int64_t{0}, int64_t{3}})
              for (int acc = 0; acc < 2; ++acc) {
                const bool sp = kw > 0 && rows % 4 == 0;
                const std::string err = run_strided_b_case(rng, cfg, rows, kw, ldb, off, acc != 0, sp);
                ++cases;
                if (!err.empty()) ++fails;
                check(err.empty(), std::string(family) + " " + e.name + " strided B rows=" + std::to_string(rows) +
                                       " kw=" + std::to_string(kw) + " ldb=" + std::to_string(ldb) + " offset=" +
                                       std::to_string(off) + (acc ? ", accumulate" : "") + ": " + err);
              }
    }
    std::printf("%-9s %-24s %3d cases, %d failed (mr=%d nr=%d k/word=%d kc=%d%s%s%s)\n", family, e.name, cases, fails,
                cfg.mr, cfg.nr, kpw, cfg.kc, cfg.ukernel_indirect ? ", indirect" : "", cfg.ukernel_rows ? ", rows" : "",
                cfg.ukernel_strided_b ? ", strided B" : "");
  }
}

// ---------------------------------------------------------------------------- INT8 entries

// out = (a - za) @ (b - zb[j]) through `route`, compared exactly; out is a window of a wider
// int32 buffer (col_stride 1 or 2).
std::string run_int8_case(std::mt19937& rng, const gi::GemmConfig& route, DType at, int32_t za, int32_t zb_base,
                          bool per_channel, int64_t m, int64_t n, int64_t k, bool extremes, int64_t out_col_stride,
                          bool a_col_major) {
  std::vector<uint8_t> a(static_cast<size_t>(m * k));
  std::vector<int8_t> b(static_cast<size_t>(k * n));
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& x : a) x = static_cast<uint8_t>(byte(rng));
  for (auto& x : b) x = static_cast<int8_t>(byte(rng) - 128);
  if (extremes) {  // every A at its minimum or maximum, B at -128 or 127
    for (size_t i = 0; i < a.size(); ++i) a[i] = (i % 3) ? (at == DType::kU8 ? 255 : 0x80) : (at == DType::kU8 ? 0 : 0x7f);
    for (size_t i = 0; i < b.size(); ++i) b[i] = (i % 5) ? -128 : 127;
  }
  a[0] = at == DType::kU8 ? 0 : 0x80;  // the extremes, every time
  b[0] = -128;
  std::vector<int32_t> zb(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) zb[j] = per_channel ? static_cast<int32_t>(((zb_base + 37 * j) % 256 + 256) % 256 - 128) : zb_base;
  MatrixView av{a.data(), at, m, k, a_col_major ? 1 : k, a_col_major ? m : 1};
  MatrixView bv{b.data(), DType::kS8, k, n, n, 1};
  const int64_t ld = n * out_col_stride + 3;
  const int32_t sentinel = 0x5a5a5a5a;
  std::vector<int32_t> buf(static_cast<size_t>(m * ld), sentinel);
  MatrixView ov{buf.data() + 1, DType::kS32, m, n, ld, out_col_stride};
  QGemmParams p;
  p.a_zero_point = za;
  p.b_zero_point = zb.data();
  p.b_zero_point_len = per_channel ? n : 1;
  qd::qgemm_with_route(av, bv, ov, p, route);
  auto a_at = [&](int64_t i, int64_t q) -> int64_t {
    const uint8_t v = a[a_col_major ? q * m + i : i * k + q];
    return at == DType::kU8 ? v : static_cast<int8_t>(v);
  };
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t x = 0; x < ld; ++x) {
      const int32_t got = buf[i * ld + x];
      const int64_t rel = x - 1;
      const bool inside = rel >= 0 && rel % out_col_stride == 0 && rel / out_col_stride < n;
      if (!inside) {
        if (got != sentinel) return "wrote outside out at row " + std::to_string(i) + " offset " + std::to_string(x);
        continue;
      }
      const int64_t j = rel / out_col_stride;
      int64_t ref = 0;
      for (int64_t q = 0; q < k; ++q) ref += (a_at(i, q) - za) * (static_cast<int64_t>(b[q * n + j]) - zb[j]);
      if (got != ref)
        return "(" + std::to_string(i) + "," + std::to_string(j) + ") got " + std::to_string(got) + " want " +
               std::to_string(ref);
    }
  }
  return "";
}

void test_int8_family(const std::vector<reg::Entry<const gi::GemmConfig*>>& entries, FeatureSet detected, bool quick) {
  for (const auto& e : entries) {
    const gi::GemmConfig& rt = *e.impl;
    if (!detected.contains(e.required)) {
      std::printf("skip int8_gemm %s: the CPU lacks %s\n", e.name, feature_names(e.required.without(detected)).c_str());
      continue;
    }
    std::mt19937 rng(99);
    const int kpw = gi::k_per_word(rt.word);
    const int64_t slice = rt.kc;  // K per depth block
    const std::vector<int64_t> ms = around(rt.mr), ns = around(rt.nr);
    std::set<int64_t> ks{1, kpw - 1, kpw, kpw + 1, 2 * kpw - 1, 2 * kpw, 2 * kpw + 1, 3 * kpw, slice + 3};
    if (!quick) ks.insert({slice, slice + kpw, 2 * slice + kpw + 1});
    ks.erase(0);
    struct Z {
      DType t;
      int32_t za, zb;
      bool per_channel;
    };
    const Z zs[] = {{DType::kU8, 128, 0, false}, {DType::kS8, 0, 0, false}, {DType::kU8, 255, -128, false},
                    {DType::kS8, -128, 127, false}, {DType::kU8, 3, 5, true}, {DType::kS8, 7, -9, true}};
    int cases = 0, fails = 0;
    auto one = [&](const Z& z, int64_t m, int64_t n, int64_t k, bool extremes, int64_t ocs, bool acm) {
      std::string err;
      try {
        err = run_int8_case(rng, rt, z.t, z.za, z.zb, z.per_channel, m, n, k, extremes, ocs, acm);
      } catch (const std::exception& ex) {
        err = std::string("exception: ") + ex.what();
      }
      ++cases;
      if (!err.empty()) ++fails;
      check(err.empty(), std::string("int8_gemm ") + e.name + (z.t == DType::kU8 ? " u8" : " s8") +
                             " za=" + std::to_string(z.za) + " zb=" + std::to_string(z.zb) +
                             (z.per_channel ? "+37j" : "") + " m=" + std::to_string(m) + " n=" + std::to_string(n) +
                             " k=" + std::to_string(k) + (extremes ? " extremes" : "") +
                             (ocs > 1 ? " strided-out" : "") + (acm ? " a-col-major" : "") + ": " + err);
    };
    for (const Z& z : zs) {
      for (int64_t m : ms)
        for (int64_t n : ns) one(z, m, n, 37, false, 1, false);
      for (int64_t k : ks) one(z, ms.back(), ns.back(), k, false, 1, false);
      one(z, ms.back(), ns.back(), 2 * kpw + 1, true, 2, true);
    }
    // Extremes over several K slices, several threads and blocks (K check: 2053 * 255 * 255 fits).
    // (Rows past two row blocks, columns past eight panels: several tasks and column chunks.)
    one(zs[2], 2 * rt.mc + 5, 8 * rt.nr + 7, quick ? 67 : slice * 2 + 5, true, 1, false);
    // Per-channel zb with several depth blocks: the row sums are added up across blocks.
    if (!quick) one(zs[5], rt.mr + 1, rt.nr + 3, slice * 2 + 9, false, 1, false);
    std::printf("int8_gemm %-24s %3d cases, %d failed (mr=%d nr=%d k/word=%d kc=%d)\n", e.name, cases, fails,
                rt.mr, rt.nr, kpw, rt.kc);
  }
}

// ---------------------------------------------------------------------------- registry choices

template <class Impl>
const char* chosen(const std::vector<reg::Entry<Impl>>& family) {
  return reg::select(family).name;
}

// ------------------------------------------------------------------- NCHW panel gathers

// Every nchw_gather entry against the portable one, word for word: blocks of output pixels
// (m0, mc, a panel column offset j_off as when several images share a GEMM, depth p0/kc with
// odd ends) of convs with padding on each side, strides 1-3, dilation, a kernel wider than the
// input row and groups, over inputs holding NaN/Inf bit patterns. The panels start filled with
// a sentinel, so lanes the block does not own must keep it (the batched packer gathers one
// image's pixels into a panel another image's already fill).
void test_nchw_gather(FeatureSet detected) {
  const auto& family = reg::families().nchw_gather;
  const cpu::conv::NchwGatherOps& ref = cpu::conv::nchw_gather_ops_portable();
  struct Shape {
    int64_t c, h, w, r, s, sh, sw, dh, dw, pt, pl, pb, pr, groups;
  };
  const std::vector<Shape> shapes = {
      {3, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},   {4, 9, 13, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 2},
      {2, 5, 40, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1},  {2, 6, 11, 3, 5, 1, 2, 2, 1, 2, 0, 1, 3, 1},
      {3, 8, 8, 2, 2, 3, 3, 1, 1, 0, 1, 1, 0, 1},   {2, 4, 3, 1, 7, 1, 1, 1, 1, 0, 3, 0, 3, 1},
      {5, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}, {2, 57, 57, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0, 1},
      {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1},   {2, 3, 70, 3, 3, 1, 2, 1, 3, 1, 4, 1, 4, 1}};
  std::mt19937 rng(77);
  int cases = 0, fails = 0;
  for (const auto& e : family) {
    if (!detected.contains(e.required)) {
      std::printf("skip nchw_gather %s: the CPU lacks %s\n", e.name, feature_names(e.required.without(detected)).c_str());
      continue;
    }
    for (const Shape& sh : shapes) {
      Conv2dDesc d;
      d.n = 2, d.c = sh.c, d.h = sh.h, d.w = sh.w, d.k = sh.groups, d.r = sh.r, d.s = sh.s;
      d.stride_h = sh.sh, d.stride_w = sh.sw, d.dilation_h = sh.dh, d.dilation_w = sh.dw;
      d.pad_top = sh.pt, d.pad_left = sh.pl, d.pad_bottom = sh.pb, d.pad_right = sh.pr, d.groups = sh.groups;
      d.layout = Layout::kNCHW;
      const int64_t pq = d.p() * d.q(), depth = d.cg() * d.r * d.s, xn = d.n * d.c * d.h * d.w;
      std::vector<uint32_t> x32(static_cast<size_t>(xn));
      std::vector<uint16_t> x16(static_cast<size_t>(xn));
      for (auto& v : x32) v = static_cast<uint32_t>(rng());
      for (auto& v : x16) v = static_cast<uint16_t>(rng());
      x32[0] = 0x7fc00001u, x16[0] = 0x7fc1;  // NaN payloads, Inf: copied as bits
      if (xn > 1) x32[xn - 1] = 0xff800000u, x16[xn - 1] = 0xff80;
      for (int nr : {32, 16, 8}) {
        for (int64_t img = 0; img < d.n; ++img)
          for (int64_t g = 0; g < d.groups; ++g)
            for (const auto& blk : std::vector<std::array<int64_t, 5>>{
                     {0, pq, 0, 0, depth}, {pq / 3, pq - pq / 3, 5, 1, depth - 1}, {1, std::min<int64_t>(pq - 1, 40), nr - 1, 3, 2},
                     {0, pq, 0, depth - 1, 1}}) {
              const int64_t m0 = blk[0], mc = blk[1], j_off = blk[2], p0 = blk[3], kc = blk[4];
              if (mc <= 0 || kc <= 0 || p0 + kc > depth || m0 + mc > pq) continue;
              const int64_t panels = (j_off + mc + nr - 1) / nr, kw = (kc + 1) / 2;
              for (int pairs = 0; pairs < 2; ++pairs) {
                const int64_t words = panels * nr * (pairs ? kw : kc);
                std::vector<uint32_t> want(static_cast<size_t>(words), 0xa5a5a5a5u), got = want;
                if (pairs) {
                  ref.panels_bf16pairs(d, x16.data(), img, g, m0, mc, p0, kc, nr, want.data(), j_off);
                  e.impl->panels_bf16pairs(d, x16.data(), img, g, m0, mc, p0, kc, nr, got.data(), j_off);
                } else {
                  ref.panels_f32(d, reinterpret_cast<const float*>(x32.data()), img, g, m0, mc, p0, kc, nr,
                                 reinterpret_cast<float*>(want.data()), j_off);
                  e.impl->panels_f32(d, reinterpret_cast<const float*>(x32.data()), img, g, m0, mc, p0, kc, nr,
                                     reinterpret_cast<float*>(got.data()), j_off);
                }
                ++cases;
                size_t bad = 0;
                while (bad < want.size() && want[bad] == got[bad]) ++bad;
                if (bad < want.size()) ++fails;
                check(bad == want.size(),
                      std::string("nchw_gather ") + e.name + (pairs ? " bf16 pairs" : " f32") + " c=" +
                          std::to_string(d.c) + " " + std::to_string(d.h) + "x" + std::to_string(d.w) + " " +
                          std::to_string(d.r) + "x" + std::to_string(d.s) + "/" + std::to_string(d.stride_w) +
                          " nr=" + std::to_string(nr) + " m0=" + std::to_string(m0) + " mc=" + std::to_string(mc) +
                          " j_off=" + std::to_string(j_off) + " p0=" + std::to_string(p0) + " kc=" + std::to_string(kc) +
                          ": first difference at word " + std::to_string(bad));
              }
            }
      }
    }
    std::printf("nchw_gather %-24s %3d cases, %d failed\n", e.name, cases, fails);
    cases = fails = 0;
  }
}

void test_choices(FeatureSet detected) {
  const reg::Families& f = reg::families();
  // Every family ends in a portable entry that requires nothing.
  auto ends_portable = [](const char* fam, FeatureSet last) { check(last.empty(), std::string(fam) + " ends in a portable entry"); };
  ends_portable("f32_gemm", f.f32_gemm.back().required);
  ends_portable("int8_gemm", f.int8_gemm.back().required);
  ends_portable("depthwise", f.depthwise.back().required);
  ends_portable("reduce", f.reduce.back().required);
  // The chosen entry is the first whose features are active, and the CPU can run it.
  const FeatureSet active = active_features();
  for (const auto& info : reg::describe())
    if (info.chosen) check(info.runnable, info.family + " chose " + info.name + ", which the CPU cannot run");
  std::printf("chosen:   f32=%s bf16=%s int8=%s depthwise=%s reduce=%s\n", chosen(f.f32_gemm), chosen(f.bf16_gemm),
              chosen(f.int8_gemm), chosen(f.depthwise), chosen(f.reduce));
  (void)active;

#if defined(__aarch64__)
  using F = CpuFeature;
  // The aarch64 choices, feature by feature: what the CPU has decides, masks move the choice
  // down to the fallbacks (the same the registry does on a CPU without those features).
  const bool neon = detected.has(F::kNeon), dot = detected.has(F::kDotprod), mm = detected.has(F::kI8mm),
             bf = detected.has(F::kArmBf16);
  const std::string want_int8 = mm ? "u8s8_8x12_i8mm" : dot ? "s8s8_8x12_dotprod" : "s16_6x16_portable";
  check(chosen(f.int8_gemm) == want_int8, std::string("int8 chose ") + chosen(f.int8_gemm) + ", want " + want_int8);
  check(std::string(chosen(f.f32_gemm)) == (neon ? "f32_8x12_neon" : "f32_4x8_portable"), "f32 choice");
  check(std::string(chosen(f.bf16_gemm)) == (bf ? "bf16_8x12_armbf16" : neon ? "f32_8x12_neon" : "f32_4x8_portable"),
        std::string("bf16 chose ") + chosen(f.bf16_gemm));
  if (mm) {
    set_feature_mask("-i8mm");
    check(std::string(chosen(f.int8_gemm)) == (dot ? "s8s8_8x12_dotprod" : "s16_6x16_portable"),
          "masking i8mm falls back to dotprod");
  }
  set_feature_mask("-i8mm,-dotprod,-arm_bf16");
  check(std::string(chosen(f.int8_gemm)) == "s16_6x16_portable", "masking i8mm and dotprod falls back to portable");
  check(std::string(chosen(f.bf16_gemm)) == (neon ? "f32_8x12_neon" : "f32_4x8_portable"),
        "masking arm_bf16 falls back to the f32 entry");
  set_feature_mask("");
  // A feature of another architecture, masked or required, is an error naming it.
  for (const char* spec : {"-avx2", "+avx512_vnni", "-neon,-amx"}) {
    bool threw = false;
    try {
      set_feature_mask(spec);
    } catch (const InvalidArgument& e) {
      threw = std::string(e.what()).find("x86-64 feature") != std::string::npos;
    }
    check(threw, std::string("set_feature_mask(\"") + spec + "\") on aarch64 is an InvalidArgument naming an x86-64 feature");
  }
  set_feature_mask("");
  check(chosen(f.int8_gemm) == want_int8, "clearing the mask restores the choice");
#endif
  (void)detected;
}

}  // namespace

int main(int argc, char** argv) {
  std::string expect, unsupported;
  bool quick = false, have_expect = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--expect-features=", 0) == 0) {
      expect = arg.substr(18);
      have_expect = true;
    } else if (arg.rfind("--run-unsupported=", 0) == 0) {
      unsupported = arg.substr(18);
    } else if (arg == "--quick") {
      quick = true;
    } else {
      std::fprintf(stderr, "usage: %s [--expect-features=a,b,...] [--quick] [--run-unsupported=NAME]\n", argv[0]);
      return 2;
    }
  }
  const FeatureSet detected = cpu_info().features;
  std::printf("detected: %s\n", feature_names(detected).c_str());
  if (!unsupported.empty()) {
    const auto* e = reg::find(reg::families().int8_gemm, unsupported);
    if (e == nullptr) {
      std::printf("no int8_gemm entry named %s\n", unsupported.c_str());
      return 2;
    }
    std::mt19937 rng(5);
    std::fflush(stdout);
    const std::string err = run_int8_case(rng, *e->impl, DType::kU8, 1, 2, false, 9, 13, 37, false, 1, false);
    std::printf("%s ran: %s\n", e->name, err.empty() ? "correct" : err.c_str());
    return 0;
  }
  if (have_expect) {
    std::string spaced = expect;
    for (char& ch : spaced)
      if (ch == ',') ch = ' ';
    check(feature_names(detected) == spaced,
          "detected features '" + feature_names(detected) + "' are not the expected '" + spaced + "'");
  }
  try {
    const reg::Families& f = reg::families();
    test_float_family("f32_gemm", f.f32_gemm, DType::kF32, detected, quick);
    test_float_family("bf16_gemm", f.bf16_gemm, DType::kBF16, detected, quick);
    test_float_family("f16_gemm", f.f16_gemm, DType::kF16, detected, /*quick=*/true);
    test_int8_family(f.int8_gemm, detected, quick);
    test_nchw_gather(detected);
    test_choices(detected);
    test_neon_vs_portable(detected, quick, check);
  } catch (const std::exception& e) {
    check(false, std::string("exception: ") + e.what());
  }
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
