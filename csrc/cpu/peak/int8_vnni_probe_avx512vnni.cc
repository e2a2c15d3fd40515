// INT8 multiply-add peak of the AVX-512 VNNI route: vpdpbusd (u8 x s8, four products summed
// into each int32 lane, no intermediate saturation, so exact) on zmm registers. On machines
// with AVX-512 VNNI our INT8 GEMM dispatches to this instruction (ukernels/u8s8_12x32_avx512vnni),
// so its % of peak is measured against this loop, not the AVX2 vpmaddwd one.
// 16 accumulators (zmm0-15) fed by 4 A x 4 B operand registers (zmm16-23): 16 independent
// chains cover a 5-cycle latency at two instructions per cycle. Inline asm for the same
// reason as the AVX2 probe: the loop must execute exactly the instructions counted.
#include <cstdint>

#include "cpu/peak/peak_probes.h"

namespace aicc::peak {

namespace {
constexpr int kChains = 16;
}

// 64 u8 x s8 multiply-adds per instruction = 128 ops.
int int8_vnni_ops_per_iter_avx512() { return kChains * 64 * 2; }

double int8_vnni_loop_avx512(int64_t iters, int seed) {
  alignas(64) uint8_t ops[8][64];
  for (int j = 0; j < 64; ++j) {
    for (int r = 0; r < 4; ++r) ops[r][j] = static_cast<uint8_t>((seed + r + j) & 0xff);
    for (int r = 4; r < 8; ++r) ops[r][j] = static_cast<uint8_t>(static_cast<int8_t>((r & 1) ? -128 : 127));
  }
  alignas(64) int32_t acc[kChains][16] = {};
  if (iters > 0) {
    asm volatile(
        "vmovdqu32 0(%[ops]), %%zmm16\n\t"
        "vmovdqu32 64(%[ops]), %%zmm17\n\t"
        "vmovdqu32 128(%[ops]), %%zmm18\n\t"
        "vmovdqu32 192(%[ops]), %%zmm19\n\t"
        "vmovdqu32 256(%[ops]), %%zmm20\n\t"
        "vmovdqu32 320(%[ops]), %%zmm21\n\t"
        "vmovdqu32 384(%[ops]), %%zmm22\n\t"
        "vmovdqu32 448(%[ops]), %%zmm23\n\t"
        "vpxord %%zmm0, %%zmm0, %%zmm0\n\t"
        "vpxord %%zmm1, %%zmm1, %%zmm1\n\t"
        "vpxord %%zmm2, %%zmm2, %%zmm2\n\t"
        "vpxord %%zmm3, %%zmm3, %%zmm3\n\t"
        "vpxord %%zmm4, %%zmm4, %%zmm4\n\t"
        "vpxord %%zmm5, %%zmm5, %%zmm5\n\t"
        "vpxord %%zmm6, %%zmm6, %%zmm6\n\t"
        "vpxord %%zmm7, %%zmm7, %%zmm7\n\t"
        "vpxord %%zmm8, %%zmm8, %%zmm8\n\t"
        "vpxord %%zmm9, %%zmm9, %%zmm9\n\t"
        "vpxord %%zmm10, %%zmm10, %%zmm10\n\t"
        "vpxord %%zmm11, %%zmm11, %%zmm11\n\t"
        "vpxord %%zmm12, %%zmm12, %%zmm12\n\t"
        "vpxord %%zmm13, %%zmm13, %%zmm13\n\t"
        "vpxord %%zmm14, %%zmm14, %%zmm14\n\t"
        "vpxord %%zmm15, %%zmm15, %%zmm15\n\t"
        "1:\n\t"
        "vpdpbusd %%zmm20, %%zmm16, %%zmm0\n\t"
        "vpdpbusd %%zmm20, %%zmm17, %%zmm1\n\t"
        "vpdpbusd %%zmm20, %%zmm18, %%zmm2\n\t"
        "vpdpbusd %%zmm20, %%zmm19, %%zmm3\n\t"
        "vpdpbusd %%zmm21, %%zmm16, %%zmm4\n\t"
        "vpdpbusd %%zmm21, %%zmm17, %%zmm5\n\t"
        "vpdpbusd %%zmm21, %%zmm18, %%zmm6\n\t"
        "vpdpbusd %%zmm21, %%zmm19, %%zmm7\n\t"
        "vpdpbusd %%zmm22, %%zmm16, %%zmm8\n\t"
        "vpdpbusd %%zmm22, %%zmm17, %%zmm9\n\t"
        "vpdpbusd %%zmm22, %%zmm18, %%zmm10\n\t"
        "vpdpbusd %%zmm22, %%zmm19, %%zmm11\n\t"
        "vpdpbusd %%zmm23, %%zmm16, %%zmm12\n\t"
        "vpdpbusd %%zmm23, %%zmm17, %%zmm13\n\t"
        "vpdpbusd %%zmm23, %%zmm18, %%zmm14\n\t"
        "vpdpbusd %%zmm23, %%zmm19, %%zmm15\n\t"
        "dec %[n]\n\t"
        "jnz 1b\n\t"
        "vmovdqu32 %%zmm0, 0(%[acc])\n\t"
        "vmovdqu32 %%zmm1, 64(%[acc])\n\t"
        "vmovdqu32 %%zmm2, 128(%[acc])\n\t"
        "vmovdqu32 %%zmm3, 192(%[acc])\n\t"
        "vmovdqu32 %%zmm4, 256(%[acc])\n\t"
        "vmovdqu32 %%zmm5, 320(%[acc])\n\t"
        "vmovdqu32 %%zmm6, 384(%[acc])\n\t"
        "vmovdqu32 %%zmm7, 448(%[acc])\n\t"
        "vmovdqu32 %%zmm8, 512(%[acc])\n\t"
        "vmovdqu32 %%zmm9, 576(%[acc])\n\t"
        "vmovdqu32 %%zmm10, 640(%[acc])\n\t"
        "vmovdqu32 %%zmm11, 704(%[acc])\n\t"
        "vmovdqu32 %%zmm12, 768(%[acc])\n\t"
        "vmovdqu32 %%zmm13, 832(%[acc])\n\t"
        "vmovdqu32 %%zmm14, 896(%[acc])\n\t"
        "vmovdqu32 %%zmm15, 960(%[acc])\n\t"
        "vzeroupper\n\t"
        : [n] "+r"(iters)
        : [ops] "r"(&ops[0][0]), [acc] "r"(&acc[0][0])
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "cc", "memory");
  }
  double total = 0;
  for (auto& row : acc)
    for (int32_t v : row) total += v;
  return total;
}

}  // namespace aicc::peak
