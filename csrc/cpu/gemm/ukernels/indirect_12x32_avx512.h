// The 12x32 AVX-512 indirect microkernel (FloatIndirectUkernel, gemm_driver.h), shared by the
// f32 entry (DOT = vfmadd231ps on f32 words) and the bf16 entry (DOT = vdpbf16ps on bf16 pair
// words: the same 32-bit broadcast of a row's word, the pair's two products added into each
// f32 lane). Each kernel file expands it once with its own instruction, compiled with its own
// ISA flags.
//
// A in place: per segment s, a table of 12 row pointers (rows[12 s + i]), each row's run of
// seg_words[s] contiguous floats. One block of inline assembly, because twelve row pointers do
// not fit in the general registers next to b and the loop counters: compiled from intrinsics,
// GCC 12 spilled accumulators and pointers to the stack every k step and the kernel ran at
// 85 % of the FMA peak. Here each row's pointer is loaded from the table once per 4 k steps
// and its 4 values feed the FMAs as embedded broadcasts ({1to16}), with the 8 B vectors of
// those 4 steps in zmm24-31 and the 24 accumulators in zmm0-23 (row i: zmm2i, zmm2i+1): all 32
// vector registers, no broadcast register, nothing on the stack. Per accumulator the products
// are added in k order from zero and then to C, as in the packed kernel: bit-identical tiles.
#pragma once

#include <cstdint>

#define AICC_DEFINE_INDIRECT_12X32_AVX512(NAME, DOT) \
void NAME(int64_t nseg, const int64_t* seg_words, const void* const* rows, \
          const void* b_words, float* c, int64_t ldc, int accumulate) { \
  if (nseg <= 0) { \
    /* An empty depth: the tile is C (accumulate) or zeros, as the packed kernel with kc = 0. */ \
    for (int i = 0; i < 12; ++i) \
      for (int j = 0; j < 32; ++j) c[i * ldc + j] = accumulate ? c[i * ldc + j] : 0.0f; \
    return; \
  } \
  const void* const* r = rows; \
  const int64_t* seg = seg_words; \
  const float* b = static_cast<const float*>(b_words); \
  int64_t len, idx; \
  const int64_t ldc_bytes = ldc * 4; \
  asm volatile( \
        "vpxord %%zmm0, %%zmm0, %%zmm0\n\t" \
        "vpxord %%zmm1, %%zmm1, %%zmm1\n\t" \
        "vpxord %%zmm2, %%zmm2, %%zmm2\n\t" \
        "vpxord %%zmm3, %%zmm3, %%zmm3\n\t" \
        "vpxord %%zmm4, %%zmm4, %%zmm4\n\t" \
        "vpxord %%zmm5, %%zmm5, %%zmm5\n\t" \
        "vpxord %%zmm6, %%zmm6, %%zmm6\n\t" \
        "vpxord %%zmm7, %%zmm7, %%zmm7\n\t" \
        "vpxord %%zmm8, %%zmm8, %%zmm8\n\t" \
        "vpxord %%zmm9, %%zmm9, %%zmm9\n\t" \
        "vpxord %%zmm10, %%zmm10, %%zmm10\n\t" \
        "vpxord %%zmm11, %%zmm11, %%zmm11\n\t" \
        "vpxord %%zmm12, %%zmm12, %%zmm12\n\t" \
        "vpxord %%zmm13, %%zmm13, %%zmm13\n\t" \
        "vpxord %%zmm14, %%zmm14, %%zmm14\n\t" \
        "vpxord %%zmm15, %%zmm15, %%zmm15\n\t" \
        "vpxord %%zmm16, %%zmm16, %%zmm16\n\t" \
        "vpxord %%zmm17, %%zmm17, %%zmm17\n\t" \
        "vpxord %%zmm18, %%zmm18, %%zmm18\n\t" \
        "vpxord %%zmm19, %%zmm19, %%zmm19\n\t" \
        "vpxord %%zmm20, %%zmm20, %%zmm20\n\t" \
        "vpxord %%zmm21, %%zmm21, %%zmm21\n\t" \
        "vpxord %%zmm22, %%zmm22, %%zmm22\n\t" \
        "vpxord %%zmm23, %%zmm23, %%zmm23\n\t" \
        "0:\n\t"  /* segment loop */ \
        "mov (%[seg]), %[len]\n\t" \
        "xor %[idx], %[idx]\n\t" \
        "cmp $4, %[len]\n\t" \
        "jl 2f\n\t" \
        "1:\n\t"  /* 4 k steps */ \
        "vmovaps 0(%[b]), %%zmm24\n\t" \
        "vmovaps 64(%[b]), %%zmm25\n\t" \
        "vmovaps 128(%[b]), %%zmm26\n\t" \
        "vmovaps 192(%[b]), %%zmm27\n\t" \
        "vmovaps 256(%[b]), %%zmm28\n\t" \
        "vmovaps 320(%[b]), %%zmm29\n\t" \
        "vmovaps 384(%[b]), %%zmm30\n\t" \
        "vmovaps 448(%[b]), %%zmm31\n\t" \
        "prefetcht0 1024(%[b])\n\t"  /* B 8 steps ahead, two lines per step */ \
        "prefetcht0 1088(%[b])\n\t" \
        "prefetcht0 1152(%[b])\n\t" \
        "prefetcht0 1216(%[b])\n\t" \
        "prefetcht0 1280(%[b])\n\t" \
        "prefetcht0 1344(%[b])\n\t" \
        "prefetcht0 1408(%[b])\n\t" \
        "prefetcht0 1472(%[b])\n\t" \
        "mov 0(%[r]), %%rax\n\t" \
        "prefetcht0 256(%%rax,%[idx],4)\n\t" \
        "mov 8(%[r]), %%r10\n\t" \
        "prefetcht0 256(%%r10,%[idx],4)\n\t" \
        "mov 16(%[r]), %%r11\n\t" \
        "prefetcht0 256(%%r11,%[idx],4)\n\t" \
        DOT " (%%rax,%[idx],4)%{1to16%}, %%zmm24, %%zmm0\n\t" \
        DOT " (%%rax,%[idx],4)%{1to16%}, %%zmm25, %%zmm1\n\t" \
        DOT " (%%r10,%[idx],4)%{1to16%}, %%zmm24, %%zmm2\n\t" \
        DOT " (%%r10,%[idx],4)%{1to16%}, %%zmm25, %%zmm3\n\t" \
        DOT " (%%r11,%[idx],4)%{1to16%}, %%zmm24, %%zmm4\n\t" \
        DOT " (%%r11,%[idx],4)%{1to16%}, %%zmm25, %%zmm5\n\t" \
        DOT " 4(%%rax,%[idx],4)%{1to16%}, %%zmm26, %%zmm0\n\t" \
        DOT " 4(%%rax,%[idx],4)%{1to16%}, %%zmm27, %%zmm1\n\t" \
        DOT " 4(%%r10,%[idx],4)%{1to16%}, %%zmm26, %%zmm2\n\t" \
        DOT " 4(%%r10,%[idx],4)%{1to16%}, %%zmm27, %%zmm3\n\t" \
        DOT " 4(%%r11,%[idx],4)%{1to16%}, %%zmm26, %%zmm4\n\t" \
        DOT " 4(%%r11,%[idx],4)%{1to16%}, %%zmm27, %%zmm5\n\t" \
        DOT " 8(%%rax,%[idx],4)%{1to16%}, %%zmm28, %%zmm0\n\t" \
        DOT " 8(%%rax,%[idx],4)%{1to16%}, %%zmm29, %%zmm1\n\t" \
        DOT " 8(%%r10,%[idx],4)%{1to16%}, %%zmm28, %%zmm2\n\t" \
        DOT " 8(%%r10,%[idx],4)%{1to16%}, %%zmm29, %%zmm3\n\t" \
        DOT " 8(%%r11,%[idx],4)%{1to16%}, %%zmm28, %%zmm4\n\t" \
        DOT " 8(%%r11,%[idx],4)%{1to16%}, %%zmm29, %%zmm5\n\t" \
        DOT " 12(%%rax,%[idx],4)%{1to16%}, %%zmm30, %%zmm0\n\t" \
        DOT " 12(%%rax,%[idx],4)%{1to16%}, %%zmm31, %%zmm1\n\t" \
        DOT " 12(%%r10,%[idx],4)%{1to16%}, %%zmm30, %%zmm2\n\t" \
        DOT " 12(%%r10,%[idx],4)%{1to16%}, %%zmm31, %%zmm3\n\t" \
        DOT " 12(%%r11,%[idx],4)%{1to16%}, %%zmm30, %%zmm4\n\t" \
        DOT " 12(%%r11,%[idx],4)%{1to16%}, %%zmm31, %%zmm5\n\t" \
        "mov 24(%[r]), %%rax\n\t" \
        "prefetcht0 256(%%rax,%[idx],4)\n\t" \
        "mov 32(%[r]), %%r10\n\t" \
        "prefetcht0 256(%%r10,%[idx],4)\n\t" \
        "mov 40(%[r]), %%r11\n\t" \
        "prefetcht0 256(%%r11,%[idx],4)\n\t" \
        DOT " (%%rax,%[idx],4)%{1to16%}, %%zmm24, %%zmm6\n\t" \
        DOT " (%%rax,%[idx],4)%{1to16%}, %%zmm25, %%zmm7\n\t" \
        DOT " (%%r10,%[idx],4)%{1to16%}, %%zmm24, %%zmm8\n\t" \
        DOT " (%%r10,%[idx],4)%{1to16%}, %%zmm25, %%zmm9\n\t" \
        DOT " (%%r11,%[idx],4)%{1to16%}, %%zmm24, %%zmm10\n\t" \
        DOT " (%%r11,%[idx],4)%{1to16%}, %%zmm25, %%zmm11\n\t" \
        DOT " 4(%%rax,%[idx],4)%{1to16%}, %%zmm26, %%zmm6\n\t" \
        DOT " 4(%%rax,%[idx],4)%{1to16%}, %%zmm27, %%zmm7\n\t" \
        DOT " 4(%%r10,%[idx],4)%{1to16%}, %%zmm26, %%zmm8\n\t" \
        DOT " 4(%%r10,%[idx],4)%{1to16%}, %%zmm27, %%zmm9\n\t" \
        DOT " 4(%%r11,%[idx],4)%{1to16%}, %%zmm26, %%zmm10\n\t" \
        DOT " 4(%%r11,%[idx],4)%{1to16%}, %%zmm27, %%zmm11\n\t" \
        DOT " 8(%%rax,%[idx],4)%{1to16%}, %%zmm28, %%zmm6\n\t" \
        DOT " 8(%%rax,%[idx],4)%{1to16%}, %%zmm29, %%zmm7\n\t" \
        DOT " 8(%%r10,%[idx],4)%{1to16%}, %%zmm28, %%zmm8\n\t" \
        DOT " 8(%%r10,%[idx],4)%{1to16%}, %%zmm29, %%zmm9\n\t" \
        DOT " 8(%%r11,%[idx],4)%{1to16%}, %%zmm28, %%zmm10\n\t" \
        DOT " 8(%%r11,%[idx],4)%{1to16%}, %%zmm29, %%zmm11\n\t" \
        DOT " 12(%%rax,%[idx],4)%{1to16%}, %%zmm30, %%zmm6\n\t" \
        DOT " 12(%%rax,%[idx],4)%{1to16%}, %%zmm31, %%zmm7\n\t" \
        DOT " 12(%%r10,%[idx],4)%{1to16%}, %%zmm30, %%zmm8\n\t" \
        DOT " 12(%%r10,%[idx],4)%{1to16%}, %%zmm31, %%zmm9\n\t" \
        DOT " 12(%%r11,%[idx],4)%{1to16%}, %%zmm30, %%zmm10\n\t" \
        DOT " 12(%%r11,%[idx],4)%{1to16%}, %%zmm31, %%zmm11\n\t" \
        "mov 48(%[r]), %%rax\n\t" \
        "prefetcht0 256(%%rax,%[idx],4)\n\t" \
        "mov 56(%[r]), %%r10\n\t" \
        "prefetcht0 256(%%r10,%[idx],4)\n\t" \
        "mov 64(%[r]), %%r11\n\t" \
        "prefetcht0 256(%%r11,%[idx],4)\n\t" \
        DOT " (%%rax,%[idx],4)%{1to16%}, %%zmm24, %%zmm12\n\t" \
        DOT " (%%rax,%[idx],4)%{1to16%}, %%zmm25, %%zmm13\n\t" \
        DOT " (%%r10,%[idx],4)%{1to16%}, %%zmm24, %%zmm14\n\t" \
        DOT " (%%r10,%[idx],4)%{1to16%}, %%zmm25, %%zmm15\n\t" \
        DOT " (%%r11,%[idx],4)%{1to16%}, %%zmm24, %%zmm16\n\t" \
        DOT " (%%r11,%[idx],4)%{1to16%}, %%zmm25, %%zmm17\n\t" \
        DOT " 4(%%rax,%[idx],4)%{1to16%}, %%zmm26, %%zmm12\n\t" \
        DOT " 4(%%rax,%[idx],4)%{1to16%}, %%zmm27, %%zmm13\n\t" \
        DOT " 4(%%r10,%[idx],4)%{1to16%}, %%zmm26, %%zmm14\n\t" \
        DOT " 4(%%r10,%[idx],4)%{1to16%}, %%zmm27, %%zmm15\n\t" \
        DOT " 4(%%r11,%[idx],4)%{1to16%}, %%zmm26, %%zmm16\n\t" \
        DOT " 4(%%r11,%[idx],4)%{1to16%}, %%zmm27, %%zmm17\n\t" \
        DOT " 8(%%rax,%[idx],4)%{1to16%}, %%zmm28, %%zmm12\n\t" \
        DOT " 8(%%rax,%[idx],4)%{1to16%}, %%zmm29, %%zmm13\n\t" \
        DOT " 8(%%r10,%[idx],4)%{1to16%}, %%zmm28, %%zmm14\n\t" \
        DOT " 8(%%r10,%[idx],4)%{1to16%}, %%zmm29, %%zmm15\n\t" \
        DOT " 8(%%r11,%[idx],4)%{1to16%}, %%zmm28, %%zmm16\n\t" \
        DOT " 8(%%r11,%[idx],4)%{1to16%}, %%zmm29, %%zmm17\n\t" \
        DOT " 12(%%rax,%[idx],4)%{1to16%}, %%zmm30, %%zmm12\n\t" \
        DOT " 12(%%rax,%[idx],4)%{1to16%}, %%zmm31, %%zmm13\n\t" \
        DOT " 12(%%r10,%[idx],4)%{1to16%}, %%zmm30, %%zmm14\n\t" \
        DOT " 12(%%r10,%[idx],4)%{1to16%}, %%zmm31, %%zmm15\n\t" \
        DOT " 12(%%r11,%[idx],4)%{1to16%}, %%zmm30, %%zmm16\n\t" \
        DOT " 12(%%r11,%[idx],4)%{1to16%}, %%zmm31, %%zmm17\n\t" \
        "mov 72(%[r]), %%rax\n\t" \
        "prefetcht0 256(%%rax,%[idx],4)\n\t" \
        "mov 80(%[r]), %%r10\n\t" \
        "prefetcht0 256(%%r10,%[idx],4)\n\t" \
        "mov 88(%[r]), %%r11\n\t" \
        "prefetcht0 256(%%r11,%[idx],4)\n\t" \
        DOT " (%%rax,%[idx],4)%{1to16%}, %%zmm24, %%zmm18\n\t" \
        DOT " (%%rax,%[idx],4)%{1to16%}, %%zmm25, %%zmm19\n\t" \
        DOT " (%%r10,%[idx],4)%{1to16%}, %%zmm24, %%zmm20\n\t" \
        DOT " (%%r10,%[idx],4)%{1to16%}, %%zmm25, %%zmm21\n\t" \
        DOT " (%%r11,%[idx],4)%{1to16%}, %%zmm24, %%zmm22\n\t" \
        DOT " (%%r11,%[idx],4)%{1to16%}, %%zmm25, %%zmm23\n\t" \
        DOT " 4(%%rax,%[idx],4)%{1to16%}, %%zmm26, %%zmm18\n\t" \
        DOT " 4(%%rax,%[idx],4)%{1to16%}, %%zmm27, %%zmm19\n\t" \
        DOT " 4(%%r10,%[idx],4)%{1to16%}, %%zmm26, %%zmm20\n\t" \
        DOT " 4(%%r10,%[idx],4)%{1to16%}, %%zmm27, %%zmm21\n\t" \
        DOT " 4(%%r11,%[idx],4)%{1to16%}, %%zmm26, %%zmm22\n\t" \
        DOT " 4(%%r11,%[idx],4)%{1to16%}, %%zmm27, %%zmm23\n\t" \
        DOT " 8(%%rax,%[idx],4)%{1to16%}, %%zmm28, %%zmm18\n\t" \
        DOT " 8(%%rax,%[idx],4)%{1to16%}, %%zmm29, %%zmm19\n\t" \
        DOT " 8(%%r10,%[idx],4)%{1to16%}, %%zmm28, %%zmm20\n\t" \
        DOT " 8(%%r10,%[idx],4)%{1to16%}, %%zmm29, %%zmm21\n\t" \
        DOT " 8(%%r11,%[idx],4)%{1to16%}, %%zmm28, %%zmm22\n\t" \
        DOT " 8(%%r11,%[idx],4)%{1to16%}, %%zmm29, %%zmm23\n\t" \
        DOT " 12(%%rax,%[idx],4)%{1to16%}, %%zmm30, %%zmm18\n\t" \
        DOT " 12(%%rax,%[idx],4)%{1to16%}, %%zmm31, %%zmm19\n\t" \
        DOT " 12(%%r10,%[idx],4)%{1to16%}, %%zmm30, %%zmm20\n\t" \
        DOT " 12(%%r10,%[idx],4)%{1to16%}, %%zmm31, %%zmm21\n\t" \
        DOT " 12(%%r11,%[idx],4)%{1to16%}, %%zmm30, %%zmm22\n\t" \
        DOT " 12(%%r11,%[idx],4)%{1to16%}, %%zmm31, %%zmm23\n\t" \
        "add $512, %[b]\n\t" \
        "add $4, %[idx]\n\t" \
        "sub $4, %[len]\n\t" \
        "cmp $4, %[len]\n\t" \
        "jge 1b\n\t" \
        "2:\n\t" \
        "test %[len], %[len]\n\t" \
        "jz 3f\n\t" \
        "5:\n\t"  /* single k steps */ \
        "vmovaps 0(%[b]), %%zmm24\n\t" \
        "vmovaps 64(%[b]), %%zmm25\n\t" \
        "mov 0(%[r]), %%rax\n\t" \
        DOT " (%%rax,%[idx],4)%{1to16%}, %%zmm24, %%zmm0\n\t" \
        DOT " (%%rax,%[idx],4)%{1to16%}, %%zmm25, %%zmm1\n\t" \
        "mov 8(%[r]), %%rax\n\t" \
        DOT " (%%rax,%[idx],4)%{1to16%}, %%zmm24, %%zmm2\n\t" \
        DOT " (%%rax,%[idx],4)%{1to16%}, %%zmm25, %%zmm3\n\t" \
        "mov 16(%[r]), %%rax\n\t" \
        DOT " (%%rax,%[idx],4)%{1to16%}, %%zmm24, %%zmm4\n\t" \
        DOT " (%%rax,%[idx],4)%{1to16%}, %%zmm25, %%zmm5\n\t" \
        "mov 24(%[r]), %%rax\n\t" \
        DOT " (%%rax,%[idx],4)%{1to16%}, %%zmm24, %%zmm6\n\t" \
        DOT " (%%rax,%[idx],4)%{1to16%}, %%zmm25, %%zmm7\n\t" \
        "mov 32(%[r]), %%rax\n\t" \
        DOT " (%%rax,%[idx],4)%{1to16%}, %%zmm24, %%zmm8\n\t" \
        DOT " (%%rax,%[idx],4)%{1to16%}, %%zmm25, %%zmm9\n\t" \
        "mov 40(%[r]), %%rax\n\t" \
        DOT " (%%rax,%[idx],4)%{1to16%}, %%zmm24, %%zmm10\n\t" \
        DOT " (%%rax,%[idx],4)%{1to16%}, %%zmm25, %%zmm11\n\t" \
        "mov 48(%[r]), %%rax\n\t" \
        DOT " (%%rax,%[idx],4)%{1to16%}, %%zmm24, %%zmm12\n\t" \
        DOT " (%%rax,%[idx],4)%{1to16%}, %%zmm25, %%zmm13\n\t" \
        "mov 56(%[r]), %%rax\n\t" \
        DOT " (%%rax,%[idx],4)%{1to16%}, %%zmm24, %%zmm14\n\t" \
        DOT " (%%rax,%[idx],4)%{1to16%}, %%zmm25, %%zmm15\n\t" \
        "mov 64(%[r]), %%rax\n\t" \
        DOT " (%%rax,%[idx],4)%{1to16%}, %%zmm24, %%zmm16\n\t" \
        DOT " (%%rax,%[idx],4)%{1to16%}, %%zmm25, %%zmm17\n\t" \
        "mov 72(%[r]), %%rax\n\t" \
        DOT " (%%rax,%[idx],4)%{1to16%}, %%zmm24, %%zmm18\n\t" \
        DOT " (%%rax,%[idx],4)%{1to16%}, %%zmm25, %%zmm19\n\t" \
        "mov 80(%[r]), %%rax\n\t" \
        DOT " (%%rax,%[idx],4)%{1to16%}, %%zmm24, %%zmm20\n\t" \
        DOT " (%%rax,%[idx],4)%{1to16%}, %%zmm25, %%zmm21\n\t" \
        "mov 88(%[r]), %%rax\n\t" \
        DOT " (%%rax,%[idx],4)%{1to16%}, %%zmm24, %%zmm22\n\t" \
        DOT " (%%rax,%[idx],4)%{1to16%}, %%zmm25, %%zmm23\n\t" \
        "add $128, %[b]\n\t" \
        "add $1, %[idx]\n\t" \
        "sub $1, %[len]\n\t" \
        "jnz 5b\n\t" \
        "3:\n\t" \
        "add $96, %[r]\n\t" \
        "add $8, %[seg]\n\t" \
        "sub $1, %[nseg]\n\t" \
        "jnz 0b\n\t" \
        "mov %[c], %%rax\n\t" \
        "test %[accumulate], %[accumulate]\n\t" \
        "jz 6f\n\t" \
        "vaddps (%%rax), %%zmm0, %%zmm0\n\t" \
        "vaddps 64(%%rax), %%zmm1, %%zmm1\n\t" \
        "vmovups %%zmm0, (%%rax)\n\t" \
        "vmovups %%zmm1, 64(%%rax)\n\t" \
        "add %[ldc], %%rax\n\t" \
        "vaddps (%%rax), %%zmm2, %%zmm2\n\t" \
        "vaddps 64(%%rax), %%zmm3, %%zmm3\n\t" \
        "vmovups %%zmm2, (%%rax)\n\t" \
        "vmovups %%zmm3, 64(%%rax)\n\t" \
        "add %[ldc], %%rax\n\t" \
        "vaddps (%%rax), %%zmm4, %%zmm4\n\t" \
        "vaddps 64(%%rax), %%zmm5, %%zmm5\n\t" \
        "vmovups %%zmm4, (%%rax)\n\t" \
        "vmovups %%zmm5, 64(%%rax)\n\t" \
        "add %[ldc], %%rax\n\t" \
        "vaddps (%%rax), %%zmm6, %%zmm6\n\t" \
        "vaddps 64(%%rax), %%zmm7, %%zmm7\n\t" \
        "vmovups %%zmm6, (%%rax)\n\t" \
        "vmovups %%zmm7, 64(%%rax)\n\t" \
        "add %[ldc], %%rax\n\t" \
        "vaddps (%%rax), %%zmm8, %%zmm8\n\t" \
        "vaddps 64(%%rax), %%zmm9, %%zmm9\n\t" \
        "vmovups %%zmm8, (%%rax)\n\t" \
        "vmovups %%zmm9, 64(%%rax)\n\t" \
        "add %[ldc], %%rax\n\t" \
        "vaddps (%%rax), %%zmm10, %%zmm10\n\t" \
        "vaddps 64(%%rax), %%zmm11, %%zmm11\n\t" \
        "vmovups %%zmm10, (%%rax)\n\t" \
        "vmovups %%zmm11, 64(%%rax)\n\t" \
        "add %[ldc], %%rax\n\t" \
        "vaddps (%%rax), %%zmm12, %%zmm12\n\t" \
        "vaddps 64(%%rax), %%zmm13, %%zmm13\n\t" \
        "vmovups %%zmm12, (%%rax)\n\t" \
        "vmovups %%zmm13, 64(%%rax)\n\t" \
        "add %[ldc], %%rax\n\t" \
        "vaddps (%%rax), %%zmm14, %%zmm14\n\t" \
        "vaddps 64(%%rax), %%zmm15, %%zmm15\n\t" \
        "vmovups %%zmm14, (%%rax)\n\t" \
        "vmovups %%zmm15, 64(%%rax)\n\t" \
        "add %[ldc], %%rax\n\t" \
        "vaddps (%%rax), %%zmm16, %%zmm16\n\t" \
        "vaddps 64(%%rax), %%zmm17, %%zmm17\n\t" \
        "vmovups %%zmm16, (%%rax)\n\t" \
        "vmovups %%zmm17, 64(%%rax)\n\t" \
        "add %[ldc], %%rax\n\t" \
        "vaddps (%%rax), %%zmm18, %%zmm18\n\t" \
        "vaddps 64(%%rax), %%zmm19, %%zmm19\n\t" \
        "vmovups %%zmm18, (%%rax)\n\t" \
        "vmovups %%zmm19, 64(%%rax)\n\t" \
        "add %[ldc], %%rax\n\t" \
        "vaddps (%%rax), %%zmm20, %%zmm20\n\t" \
        "vaddps 64(%%rax), %%zmm21, %%zmm21\n\t" \
        "vmovups %%zmm20, (%%rax)\n\t" \
        "vmovups %%zmm21, 64(%%rax)\n\t" \
        "add %[ldc], %%rax\n\t" \
        "vaddps (%%rax), %%zmm22, %%zmm22\n\t" \
        "vaddps 64(%%rax), %%zmm23, %%zmm23\n\t" \
        "vmovups %%zmm22, (%%rax)\n\t" \
        "vmovups %%zmm23, 64(%%rax)\n\t" \
        "add %[ldc], %%rax\n\t" \
        "jmp 7f\n\t" \
        "6:\n\t" \
        "vmovups %%zmm0, (%%rax)\n\t" \
        "vmovups %%zmm1, 64(%%rax)\n\t" \
        "add %[ldc], %%rax\n\t" \
        "vmovups %%zmm2, (%%rax)\n\t" \
        "vmovups %%zmm3, 64(%%rax)\n\t" \
        "add %[ldc], %%rax\n\t" \
        "vmovups %%zmm4, (%%rax)\n\t" \
        "vmovups %%zmm5, 64(%%rax)\n\t" \
        "add %[ldc], %%rax\n\t" \
        "vmovups %%zmm6, (%%rax)\n\t" \
        "vmovups %%zmm7, 64(%%rax)\n\t" \
        "add %[ldc], %%rax\n\t" \
        "vmovups %%zmm8, (%%rax)\n\t" \
        "vmovups %%zmm9, 64(%%rax)\n\t" \
        "add %[ldc], %%rax\n\t" \
        "vmovups %%zmm10, (%%rax)\n\t" \
        "vmovups %%zmm11, 64(%%rax)\n\t" \
        "add %[ldc], %%rax\n\t" \
        "vmovups %%zmm12, (%%rax)\n\t" \
        "vmovups %%zmm13, 64(%%rax)\n\t" \
        "add %[ldc], %%rax\n\t" \
        "vmovups %%zmm14, (%%rax)\n\t" \
        "vmovups %%zmm15, 64(%%rax)\n\t" \
        "add %[ldc], %%rax\n\t" \
        "vmovups %%zmm16, (%%rax)\n\t" \
        "vmovups %%zmm17, 64(%%rax)\n\t" \
        "add %[ldc], %%rax\n\t" \
        "vmovups %%zmm18, (%%rax)\n\t" \
        "vmovups %%zmm19, 64(%%rax)\n\t" \
        "add %[ldc], %%rax\n\t" \
        "vmovups %%zmm20, (%%rax)\n\t" \
        "vmovups %%zmm21, 64(%%rax)\n\t" \
        "add %[ldc], %%rax\n\t" \
        "vmovups %%zmm22, (%%rax)\n\t" \
        "vmovups %%zmm23, 64(%%rax)\n\t" \
        "add %[ldc], %%rax\n\t" \
        "7:\n\t" \
        : [r] "+r"(r), [seg] "+r"(seg), [nseg] "+r"(nseg), [b] "+r"(b), [len] "=&r"(len), [idx] "=&r"(idx) \
        : [c] "r"(c), [ldc] "r"(ldc_bytes), [accumulate] "r"(accumulate) \
        : "rax", "r10", "r11", "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", \
          "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", \
          "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31"); \
}
