// Tile epilogue, AVX-512: 32 columns at a time, the row's last columns under a mask, for the
// layouts a conv or GEMM with a bf16 or f32 output mostly has (epilogue_in_registers: out with
// unit column stride, no C read, no gelu). Anything else goes to the AVX2 epilogue, which
// computes the same f32 operations in the same order. The arithmetic is
// epilogue_avx512_inl.h, shared with the microkernels that finish tiles in registers.
//
// Why: a bf16 output is rounded in the epilogue, and with the 8-wide AVX2 version plus its
// scalar tail that was as long as the microkernel itself on short-K layers (a 25088 x 64 x 256
// bf16 GEMM, a ResNet 1x1 64->256 conv: 43 % of the time in the epilogue, 35 % in the kernel).
#include "cpu/gemm/epilogue_avx512_inl.h"
#include "cpu/gemm/float_kernels.h"

namespace aicc::cpu::gemm_internal {

void epilogue_tile_avx512(const Epilogue& ep, const float* tile, int64_t ldt, int64_t i0, int64_t j0, int mr,
                          int nr) {
  namespace e = avx512_epilogue;
  if (!epilogue_in_registers(ep)) {
    epilogue_tile_avx2(ep, tile, ldt, i0, j0, mr, nr);
    return;
  }
  const e::RowParams p(ep);
  for (int i = 0; i < mr; ++i) {
    const float* t = tile + i * ldt;
    for (int j = 0; j < nr; j += 32) {
      const __mmask16 m0 = e::lanes(nr - j), m1 = e::lanes(nr - j - 16);
      // Full rows load unmasked: the tile was just stored by the microkernel, and a masked
      // load may have to wait for that store to reach L1 instead of being forwarded from it.
      const bool full = m1 == __mmask16(0xffff);
      const __m512 y0 = full ? _mm512_loadu_ps(t + j) : _mm512_maskz_loadu_ps(m0, t + j);
      const __m512 y1 = full ? _mm512_loadu_ps(t + j + 16) : _mm512_maskz_loadu_ps(m1, t + j + 16);
      e::finish_row32(p, y0, y1, i0 + i, j0 + j, m0, m1);
    }
  }
}

}  // namespace aicc::cpu::gemm_internal
