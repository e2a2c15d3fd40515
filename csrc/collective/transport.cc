// Regions (POSIX shared memory or process memory), joining a job, and the one wait every
// algorithm uses: a barrier on per-rank counters with spin-then-sleep, a deadline, abort
// propagation and, between processes, a liveness check of the rank being waited for.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>
#include <sstream>
#include <thread>

#if defined(AICC_X86)
#include <immintrin.h>
#endif

#include "aicc/status.h"
#include "collective/call.h"
#include "cpu/reduce/reduce.h"

namespace aicc::collective {

namespace {

using Clock = std::chrono::steady_clock;

// How long a wait spins before it starts yielding the core.
constexpr int kSpinMicros = 5;

inline void cpu_relax() {
#if defined(AICC_X86)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

class ShmRegion final : public Region {
 public:
  using Region::Region;
  ~ShmRegion() override { munmap(base_, static_cast<size_t>(layout_.total_bytes)); }
};

class HeapRegion final : public Region {
 public:
  using Region::Region;
  ~HeapRegion() override { ::operator delete(base_, std::align_val_t{4096}); }
};

// True when `pid` is gone: no such process, or a zombie nobody has reaped yet.
bool process_dead(int pid) {
  if (pid <= 0) return false;
  if (kill(pid, 0) != 0) return errno == ESRCH;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const auto close = line.rfind(')');
  if (close == std::string::npos || close + 2 >= line.size()) return false;
  const char state = line[close + 2];
  return state == 'Z' || state == 'X';
}

std::string peer_name(const Region& region, int r) {
  if (!region.processes()) return "rank " + std::to_string(r);
  return "rank " + std::to_string(r) + " (pid " + std::to_string(region.info(r)->pid.load()) + ")";
}

std::string abort_message(const Region& region) {
  const RegionHeader* h = region.header();
  for (int i = 0; i < 100000 && h->aborted.load(std::memory_order_acquire) != 2; ++i) cpu_relax();
  return std::string(h->abort_message, strnlen(h->abort_message, kAbortMessageBytes));
}

void post_abort(const Region& region, const std::string& why) {
  RegionHeader* h = region.header();
  int32_t expected = 0;
  if (!h->aborted.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) return;  // first one wins
  const size_t n = std::min(why.size(), kAbortMessageBytes - 1);
  std::memcpy(h->abort_message, why.data(), n);
  h->abort_message[n] = '\0';
  h->aborted.store(2, std::memory_order_release);
}

bool valid_job(const std::string& job) {
  if (job.empty() || job.size() > 200) return false;
  for (char c : job)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

void sleep_us(int us) { std::this_thread::sleep_for(std::chrono::microseconds(us)); }

// start + seconds, saturating: timeouts of kNoDeadlineSeconds and more (infinity included)
// mean "no deadline"; converting them to nanoseconds would overflow int64 and put the
// deadline in the past.
Clock::time_point deadline_after(Clock::time_point start, double seconds) {
  if (!(seconds < kNoDeadlineSeconds)) return Clock::time_point::max();
  return start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

std::string seconds_text(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", seconds);
  return text;
}

void check_slot_bytes(int64_t slot_bytes) {
  if (slot_bytes < kMinSlotBytes || slot_bytes > kMaxSlotBytes)
    throw_invalid("slot_bytes", std::to_string(kMinSlotBytes) + " to " + std::to_string(kMaxSlotBytes) + " bytes",
                  std::to_string(slot_bytes));
}

}  // namespace

const char* call_kind_name(uint32_t kind) {
  switch (static_cast<CallKind>(kind)) {
    case CallKind::kAllreduce: return "allreduce";
    case CallKind::kReduceScatter: return "reduce_scatter";
    case CallKind::kAllGather: return "all_gather";
    case CallKind::kBroadcast: return "broadcast";
    case CallKind::kBarrier: return "barrier";
  }
  return "?";
}

void set_shape(CallDesc& d, const Shape& shape) {
  d.ndim = shape.ndim < 0 ? -1 : shape.ndim;
  for (int i = 0; i < kDescDims; ++i) d.dims[i] = 0;
  for (int i = 0; i < d.ndim && i < kDescDims; ++i) d.dims[i] = shape.dims[i];
  if (d.ndim > kDescDims) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a over the extents that do not fit
    for (int i = kDescDims - 1; i < d.ndim; ++i) {
      h ^= static_cast<uint64_t>(shape.dims[i]);
      h *= 1099511628211ull;
    }
    d.dims[kDescDims - 1] = static_cast<int64_t>(h);
  }
}

bool same_call(const CallDesc& a, const CallDesc& b) {
  if (a.kind != b.kind || a.op != b.op || a.dtype != b.dtype || a.comp != b.comp || a.count != b.count ||
      a.extra != b.extra || a.ndim != b.ndim)
    return false;
  for (int i = 0; i < kDescDims; ++i)
    if (a.dims[i] != b.dims[i]) return false;
  return true;
}

std::string describe_call(const CallDesc& d) {
  static const char* const kComp[] = {"none", "fp16", "bf16", "int8"};
  std::ostringstream s;
  const auto kind = static_cast<CallKind>(d.kind);
  s << call_kind_name(d.kind);
  if (kind == CallKind::kBarrier) return s.str() + "()";
  s << "(";
  if (kind == CallKind::kAllreduce || kind == CallKind::kReduceScatter)
    s << "op=" << cpu::reduce_op_name(static_cast<cpu::ReduceOp>(d.op)) << ", ";
  s << "dtype=" << dtype_name(static_cast<DType>(d.dtype)) << ", count=" << d.count;
  if (d.ndim >= 0) {
    s << ", shape=(";
    for (int i = 0; i < d.ndim && i < kDescDims; ++i) {
      if (i == kDescDims - 1 && d.ndim > kDescDims) {
        s << ", ...";  // the hash of the trailing extents is not worth printing
        break;
      }
      s << (i ? ", " : "") << d.dims[i];
    }
    s << (d.ndim == 1 ? ",)" : ")");
    if (d.ndim > kDescDims) s << " [" << d.ndim << "-d]";
  }
  if (kind == CallKind::kAllreduce && d.comp != 0 && d.comp < 4) s << ", compression=" << kComp[d.comp];
  if (kind == CallKind::kBroadcast) s << ", root=" << d.extra;
  return s.str() + ")";
}

Communicator::Communicator(std::shared_ptr<Region> region, int rank, int size, const Options& opt)
    : region_(std::move(region)), rank_(rank), size_(size), opt_(opt), timeout_s_(opt.timeout_s) {
  // More ranks than cores: a spinning rank may be holding the core the awaited rank needs,
  // so yield from the first check on (Open MPI does the same when oversubscribed).
  const long cores = sysconf(_SC_NPROCESSORS_ONLN);
  oversubscribed_ = cores > 0 && size > cores;
}

Communicator::~Communicator() = default;

void Communicator::set_timeout(double seconds) {
  if (!(seconds > 0)) throw_invalid("timeout", "a positive number of seconds", std::to_string(seconds));
  timeout_s_ = seconds;
}

void Communicator::abort(const std::string& why) { post_abort(*region_, why); }

void Communicator::fail(const std::string& msg, bool tell_others) {
  if (tell_others) post_abort(*region_, msg);
  broken_ = msg;
  throw CollectiveError(msg);
}

void Communicator::check_usable() {
  if (!broken_.empty()) throw CollectiveError("communicator unusable after an earlier failure: " + broken_);
  if (region_->header()->aborted.load(std::memory_order_acquire)) fail(abort_message(*region_), false);
}

int Communicator::stage(Call& call) {
  const int parity = static_cast<int>(chunk_++ & 1);
  if (call.first) region_->info(rank_)->desc[parity] = call.desc;
  return parity;
}

void Communicator::sync(Call& call) {
  const uint64_t target = ++phase_;
  region_->ctl(rank_)->phase.store(target, std::memory_order_release);
  const auto start = Clock::now();
  const auto deadline = deadline_after(start, timeout_s_);
  const char* what = call_kind_name(call.desc.kind);
  for (int q = 0; q < size_; ++q) {
    if (q == rank_) continue;
    const PeerCtl* c = region_->ctl(q);
    auto next_liveness = start + std::chrono::milliseconds(10);
    // Spin (cheap, lowest latency) for ~50 us, then yield the core for a few ms (ranks may
    // share cores), then sleep in short steps; the deadline and liveness are checked
    // between steps.
    for (uint64_t spins = 0; c->phase.load(std::memory_order_acquire) < target; ++spins) {
      if ((spins & 63) != 63) {
        cpu_relax();
        continue;
      }
      const auto waited = Clock::now() - start;
      if (waited >= std::chrono::milliseconds(5)) sleep_us(50);
      else if (oversubscribed_ || waited >= std::chrono::microseconds(kSpinMicros)) std::this_thread::yield();
      if (region_->header()->aborted.load(std::memory_order_acquire)) fail(abort_message(*region_), false);
      const auto now = Clock::now();
      if (region_->processes() && now >= next_liveness) {
        next_liveness = now + std::chrono::milliseconds(10);
        if (process_dead(region_->info(q)->pid.load())) {
          fail(std::string(what) + ": " + peer_name(*region_, q) + " died (process exited or was killed) during call #" +
                   std::to_string(call.desc.call) + "; seen by rank " + std::to_string(rank_),
               true);
        }
      }
      if (now >= deadline) {
        fail(std::string(what) + ": timed out after " + seconds_text(timeout_s_) + " s waiting for " + peer_name(*region_, q) +
                 " in call #" + std::to_string(call.desc.call) + " (rank " + std::to_string(rank_) +
                 " waiting; timeout set by init(timeout=) or AICC_COLLECTIVE_TIMEOUT)",
             true);
      }
    }
  }
  if (call.first) {
    call.first = false;
    const int parity = static_cast<int>((chunk_ - 1) & 1);
    const CallDesc& d0 = region_->info(0)->desc[parity];
    for (int q = 1; q < size_; ++q) {
      const CallDesc& dq = region_->info(q)->desc[parity];
      if (!same_call(dq, d0)) {
        // Every rank sees the same descriptors and throws the same error; the ranks stay
        // in step (same barrier count), so the communicator remains usable.
        throw CollectiveError("collective mismatch at call #" + std::to_string(call.desc.call) + ": rank 0 called " +
                              describe_call(d0) + ", rank " + std::to_string(q) + " called " + describe_call(dq));
      }
    }
  }
}

std::unique_ptr<Communicator> Communicator::join_shm(const std::string& job, int rank, int size, const Options& opt) {
  if (!valid_job(job)) throw_invalid("job", "1-200 characters from [A-Za-z0-9_-]", "'" + job + "'");
  if (size < 1 || size > 64) throw_invalid("size", "1 to 64 ranks", std::to_string(size));
  if (rank < 0 || rank >= size) throw_invalid("rank", "0 <= rank < " + std::to_string(size), std::to_string(rank));
  check_slot_bytes(opt.slot_bytes);
  const RegionLayout layout(size, opt.slot_bytes);
  const std::string name = "/aicc_" + job;
  const auto start = Clock::now();
  const auto deadline = deadline_after(start, opt.timeout_s);
  int fd = -1;
  if (rank == 0) {
    fd = shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0)
      throw CollectiveError("shm: cannot create segment " + name + ": " + std::strerror(errno) +
                            (errno == EEXIST ? " (another job uses this id)" : ""));
    if (ftruncate(fd, layout.total_bytes) != 0) {
      const int err = errno;
      close(fd);
      shm_unlink(name.c_str());
      throw CollectiveError("shm: cannot size segment " + name + ": " + std::strerror(err));
    }
  } else {
    for (;;) {
      fd = shm_open(name.c_str(), O_RDWR | O_NOFOLLOW, 0);
      if (fd >= 0) {
        struct stat st {};
        if (fstat(fd, &st) != 0) {
          const int err = errno;
          close(fd);
          throw CollectiveError("shm: cannot stat segment " + name + ": " + std::strerror(err));
        }
        // Rank 0 creates the segment O_EXCL with mode 0600, so anything else was put there
        // by someone else (another user who guessed the job id): attaching would hand them
        // this rank's data and let them forge its results.
        if (st.st_uid != geteuid() || (st.st_mode & 07777) != 0600 || !S_ISREG(st.st_mode)) {
          char mode[8];
          std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
          close(fd);
          throw CollectiveError("shm: segment " + name + " is owned by uid " + std::to_string(st.st_uid) +
                                " with mode " + mode + "; rank " + std::to_string(rank) +
                                " only joins a segment created by its own user (uid " + std::to_string(geteuid()) +
                                ") with mode 0600 -- refusing a segment planted by someone else");
        }
        if (st.st_size == layout.total_bytes) break;
        if (st.st_size != 0) {
          close(fd);
          throw CollectiveError("shm: segment " + name + " has " + std::to_string(st.st_size) + " bytes, rank " +
                                std::to_string(rank) + " expected " + std::to_string(layout.total_bytes) +
                                " (every rank must use the same size and slot_bytes)");
        }
        close(fd);
      } else if (errno != ENOENT) {
        throw CollectiveError("shm: cannot open segment " + name + ": " + std::strerror(errno));
      }
      if (Clock::now() >= deadline)
        throw CollectiveError("shm: rank 0 did not create segment " + name + " within " +
                              seconds_text(opt.timeout_s) + " s (rank " + std::to_string(rank) + " waiting)");
      sleep_us(1000);
    }
  }
  void* base = mmap(nullptr, static_cast<size_t>(layout.total_bytes), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int map_err = errno;
  close(fd);
  if (base == MAP_FAILED) {
    if (rank == 0) shm_unlink(name.c_str());
    throw CollectiveError("shm: cannot map segment " + name + ": " + std::strerror(map_err));
  }
  auto region = std::make_shared<ShmRegion>(static_cast<char*>(base), layout, /*processes=*/true, name);
  RegionHeader* h = region->header();
  if (rank == 0) {
    new (h) RegionHeader();
    h->size = size;
    h->slot_bytes = layout.slot_bytes;
    h->total_bytes = layout.total_bytes;
    for (int r = 0; r < size; ++r) {
      new (region->ctl(r)) PeerCtl();
      new (region->info(r)) PeerInfo();
    }
    h->magic.store(kRegionMagic, std::memory_order_release);
  } else {
    while (h->magic.load(std::memory_order_acquire) != kRegionMagic) {
      if (Clock::now() >= deadline) throw CollectiveError("shm: segment " + name + " was never initialized by rank 0");
      sleep_us(100);
    }
    if (h->size != size) {
      throw CollectiveError("shm: job " + job + " has " + std::to_string(h->size) + " ranks, rank " +
                            std::to_string(rank) + " was started with size " + std::to_string(size));
    }
  }
  region->info(rank)->pid.store(static_cast<int32_t>(getpid()), std::memory_order_release);
  h->joined.fetch_add(1, std::memory_order_acq_rel);
  auto next_liveness = Clock::now();
  while (h->joined.load(std::memory_order_acquire) < size) {
    if (h->aborted.load(std::memory_order_acquire)) throw CollectiveError(abort_message(*region));
    const auto now = Clock::now();
    if (now >= next_liveness) {
      next_liveness = now + std::chrono::milliseconds(10);
      for (int r = 0; r < size; ++r) {
        if (process_dead(region->info(r)->pid.load())) {
          const std::string msg = "init: " + peer_name(*region, r) + " died while the job was starting";
          post_abort(*region, msg);
          shm_unlink(name.c_str());
          throw CollectiveError(msg);
        }
      }
    }
    if (now >= deadline) {
      std::string missing;
      for (int r = 0; r < size; ++r)
        if (region->info(r)->pid.load() == 0) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
      const std::string msg = "init: rank(s) " + missing + " did not join job " + job + " within " +
                              seconds_text(opt.timeout_s) + " s";
      post_abort(*region, msg);
      shm_unlink(name.c_str());
      throw CollectiveError(msg);
    }
    sleep_us(200);
  }
  // Everyone has mapped it: remove the name now, so the memory goes away with the last
  // process however the job ends (SIGKILL included).
  shm_unlink(name.c_str());
  return std::unique_ptr<Communicator>(new Communicator(region, rank, size, opt));
}

std::vector<std::unique_ptr<Communicator>> Communicator::thread_group(int size, const Options& opt) {
  if (size < 1 || size > 64) throw_invalid("size", "1 to 64 ranks", std::to_string(size));
  check_slot_bytes(opt.slot_bytes);
  const RegionLayout layout(size, opt.slot_bytes);
  char* base = static_cast<char*>(::operator new(static_cast<size_t>(layout.total_bytes), std::align_val_t{4096}));
  auto region = std::make_shared<HeapRegion>(base, layout, /*processes=*/false, "thread");
  RegionHeader* h = new (base) RegionHeader();
  h->size = size;
  h->slot_bytes = layout.slot_bytes;
  h->total_bytes = layout.total_bytes;
  for (int r = 0; r < size; ++r) {
    new (region->ctl(r)) PeerCtl();
    new (region->info(r)) PeerInfo();
  }
  h->joined.store(size);
  h->magic.store(kRegionMagic);
  std::vector<std::unique_ptr<Communicator>> comms;
  for (int r = 0; r < size; ++r) comms.emplace_back(new Communicator(region, r, size, opt));
  return comms;
}

}  // namespace aicc::collective
