// f32 6x16 microkernel, AVX2 + FMA (layouts in gemm_driver.h). 12 ymm accumulators
// (6 rows x 2 vectors of 8 columns), 2 for the B row, 1 for the broadcast A value: 15 of 16
// registers. Per k step: 2 loads of B, 6 broadcasts of A, 12 FMAs, so the two FMA ports stay
// busy while the loads go through the two load ports. The C tile is prefetched by the driver,
// not here: prefetch code in this function makes GCC spill an accumulator (-6%, measured).
//
// The indirect variant (A read in place through row pointers, FloatIndirectUkernel in
// gemm_driver.h) runs the same FMAs in the same order: bit-identical tiles.
#include <immintrin.h>

#include "cpu/gemm/float_kernels.h"

namespace aicc::cpu::gemm_internal {

void ukernel_f32_6x16_avx2(int64_t kc, const void* a_words, const void* b_words, float* c, int64_t ldc,
                           int accumulate) {
  const float* a = static_cast<const float*>(a_words);  // kF32 words
  const float* b = static_cast<const float*>(b_words);
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();

#define AICC_STEP(P)                                                   \
  {                                                                    \
    const __m256 b0 = _mm256_load_ps(b + (P) * 16);                    \
    const __m256 b1 = _mm256_load_ps(b + (P) * 16 + 8);                \
    __m256 ai = _mm256_broadcast_ss(a + (P) * 6 + 0);                  \
    c00 = _mm256_fmadd_ps(ai, b0, c00);                                \
    c01 = _mm256_fmadd_ps(ai, b1, c01);                                \
    ai = _mm256_broadcast_ss(a + (P) * 6 + 1);                         \
    c10 = _mm256_fmadd_ps(ai, b0, c10);                                \
    c11 = _mm256_fmadd_ps(ai, b1, c11);                                \
    ai = _mm256_broadcast_ss(a + (P) * 6 + 2);                         \
    c20 = _mm256_fmadd_ps(ai, b0, c20);                                \
    c21 = _mm256_fmadd_ps(ai, b1, c21);                                \
    ai = _mm256_broadcast_ss(a + (P) * 6 + 3);                         \
    c30 = _mm256_fmadd_ps(ai, b0, c30);                                \
    c31 = _mm256_fmadd_ps(ai, b1, c31);                                \
    ai = _mm256_broadcast_ss(a + (P) * 6 + 4);                         \
    c40 = _mm256_fmadd_ps(ai, b0, c40);                                \
    c41 = _mm256_fmadd_ps(ai, b1, c41);                                \
    ai = _mm256_broadcast_ss(a + (P) * 6 + 5);                         \
    c50 = _mm256_fmadd_ps(ai, b0, c50);                                \
    c51 = _mm256_fmadd_ps(ai, b1, c51);                                \
  }

  int64_t p = 0;
  for (; p + 4 <= kc; p += 4) {
    // The next B rows are 4 * 64 bytes ahead: one line per step.
    _mm_prefetch(reinterpret_cast<const char*>(b + 4 * 16 * 4), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b + 4 * 16 * 4 + 32), _MM_HINT_T0);
    AICC_STEP(0) AICC_STEP(1) AICC_STEP(2) AICC_STEP(3)
    a += 4 * 6;
    b += 4 * 16;
  }
  for (; p < kc; ++p) {
    AICC_STEP(0)
    a += 6;
    b += 16;
  }
#undef AICC_STEP

  auto put = [&](float* row, __m256 v0, __m256 v1) {
    if (accumulate) {
      v0 = _mm256_add_ps(_mm256_loadu_ps(row), v0);
      v1 = _mm256_add_ps(_mm256_loadu_ps(row + 8), v1);
    }
    _mm256_storeu_ps(row, v0);
    _mm256_storeu_ps(row + 8, v1);
  };
  put(c + 0 * ldc, c00, c01);
  put(c + 1 * ldc, c10, c11);
  put(c + 2 * ldc, c20, c21);
  put(c + 3 * ldc, c30, c31);
  put(c + 4 * ldc, c40, c41);
  put(c + 5 * ldc, c50, c51);
}

// A in place: per segment s, a table of 6 row pointers (rows[6 s + i]), each row's run of
// seg_words[s] contiguous floats. Inline assembly: from intrinsics GCC 12 kept the six row
// pointers in registers but spilled two accumulators to the stack inside the k loop. Here the
// accumulators are ymm0-11 (row i: ymm2i, ymm2i+1), B ymm12-13, the broadcasts alternate
// ymm14/15, and the row pointers live in six scratch registers for the whole segment. Per
// accumulator the products are added in k order from zero, then to C: bit-identical to the
// packed kernel. c, ldc and accumulate are memory operands: with seven scratch registers taken
// there are not enough general registers left to hold them too.
// One k step: the B row at byte offset BOFF from b (ymm12-13), then per row a broadcast of the
// word at byte offset AOFF from that row's current position (row pointer + 4 r11) into ymm14/15
// (alternating, so consecutive rows do not wait on one register) and two FMAs.
#define AICC_ROW6(PTR, AOFF, BC, C0, C1)                            \
  "vbroadcastss " #AOFF "(%%" #PTR ",%%r11,4), %%ymm" #BC "\n\t"  \
  "vfmadd231ps %%ymm12, %%ymm" #BC ", %%ymm" #C0 "\n\t"           \
  "vfmadd231ps %%ymm13, %%ymm" #BC ", %%ymm" #C1 "\n\t"
#define AICC_STEP6(BOFF, AOFF)                                      \
  "vmovaps " #BOFF "(%[b]), %%ymm12\n\t"                           \
  "vmovaps " #BOFF "+32(%[b]), %%ymm13\n\t"                        \
  AICC_ROW6(rax, AOFF, 14, 0, 1) AICC_ROW6(rcx, AOFF, 15, 2, 3)      \
  AICC_ROW6(rdx, AOFF, 14, 4, 5) AICC_ROW6(r8, AOFF, 15, 6, 7)       \
  AICC_ROW6(r9, AOFF, 14, 8, 9) AICC_ROW6(r10, AOFF, 15, 10, 11)

void ukernel_f32_6x16_avx2_indirect(int64_t nseg, const int64_t* seg_words, const void* const* rows,
                                    const void* b_words, float* c, int64_t ldc, int accumulate) {
  if (nseg <= 0) {
    for (int i = 0; i < 6; ++i)
      for (int j = 0; j < 16; ++j) c[i * ldc + j] = accumulate ? c[i * ldc + j] : 0.0f;
    return;
  }
  const void* const* r = rows;
  const int64_t* seg = seg_words;
  const float* b = static_cast<const float*>(b_words);
  int64_t len;
  const int64_t ldc_bytes = ldc * 4;
  asm volatile(
        "vxorps %%ymm0, %%ymm0, %%ymm0\n\t"
        "vxorps %%ymm1, %%ymm1, %%ymm1\n\t"
        "vxorps %%ymm2, %%ymm2, %%ymm2\n\t"
        "vxorps %%ymm3, %%ymm3, %%ymm3\n\t"
        "vxorps %%ymm4, %%ymm4, %%ymm4\n\t"
        "vxorps %%ymm5, %%ymm5, %%ymm5\n\t"
        "vxorps %%ymm6, %%ymm6, %%ymm6\n\t"
        "vxorps %%ymm7, %%ymm7, %%ymm7\n\t"
        "vxorps %%ymm8, %%ymm8, %%ymm8\n\t"
        "vxorps %%ymm9, %%ymm9, %%ymm9\n\t"
        "vxorps %%ymm10, %%ymm10, %%ymm10\n\t"
        "vxorps %%ymm11, %%ymm11, %%ymm11\n\t"
        "0:\n\t"  // segment loop: load the six row pointers, k index r11 = 0
        "mov (%[seg]), %[len]\n\t"
        "mov 0(%[r]), %%rax\n\t"
        "mov 8(%[r]), %%rcx\n\t"
        "mov 16(%[r]), %%rdx\n\t"
        "mov 24(%[r]), %%r8\n\t"
        "mov 32(%[r]), %%r9\n\t"
        "mov 40(%[r]), %%r10\n\t"
        "xor %%r11, %%r11\n\t"
        "cmp $4, %[len]\n\t"
        "jl 2f\n\t"
        "1:\n\t"  // 4 k steps
        "prefetcht0 256(%[b])\n\t"  // B 4 steps ahead, as the packed kernel
        "prefetcht0 288(%[b])\n\t"
        AICC_STEP6(0, 0) AICC_STEP6(64, 4) AICC_STEP6(128, 8) AICC_STEP6(192, 12)
        "add $256, %[b]\n\t"
        "add $4, %%r11\n\t"
        "sub $4, %[len]\n\t"
        "cmp $4, %[len]\n\t"
        "jge 1b\n\t"
        "2:\n\t"
        "test %[len], %[len]\n\t"
        "jz 3f\n\t"
        "5:\n\t"  // single k steps
        AICC_STEP6(0, 0)
        "add $64, %[b]\n\t"
        "add $1, %%r11\n\t"
        "sub $1, %[len]\n\t"
        "jnz 5b\n\t"
        "3:\n\t"
        "add $48, %[r]\n\t"
        "add $8, %[seg]\n\t"
        "sub $1, %[nseg]\n\t"
        "jnz 0b\n\t"
        "mov %[c], %%rax\n\t"
        "cmpl $0, %[accumulate]\n\t"
        "jz 6f\n\t"
        "vaddps (%%rax), %%ymm0, %%ymm0\n\t"
        "vaddps 32(%%rax), %%ymm1, %%ymm1\n\t"
        "vmovups %%ymm0, (%%rax)\n\t"
        "vmovups %%ymm1, 32(%%rax)\n\t"
        "add %[ldc], %%rax\n\t"
        "vaddps (%%rax), %%ymm2, %%ymm2\n\t"
        "vaddps 32(%%rax), %%ymm3, %%ymm3\n\t"
        "vmovups %%ymm2, (%%rax)\n\t"
        "vmovups %%ymm3, 32(%%rax)\n\t"
        "add %[ldc], %%rax\n\t"
        "vaddps (%%rax), %%ymm4, %%ymm4\n\t"
        "vaddps 32(%%rax), %%ymm5, %%ymm5\n\t"
        "vmovups %%ymm4, (%%rax)\n\t"
        "vmovups %%ymm5, 32(%%rax)\n\t"
        "add %[ldc], %%rax\n\t"
        "vaddps (%%rax), %%ymm6, %%ymm6\n\t"
        "vaddps 32(%%rax), %%ymm7, %%ymm7\n\t"
        "vmovups %%ymm6, (%%rax)\n\t"
        "vmovups %%ymm7, 32(%%rax)\n\t"
        "add %[ldc], %%rax\n\t"
        "vaddps (%%rax), %%ymm8, %%ymm8\n\t"
        "vaddps 32(%%rax), %%ymm9, %%ymm9\n\t"
        "vmovups %%ymm8, (%%rax)\n\t"
        "vmovups %%ymm9, 32(%%rax)\n\t"
        "add %[ldc], %%rax\n\t"
        "vaddps (%%rax), %%ymm10, %%ymm10\n\t"
        "vaddps 32(%%rax), %%ymm11, %%ymm11\n\t"
        "vmovups %%ymm10, (%%rax)\n\t"
        "vmovups %%ymm11, 32(%%rax)\n\t"
        "add %[ldc], %%rax\n\t"
        "jmp 7f\n\t"
        "6:\n\t"
        "vmovups %%ymm0, (%%rax)\n\t"
        "vmovups %%ymm1, 32(%%rax)\n\t"
        "add %[ldc], %%rax\n\t"
        "vmovups %%ymm2, (%%rax)\n\t"
        "vmovups %%ymm3, 32(%%rax)\n\t"
        "add %[ldc], %%rax\n\t"
        "vmovups %%ymm4, (%%rax)\n\t"
        "vmovups %%ymm5, 32(%%rax)\n\t"
        "add %[ldc], %%rax\n\t"
        "vmovups %%ymm6, (%%rax)\n\t"
        "vmovups %%ymm7, 32(%%rax)\n\t"
        "add %[ldc], %%rax\n\t"
        "vmovups %%ymm8, (%%rax)\n\t"
        "vmovups %%ymm9, 32(%%rax)\n\t"
        "add %[ldc], %%rax\n\t"
        "vmovups %%ymm10, (%%rax)\n\t"
        "vmovups %%ymm11, 32(%%rax)\n\t"
        "add %[ldc], %%rax\n\t"
        "7:\n\t"
        : [r] "+r"(r), [seg] "+r"(seg), [nseg] "+r"(nseg), [b] "+r"(b), [len] "=&r"(len)
        : [c] "m"(c), [ldc] "m"(ldc_bytes), [accumulate] "m"(accumulate)
        : "rax", "rcx", "rdx", "r8", "r9", "r10", "r11", "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4",
          "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
}
#undef AICC_STEP6
#undef AICC_ROW6

}  // namespace aicc::cpu::gemm_internal
