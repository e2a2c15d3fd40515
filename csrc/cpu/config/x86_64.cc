// x86-64 kernel registry entries, best first within each family (csrc/cpu/config/registry.h).
// Blocking numbers and their reasons live here, next to the kernel they tune.
#include "cpu/config/registry.h"

#if defined(AICC_X86)
#include "cpu/gemm/float_kernels.h"
#endif

namespace aicc::cpu::registry {

#if defined(AICC_X86)
namespace {

using F = CpuFeature;
using gemm_internal::FloatGemmConfig;
using gemm_internal::PanelWord;
namespace gi = gemm_internal;
namespace qd = qgemm_detail;

constexpr FeatureSet kAvx2{F::kAvx2, F::kFma, F::kF16c};
constexpr FeatureSet kAvx512 = kAvx2 | FeatureSet{F::kAvx512f, F::kAvx512bw, F::kAvx512vl, F::kAvx512dq};

// ---- float GEMM ------------------------------------------------------------------------
// AVX-512 (12x32): kc = 512: the B micro-panel (512 x 32 x 4 B = 64 KiB) streams from L2 behind
// the kernel's prefetches (it never fit a 32 KiB Zen 4 L1d next to the A panel anyway), and
// half as many kc blocks halve the partial-sum traffic through out: 1 thread on Zen 4, square
// 1024/2048 and (2048, 4096, 1024) GEMMs 100 -> 105-107 GFLOPS (89-92 % of the FMA peak; kc =
// 256 gave 85 %), convs unchanged or better. mc = 144 (12 panels) keeps the A block (288 KiB)
// in L2; nc = 4064 = 127 x 32 (the shared B block, 8 MiB, in L3). Full tiles whose A rows
// can be read in place use the indirect kernel (gemm_driver.h).
const FloatGemmConfig kF32Avx512 = {"f32_12x32_avx512", PanelWord::kF32, gi::ukernel_f32_12x32_avx512,
                                    gi::epilogue_tile_avx2, gi::pack_a_f32_avx512, gi::pack_b_f32_avx512,
                                    /*mr=*/12, /*nr=*/32, /*mc=*/144, /*kc=*/512, /*nc=*/4064,
                                    gi::ukernel_f32_12x32_avx512_indirect, gi::ukernel_f32_12x32_avx512_indirect_epilogue,
                                    gi::ukernel_f32_12x32_avx512_strided_a,
                                    gi::ukernel_f32_12x32_avx512_rows, gi::ukernel_f32_12x32_avx512_strided_b};
// AVX2 (6x16): BLIS's Zen sgemm blocking. kc = 256: the B micro-panel (16 KiB) stays in a
// 32-48 KiB L1 next to the A micro-panel (6 KiB); mc = 144: the A block (144 KiB) in L2;
// nc = 4080: the shared B block (4 MiB) in L3 (docs/GEMM_DESIGN.md has the sweep).
const FloatGemmConfig kF32Avx2 = {"f32_6x16_avx2", PanelWord::kF32, gi::ukernel_f32_6x16_avx2,
                                  gi::epilogue_tile_avx2, gi::pack_a_avx2, gi::pack_b_avx2,
                                  /*mr=*/6, /*nr=*/16, /*mc=*/144, /*kc=*/256, /*nc=*/4080,
                                  gi::ukernel_f32_6x16_avx2_indirect};
// AVX512_BF16 (12x32 of pair words): the f32 kernel's register plan with vdpbf16ps. A word is
// 4 bytes as in f32 but holds two k, so kc = 1024 elements (512 words) is the f32 entry's
// footprint (B micro-panel 64 KiB from L2, A block 288 KiB in L2) with half as many kc
// blocks; against kc = 512, 1 thread on Zen 4: 2048^3 188 -> 199 GFLOPS, BERT shapes +1-5 %.
// The AVX-512 epilogue: the bf16 output rounding at 8 lanes cost as much as the multiply on
// short-K layers.
const FloatGemmConfig kBf16Avx512 = {"bf16_12x32_avx512bf16", PanelWord::kBF16Pair,
                                     gi::ukernel_bf16_12x32_avx512bf16, gi::epilogue_tile_avx512,
                                     gi::pack_a_bf16pair_avx512, gi::pack_b_bf16pair_avx512,
                                     /*mr=*/12, /*nr=*/32, /*mc=*/144, /*kc=*/1024, /*nc=*/4064,
                                     gi::ukernel_bf16_12x32_avx512bf16_indirect,
                                     gi::ukernel_bf16_12x32_avx512bf16_indirect_epilogue,
                                     /*ukernel_strided_a=*/nullptr, gi::ukernel_bf16_12x32_avx512bf16_rows};

// ---- INT8 GEMM (entries of the shared driver with INT8 words; qgemm_internal.h) ----------
// VNNI (12x32 of u8 x s8 quads, vpdpbusd): the f32 entry's register plan. kc = 1024 k (256
// words) puts a 32 KiB B micro-panel in L1/L2 next to the A block (96 x 1024 B = 96 KiB in L2;
// mc = 96 was qgemm's own blocking, and against 144 measured 512^3 1 thread 358-382 -> 389-397
// GOPS, the other shapes within noise); nc = 4064 (the shared B block, 4 MiB, in L3). The row sums
// of A come from its packer (vpsadbw while transposing), the column sums of B from vpdpbusd
// over the packed panel; the s32 output stage can run in the kernel's registers.
const gi::Int8Kernels kInt8VnniKernels = {qd::ukernel_u8s8_12x32_avx512vnni, qd::output_avx2,
                                          qd::pack_a_u8s8_avx512vnni,        qd::pack_b_u8s8_avx512vnni,
                                          qd::panel_sums_quads_u8,           qd::panel_sums_b_s8_32_avx512vnni,
                                          qd::ukernel_u8s8_12x32_s32out_avx512vnni};
const FloatGemmConfig kInt8Vnni = {"u8s8_12x32_avx512vnni", PanelWord::kU8Quad, nullptr, nullptr, nullptr, nullptr,
                                   /*mr=*/qd::kVnniMR, /*nr=*/qd::kVnniNR, /*mc=*/96, /*kc=*/1024, /*nc=*/4064,
                                   nullptr, nullptr, nullptr, nullptr, nullptr, &kInt8VnniKernels};
// AVX2 (6x16 of int16 pairs, vpmaddwd; zero points subtracted while packing): the f32 AVX2
// entry's blocking in words (kc = 512 k = 256 words: B micro-panel 16 KiB in L1).
const gi::Int8Kernels kInt8Avx2Kernels = {qd::ukernel_s16_6x16_avx2, qd::output_avx2, qd::pack_a_s16_avx2,
                                          qd::pack_b_s16_avx2, nullptr, nullptr};
const FloatGemmConfig kInt8Avx2 = {"s16_6x16_avx2", PanelWord::kS16Pair, nullptr, nullptr, nullptr, nullptr,
                                   /*mr=*/qd::kMR, /*nr=*/qd::kNR, /*mc=*/144, /*kc=*/512, /*nc=*/4080,
                                   nullptr, nullptr, nullptr, nullptr, nullptr, &kInt8Avx2Kernels};

const ReduceKernels kReduceAvx2 = {detail::reduce_n_avx2, detail::convert_avx2, detail::quantize_int8_block_avx2,
                                   detail::reduce_int8_block_avx2};

}  // namespace

void register_x86_64(Families& f) {
  f.f32_gemm.push_back({kF32Avx512.ukernel_name, kAvx512, &kF32Avx512});
  f.f32_gemm.push_back({kF32Avx2.ukernel_name, kAvx2, &kF32Avx2});
  f.bf16_gemm.push_back({kBf16Avx512.ukernel_name, kAvx512 | FeatureSet{F::kAvx512Bf16}, &kBf16Avx512});

  f.int8_gemm.push_back({kInt8Vnni.ukernel_name, kAvx512 | FeatureSet{F::kAvx512Vnni}, &kInt8Vnni});
  f.int8_gemm.push_back({kInt8Avx2.ukernel_name, kAvx2, &kInt8Avx2});

  f.depthwise.push_back({"depthwise_avx512bf16", kAvx512 | FeatureSet{F::kAvx512Bf16}, depthwise_ops_avx512bf16});
  f.depthwise.push_back({"depthwise_avx512", kAvx512, depthwise_ops_avx512});
  f.depthwise.push_back({"depthwise_avx2", kAvx2, depthwise_ops_avx2});
  f.depthwise_int8.push_back({"depthwise_int8_avx512vnni", kAvx512 | FeatureSet{F::kAvx512Vnni},
                              depthwise_qconv2d_avx512vnni});
  f.depthwise_int8.push_back({"depthwise_int8_avx2", kAvx2, depthwise_qconv2d_avx2});
  f.smallc_int8.push_back({"smallc_u8s8_avx512vnni", kAvx512 | FeatureSet{F::kAvx512Vnni}, &qstem_ops_avx512vnni()});
  f.smallc.push_back({"smallc_bf16_avx512bf16", kAvx512 | FeatureSet{F::kAvx512Bf16}, smallc_ops_avx512bf16});
  f.smallc.push_back({"smallc_f32_avx512", kAvx512, smallc_ops_avx512});
  f.smallc.push_back({"smallc_f32_avx2", kAvx2, smallc_ops_avx2});
  f.nchw_gather.push_back({"nchw_gather_avx512", kAvx512, &conv::nchw_gather_ops_avx512()});

  f.reduce.push_back({"reduce_avx2", kAvx2, &kReduceAvx2});

  f.peak_f32.push_back({"fp32_fma_avx512", kAvx512, &peak::fp32_fma_loop_entry_avx512()});
  f.peak_f32.push_back({"fp32_fma_avx2", kAvx2, &peak::fp32_fma_loop_entry_avx2()});
  f.peak_bf16.push_back({"bf16_dot_avx512bf16", kAvx512 | FeatureSet{F::kAvx512Bf16},
                         &peak::bf16_dot_loop_entry_avx512()});
  f.peak_int8.push_back({"int8_vnni_avx512", kAvx512 | FeatureSet{F::kAvx512Vnni}, &peak::int8_vnni_loop_entry_avx512()});
  f.peak_int8.push_back({"int8_madd_avx2", kAvx2, &peak::int8_madd_loop_entry_avx2()});
}
#else
void register_x86_64(Families&) {}
#endif

}  // namespace aicc::cpu::registry
