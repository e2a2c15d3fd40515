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
  DOT " " #AOFF "(%%" #REG ",%%r9,4)%{1to16%}, %%zmm" #BV0 ", %%zmm" #C0 "\n\t"         \
  DOT " " #AOFF "(%%" #REG ",%%r9,4)%{1to16%}, %%zmm" #BV1 ", %%zmm" #C1 "\n\t"
// Three rows (pointers in rax, r10, r11 from table offsets T0..T2) over 4 k steps, interleaved
// by k so that each accumulator's next FMA is six instructions after its previous one.
#define AICC_I12_ROWS3(DOT, T0, T1, T2, A0, A1, B0, B1, C0, C1)                         \
  "mov " #T0 "(%%r12), %%rax\n\t"                                                         \
  "prefetcht0 256(%%rax,%%r9,4)\n\t"                                                   \
  "mov " #T1 "(%%r12), %%r10\n\t"                                                         \
  "prefetcht0 256(%%r10,%%r9,4)\n\t"                                                   \
  "mov " #T2 "(%%r12), %%r11\n\t"                                                         \
  "prefetcht0 256(%%r11,%%r9,4)\n\t"                                                   \
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
  "mov " #T "(%%r12), %%rax\n\t" AICC_I12_PAIR(DOT, rax, 0, 24, 25, A0, A1)
// Row i of the tile: add C (accumulate) and store.
#define AICC_I12_ADD(A0, A1) "vaddps (%%rax), %%zmm" #A0 ", %%zmm" #A0 "\n\t" \
                             "vaddps 64(%%rax), %%zmm" #A1 ", %%zmm" #A1 "\n\t"
#define AICC_I12_STORE(A0, A1) "vmovups %%zmm" #A0 ", (%%rax)\n\t" \
                               "vmovups %%zmm" #A1 ", 64(%%rax)\n\t" "add %[ldc], %%rax\n\t"
#define AICC_I12_ADD_STORE(A0, A1) AICC_I12_ADD(A0, A1) AICC_I12_STORE(A0, A1)
#define AICC_I12_ALL_ROWS(M)                                                           \
  M(0, 1) M(2, 3) M(4, 5) M(6, 7) M(8, 9) M(10, 11) M(12, 13) M(14, 15) M(16, 17) M(18, 19) \
  M(20, 21) M(22, 23)

// The depth loop over all segments into zmm0-23 (zeroed first). Inputs: the operands rows,
// seg, nseg (> 0), b. Clobbers rax, r8-r15 (r8 len, r9 idx, r12 row table, r13 segment lengths,
// r14 segments left, r15 b) and zmm24-31. Fixed registers rather than operands because the
// epilogue variant needs 24 vector outputs and GCC allows 30 operands in all.
#define AICC_I12_CLOBBERS "rax", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "cc", "memory", \
    "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31"
#define AICC_I12_LOOP(DOT)                                                                    \
      "mov %[rows], %%r12\n\t"                                                                 \
      "mov %[seg], %%r13\n\t"                                                                  \
      "mov %[nseg], %%r14\n\t"                                                                 \
      "mov %[b], %%r15\n\t"                                                                    \
      AICC_I12_ALL_ROWS(AICC_I12_ZERO2)                                                       \
      "0:\n\t" /* segment loop */                                                             \
      "mov (%%r13), %%r8\n\t"                                                              \
      "xor %%r9, %%r9\n\t"                                                                \
      "cmp $4, %%r8\n\t"                                                                    \
      "jl 2f\n\t"                                                                             \
      "1:\n\t" /* 4 k steps: the B rows in zmm24-31, prefetched 8 steps ahead */              \
      "vmovaps 0(%%r15), %%zmm24\n\t"                                                          \
      "vmovaps 64(%%r15), %%zmm25\n\t"                                                         \
      "vmovaps 128(%%r15), %%zmm26\n\t"                                                        \
      "vmovaps 192(%%r15), %%zmm27\n\t"                                                        \
      "vmovaps 256(%%r15), %%zmm28\n\t"                                                        \
      "vmovaps 320(%%r15), %%zmm29\n\t"                                                        \
      "vmovaps 384(%%r15), %%zmm30\n\t"                                                        \
      "vmovaps 448(%%r15), %%zmm31\n\t"                                                        \
      "prefetcht0 1024(%%r15)\n\t"                                                             \
      "prefetcht0 1088(%%r15)\n\t"                                                             \
      "prefetcht0 1152(%%r15)\n\t"                                                             \
      "prefetcht0 1216(%%r15)\n\t"                                                             \
      "prefetcht0 1280(%%r15)\n\t"                                                             \
      "prefetcht0 1344(%%r15)\n\t"                                                             \
      "prefetcht0 1408(%%r15)\n\t"                                                             \
      "prefetcht0 1472(%%r15)\n\t"                                                             \
      AICC_I12_ROWS3(DOT, 0, 8, 16, 0, 1, 2, 3, 4, 5)                                         \
      AICC_I12_ROWS3(DOT, 24, 32, 40, 6, 7, 8, 9, 10, 11)                                     \
      AICC_I12_ROWS3(DOT, 48, 56, 64, 12, 13, 14, 15, 16, 17)                                 \
      AICC_I12_ROWS3(DOT, 72, 80, 88, 18, 19, 20, 21, 22, 23)                                 \
      "add $512, %%r15\n\t"                                                                    \
      "add $4, %%r9\n\t"                                                                    \
      "sub $4, %%r8\n\t"                                                                    \
      "cmp $4, %%r8\n\t"                                                                    \
      "jge 1b\n\t"                                                                            \
      "2:\n\t"                                                                                \
      "test %%r8, %%r8\n\t"                                                               \
      "jz 3f\n\t"                                                                             \
      "5:\n\t" /* single k steps */                                                           \
      "vmovaps 0(%%r15), %%zmm24\n\t"                                                          \
      "vmovaps 64(%%r15), %%zmm25\n\t"                                                         \
      AICC_I12_ROW1(DOT, 0, 0, 1) AICC_I12_ROW1(DOT, 8, 2, 3) AICC_I12_ROW1(DOT, 16, 4, 5)    \
      AICC_I12_ROW1(DOT, 24, 6, 7) AICC_I12_ROW1(DOT, 32, 8, 9) AICC_I12_ROW1(DOT, 40, 10, 11)\
      AICC_I12_ROW1(DOT, 48, 12, 13) AICC_I12_ROW1(DOT, 56, 14, 15)                           \
      AICC_I12_ROW1(DOT, 64, 16, 17) AICC_I12_ROW1(DOT, 72, 18, 19)                           \
      AICC_I12_ROW1(DOT, 80, 20, 21) AICC_I12_ROW1(DOT, 88, 22, 23)                           \
      "add $128, %%r15\n\t"                                                                    \
      "add $1, %%r9\n\t"                                                                    \
      "sub $1, %%r8\n\t"                                                                    \
      "jnz 5b\n\t"                                                                            \
      "3:\n\t"                                                                                \
      "add $96, %%r12\n\t"                                                                     \
      "add $8, %%r13\n\t"                                                                    \
      "sub $1, %%r14\n\t"                                                                   \
      "jnz 0b\n\t"

// The same loop with each A word broadcast into a register once for its two products
// (vpbroadcastd) instead of embedded in both: B for 2 k steps in zmm24-27, broadcasts in
// zmm28-31, each row's pointer loaded once per 2 k steps. For vdpbf16ps on Zen 4 this runs at
// the dot-product peak with the data in L1/L2 (233 vs 224 GFLOPS, 1 thread; for vfmadd231ps
// the two forms measured the same, so the f32 entry keeps the embedded form). Same products,
// same order per accumulator: the same sums.
#define AICC_I12_RB_PAIR(DOT, BR, BV0, BV1, C0, C1) \
  DOT " %%zmm" #BV0 ", %%zmm" #BR ", %%zmm" #C0 "\n\t" DOT " %%zmm" #BV1 ", %%zmm" #BR ", %%zmm" #C1 "\n\t"
// Three rows (table offsets T0..T2, accumulators A*, B*, C*) over 2 k steps.
#define AICC_I12_RB_ROWS3(DOT, T0, T1, T2, A0, A1, B0, B1, C0, C1) \
  "mov " #T0 "(%%r12), %%rax\n\t"                                  \
  "mov " #T1 "(%%r12), %%r10\n\t"                                  \
  "mov " #T2 "(%%r12), %%r11\n\t"                                  \
  "vpbroadcastd 0(%%rax,%%r9,4), %%zmm28\n\t"                      \
  "vpbroadcastd 0(%%r10,%%r9,4), %%zmm29\n\t"                      \
  "vpbroadcastd 0(%%r11,%%r9,4), %%zmm30\n\t"                      \
  "prefetcht0 256(%%rax,%%r9,4)\n\t"                               \
  "prefetcht0 256(%%r10,%%r9,4)\n\t"                               \
  "prefetcht0 256(%%r11,%%r9,4)\n\t"                               \
  AICC_I12_RB_PAIR(DOT, 28, 24, 25, A0, A1)                        \
  "vpbroadcastd 4(%%rax,%%r9,4), %%zmm31\n\t"                      \
  AICC_I12_RB_PAIR(DOT, 29, 24, 25, B0, B1)                        \
  "vpbroadcastd 4(%%r10,%%r9,4), %%zmm28\n\t"                      \
  AICC_I12_RB_PAIR(DOT, 30, 24, 25, C0, C1)                        \
  "vpbroadcastd 4(%%r11,%%r9,4), %%zmm29\n\t"                      \
  AICC_I12_RB_PAIR(DOT, 31, 26, 27, A0, A1)                        \
  AICC_I12_RB_PAIR(DOT, 28, 26, 27, B0, B1)                        \
  AICC_I12_RB_PAIR(DOT, 29, 26, 27, C0, C1)
#define AICC_I12_LOOP_RB(DOT)                                                                 \
      "mov %[rows], %%r12\n\t"                                                                \
      "mov %[seg], %%r13\n\t"                                                                 \
      "mov %[nseg], %%r14\n\t"                                                                \
      "mov %[b], %%r15\n\t"                                                                   \
      AICC_I12_ALL_ROWS(AICC_I12_ZERO2)                                                       \
      "0:\n\t" /* segment loop */                                                             \
      "mov (%%r13), %%r8\n\t"                                                                 \
      "xor %%r9, %%r9\n\t"                                                                    \
      "cmp $2, %%r8\n\t"                                                                      \
      "jl 2f\n\t"                                                                             \
      "1:\n\t" /* 2 k steps: the B rows in zmm24-27, prefetched 4 steps ahead */              \
      "vmovaps 0(%%r15), %%zmm24\n\t"                                                         \
      "vmovaps 64(%%r15), %%zmm25\n\t"                                                        \
      "vmovaps 128(%%r15), %%zmm26\n\t"                                                       \
      "vmovaps 192(%%r15), %%zmm27\n\t"                                                       \
      "prefetcht0 512(%%r15)\n\t"                                                             \
      "prefetcht0 576(%%r15)\n\t"                                                             \
      "prefetcht0 640(%%r15)\n\t"                                                             \
      "prefetcht0 704(%%r15)\n\t"                                                             \
      AICC_I12_RB_ROWS3(DOT, 0, 8, 16, 0, 1, 2, 3, 4, 5)                                      \
      AICC_I12_RB_ROWS3(DOT, 24, 32, 40, 6, 7, 8, 9, 10, 11)                                  \
      AICC_I12_RB_ROWS3(DOT, 48, 56, 64, 12, 13, 14, 15, 16, 17)                              \
      AICC_I12_RB_ROWS3(DOT, 72, 80, 88, 18, 19, 20, 21, 22, 23)                              \
      "add $256, %%r15\n\t"                                                                   \
      "add $2, %%r9\n\t"                                                                      \
      "sub $2, %%r8\n\t"                                                                      \
      "cmp $2, %%r8\n\t"                                                                      \
      "jge 1b\n\t"                                                                            \
      "2:\n\t"                                                                                \
      "test %%r8, %%r8\n\t"                                                                   \
      "jz 3f\n\t" /* one last k step */                                                       \
      "vmovaps 0(%%r15), %%zmm24\n\t"                                                         \
      "vmovaps 64(%%r15), %%zmm25\n\t"                                                        \
      AICC_I12_ROW1(DOT, 0, 0, 1) AICC_I12_ROW1(DOT, 8, 2, 3) AICC_I12_ROW1(DOT, 16, 4, 5)    \
      AICC_I12_ROW1(DOT, 24, 6, 7) AICC_I12_ROW1(DOT, 32, 8, 9) AICC_I12_ROW1(DOT, 40, 10, 11)\
      AICC_I12_ROW1(DOT, 48, 12, 13) AICC_I12_ROW1(DOT, 56, 14, 15)                           \
      AICC_I12_ROW1(DOT, 64, 16, 17) AICC_I12_ROW1(DOT, 72, 18, 19)                           \
      AICC_I12_ROW1(DOT, 80, 20, 21) AICC_I12_ROW1(DOT, 88, 22, 23)                           \
      "add $128, %%r15\n\t"                                                                   \
      "3:\n\t"                                                                                \
      "add $96, %%r12\n\t"                                                                    \
      "add $8, %%r13\n\t"                                                                     \
      "sub $1, %%r14\n\t"                                                                     \
      "jnz 0b\n\t"

#define AICC_DEFINE_INDIRECT_12X32_AVX512(NAME, LOOP, DOT)                                          \
void NAME(int64_t nseg, const int64_t* seg_words, const void* const* rows, const void* b_words, \
          float* c, int64_t ldc, int accumulate) {                                            \
  if (nseg <= 0) {                                                                            \
    /* An empty depth: the tile is C (accumulate) or zeros, as the packed kernel with kc = 0. */ \
    for (int i = 0; i < 12; ++i)                                                              \
      for (int j = 0; j < 32; ++j) c[i * ldc + j] = accumulate ? c[i * ldc + j] : 0.0f;       \
    return;                                                                                   \
  }                                                                                           \
  const int64_t ldc_bytes = ldc * 4;                                                          \
  asm volatile(                                                                               \
      LOOP(DOT)                                                                               \
      "mov %[c], %%rax\n\t"                                                                   \
      "cmpl $0, %[accumulate]\n\t"                                                       \
      "jz 6f\n\t"                                                                             \
      AICC_I12_ALL_ROWS(AICC_I12_ADD_STORE)                                                   \
      "jmp 7f\n\t"                                                                            \
      "6:\n\t"                                                                                \
      AICC_I12_ALL_ROWS(AICC_I12_STORE)                                                       \
      "7:\n\t"                                                                                \
      :                                                                                       \
      : [rows] "r"(rows), [seg] "r"(seg_words), [nseg] "r"(nseg), [b] "r"(b_words), [c] "r"(c),  \
        [ldc] "rm"(ldc_bytes), [accumulate] "rm"(accumulate)                                  \
      : AICC_I12_CLOBBERS, "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",      \
        "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17",  \
        "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23");                                 \
}

// The same product finished in registers (FloatIndirectEpilogueUkernel): the loop leaves the
// 24 sums in zmm0-23, bound to C++ variables as the asm's outputs, and the shared AVX-512
// epilogue (epilogue_avx512_inl.h, which the including file must include) rounds and stores
// them row by row (C, when accumulating, is added there too).
#define AICC_I12_ACC_DECL(A, B)                  \
  register __m512 acc##A asm("zmm" #A);          \
  register __m512 acc##B asm("zmm" #B);
// Plain copies, taken right after the asm: a register variable is only bound to its register
// at the asm itself.
#define AICC_I12_ACC_COPY(A, B) const __m512 sum##A = acc##A, sum##B = acc##B;
// Row (A / 2) of the tile, with the epilogue shape kShape fixed at compile time and C added
// first when accumulating (a branch the predictor gets right: one value per call).
#define AICC_I12_FINISH(A, B)                                                                  \
  {                                                                                            \
    const int row = (A) / 2;                                                                   \
    __m512 y0 = sum##A, y1 = sum##B;                                                           \
    if (accumulate) {                                                                          \
      y0 = _mm512_add_ps(y0, _mm512_loadu_ps(c + row * ldc));                                  \
      y1 = _mm512_add_ps(y1, _mm512_loadu_ps(c + row * ldc + 16));                             \
    }                                                                                          \
    avx512_epilogue::finish_full_row32<kShape>(p, y0, y1, i0 + row, j0);                       \
  }

#define AICC_DEFINE_INDIRECT_12X32_AVX512_EPILOGUE(NAME, LOOP, DOT)                                  \
void NAME(int64_t nseg, const int64_t* seg_words, const void* const* rows, const void* b_words, \
          const float* c, int64_t ldc, int accumulate, const Epilogue& ep, int64_t i0, int64_t j0) { \
  const avx512_epilogue::RowParams p(ep);                                                     \
  AICC_I12_ALL_ROWS(AICC_I12_ACC_DECL)                                                        \
  if (nseg <= 0) {                                                                            \
    acc0 = acc1 = acc2 = acc3 = acc4 = acc5 = acc6 = acc7 = acc8 = acc9 = acc10 = acc11 =      \
        acc12 = acc13 = acc14 = acc15 = acc16 = acc17 = acc18 = acc19 = acc20 = acc21 =         \
            acc22 = acc23 = _mm512_setzero_ps();                                              \
  } else {                                                                                    \
    asm volatile(                                                                             \
        LOOP(DOT)                                                                             \
        : "=v"(acc0), "=v"(acc1), "=v"(acc2), "=v"(acc3), "=v"(acc4), "=v"(acc5), "=v"(acc6),   \
          "=v"(acc7), "=v"(acc8), "=v"(acc9), "=v"(acc10), "=v"(acc11), "=v"(acc12), "=v"(acc13), \
          "=v"(acc14), "=v"(acc15), "=v"(acc16), "=v"(acc17), "=v"(acc18), "=v"(acc19),         \
          "=v"(acc20), "=v"(acc21), "=v"(acc22), "=v"(acc23)                                    \
        : [rows] "r"(rows), [seg] "r"(seg_words), [nseg] "r"(nseg), [b] "r"(b_words)           \
        : AICC_I12_CLOBBERS);                                                         \
  }                                                                                           \
  AICC_I12_ALL_ROWS(AICC_I12_ACC_COPY)                                                        \
  avx512_epilogue::with_full_row_shape(                                                       \
      avx512_epilogue::full_row_shape(p), [&](auto shape) __attribute__((always_inline)) {    \
        constexpr unsigned kShape = decltype(shape)::value;                                   \
        AICC_I12_ALL_ROWS(AICC_I12_FINISH)                                                    \
      });                                                                                     \
}
