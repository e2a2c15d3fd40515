// The shared layout every rank maps: a header, one control cache line per rank (its
// barrier counter), one info block per rank (pid, the descriptor of its current call),
// then two sets (parity 0/1) of staging buffers: one "in" slot per rank and one
// "reduced" slot. Consecutive pipeline chunks alternate between the two sets, so a rank
// may fill the next chunk while slower ranks still read the previous one.
//
// The same layout lives in POSIX shared memory (processes) or in process memory (threads).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

namespace aicc::collective {

constexpr uint64_t kRegionMagic = 0x61696363636f6c31ull;  // "aicccol1"
constexpr size_t kAbortMessageBytes = 1024;

constexpr int kDescDims = 6;

struct CallDesc {
  uint32_t kind = 0;     // CallKind
  uint32_t op = 0;       // ReduceOp (allreduce / reduce_scatter)
  uint32_t dtype = 0;    // DType
  uint32_t comp = 0;     // Compression (allreduce)
  int64_t count = 0;     // elements of this rank's input
  int64_t extra = 0;     // root (broadcast)
  uint64_t call = 0;     // call number on this communicator
  int32_t ndim = -1;     // shape of the input (-1: a flat buffer, count only)
  int32_t reserved = 0;
  // The first kDescDims extents; past that, the last entry holds a hash of the remaining
  // extents, so any difference still compares unequal.
  int64_t dims[kDescDims] = {};
};

struct alignas(64) PeerCtl {
  std::atomic<uint64_t> phase{0};  // barriers this rank has reached
};

struct alignas(64) PeerInfo {
  std::atomic<int32_t> pid{0};
  CallDesc desc[2];  // by chunk parity
};

struct alignas(64) RegionHeader {
  std::atomic<uint64_t> magic{0};
  int32_t size = 0;
  int32_t reserved = 0;
  int64_t slot_bytes = 0;
  int64_t total_bytes = 0;
  std::atomic<int32_t> joined{0};
  std::atomic<int32_t> aborted{0};  // 0: no, 1: message being written, 2: message ready
  char abort_message[kAbortMessageBytes] = {};
};

inline int64_t round_up(int64_t v, int64_t a) { return (v + a - 1) / a * a; }

struct RegionLayout {
  int size = 0;
  int64_t slot_bytes = 0;
  int64_t ctl_offset = 0, info_offset = 0, data_offset = 0, total_bytes = 0;

  RegionLayout(int size_, int64_t slot_bytes_) : size(size_), slot_bytes(round_up(slot_bytes_, 4096)) {
    ctl_offset = round_up(sizeof(RegionHeader), 64);
    info_offset = ctl_offset + round_up(static_cast<int64_t>(sizeof(PeerCtl)) * size, 64);
    data_offset = round_up(info_offset + static_cast<int64_t>(sizeof(PeerInfo)) * size, 4096);
    total_bytes = data_offset + 2 * static_cast<int64_t>(size + 1) * slot_bytes;
  }
};

// A mapped region: memory plus how peers are watched.
class Region {
 public:
  Region(char* base, const RegionLayout& layout, bool processes, std::string name)
      : base_(base), layout_(layout), processes_(processes), name_(std::move(name)) {}
  virtual ~Region() = default;

  RegionHeader* header() const { return reinterpret_cast<RegionHeader*>(base_); }
  PeerCtl* ctl(int r) const { return reinterpret_cast<PeerCtl*>(base_ + layout_.ctl_offset) + r; }
  PeerInfo* info(int r) const { return reinterpret_cast<PeerInfo*>(base_ + layout_.info_offset) + r; }
  char* in_slot(int parity, int r) const {
    return base_ + layout_.data_offset + (static_cast<int64_t>(parity) * (layout_.size + 1) + r) * layout_.slot_bytes;
  }
  char* red_slot(int parity) const { return in_slot(parity, layout_.size); }
  const RegionLayout& layout() const { return layout_; }
  bool processes() const { return processes_; }  // peers are processes: watch their pids
  const std::string& name() const { return name_; }

 protected:
  char* base_;
  RegionLayout layout_;
  bool processes_;
  std::string name_;
};

}  // namespace aicc::collective
