// Machine-limit microbenchmarks behind `aicc-bench peak`: the f32 FMA peak, the INT8
// multiply-add peak on the exact int16 -> int32 route our INT8 GEMM uses, and memory
// bandwidth (STREAM copy and triad). Every "% of peak" column divides by these, measured
// in the same run, never by a datasheet number.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace aicc::peak {

struct ProbeResult {
  double work = 0;               // FLOPs, integer ops or bytes of one timed run (per run, all threads)
  std::vector<double> seconds;   // wall time of each timed run
  std::vector<double> cpu_seconds;  // CPU time the probe's threads got in each run, summed over
                                    // threads (0 where not measurable): < threads * wall means
                                    // other processes took the cores for part of the run
  int threads_used = 0;          // distinct pool threads that ran a share (may be < requested if the pool was busy)
  std::string path;              // "avx512", "avx512vnni", "avx2" or "portable": the code path measured
};

// 2 * 8 lanes * accumulators FLOPs per iteration, `threads` threads each running the loop.
// Calibrated so that one run takes about `seconds`; `repeats` runs are timed.
ProbeResult fp32_fma(int threads, double seconds, int repeats);

// The INT8 route our INT8 GEMM takes on this machine: with AVX-512 VNNI (active ISA avx512),
// vpdpbusd on zmm (64 u8 x s8 multiply-adds = 128 ops per instruction); otherwise vpmaddwd
// (16 int16 x int16 products summed pairwise into 8 int32) + vpaddd: 16 multiply-adds = 32
// ops per pair of instructions. Counted like 2*M*N*K.
ProbeResult int8_madd(int threads, double seconds, int repeats);

// The bf16 peak of the kernel the bf16 GEMM uses now: vdpbf16ps (2 FLOPs per lane per k pair,
// path "avx512bf16") where the registry picks a bf16 dot-product kernel, else the f32 FMA loop
// of the f32 kernel bf16 then runs on (its path label).
ProbeResult bf16_dot(int threads, double seconds, int repeats);

// STREAM-style copy (c = a: 16 bytes per double element) and triad (a = b + s*c: 24 bytes).
// Three arrays of `bytes_per_array`, first touched by the thread that streams them.
struct MemBwResult {
  ProbeResult copy;
  ProbeResult triad;
};
MemBwResult memory_bandwidth(int threads, int64_t bytes_per_array, int repeats);

// CPU time consumed so far by the calling thread (CLOCK_THREAD_CPUTIME_ID; 0 without it).
double thread_cpu_seconds();

// One compute probe as the registry lists it: the loop, the work per iteration, the path label.
struct ComputeLoop {
  double (*loop)(int64_t iters, int seed);
  int (*work_per_iter)();
  const char* path;
};
const ComputeLoop& fp32_fma_loop_entry_portable();
const ComputeLoop& int8_madd_loop_entry_portable();
#if defined(AICC_X86)
const ComputeLoop& fp32_fma_loop_entry_avx2();
const ComputeLoop& fp32_fma_loop_entry_avx512();
const ComputeLoop& int8_madd_loop_entry_avx2();
const ComputeLoop& int8_vnni_loop_entry_avx512();
const ComputeLoop& bf16_dot_loop_entry_avx512();
#endif

// Per-ISA inner loops (one file each). Each returns a value derived from every
// accumulator so the compiler cannot drop the work.
double fp32_fma_loop_portable(int64_t iters, float seed);
int fp32_fma_flops_per_iter_portable();
double int8_madd_loop_portable(int64_t iters, int seed);
int int8_madd_ops_per_iter_portable();
#if defined(AICC_X86)
double fp32_fma_loop_avx2(int64_t iters, float seed);
int fp32_fma_flops_per_iter_avx2();
double int8_madd_loop_avx2(int64_t iters, int seed);
int int8_madd_ops_per_iter_avx2();
double fp32_fma_loop_avx512(int64_t iters, float seed);
int fp32_fma_flops_per_iter_avx512();
double int8_vnni_loop_avx512(int64_t iters, int seed);
int int8_vnni_ops_per_iter_avx512();
double bf16_dot_loop_avx512(int64_t iters, int seed);
int bf16_dot_flops_per_iter_avx512();
#endif

}  // namespace aicc::peak
