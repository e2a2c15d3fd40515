// The float GEMM decision table: per ISA path, the microkernel, its tile and the cache
// blocking. The only place these numbers live.
//
// AVX2 (6x16): BLIS's Zen sgemm blocking. kc = 256: the B micro-panel (256 x 16 x 4 B = 16 KiB)
// stays in a 32-48 KiB L1 next to the A micro-panel (6 KiB); mc = 144: the A block
// (144 x 256 x 4 B = 144 KiB) stays in a 512 KiB+ L2; nc = 4080: the shared B block (4 MiB)
// lives in L3. Measured on this machine (docs/GEMM_DESIGN.md), kc 256..384 and mc 96..192 are
// within noise of each other; the BLIS values are kept since they suit the target EPYC caches.
// AVX-512 (12x32): kc = 256 keeps the B micro-panel (256 x 32 x 4 B = 32 KiB) in the 48 KiB
// L1d of this Xeon next to the streamed A micro-panel (12 KiB); mc = 144 (12 panels) keeps the
// A block (144 KiB) in L2; nc = 4064 = 127 x 32 (the shared B block, 4 MiB, in L3).
// Portable (4x8): the same cache reasoning with the smaller tile.
#include "cpu/gemm/float_kernels.h"
#include "cpu/gemm/gemm_driver.h"

namespace aicc::cpu::gemm_internal {
namespace {

const FloatGemmConfig kPortable = {Isa::kPortable, "f32_4x8_portable", ukernel_f32_4x8_portable,
                                   epilogue_tile_portable, /*mr=*/4, /*nr=*/8,
                                   /*mc=*/144, /*kc=*/256, /*nc=*/4080};
#if defined(AICC_X86)
const FloatGemmConfig kAvx2 = {Isa::kAvx2, "f32_6x16_avx2", ukernel_f32_6x16_avx2, epilogue_tile_avx2,
                               /*mr=*/6, /*nr=*/16, /*mc=*/144, /*kc=*/256, /*nc=*/4080};
const FloatGemmConfig kAvx512 = {Isa::kAvx512, "f32_12x32_avx512", ukernel_f32_12x32_avx512,
                                 epilogue_tile_avx2, /*mr=*/12, /*nr=*/32, /*mc=*/144, /*kc=*/256,
                                 /*nc=*/4064};
#endif

}  // namespace

const FloatGemmConfig& float_gemm_config(Isa isa) {
#if defined(AICC_X86)
  if (isa >= Isa::kAvx512) return kAvx512;
  if (isa >= Isa::kAvx2) return kAvx2;
#endif
  return kPortable;
}

}  // namespace aicc::cpu::gemm_internal
