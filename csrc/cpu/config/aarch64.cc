// aarch64 kernel registry entries, best first within each family (csrc/cpu/config/registry.h).
// Features are read from getauxval(AT_HWCAP / AT_HWCAP2) (common/cpu_features.cc); families
// without an entry here (depthwise INT8 driver, peak probes) use the portable entries, which
// the compiler vectorizes for NEON at the armv8-a baseline.
#include "cpu/config/registry.h"

#if defined(__aarch64__)
#include "cpu/gemm/aarch64_kernels.h"
#include "cpu/gemm/float_kernels.h"
#endif

#if defined(__aarch64__)
// The NEON depthwise table and reduction kernels (cpu/conv/depthwise_conv2d_neon.cc,
// cpu/reduce/reduce_neon.cc), declared here: this file is their only caller.
namespace aicc::cpu {
const DepthwiseOps& depthwise_ops_neon(DType dtype);
namespace detail {
bool reduce_n_neon(DType dtype, ReduceOp op, const void* const* src, int nsrc, void* dst, int64_t n, int divisor);
bool convert_neon(DType from, const void* src, DType to, void* dst, int64_t n);
void quantize_int8_block_neon(const float* x, int64_t len, int8_t* q, float* scale);
void reduce_int8_block_neon(ReduceOp op, const int8_t* const* q, const float* const* scales, int nsrc, int64_t len,
                            int divisor, float* acc);
}  // namespace detail
}  // namespace aicc::cpu
#endif

namespace aicc::cpu::registry {

#if defined(__aarch64__)
namespace {

using F = CpuFeature;
using gemm_internal::FloatGemmConfig;
using gemm_internal::PanelWord;
namespace gi = gemm_internal;
namespace qd = qgemm_detail;

constexpr FeatureSet kNeon{F::kNeon};

// ---- float GEMM ------------------------------------------------------------------------
// NEON 8x12: kc = 256 keeps the B micro-panel (256 x 12 x 4 B = 12 KiB) in a 64 KiB L1d
// (Neoverse N1/V1/V2, Cortex-A7x) next to the A micro-panel (8 KiB); mc = 128 (16 panels) keeps
// the A block (128 KiB) in a 512 KiB-1 MiB L2; nc = 4080 = 340 x 12 (the shared B block, 4 MiB,
// in the SLC / L3). The portable packers serve these entries (nothing to vectorize-pack yet).
const FloatGemmConfig kF32Neon = {"f32_8x12_neon", PanelWord::kF32, gi::ukernel_f32_8x12_neon,
                                  gi::epilogue_tile_portable, nullptr, nullptr,
                                  /*mr=*/8, /*nr=*/12, /*mc=*/128, /*kc=*/256, /*nc=*/4080};
// BF16 (bfdot, pair words): the f32 register plan; a word holds two k, so kc = 512 elements
// (256 words) keeps the f32 entry's cache footprint.
const FloatGemmConfig kBf16ArmBf16 = {"bf16_8x12_armbf16", PanelWord::kBF16Pair, gi::ukernel_bf16_8x12_armbf16,
                                      gi::epilogue_tile_portable, nullptr, nullptr,
                                      /*mr=*/8, /*nr=*/12, /*mc=*/128, /*kc=*/512, /*nc=*/4080};

// ---- INT8 GEMM (shared-driver entries with INT8 words; layouts in aarch64_kernels.h) -----
// Both fold the zero points after the product (raw bytes packed; the packers sum what they
// pack). kc = 1024 k (256 words) keeps the B micro-panel (12 KiB) in L1; mc = 128 (16 panels)
// the A block (128 KiB) in L2; nc = 4080 = 340 x 12 as the f32 entry. The pair word's depth
// blocks start on word pairs (k_granule 8): only the last block may end on an odd word.
// i8mm: usmmla, u8 x s8 directly (A in the u8 domain, as VNNI).
const gi::Int8Kernels kInt8I8mmKernels = {qd::ukernel_u8s8_8x12_i8mm, qd::output_portable, qd::pack_a_u8_pairs_neon,
                                          qd::pack_b_s8_pairs_neon,   qd::panel_sums_pairs_u8, qd::panel_sums_pairs_s8};
const FloatGemmConfig kInt8I8mm = {"u8s8_8x12_i8mm", PanelWord::kU8QuadPair, nullptr, nullptr, nullptr, nullptr,
                                   /*mr=*/qd::kMmlaMR, /*nr=*/qd::kMmlaNR, /*mc=*/128, /*kc=*/1024, /*nc=*/4080,
                                   nullptr, nullptr, nullptr, nullptr, nullptr, &kInt8I8mmKernels};
// dotprod: sdot is s8 x s8 only, so u8 activations are moved to s8 (a - 128) and the driver
// corrects with the row/column sums: exact for every input.
const gi::Int8Kernels kInt8DotprodKernels = {qd::ukernel_s8s8_8x12_dotprod, qd::output_portable,
                                             qd::pack_a_s8_quads_neon,      qd::pack_b_s8_quads_neon,
                                             qd::panel_sums_quads_s8,       qd::panel_sums_quads_s8};
const FloatGemmConfig kInt8Dotprod = {"s8s8_8x12_dotprod", PanelWord::kS8Quad, nullptr, nullptr, nullptr, nullptr,
                                      /*mr=*/qd::kDotMR, /*nr=*/qd::kDotNR, /*mc=*/128, /*kc=*/1024, /*nc=*/4080,
                                      nullptr, nullptr, nullptr, nullptr, nullptr, &kInt8DotprodKernels};

// ---- reductions (collectives) ------------------------------------------------------------
// f32/f16/bf16 reduce_n and conversions, INT8 block (de)quantization: the portable bits.
const ReduceKernels kReduceNeon = {detail::reduce_n_neon, detail::convert_neon, detail::quantize_int8_block_neon,
                                   detail::reduce_int8_block_neon};

}  // namespace

void register_aarch64(Families& f) {
  f.f32_gemm.push_back({kF32Neon.ukernel_name, kNeon, &kF32Neon});
  f.bf16_gemm.push_back({kBf16ArmBf16.ukernel_name, kNeon | FeatureSet{F::kArmBf16}, &kBf16ArmBf16});

  f.int8_gemm.push_back({kInt8I8mm.ukernel_name, kNeon | FeatureSet{F::kI8mm}, &kInt8I8mm});
  f.int8_gemm.push_back({kInt8Dotprod.ukernel_name, kNeon | FeatureSet{F::kDotprod}, &kInt8Dotprod});

  // Depthwise (float and the INT8 primitive the INT8 driver calls): bit-identical to
  // depthwise_portable (same 4-lane sums; intrinsics for the f16 and byte widening).
  f.depthwise.push_back({"depthwise_neon", kNeon, depthwise_ops_neon});
  f.reduce.push_back({"reduce_neon", kNeon, &kReduceNeon});
}
#else
void register_aarch64(Families&) {}
#endif

}  // namespace aicc::cpu::registry
