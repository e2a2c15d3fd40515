// f32 FMA peak probe: the driver (threads, timing) and the portable kernel.
#include "cpu/peak/fma_peak.h"

#include <algorithm>
#include <atomic>
#include <chrono>

#include "common/cpu_features.h"
#include "common/thread_pool.h"

namespace aicc::cpu {

// 8 independent chains of 8 lanes: enough independent work for the compiler's vectorized
// multiply-adds at the baseline ISA (mul + add on SSE2, a fused op where it exists).
int64_t fma_probe_portable(int64_t iterations, float* sink) {
  float acc[8][8];
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 8; ++j) acc[i][j] = 0.001f * static_cast<float>(i * 8 + j);
  const float x = 0.999999f, y = 1e-7f;
  for (int64_t it = 0; it < iterations; ++it)
    for (int i = 0; i < 8; ++i)
      for (int j = 0; j < 8; ++j) acc[i][j] = acc[i][j] * x + y;
  float s = 0;
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 8; ++j) s += acc[i][j];
  *sink += s;
  return iterations * 64 * 2;
}

double peak_fma_gflops(int threads, double seconds) {
  using clock = std::chrono::steady_clock;
  int t = get_num_threads();
  if (threads > 0) t = std::min(t, threads);
  const bool avx2 = active_isa() >= Isa::kAvx2;
  std::atomic<float> sink{0};
  // Many short windows, keeping the best: on a shared or virtualized machine a long window
  // averages in the time other processes hold the core, which is not the machine's peak.
  constexpr double kWindow = 0.002;
  const auto end = clock::now() + std::chrono::duration<double>(seconds);
  double best = 0;
  do {
    std::atomic<int64_t> flops{0};
    const auto start = clock::now();
    const auto deadline = start + std::chrono::duration<double>(kWindow);
    // Every task runs until the same deadline, so a thread that picks up two tasks adds
    // nothing with the second; total flops over the elapsed time is the rate.
    parallel_for(
        t,
        [&](int64_t, int) {
          float local = 0;
          int64_t done = 0;
          while (clock::now() < deadline) {
#if defined(AICC_X86)
            done += avx2 ? fma_probe_avx2(2000, &local) : fma_probe_portable(2000, &local);
#else
            done += fma_probe_portable(2000, &local);
#endif
          }
          flops.fetch_add(done);
          float expected = sink.load();
          while (!sink.compare_exchange_weak(expected, expected + local)) {
          }
        },
        t);
    const double elapsed = std::chrono::duration<double>(clock::now() - start).count();
    best = std::max(best, static_cast<double>(flops.load()) / elapsed / 1e9);
  } while (clock::now() < end);
  return best + 0.0 * sink.load();
}

}  // namespace aicc::cpu
