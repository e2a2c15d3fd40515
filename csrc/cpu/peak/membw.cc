// STREAM-style memory bandwidth: copy (c[i] = a[i]) and triad (a[i] = b[i] + s * c[i]) over
// three arrays of doubles much larger than the caches. Bytes are counted as STREAM counts
// them (16 per copied element, 24 per triad element; write-allocate traffic not counted).
// Each thread owns one contiguous slice and touches it first, so pages land near it.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <set>

#include "aicc/status.h"
#include "common/thread_pool.h"
#include "cpu/peak/peak_probes.h"

namespace aicc::peak {

namespace {

struct FreeDeleter {
  void operator()(double* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<double[], FreeDeleter>;

Buffer allocate(int64_t n) {
  void* p = std::aligned_alloc(64, static_cast<size_t>(((n * 8 + 63) / 64) * 64));
  if (!p) throw InvalidArgument("bytes_per_array: expected a size that can be allocated, got " +
                                std::to_string(n * 8));
  return Buffer(static_cast<double*>(p));
}

template <typename Body>
double timed_slices(int threads, int64_t n, std::set<int>* used, const Body& body, double* cpu = nullptr) {
  std::mutex mu;
  double cpu_total = 0;
  const auto t0 = std::chrono::steady_clock::now();
  parallel_for(
      threads,
      [&](int64_t task, int thread) {
        const int64_t begin = n * task / threads;
        const int64_t end = n * (task + 1) / threads;
        const double c0 = thread_cpu_seconds();
        body(begin, end);
        const double dc = thread_cpu_seconds() - c0;
        std::lock_guard<std::mutex> lock(mu);
        used->insert(thread);
        cpu_total += dc;
      },
      threads);
  if (cpu) *cpu = cpu_total;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

MemBwResult memory_bandwidth(int threads, int64_t bytes_per_array, int repeats) {
  if (threads < 1) throw_invalid("threads", "an integer >= 1", std::to_string(threads));
  if (bytes_per_array < 1024 * 1024)
    throw_invalid("bytes_per_array", "at least 1 MiB", std::to_string(bytes_per_array));
  if (repeats < 1) throw_invalid("repeats", "an integer >= 1", std::to_string(repeats));
  const int64_t n = bytes_per_array / 8;
  Buffer a = allocate(n), b = allocate(n), c = allocate(n);
  double* pa = a.get();
  double* pb = b.get();
  double* pc = c.get();
  std::set<int> used;
  timed_slices(threads, n, &used, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      pa[i] = 1.0;
      pb[i] = 2.0;
      pc[i] = 0.0;
    }
  });
  const double s = 3.0;
  MemBwResult r;
  r.copy.path = r.triad.path = "portable";
  r.copy.work = 16.0 * static_cast<double>(n);
  r.triad.work = 24.0 * static_cast<double>(n);
  // One untimed pass of each kernel (page faults, frequency ramp), then `repeats` timed ones.
  for (int i = 0; i <= repeats; ++i) {
    used.clear();
    double cc = 0, ct = 0;
    const double tc = timed_slices(threads, n, &used, [&](int64_t lo, int64_t hi) {
      for (int64_t k = lo; k < hi; ++k) pc[k] = pa[k];
    }, &cc);
    const double tt = timed_slices(threads, n, &used, [&](int64_t lo, int64_t hi) {
      for (int64_t k = lo; k < hi; ++k) pa[k] = pb[k] + s * pc[k];
    }, &ct);
    if (i > 0) {
      r.copy.seconds.push_back(tc);
      r.triad.seconds.push_back(tt);
      r.copy.cpu_seconds.push_back(cc);
      r.triad.cpu_seconds.push_back(ct);
    }
  }
  r.copy.threads_used = r.triad.threads_used = static_cast<int>(used.size());
  // Read one element so the stores are observably used.
  if (pa[n / 2] == -1.0) r.triad.threads_used = -1;
  return r;
}

}  // namespace aicc::peak
