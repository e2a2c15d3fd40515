// INT8 multiply-add peak on the exact route of our INT8 GEMM: operands widened to int16,
// vpmaddwd (pairs of int16 products summed into int32, no saturation for int8-range inputs)
// then vpaddd into int32 accumulators. vpmaddubsw would be faster but saturates int16
// (docs/INT8_DESIGN.md, "Why `vpmaddwd`"), so it is not the peak our kernels can use.
#include <cstdint>

#include "cpu/peak/peak_probes.h"

namespace aicc::peak {

namespace {
// 8 accumulators (ymm0-7) fed by 4 A x 2 B operand registers (ymm8-13): 8 distinct products
// per iteration, two temporaries (ymm14/15) renamed by the core. Written as inline asm
// because compilers keep loop-invariant intrinsics out of the loop or spill accumulators
// (both were seen with GCC), and a peak probe must execute exactly the instructions counted.
constexpr int kChains = 8;
}

int int8_madd_ops_per_iter_avx2() { return kChains * 16 * 2; }

double int8_madd_loop_avx2(int64_t iters, int seed) {
  alignas(32) int16_t ops[6][16];
  for (int j = 0; j < 16; ++j) {
    for (int r = 0; r < 4; ++r) ops[r][j] = static_cast<int16_t>((seed + r + j) & 0x7f);
    ops[4][j] = -128;
    ops[5][j] = 127;
  }
  alignas(32) int32_t acc[8][8] = {};
  if (iters > 0) {
    asm volatile(
        "vmovdqa 0(%[ops]), %%ymm8\n\t"
        "vmovdqa 32(%[ops]), %%ymm9\n\t"
        "vmovdqa 64(%[ops]), %%ymm10\n\t"
        "vmovdqa 96(%[ops]), %%ymm11\n\t"
        "vmovdqa 128(%[ops]), %%ymm12\n\t"
        "vmovdqa 160(%[ops]), %%ymm13\n\t"
        "vpxor %%ymm0, %%ymm0, %%ymm0\n\t"
        "vpxor %%ymm1, %%ymm1, %%ymm1\n\t"
        "vpxor %%ymm2, %%ymm2, %%ymm2\n\t"
        "vpxor %%ymm3, %%ymm3, %%ymm3\n\t"
        "vpxor %%ymm4, %%ymm4, %%ymm4\n\t"
        "vpxor %%ymm5, %%ymm5, %%ymm5\n\t"
        "vpxor %%ymm6, %%ymm6, %%ymm6\n\t"
        "vpxor %%ymm7, %%ymm7, %%ymm7\n\t"
        "1:\n\t"
        "vpmaddwd %%ymm12, %%ymm8, %%ymm14\n\t"
        "vpmaddwd %%ymm12, %%ymm9, %%ymm15\n\t"
        "vpaddd %%ymm14, %%ymm0, %%ymm0\n\t"
        "vpaddd %%ymm15, %%ymm1, %%ymm1\n\t"
        "vpmaddwd %%ymm12, %%ymm10, %%ymm14\n\t"
        "vpmaddwd %%ymm12, %%ymm11, %%ymm15\n\t"
        "vpaddd %%ymm14, %%ymm2, %%ymm2\n\t"
        "vpaddd %%ymm15, %%ymm3, %%ymm3\n\t"
        "vpmaddwd %%ymm13, %%ymm8, %%ymm14\n\t"
        "vpmaddwd %%ymm13, %%ymm9, %%ymm15\n\t"
        "vpaddd %%ymm14, %%ymm4, %%ymm4\n\t"
        "vpaddd %%ymm15, %%ymm5, %%ymm5\n\t"
        "vpmaddwd %%ymm13, %%ymm10, %%ymm14\n\t"
        "vpmaddwd %%ymm13, %%ymm11, %%ymm15\n\t"
        "vpaddd %%ymm14, %%ymm6, %%ymm6\n\t"
        "vpaddd %%ymm15, %%ymm7, %%ymm7\n\t"
        "dec %[n]\n\t"
        "jnz 1b\n\t"
        "vmovdqa %%ymm0, 0(%[acc])\n\t"
        "vmovdqa %%ymm1, 32(%[acc])\n\t"
        "vmovdqa %%ymm2, 64(%[acc])\n\t"
        "vmovdqa %%ymm3, 96(%[acc])\n\t"
        "vmovdqa %%ymm4, 128(%[acc])\n\t"
        "vmovdqa %%ymm5, 160(%[acc])\n\t"
        "vmovdqa %%ymm6, 192(%[acc])\n\t"
        "vmovdqa %%ymm7, 224(%[acc])\n\t"
        "vzeroupper\n\t"
        : [n] "+r"(iters)
        : [ops] "r"(&ops[0][0]), [acc] "r"(&acc[0][0])
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
          "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory");
  }
  double total = 0;
  for (auto& row : acc)
    for (int32_t v : row) total += v;
  return total;
}

}  // namespace aicc::peak
