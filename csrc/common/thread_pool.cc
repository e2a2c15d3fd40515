#include "common/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define AICC_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define AICC_CPU_RELAX() __asm__ __volatile__("yield")
#else
#define AICC_CPU_RELAX() ((void)0)
#endif

#include "aicc/status.h"

namespace aicc {
namespace {

// Spinning before sleeping keeps back-to-back small kernels from paying a futex wake-up
// (~10-50 us); the bound keeps idle workers from burning a core between Python calls.
constexpr int kSpinIterations = 20000;

int parse_env_threads();

class ThreadPool {
 public:
  // Never destroyed: workers may outlive statics. After fork() the child gets a fresh pool
  // (see fork_child): the parent's mutexes, condition variable and worker bookkeeping may
  // have been captured mid-operation by the fork and cannot be repaired in place (glibc's
  // pthread_cond_broadcast in the child waits for waiters that no longer exist).
  static ThreadPool& instance() {
    ThreadPool* pool = current_.load(std::memory_order_acquire);
    if (pool != nullptr) return *pool;
    std::lock_guard<std::mutex> lk(create_mutex());
    pool = current_.load(std::memory_order_relaxed);
    if (pool == nullptr) {
      pool = new ThreadPool(parse_env_threads());  // may throw (bad AICC_NUM_THREADS): retried next call
#if defined(__linux__)
      static const bool registered = [] { return pthread_atfork(nullptr, nullptr, &ThreadPool::fork_child) == 0; }();
      (void)registered;
#endif
      current_.store(pool, std::memory_order_release);
    }
    return *pool;
  }

  int num_threads() const { return num_threads_.load(std::memory_order_relaxed); }

  void set_num_threads(int n) {
    std::lock_guard<std::mutex> busy(busy_);
    stop_workers();
    num_threads_.store(n, std::memory_order_relaxed);
  }

  void run(int64_t num_tasks, const std::function<void(int64_t, int)>& body, int max_threads) {
    if (num_tasks <= 0) return;
    int threads = num_threads();
    if (max_threads > 0 && max_threads < threads) threads = max_threads;
    if (threads > num_tasks) threads = static_cast<int>(num_tasks);
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (threads <= 1 || !busy.owns_lock()) {
      for (int64_t t = 0; t < num_tasks; ++t) body(t, 0);
      return;
    }
    if (ExternalTeam team = external_team_.load(std::memory_order_acquire)) {
      body_ = &body;
      num_tasks_ = num_tasks;
      next_task_.store(0, std::memory_order_relaxed);
      error_ = nullptr;
      team(threads, [](void* self, int worker) { static_cast<ThreadPool*>(self)->work(worker); }, this);
      body_ = nullptr;
      if (error_) std::rethrow_exception(error_);
      return;
    }
    ensure_workers(num_threads() - 1);

    body_ = &body;
    num_tasks_ = num_tasks;
    next_task_.store(0, std::memory_order_relaxed);
    error_ = nullptr;
    const uint64_t generation = publish_job(threads);
    wake_.notify_all();

    work(0);
    // Every task is claimed. Close the job to workers that have not joined yet and wait only
    // for the ones that did (they are finishing claimed tasks). On an oversubscribed machine a
    // worker may not get a core for milliseconds: waiting for it to check in made a 2-thread
    // 128^3 GEMM 3-5x slower than a 1-thread one while another process held the second core.
    uint64_t state = join_state_.load(std::memory_order_acquire);
    while (!join_state_.compare_exchange_weak(state, pack_join(generation, /*open=*/false, joined_of(state)),
                                              std::memory_order_acq_rel)) {
    }
    for (int spin = 0; joined_of(join_state_.load(std::memory_order_acquire)) != 0; ++spin) {
      if (spin < kSpinIterations) {
        AICC_CPU_RELAX();
      } else {
        std::this_thread::yield();
      }
    }
    body_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  explicit ThreadPool(int num_threads) { num_threads_.store(num_threads); }

  // atfork child handler: only the forking thread exists in the child. Whatever state the
  // parent's pool was in (idle workers asleep on the condition variable, a kernel running,
  // a mutex held by another thread), the child abandons it -- leaked on purpose, since
  // its std::thread objects are joinable and its primitives may be locked -- and starts
  // from a new pool with the same thread count. The creation mutex is re-created too: a
  // parent thread may have held it at the moment of the fork.
  static void fork_child() {
    // The framework's team may not survive a fork either (GNU OpenMP's does not): the child
    // runs on a fresh pool of our own.
    external_team_.store(nullptr, std::memory_order_release);
    new (&create_mutex()) std::mutex();
    ThreadPool* old = current_.load(std::memory_order_relaxed);
    if (old != nullptr) current_.store(new ThreadPool(old->num_threads()), std::memory_order_release);
  }

  static std::mutex& create_mutex() {
    static std::mutex* m = new std::mutex();
    return *m;
  }

  static std::atomic<ThreadPool*> current_;

 public:
  static std::atomic<ExternalTeam> external_team_;

 private:

  // The generation and the number of participating threads are published in one atomic
  // word, so a worker that wakes late (or skips a generation in which it did not
  // participate) always sees a consistent pair; the job fields it then reads cannot change
  // under it, because the next job waits for every participant of this one.
  // Returns the new generation. The job opens for workers to join (join_state_) before the
  // generation is published, so a worker that sees the generation finds it open.
  uint64_t publish_job(int participants) {
    std::lock_guard<std::mutex> lk(wake_mutex_);
    const uint64_t next_generation = (job_word_.load(std::memory_order_relaxed) >> 16) + 1;
    join_state_.store(pack_join(next_generation, /*open=*/true, 0), std::memory_order_release);
    job_word_.store((next_generation << 16) | static_cast<uint64_t>(participants),
                    std::memory_order_release);
    return next_generation;
  }

  // join_state_: (generation << 33) | (open << 32) | workers that joined and have not left.
  // A worker joins only the generation it saw, and only while it is open; the caller closes it
  // once every task is claimed, then waits for the joined count to drop to zero. The job's
  // fields (body_, num_tasks_, ...) are read only by joined workers, so the next job can reuse
  // them as soon as the count is zero, whoever has not woken up yet.
  static uint64_t pack_join(uint64_t generation, bool open, uint64_t joined) {
    return (generation << 33) | (static_cast<uint64_t>(open) << 32) | joined;
  }
  static uint64_t joined_of(uint64_t state) { return state & 0xffffffffu; }

  bool try_join(uint64_t generation) {
    uint64_t state = join_state_.load(std::memory_order_acquire);
    for (;;) {
      if ((state >> 33) != (generation & ((uint64_t{1} << 31) - 1)) || ((state >> 32) & 1) == 0) return false;
      if (join_state_.compare_exchange_weak(state, state + 1, std::memory_order_acq_rel)) return true;
    }
  }

  void ensure_workers(int count) {
    while (static_cast<int>(workers_.size()) < count) {
      const int index = static_cast<int>(workers_.size()) + 1;
      const uint64_t seen = job_word_.load(std::memory_order_acquire) >> 16;
      workers_.emplace_back([this, index, seen] { worker_loop(index, seen); });
    }
  }

  void stop_workers() {
    stop_.store(true);
    publish_job(0);
    wake_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
    stop_.store(false);
  }

  void worker_loop(int index, uint64_t seen) {
    for (;;) {
      uint64_t word = job_word_.load(std::memory_order_acquire);
      for (int spin = 0; spin < kSpinIterations && (word >> 16) == seen; ++spin) {
        AICC_CPU_RELAX();
        word = job_word_.load(std::memory_order_acquire);
      }
      if ((word >> 16) == seen) {
        std::unique_lock<std::mutex> lk(wake_mutex_);
        wake_.wait(lk, [&] { return (job_word_.load(std::memory_order_acquire) >> 16) != seen; });
        word = job_word_.load(std::memory_order_acquire);
      }
      seen = word >> 16;
      if (stop_.load()) return;
      if (index < static_cast<int>(word & 0xffffu) && try_join(seen)) {
        work(index);
        join_state_.fetch_sub(1, std::memory_order_acq_rel);
      }
    }
  }

  void work(int thread) {
    for (;;) {
      const int64_t task = next_task_.fetch_add(1, std::memory_order_relaxed);
      if (task >= num_tasks_) return;
      try {
        (*body_)(task, thread);
      } catch (...) {
        std::lock_guard<std::mutex> lk(error_mutex_);
        if (!error_) error_ = std::current_exception();
        next_task_.store(num_tasks_, std::memory_order_relaxed);  // stop handing out tasks
      }
    }
  }

  std::atomic<int> num_threads_{1};
  std::vector<std::thread> workers_;
  std::mutex busy_;  // held by the one call that owns the workers
  std::mutex wake_mutex_;
  std::condition_variable wake_;
  std::atomic<uint64_t> job_word_{0};  // (generation << 16) | participants
  std::atomic<bool> stop_{false};

  const std::function<void(int64_t, int)>* body_ = nullptr;
  int64_t num_tasks_ = 0;
  std::atomic<int64_t> next_task_{0};
  std::atomic<uint64_t> join_state_{0};
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

std::atomic<ThreadPool*> ThreadPool::current_{nullptr};
std::atomic<ExternalTeam> ThreadPool::external_team_{nullptr};

// AICC_NUM_THREADS: unset, empty or 0 means the default; anything else must be a whole
// number in [1, max_threads()]. Garbage is an error rather than a silent fallback, so a
// typo cannot quietly run a job on one thread (or on a thousand).
int parse_env_threads() {
  const char* env = std::getenv("AICC_NUM_THREADS");
  if (env == nullptr) return available_cores();
  std::string text(env);
  const auto first = text.find_first_not_of(" \t");
  const auto last = text.find_last_not_of(" \t");
  text = first == std::string::npos ? std::string() : text.substr(first, last - first + 1);
  if (text.empty()) return available_cores();
  const std::string expected =
      "a whole number of threads from 1 to " + std::to_string(max_threads()) + " (0 or unset: the default)";
  bool digits = text.size() <= 10;
  for (char c : text) digits = digits && c >= '0' && c <= '9';
  if (!digits) throw_invalid("AICC_NUM_THREADS", expected, "'" + std::string(env) + "'");
  const long long n = std::stoll(text);
  if (n == 0) return available_cores();
  if (n > max_threads()) throw_invalid("AICC_NUM_THREADS", expected, "'" + std::string(env) + "'");
  return static_cast<int>(n);
}

}  // namespace

int available_cores() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
#endif
  const unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(hw) : 1;
}

int max_threads() {
  const unsigned hw = std::thread::hardware_concurrency();
  const int cores = std::max(available_cores(), static_cast<int>(hw));
  return kMaxThreadsPerCore * std::max(cores, 1);
}

int get_num_threads() { return ThreadPool::instance().num_threads(); }

void set_num_threads(int64_t n) {
  if (n < 0 || n > max_threads())
    throw_invalid("n", "a thread count from 1 to " + std::to_string(max_threads()) + " (or 0 for the default)",
                  std::to_string(n));
  if (n == 0) {
    // The default is what the pool would start with: AICC_NUM_THREADS, else the cores.
    ThreadPool::instance().set_num_threads(parse_env_threads());
    return;
  }
  ThreadPool::instance().set_num_threads(static_cast<int>(n));
}

void parallel_for(int64_t num_tasks, const std::function<void(int64_t, int)>& body,
                  int max_threads) {
  ThreadPool::instance().run(num_tasks, body, max_threads);
}

void set_external_team(ExternalTeam team) {
  ThreadPool& pool = ThreadPool::instance();  // registers the fork handler that resets it
  (void)pool;
  ThreadPool::external_team_.store(team, std::memory_order_release);
}

ExternalTeam external_team() { return ThreadPool::external_team_.load(std::memory_order_acquire); }

}  // namespace aicc
