// The one thread pool every CPU kernel uses.
//
// Sized by set_num_threads() / AICC_NUM_THREADS, defaulting to the cores this process may
// run on (sched_getaffinity), so it never oversubscribes a container's CPU quota.
// Fork-safe: a child process (os.fork, multiprocessing's fork start method, DataLoader
// workers) starts with a fresh pool of the parent's size, whatever the parent's pool was
// doing at the fork.
// The calling thread is one of the workers. A call that finds the pool busy (another
// Python thread's kernel, or a kernel started from inside a task) runs its tasks inline
// on the calling thread instead of queueing: correct and deadlock-free, just serial.
#pragma once

#include <cstdint>
#include <functional>

namespace aicc {

// Number of threads kernels use (>= 1). Throws InvalidArgument naming AICC_NUM_THREADS
// when that variable is not a thread count (every kernel call then does the same).
int get_num_threads();

// Sets the number of threads (1 to max_threads(); 0 restores the default: AICC_NUM_THREADS,
// else the cores). Waits for a running kernel.
void set_num_threads(int64_t n);

// Cores this process may use (the default thread count).
int available_cores();

// A pool of more threads than this only adds memory and context switches (each thread
// gets per-call packing scratch): at most kMaxThreadsPerCore per logical core of the
// machine (the larger of the affinity mask and the online CPUs).
constexpr int kMaxThreadsPerCore = 4;
int max_threads();

// Runs body(task, thread) for every task in [0, num_tasks), on at most
// min(max_threads, get_num_threads()) threads (max_threads <= 0: no extra limit).
// `thread` is in [0, threads used by this call): use it to index per-call scratch, never
// as a global identity (concurrent calls run inline with thread == 0). Tasks are handed
// out dynamically in increasing order. The first exception thrown by a task is rethrown
// here after all threads have stopped.
void parallel_for(int64_t num_tasks, const std::function<void(int64_t task, int thread)>& body,
                  int max_threads = 0);

// A host framework's thread team (PyTorch's OpenMP threads, through the torch extension):
// runs fn(ctx, worker) once for every worker in [0, workers), on threads it owns, and returns
// when all have returned (running some or all of them one after another is fine: workers
// take tasks from a shared counter). When one is set, parallel_for runs its workers on that
// team instead of on this pool's threads, so a model that mixes our kernels with the
// framework's does not keep two sets of threads spinning on the same cores. nullptr: our
// own workers (the default, and what a forked child always gets back).
using ExternalTeam = void (*)(int workers, void (*fn)(void* ctx, int worker), void* ctx);
void set_external_team(ExternalTeam team);
ExternalTeam external_team();

}  // namespace aicc
