// Drivers of the peak probes: thread fan-out through the pool, calibration, timing.
// The compute probes pick the loop of the active ISA path (the one our kernels use now).
#include "cpu/peak/peak_probes.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <time.h>

#include "aicc/status.h"
#include "common/cpu_features.h"
#include "cpu/config/registry.h"
#include "common/thread_pool.h"

namespace aicc::peak {

namespace {

using Clock = std::chrono::steady_clock;

double elapsed(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void check_threads(int threads) {
  if (threads < 1) throw_invalid("threads", "an integer >= 1", std::to_string(threads));
}

}  // namespace

double thread_cpu_seconds() {
#if defined(CLOCK_THREAD_CPUTIME_ID)
  timespec ts{};
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0) return static_cast<double>(ts.tv_sec) + 1e-9 * ts.tv_nsec;
#endif
  return 0.0;
}

namespace {

// Runs `loop` for `iters` iterations on each of `threads` pool threads; returns wall seconds
// and adds the threads' CPU time to *cpu.
double run_loop(const ComputeLoop& loop, int threads, int64_t iters, std::set<int>* used, double* cpu = nullptr) {
  std::mutex mu;
  std::atomic<double> sink{0};
  std::atomic<double> cpu_total{0};
  const auto t0 = Clock::now();
  parallel_for(
      threads,
      [&](int64_t task, int thread) {
        const double c0 = thread_cpu_seconds();
        const double v = loop.loop(iters, static_cast<int>(task) + 1);
        const double dc = thread_cpu_seconds() - c0;
        double cur_cpu = cpu_total.load();
        while (!cpu_total.compare_exchange_weak(cur_cpu, cur_cpu + dc)) {
        }
        double cur = sink.load();
        while (!sink.compare_exchange_weak(cur, cur + v)) {
        }
        std::lock_guard<std::mutex> lock(mu);
        used->insert(thread);
      },
      threads);
  const double t = elapsed(t0);
  if (cpu) *cpu = cpu_total.load();
  // The sink is read so the loops' results are observably used.
  if (sink.load() == -1.2345) used->insert(-1);
  return t;
}

ProbeResult run_compute_probe(const ComputeLoop& loop, int threads, double seconds, int repeats) {
  check_threads(threads);
  if (!(seconds > 0)) throw_invalid("seconds", "a positive duration", std::to_string(seconds));
  if (repeats < 1) throw_invalid("repeats", "an integer >= 1", std::to_string(repeats));
  std::set<int> used;
  // Calibrate: double the iteration count until one run takes >= 20 ms, then scale.
  int64_t iters = 1 << 12;
  double t = run_loop(loop, threads, iters, &used);
  while (t < 0.02 && iters < (int64_t{1} << 40)) {
    iters *= 2;
    t = run_loop(loop, threads, iters, &used);
  }
  iters = std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(iters) * seconds / t));
  ProbeResult r;
  r.path = loop.path;
  r.work = static_cast<double>(iters) * loop.work_per_iter() * threads;
  used.clear();
  for (int i = 0; i < repeats; ++i) {
    double cpu = 0;
    r.seconds.push_back(run_loop(loop, threads, iters, &used, &cpu));
    r.cpu_seconds.push_back(cpu);
  }
  r.threads_used = static_cast<int>(used.size());
  return r;
}

double fma_portable(int64_t iters, int seed) { return fp32_fma_loop_portable(iters, static_cast<float>(seed)); }
double madd_portable(int64_t iters, int seed) { return int8_madd_loop_portable(iters, seed); }
#if defined(AICC_X86)
double fma_avx2(int64_t iters, int seed) { return fp32_fma_loop_avx2(iters, static_cast<float>(seed)); }
double madd_avx2(int64_t iters, int seed) { return int8_madd_loop_avx2(iters, seed); }
double vnni_avx512(int64_t iters, int seed) { return int8_vnni_loop_avx512(iters, seed); }
double fma_avx512(int64_t iters, int seed) { return fp32_fma_loop_avx512(iters, static_cast<float>(seed)); }
double bf16_avx512(int64_t iters, int seed) { return bf16_dot_loop_avx512(iters, seed); }
#endif

}  // namespace

const ComputeLoop& fp32_fma_loop_entry_portable() {
  static const ComputeLoop e{&fma_portable, &fp32_fma_flops_per_iter_portable, "portable"};
  return e;
}
const ComputeLoop& int8_madd_loop_entry_portable() {
  static const ComputeLoop e{&madd_portable, &int8_madd_ops_per_iter_portable, "portable"};
  return e;
}
#if defined(AICC_X86)
const ComputeLoop& fp32_fma_loop_entry_avx2() {
  static const ComputeLoop e{&fma_avx2, &fp32_fma_flops_per_iter_avx2, "avx2"};
  return e;
}
// The f32 GEMM has a 512-bit microkernel on AVX-512, so its peak is measured with zmm FMAs.
const ComputeLoop& fp32_fma_loop_entry_avx512() {
  static const ComputeLoop e{&fma_avx512, &fp32_fma_flops_per_iter_avx512, "avx512"};
  return e;
}
const ComputeLoop& int8_madd_loop_entry_avx2() {
  static const ComputeLoop e{&madd_avx2, &int8_madd_ops_per_iter_avx2, "avx2"};
  return e;
}
const ComputeLoop& int8_vnni_loop_entry_avx512() {
  static const ComputeLoop e{&vnni_avx512, &int8_vnni_ops_per_iter_avx512, "avx512vnni"};
  return e;
}
const ComputeLoop& bf16_dot_loop_entry_avx512() {
  static const ComputeLoop e{&bf16_avx512, &bf16_dot_flops_per_iter_avx512, "avx512bf16"};
  return e;
}
#endif

// The probe of the kernel path the GEMMs take now: the registry's choice.
ProbeResult fp32_fma(int threads, double seconds, int repeats) {
  return run_compute_probe(*cpu::registry::select(cpu::registry::families().peak_f32).impl, threads, seconds,
                           repeats);
}

ProbeResult bf16_dot(int threads, double seconds, int repeats) {
  return run_compute_probe(*cpu::registry::select(cpu::registry::families().peak_bf16).impl, threads, seconds,
                           repeats);
}

ProbeResult int8_madd(int threads, double seconds, int repeats) {
  return run_compute_probe(*cpu::registry::select(cpu::registry::families().peak_int8).impl, threads, seconds,
                           repeats);
}

}  // namespace aicc::peak
