// Machine-peak probes: how many f32 FMA flops per second this CPU sustains, measured with
// register-only loops (no memory traffic), on the ISA path in use. Benchmarks report their
// throughput as a % of this.
#pragma once

#include <cstdint>

namespace aicc::cpu {

// f32 multiply-add peak in GFLOPS (an FMA counts as 2 flops) over `threads` threads
// (<= 0: the pool's size), each running for about `seconds`.
double peak_fma_gflops(int threads, double seconds);

// One thread's probe kernels: run `iterations` rounds, return the flops done. The result
// value is folded into *sink so the compiler cannot drop the loop.
int64_t fma_probe_portable(int64_t iterations, float* sink);
#if defined(AICC_X86)
int64_t fma_probe_avx2(int64_t iterations, float* sink);
#endif

}  // namespace aicc::cpu
