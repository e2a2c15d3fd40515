// Portable (plain C++) registry entries: last in every family, requiring no CPU feature, so
// every family always has a choice on any architecture.
#include "cpu/config/registry.h"
#include "cpu/gemm/float_kernels.h"

namespace aicc::cpu::registry {
namespace {

namespace gi = gemm_internal;
namespace qd = qgemm_detail;

// 4x8: 8 SSE2 / NEON registers of accumulators; the f32 entries' cache reasoning, smaller tile.
const gi::FloatGemmConfig kF32Portable = {"f32_4x8_portable", gi::PanelWord::kF32, gi::ukernel_f32_4x8_portable,
                                          gi::epilogue_tile_portable, nullptr, nullptr,
                                          /*mr=*/4, /*nr=*/8, /*mc=*/144, /*kc=*/256, /*nc=*/4080};
// INT8: int16 pairs with the zero points subtracted while packing (planar B panels for the
// portable kernel's unit-stride column loops), the AVX2 entry's blocking.
const gi::Int8Kernels kInt8PortableKernels = {qd::ukernel_s16_6x16_portable, qd::output_portable,
                                              qd::pack_a_s16_portable, qd::pack_b_s16_planar_portable, nullptr,
                                              nullptr};
const gi::FloatGemmConfig kInt8Portable = {"s16_6x16_portable", gi::PanelWord::kS16Pair, nullptr, nullptr, nullptr,
                                           nullptr, /*mr=*/qd::kMR, /*nr=*/qd::kNR, /*mc=*/144, /*kc=*/512,
                                           /*nc=*/4080, nullptr, nullptr, nullptr, nullptr, nullptr,
                                           &kInt8PortableKernels};
const ReduceKernels kReducePortable = {nullptr, nullptr, nullptr, nullptr};

}  // namespace

void register_portable(Families& f) {
  f.f32_gemm.push_back({kF32Portable.ukernel_name, FeatureSet(), &kF32Portable});
  f.int8_gemm.push_back({kInt8Portable.ukernel_name, FeatureSet(), &kInt8Portable});
  f.depthwise.push_back({"depthwise_portable", FeatureSet(), depthwise_ops_portable});
  f.depthwise_int8.push_back({"depthwise_int8_portable", FeatureSet(), depthwise_qconv2d_portable});
  f.smallc.push_back({"smallc_f32_portable", FeatureSet(), smallc_ops_portable});
  f.smallc_int8.push_back({"smallc_int8_via_qgemm_portable", FeatureSet(), nullptr});
  f.nchw_gather.push_back({"nchw_gather_portable", FeatureSet(), &conv::nchw_gather_ops_portable()});
  f.reduce.push_back({"reduce_portable", FeatureSet(), &kReducePortable});
  f.peak_f32.push_back({"fp32_fma_portable", FeatureSet(), &peak::fp32_fma_loop_entry_portable()});
  f.peak_int8.push_back({"int8_madd_portable", FeatureSet(), &peak::int8_madd_loop_entry_portable()});
}

}  // namespace aicc::cpu::registry
