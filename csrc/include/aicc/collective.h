// Collectives over a shared-memory region: POSIX shared memory between the processes of
// one host ("shm"), or process memory between threads ("thread"). The algorithms
// (csrc/collective/algorithms.cc) are the same for both; only the region and the way a
// dead peer is noticed differ (csrc/collective/transport.cc).
//
// Every wait has a deadline; a dead peer, a timeout or mismatched calls throw
// aicc::CollectiveError naming the rank or the mismatch (docs/COLLECTIVES.md).
// One Communicator object is one rank: call it from one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "aicc/tensor.h"

namespace aicc::collective {

enum class ReduceOp : int { kSum = 0, kAvg = 1, kMax = 2, kMin = 3 };
enum class Compression : int { kNone = 0, kF16 = 1, kBF16 = 2, kInt8 = 3 };

// slot_bytes bounds: the region holds 2 * (size + 1) slots, which must stay far from
// int64 overflow and within what a host can map.
constexpr int64_t kMinSlotBytes = int64_t{1} << 16;
constexpr int64_t kMaxSlotBytes = int64_t{1} << 30;
// A timeout of this many seconds or more (or infinity) means no deadline; dead processes
// are still noticed by the liveness check.
constexpr double kNoDeadlineSeconds = 1e9;

struct Options {
  double timeout_s = 300.0;             // deadline of every wait (>= kNoDeadlineSeconds: none)
  int64_t slot_bytes = int64_t{1} << 20;  // per-rank staging buffer (one pipeline chunk)
  int64_t oneshot_bytes = 64 << 10;      // allreduce up to this many wire bytes: one-shot algorithm (>= 0)
};

class Region;  // the shared layout (csrc/collective/region.h)

// The shape of the caller's array. Every collective compares it across ranks together with
// dtype and count: the same element count in a different shape ((2,3) vs (3,2)) is a
// mismatch, not a silent reinterpretation. ndim < 0: a flat buffer, the count alone.
struct Shape {
  int ndim = -1;
  const int64_t* dims = nullptr;
};

class Communicator {
 public:
  // Joins (rank 0: creates) the job's POSIX shared-memory segment "/aicc_<job>". Waits for
  // all `size` ranks to map it, then unlinks it, so it disappears with the last process.
  // Other ranks only attach to a segment owned by their own uid with mode 0600.
  static std::unique_ptr<Communicator> join_shm(const std::string& job, int rank, int size, const Options& opt);
  // `size` ranks sharing one in-process region; hand element r to thread r.
  static std::vector<std::unique_ptr<Communicator>> thread_group(int size, const Options& opt);

  ~Communicator();
  int rank() const { return rank_; }
  int size() const { return size_; }
  double timeout() const { return timeout_s_; }
  void set_timeout(double seconds);
  const Options& options() const { return opt_; }
  uint64_t wire_bytes() const { return wire_bytes_; }  // bytes this rank wrote into the region

  void allreduce(const void* in, void* out, DType dtype, int64_t count, ReduceOp op, Compression comp,
                 const Shape& shape = {});
  // Rank r receives elements [offsets[r], offsets[r+1]) of the reduced input (size+1 offsets).
  void reduce_scatter(const void* in, void* out, DType dtype, int64_t count, const int64_t* offsets, ReduceOp op,
                      const Shape& shape = {});
  // out = concatenation of every rank's `count` elements, in rank order.
  void all_gather(const void* in, void* out, DType dtype, int64_t count, const Shape& shape = {});
  void broadcast(void* buf, DType dtype, int64_t count, int root, const Shape& shape = {});
  void barrier();
  // Marks the job failed: every rank's current and next wait throws CollectiveError(why).
  void abort(const std::string& why);

 private:
  struct Call;
  Communicator(std::shared_ptr<Region> region, int rank, int size, const Options& opt);
  int stage(Call& call);     // next staging parity; the first stage of a call publishes its descriptor
  void sync(Call& call);     // barrier; after the first one, checks every rank called the same thing
  [[noreturn]] void fail(const std::string& msg, bool tell_others);
  void check_usable();

  std::shared_ptr<Region> region_;
  int rank_, size_;
  Options opt_;
  double timeout_s_;
  uint64_t phase_ = 0;   // barriers this rank has passed
  uint64_t chunk_ = 0;   // staging chunks used (parity selects the buffer set)
  uint64_t calls_ = 0;
  uint64_t wire_bytes_ = 0;
  bool oversubscribed_ = false;  // more ranks than online cores: yield instead of spinning
  std::string broken_;   // set after a failure that leaves the ranks out of step
  std::vector<char> scratch_;
};

}  // namespace aicc::collective
