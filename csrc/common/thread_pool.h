// The one thread pool every CPU kernel uses.
//
// Sized by set_num_threads() / AICC_NUM_THREADS, defaulting to the cores this process may
// run on (sched_getaffinity), so it never oversubscribes a container's CPU quota.
// The calling thread is one of the workers. A call that finds the pool busy (another
// Python thread's kernel, or a kernel started from inside a task) runs its tasks inline
// on the calling thread instead of queueing: correct and deadlock-free, just serial.
#pragma once

#include <cstdint>
#include <functional>

namespace aicc {

// Number of threads kernels use (>= 1).
int get_num_threads();

// Sets the number of threads (>= 1; 0 restores the default). Waits for a running kernel.
void set_num_threads(int n);

// Cores this process may use (the default thread count).
int available_cores();

// Runs body(task, thread) for every task in [0, num_tasks), on at most
// min(max_threads, get_num_threads()) threads (max_threads <= 0: no extra limit).
// `thread` is in [0, threads used by this call): use it to index per-call scratch, never
// as a global identity (concurrent calls run inline with thread == 0). Tasks are handed
// out dynamically in increasing order. The first exception thrown by a task is rethrown
// here after all threads have stopped.
void parallel_for(int64_t num_tasks, const std::function<void(int64_t task, int thread)>& body,
                  int max_threads = 0);

}  // namespace aicc
