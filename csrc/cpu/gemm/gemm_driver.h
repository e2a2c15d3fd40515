// The blocked float GEMM driver, parameterized by operand packers (internal C++ API).
//
// aicc::cpu::gemm (aicc/gemm.h) is one client: it packs strided f32/f16/bf16 matrices.
// Convolution is another: it supplies packers that build implicit-GEMM (im2col-on-the-fly)
// panels straight from the image, so the unfolded matrix never exists in memory, and it can
// pack its weights once into a PackedB and reuse them across calls.
//
// What is computed:   out[i, j] = epilogue( sum_p  A[i, p] * B[p, j] ),  0 <= i < m, 0 <= j < n
// A is m x k and B is k x n, both as the packers present them (f32 values; the packers convert).
//
// The loops (BLIS order):  jc (nc columns) -> pc (kc depth) -> ic (mc rows) -> jr (nr) -> ir (mr).
//   * The B block (kc x nc) is packed once per (jc, pc), shared by all threads.
//   * Each task packs its own A block (mc x kc) and runs the microkernel over its tiles.
//   * Threads split the ic loop and, when there are too few row blocks, the jr loop; K is never
//     split across threads, and k blocking does not depend on the thread count, so every output
//     element's sum is formed in the same order on 1 or N threads: results are bit-identical.
//   * Partial sums between kc blocks live in `out` itself when it is f32 with unit column stride
//     (and is not C with beta != 0), else in an f32 workspace; the epilogue runs once per output
//     tile, after the last kc block, from an L1-resident tile.
//
// Packed layouts (floats; mr/nr are the microkernel tile of the config in use):
//   A block (mc x kc):  ceil(mc/mr) micro-panels, panel r at offset r*mr*kc;
//                       inside a panel element (i, p) is at p*mr + i  (k-major, mr rows per k).
//                       Rows past mc are zero.
//   B block (kc x nc):  ceil(nc/nr) micro-panels, panel s at offset s*nr*kc;
//                       inside a panel element (p, j) is at p*nr + j  (k-major, nr columns per k).
//                       Columns past nc are zero.
//   Zero padding is required: padded lanes are multiplied like real ones, so garbage there
//   (a NaN, an inf) would otherwise be harmless only by luck. Padded rows/columns never reach
//   `out` (edge tiles are written through a tile buffer, never out of bounds).
//
// Contract for packers: pack() may be called concurrently from several threads with disjoint
// destinations, for any block in any order; it must write every float of its destination
// region (ceil(mc/mr)*mr*kc floats for A, ceil(nc/nr)*nr*kc for B); kc may be 0.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "aicc/gemm.h"
#include "aicc/tensor.h"
#include "common/cpu_features.h"

namespace aicc::cpu::gemm_internal {

// Register-tile microkernel: c[mr x nr] (row stride ldc, unit column stride)
//   = sum_{p < kc} a[p*mr + i] * b[p*nr + j]          (accumulate == 0)
//   = c + that sum                                   (accumulate != 0; the sum is formed first,
//                                                      from zero, then added: a fixed order)
// a and b are packed micro-panels (layouts above); kc may be 0 (stores zeros / leaves c).
using FloatUkernel = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                              int accumulate);

// Epilogue of one output tile: rows [i0, i0 + mr), columns [j0, j0 + nr), from the f32 sums
// in `tile` (row stride ldt, unit column stride). Defined with Epilogue below.
struct Epilogue;
using EpilogueFn = void (*)(const Epilogue& ep, const float* tile, int64_t ldt, int64_t i0,
                            int64_t j0, int mr, int nr);

// Every decision about one ISA path in one place (BLIS's "context", ruy's path table):
// microkernel, its tile, the cache blocking, and the epilogue routine.
struct FloatGemmConfig {
  Isa isa;
  const char* ukernel_name;  // e.g. "f32_6x16_avx2"
  FloatUkernel ukernel;
  EpilogueFn epilogue;
  int mr, nr;   // register tile
  int mc;       // rows of A per block (multiple of mr; A block mc x kc stays in L2)
  int kc;       // depth per block (B micro-panel kc x nr stays in L1)
  int nc;       // columns of B per block (multiple of nr; B block kc x nc stays in L3)
};

// The config for an ISA path (the highest one compiled in that is <= isa).
const FloatGemmConfig& float_gemm_config(Isa isa);
inline const FloatGemmConfig& float_gemm_config() { return float_gemm_config(active_isa()); }

// ---------------------------------------------------------------------------------------
// Operand packers
// ---------------------------------------------------------------------------------------

// Packs the block A[i0 : i0+mc, p0 : p0+kc] into the A-block layout above (mr-row panels).
class APacker {
 public:
  virtual ~APacker() = default;
  virtual void pack(int64_t i0, int64_t mc, int64_t p0, int64_t kc, int mr, float* dst) const = 0;
};

// Packs the block B[p0 : p0+kc, j0 : j0+nc] into the B-block layout above (nr-column panels).
class BPacker {
 public:
  virtual ~BPacker() = default;
  virtual void pack(int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr, float* dst) const = 0;
};

// Packers for a strided f32 / f16 / bf16 matrix (any non-negative element strides, stride 0
// included), converting to f32. They use the vectorized routine of the active ISA path where
// the layout allows (unit stride along rows or columns) and a scalar loop otherwise.
class MatrixAPacker final : public APacker {
 public:
  explicit MatrixAPacker(const MatrixView& a) : a_(a) {}
  void pack(int64_t i0, int64_t mc, int64_t p0, int64_t kc, int mr, float* dst) const override;

 private:
  MatrixView a_;
};

class MatrixBPacker final : public BPacker {
 public:
  explicit MatrixBPacker(const MatrixView& b) : b_(b) {}
  void pack(int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr, float* dst) const override;

 private:
  MatrixView b_;
};

// ---------------------------------------------------------------------------------------
// Epilogue: out = round(activation(alpha * acc + beta * C + bias)), in f32, in that order.
// ---------------------------------------------------------------------------------------
struct Epilogue {
  float alpha = 1.0f;
  float beta = 0.0f;         // beta == 0: C is never read (NaN in C does not leak)
  MatrixView c;              // m x n, f32/f16/bf16, any strides (0 = broadcast); read iff beta != 0
  const float* bias = nullptr;  // nullptr, or f32 of length n (bias_per_row false) or m (true)
  bool bias_per_row = false;    // true: bias[i] (conv with weights as A); false: bias[j] (GEMM)
  Activation activation = Activation::kNone;
  MatrixView out;            // m x n, f32/f16/bf16, any positive strides; may alias C exactly
};

// ---------------------------------------------------------------------------------------
// Prepacked B (weights): packed once with the blocking of one config, reused across calls.
// ---------------------------------------------------------------------------------------
class PackedB {
 public:
  // Packs all of B (k x n) with the config of the ISA path active now.
  PackedB(const BPacker& b, int64_t k, int64_t n);
  PackedB(const BPacker& b, int64_t k, int64_t n, const FloatGemmConfig& config);

  int64_t k() const { return k_; }
  int64_t n() const { return n_; }
  const FloatGemmConfig& config() const { return *config_; }
  // The packed (jc, pc) block that starts at column j0 (a multiple of nc) and depth block pb.
  const float* block(int64_t j0, int64_t pb) const;
  int64_t kc_block() const { return kc_; }   // depth of every block but possibly the last

 private:
  const FloatGemmConfig* config_;
  int64_t k_, n_, kc_, num_kb_;
  struct Free {
    void operator()(float* p) const;
  };
  std::vector<int64_t> offsets_;  // per (jc block, pc block), into data_
  std::unique_ptr<float, Free> data_;  // 64-byte aligned
};

// The driver. m, n, k >= 0; ep.out is m x n. `threads` <= 0: the pool's size (small problems
// run on the calling thread regardless). Uses the config of the ISA path active now.
void run_float_gemm(int64_t m, int64_t n, int64_t k, const APacker& a, const BPacker& b,
                    const Epilogue& ep, int threads = 0);
// Same, with B prepacked (its config is used, so the tile matches its panels).
void run_float_gemm(int64_t m, const APacker& a, const PackedB& b, const Epilogue& ep,
                    int threads = 0);

// The depth of each kc block for a given k (balanced: k = 257 gives 129 + 128, not 256 + 1).
// Independent of the thread count, so results are too.
int64_t balanced_kc(int64_t k, int kc_max);

}  // namespace aicc::cpu::gemm_internal
