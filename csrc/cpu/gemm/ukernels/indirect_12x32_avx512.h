// The 12x32 AVX-512 indirect microkernel (FloatIndirectUkernel, gemm_driver.h), shared by the
// f32 entry (DOT = vfmadd231ps on f32 words) and the bf16 entry (DOT = vdpbf16ps on bf16 pair
// words: the same 32-bit broadcast of a row's word, the pair's two products added into each
// f32 lane). Each kernel file expands it once with its own instruction, compiled with its own
// ISA flags.
//
// A in place: per segment s, a table of 12 row pointers (rows[12 s + i]), each row's run of
// seg_words[s] contiguous 32-bit words. One block of inline assembly, because twelve row pointers do
// not fit in the general registers next to b and the loop counters: compiled from intrinsics,
// GCC 12 spilled accumulators and pointers to the stack every k step and the kernel ran at
// 85 % of the FMA peak. Here each row's pointer is loaded from the table once per 4 k steps
// and its 4 values feed the FMAs as embedded broadcasts ({1to16}), with the 8 B vectors of
// those 4 steps in zmm24-31 and the 24 accumulators in zmm0-23 (row i: zmm2i, zmm2i+1): all 32
// vector registers, no broadcast register, nothing on the stack. Per accumulator the products
// are added in k order from zero and then to C, as in the packed kernel: bit-identical tiles.
#pragma once

#include <cstdint>

// Helpers for the asm text below. Accumulators: row i in zmm(2i), zmm(2i+1).
#define AICC_I12_ZERO2(A, B) "vpxord %%zmm" #A ", %%zmm" #A ", %%zmm" #A "\n\t" \
                             "vpxord %%zmm" #B ", %%zmm" #B ", %%zmm" #B "\n\t"
// One FMA pair: the word at byte offset AOFF of the row (register REG, k index idx) times the
// two B vectors BV0/BV1 into the row's accumulators C0/C1.
#define AICC_I12_PAIR(DOT, REG, AOFF, BV0, BV1, C0, C1)                                  \
  DOT " " #AOFF "(%%" #REG ",%[idx],4)%{1to16%}, %%zmm" #BV0 ", %%zmm" #C0 "\n\t"         \
  DOT " " #AOFF "(%%" #REG ",%[idx],4)%{1to16%}, %%zmm" #BV1 ", %%zmm" #C1 "\n\t"
// Three rows (pointers in rax, r10, r11 from table offsets T0..T2) over 4 k steps, interleaved
// by k so that each accumulator's next FMA is six instructions after its previous one.
#define AICC_I12_ROWS3(DOT, T0, T1, T2, A0, A1, B0, B1, C0, C1)                         \
  "mov " #T0 "(%[r]), %%rax\n\t"                                                         \
  "prefetcht0 256(%%rax,%[idx],4)\n\t"                                                   \
  "mov " #T1 "(%[r]), %%r10\n\t"                                                         \
  "prefetcht0 256(%%r10,%[idx],4)\n\t"                                                   \
  "mov " #T2 "(%[r]), %%r11\n\t"                                                         \
  "prefetcht0 256(%%r11,%[idx],4)\n\t"                                                   \
  AICC_I12_PAIR(DOT, rax, 0, 24, 25, A0, A1) AICC_I12_PAIR(DOT, r10, 0, 24, 25, B0, B1)  \
  AICC_I12_PAIR(DOT, r11, 0, 24, 25, C0, C1)                                             \
  AICC_I12_PAIR(DOT, rax, 4, 26, 27, A0, A1) AICC_I12_PAIR(DOT, r10, 4, 26, 27, B0, B1)  \
  AICC_I12_PAIR(DOT, r11, 4, 26, 27, C0, C1)                                             \
  AICC_I12_PAIR(DOT, rax, 8, 28, 29, A0, A1) AICC_I12_PAIR(DOT, r10, 8, 28, 29, B0, B1)  \
  AICC_I12_PAIR(DOT, r11, 8, 28, 29, C0, C1)                                             \
  AICC_I12_PAIR(DOT, rax, 12, 30, 31, A0, A1) AICC_I12_PAIR(DOT, r10, 12, 30, 31, B0, B1) \
  AICC_I12_PAIR(DOT, r11, 12, 30, 31, C0, C1)
// One row over one k step (the tail).
#define AICC_I12_ROW1(DOT, T, A0, A1) \
  "mov " #T "(%[r]), %%rax\n\t" AICC_I12_PAIR(DOT, rax, 0, 24, 25, A0, A1)
// Row i of the tile: add C (accumulate) and store.
#define AICC_I12_ADD(A0, A1) "vaddps (%%rax), %%zmm" #A0 ", %%zmm" #A0 "\n\t" \
                             "vaddps 64(%%rax), %%zmm" #A1 ", %%zmm" #A1 "\n\t"
#define AICC_I12_STORE(A0, A1) "vmovups %%zmm" #A0 ", (%%rax)\n\t" \
                               "vmovups %%zmm" #A1 ", 64(%%rax)\n\t" "add %[ldc], %%rax\n\t"
#define AICC_I12_ADD_STORE(A0, A1) AICC_I12_ADD(A0, A1) AICC_I12_STORE(A0, A1)
#define AICC_I12_ALL_ROWS(M)                                                           \
  M(0, 1) M(2, 3) M(4, 5) M(6, 7) M(8, 9) M(10, 11) M(12, 13) M(14, 15) M(16, 17) M(18, 19) \
  M(20, 21) M(22, 23)

#define AICC_DEFINE_INDIRECT_12X32_AVX512(NAME, DOT)                                          \
void NAME(int64_t nseg, const int64_t* seg_words, const void* const* rows, const void* b_words, \
          float* c, int64_t ldc, int accumulate) {                                            \
  if (nseg <= 0) {                                                                            \
    /* An empty depth: the tile is C (accumulate) or zeros, as the packed kernel with kc = 0. */ \
    for (int i = 0; i < 12; ++i)                                                              \
      for (int j = 0; j < 32; ++j) c[i * ldc + j] = accumulate ? c[i * ldc + j] : 0.0f;       \
    return;                                                                                   \
  }                                                                                           \
  const void* const* r = rows;                                                                \
  const int64_t* seg = seg_words;                                                             \
  const float* b = static_cast<const float*>(b_words);                                        \
  int64_t len, idx;                                                                           \
  const int64_t ldc_bytes = ldc * 4;                                                          \
  asm volatile(                                                                               \
      AICC_I12_ALL_ROWS(AICC_I12_ZERO2)                                                       \
      "0:\n\t" /* segment loop */                                                             \
      "mov (%[seg]), %[len]\n\t"                                                              \
      "xor %[idx], %[idx]\n\t"                                                                \
      "cmp $4, %[len]\n\t"                                                                    \
      "jl 2f\n\t"                                                                             \
      "1:\n\t" /* 4 k steps: the B rows in zmm24-31, prefetched 8 steps ahead */              \
      "vmovaps 0(%[b]), %%zmm24\n\t"                                                          \
      "vmovaps 64(%[b]), %%zmm25\n\t"                                                         \
      "vmovaps 128(%[b]), %%zmm26\n\t"                                                        \
      "vmovaps 192(%[b]), %%zmm27\n\t"                                                        \
      "vmovaps 256(%[b]), %%zmm28\n\t"                                                        \
      "vmovaps 320(%[b]), %%zmm29\n\t"                                                        \
      "vmovaps 384(%[b]), %%zmm30\n\t"                                                        \
      "vmovaps 448(%[b]), %%zmm31\n\t"                                                        \
      "prefetcht0 1024(%[b])\n\t"                                                             \
      "prefetcht0 1088(%[b])\n\t"                                                             \
      "prefetcht0 1152(%[b])\n\t"                                                             \
      "prefetcht0 1216(%[b])\n\t"                                                             \
      "prefetcht0 1280(%[b])\n\t"                                                             \
      "prefetcht0 1344(%[b])\n\t"                                                             \
      "prefetcht0 1408(%[b])\n\t"                                                             \
      "prefetcht0 1472(%[b])\n\t"                                                             \
      AICC_I12_ROWS3(DOT, 0, 8, 16, 0, 1, 2, 3, 4, 5)                                         \
      AICC_I12_ROWS3(DOT, 24, 32, 40, 6, 7, 8, 9, 10, 11)                                     \
      AICC_I12_ROWS3(DOT, 48, 56, 64, 12, 13, 14, 15, 16, 17)                                 \
      AICC_I12_ROWS3(DOT, 72, 80, 88, 18, 19, 20, 21, 22, 23)                                 \
      "add $512, %[b]\n\t"                                                                    \
      "add $4, %[idx]\n\t"                                                                    \
      "sub $4, %[len]\n\t"                                                                    \
      "cmp $4, %[len]\n\t"                                                                    \
      "jge 1b\n\t"                                                                            \
      "2:\n\t"                                                                                \
      "test %[len], %[len]\n\t"                                                               \
      "jz 3f\n\t"                                                                             \
      "5:\n\t" /* single k steps */                                                           \
      "vmovaps 0(%[b]), %%zmm24\n\t"                                                          \
      "vmovaps 64(%[b]), %%zmm25\n\t"                                                         \
      AICC_I12_ROW1(DOT, 0, 0, 1) AICC_I12_ROW1(DOT, 8, 2, 3) AICC_I12_ROW1(DOT, 16, 4, 5)    \
      AICC_I12_ROW1(DOT, 24, 6, 7) AICC_I12_ROW1(DOT, 32, 8, 9) AICC_I12_ROW1(DOT, 40, 10, 11) \
      AICC_I12_ROW1(DOT, 48, 12, 13) AICC_I12_ROW1(DOT, 56, 14, 15)                           \
      AICC_I12_ROW1(DOT, 64, 16, 17) AICC_I12_ROW1(DOT, 72, 18, 19)                           \
      AICC_I12_ROW1(DOT, 80, 20, 21) AICC_I12_ROW1(DOT, 88, 22, 23)                           \
      "add $128, %[b]\n\t"                                                                    \
      "add $1, %[idx]\n\t"                                                                    \
      "sub $1, %[len]\n\t"                                                                    \
      "jnz 5b\n\t"                                                                            \
      "3:\n\t"                                                                                \
      "add $96, %[r]\n\t"                                                                     \
      "add $8, %[seg]\n\t"                                                                    \
      "sub $1, %[nseg]\n\t"                                                                   \
      "jnz 0b\n\t"                                                                            \
      "mov %[c], %%rax\n\t"                                                                   \
      "test %[accumulate], %[accumulate]\n\t"                                                 \
      "jz 6f\n\t"                                                                             \
      AICC_I12_ALL_ROWS(AICC_I12_ADD_STORE)                                                   \
      "jmp 7f\n\t"                                                                            \
      "6:\n\t"                                                                                \
      AICC_I12_ALL_ROWS(AICC_I12_STORE)                                                       \
      "7:\n\t"                                                                                \
      : [r] "+r"(r), [seg] "+r"(seg), [nseg] "+r"(nseg), [b] "+r"(b), [len] "=&r"(len),         \
        [idx] "=&r"(idx)                                                                      \
      : [c] "r"(c), [ldc] "r"(ldc_bytes), [accumulate] "r"(accumulate)                        \
      : "rax", "r10", "r11", "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5",      \
        "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15",   \
        "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", \
        "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31");                                 \
}
