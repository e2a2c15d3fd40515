// The algorithms, written once over a Region (shared memory or process memory).
//
// Every collective moves the data through bounded staging slots in pipeline chunks:
// a rank packs its chunk into its own slot, all ranks meet at a barrier, then read.
// Chunks alternate between two slot sets, so the next chunk is packed while slower
// ranks still read the previous one (the barrier of chunk c+1 proves everyone finished
// reading chunk c-1's set).
//
// allreduce
//   one-shot (small messages): every rank reduces all N slots, in rank order, itself;
//   reduce-scatter + all-gather (large): rank r reduces slice r of the chunk, in rank
//   order, into the shared "reduced" slot; after a second barrier every rank copies
//   (unpacks) the whole reduced chunk.
// Both reduce every element in the same rank order with the same kernel, so every rank
// gets the same bits, whatever the arrival order, the algorithm or the chunk size.
#include <algorithm>
#include <cstring>

#include "aicc/status.h"
#include "collective/call.h"
#include "cpu/reduce/reduce.h"

namespace aicc::collective {

namespace {

constexpr int kMaxRanks = 64;

cpu::ReduceOp to_cpu(ReduceOp op) { return static_cast<cpu::ReduceOp>(op); }

void check_count(int64_t count) {
  if (count < 0) throw_invalid("count", "a non-negative element count", std::to_string(count));
}

bool is_float(DType t) { return t == DType::kF32 || t == DType::kF64 || t == DType::kF16 || t == DType::kBF16; }

}  // namespace

void Communicator::allreduce(const void* in, void* out, DType dtype, int64_t count, ReduceOp op, Compression comp,
                             const Shape& shape) {
  check_usable();
  check_count(count);
  if (static_cast<int>(op) < 0 || static_cast<int>(op) > 3) throw_invalid("op", "sum, avg, max or min", std::to_string(static_cast<int>(op)));
  if (op == ReduceOp::kAvg && !is_float(dtype))
    throw_invalid("op", "sum, max or min for integer dtypes", std::string("avg over ") + dtype_name(dtype));
  if (comp != Compression::kNone && dtype != DType::kF32)
    throw_invalid("compression", "None for non-f32 inputs", std::string("compression of ") + dtype_name(dtype));
  Call call;
  call.desc = CallDesc{static_cast<uint32_t>(CallKind::kAllreduce), static_cast<uint32_t>(op),
                       static_cast<uint32_t>(dtype), static_cast<uint32_t>(comp), count, 0, ++calls_};
  set_shape(call.desc, shape);
  const bool q8 = comp == Compression::kInt8;
  const DType wire = comp == Compression::kF16 ? DType::kF16 : comp == Compression::kBF16 ? DType::kBF16 : dtype;
  const int64_t es = static_cast<int64_t>(dtype_size(dtype));
  const int64_t ws = q8 ? 1 : static_cast<int64_t>(dtype_size(wire));
  const int64_t slot = region_->layout().slot_bytes;
  const int64_t align = q8 ? cpu::kInt8Block : 16;  // slices start on whole blocks / 64 bytes
  int64_t chunk = q8 ? slot / (cpu::kInt8Block + 4) * cpu::kInt8Block : slot / ws;
  chunk = std::max<int64_t>(align * size_, chunk / (align * size_) * (align * size_));
  const int64_t wire_total = q8 ? count + 4 * cpu::int8_blocks(count) : count * ws;
  // One-shot only when the whole message fits one staging slot (a single rank too).
  const bool oneshot = (size_ == 1 || wire_total <= opt_.oneshot_bytes) && count <= chunk;
  const auto cop = to_cpu(op);
  const char* src = static_cast<const char*>(in);
  char* dst = static_cast<char*>(out);
  const void* srcs[kMaxRanks];
  const void* scl[kMaxRanks];

  // Pack: this rank's chunk [start, start + len), in wire format, into its slot of set p.
  auto pack = [&](int p, int64_t start, int64_t len) {
    char* mine = region_->in_slot(p, rank_);
    if (q8) {
      cpu::quantize_int8_blocks(reinterpret_cast<const float*>(src) + start, len, reinterpret_cast<int8_t*>(mine),
                                reinterpret_cast<float*>(mine + chunk));
      wire_bytes_ += static_cast<uint64_t>(len + 4 * cpu::int8_blocks(len));
    } else if (wire != dtype) {
      cpu::convert(dtype, src + start * es, wire, mine, len);
      wire_bytes_ += static_cast<uint64_t>(len * ws);
    } else {
      std::memcpy(mine, src + start * es, static_cast<size_t>(len * es));
      wire_bytes_ += static_cast<uint64_t>(len * ws);
    }
  };

  if (oneshot) {
    const int64_t len = count;  // <= chunk
    const int p = stage(call);
    pack(p, 0, len);
    sync(call);
    for (int r = 0; r < size_; ++r) srcs[r] = region_->in_slot(p, r);
    if (q8) {
      for (int r = 0; r < size_; ++r) scl[r] = region_->in_slot(p, r) + chunk;
      // Local scratch: the reduced codes (padded to 4 bytes), then their scales.
      const int64_t qbytes = (len + 3) / 4 * 4;
      scratch_.resize(static_cast<size_t>(qbytes + 4 * cpu::int8_blocks(len)));
      int8_t* q = reinterpret_cast<int8_t*>(scratch_.data());
      float* s = reinterpret_cast<float*>(scratch_.data() + qbytes);
      cpu::reduce_int8_blocks(cop, reinterpret_cast<const int8_t* const*>(srcs),
                              reinterpret_cast<const float* const*>(scl), size_, len, size_, q, s);
      cpu::dequantize_int8_blocks(q, s, len, reinterpret_cast<float*>(dst));
    } else if (wire != dtype) {
      scratch_.resize(static_cast<size_t>(len * ws));
      cpu::reduce_n(wire, cop, srcs, size_, scratch_.data(), len, size_);
      cpu::convert(wire, scratch_.data(), dtype, dst, len);
    } else {
      cpu::reduce_n(dtype, cop, srcs, size_, dst, len, size_);
    }
    return;
  }

  // Chunked reduce-scatter + all-gather, software-pipelined with one barrier per phase:
  // phase k packs chunk k into set k%2, reduces this rank's slice of chunk k-1 (set
  // (k-1)%2) into that set's reduced slot, and unpacks chunk k-2 from the other reduced
  // slot. Each buffer a phase writes was last read before the previous barrier.
  const int64_t nchunks = (count + chunk - 1) / chunk;
  auto chunk_len = [&](int64_t c) { return std::min(chunk, count - c * chunk); };
  auto reduce_slice = [&](int p, int64_t len) {
    const int64_t per = (len + size_ * align - 1) / (size_ * align) * align;
    const int64_t lo = std::min(len, rank_ * per), hi = std::min(len, lo + per);
    if (hi <= lo) return;
    char* red = region_->red_slot(p);
    if (q8) {
      for (int r = 0; r < size_; ++r) {
        srcs[r] = region_->in_slot(p, r) + lo;
        scl[r] = reinterpret_cast<const float*>(region_->in_slot(p, r) + chunk) + lo / cpu::kInt8Block;
      }
      cpu::reduce_int8_blocks(cop, reinterpret_cast<const int8_t* const*>(srcs),
                              reinterpret_cast<const float* const*>(scl), size_, hi - lo, size_,
                              reinterpret_cast<int8_t*>(red + lo),
                              reinterpret_cast<float*>(red + chunk) + lo / cpu::kInt8Block);
      wire_bytes_ += static_cast<uint64_t>(hi - lo + 4 * cpu::int8_blocks(hi - lo));
    } else {
      for (int r = 0; r < size_; ++r) srcs[r] = region_->in_slot(p, r) + lo * ws;
      cpu::reduce_n(wire, cop, srcs, size_, red + lo * ws, hi - lo, size_);
      wire_bytes_ += static_cast<uint64_t>((hi - lo) * ws);
    }
  };
  auto unpack = [&](int p, int64_t start, int64_t len) {
    const char* red = region_->red_slot(p);
    if (q8) {
      cpu::dequantize_int8_blocks(reinterpret_cast<const int8_t*>(red), reinterpret_cast<const float*>(red + chunk),
                                  len, reinterpret_cast<float*>(dst) + start);
    } else if (wire != dtype) {
      cpu::convert(wire, red, dtype, dst + start * es, len);
    } else {
      std::memcpy(dst + start * es, red, static_cast<size_t>(len * es));
    }
  };
  int p = 0;
  for (int64_t k = 0; k <= nchunks; ++k) {
    p = stage(call);
    if (k < nchunks) pack(p, k * chunk, chunk_len(k));
    if (k >= 1) reduce_slice(1 - p, chunk_len(k - 1));
    if (k >= 2) unpack(p, (k - 2) * chunk, chunk_len(k - 2));
    sync(call);
  }
  // The last chunk's reduced slot is complete after the final barrier.
  unpack(1 - p, (nchunks - 1) * chunk, chunk_len(nchunks - 1));
}

void Communicator::reduce_scatter(const void* in, void* out, DType dtype, int64_t count, const int64_t* offsets,
                                  ReduceOp op, const Shape& shape) {
  check_usable();
  check_count(count);
  if (op == ReduceOp::kAvg && !is_float(dtype))
    throw_invalid("op", "sum, max or min for integer dtypes", std::string("avg over ") + dtype_name(dtype));
  if (offsets[0] != 0 || offsets[size_] != count)
    throw_invalid("offsets", "0 ... " + std::to_string(count), std::to_string(offsets[0]) + " ... " + std::to_string(offsets[size_]));
  for (int r = 0; r < size_; ++r)
    if (offsets[r + 1] < offsets[r]) throw_invalid("offsets", "non-decreasing offsets", "a decrease at rank " + std::to_string(r));
  Call call;
  call.desc = CallDesc{static_cast<uint32_t>(CallKind::kReduceScatter), static_cast<uint32_t>(op),
                       static_cast<uint32_t>(dtype), 0, count, 0, ++calls_};
  set_shape(call.desc, shape);
  const int64_t es = static_cast<int64_t>(dtype_size(dtype));
  const int64_t chunk = std::max<int64_t>(16, region_->layout().slot_bytes / es / 16 * 16);
  const char* src = static_cast<const char*>(in);
  char* dst = static_cast<char*>(out);
  const void* srcs[kMaxRanks];
  const int64_t my_lo = offsets[rank_], my_hi = offsets[rank_ + 1];
  int64_t start = 0;
  do {
    const int64_t len = std::min(chunk, count - start);
    const int p = stage(call);
    std::memcpy(region_->in_slot(p, rank_), src + start * es, static_cast<size_t>(len * es));
    wire_bytes_ += static_cast<uint64_t>(len * es);
    sync(call);
    const int64_t a = std::max(my_lo, start), b = std::min(my_hi, start + len);
    if (b > a) {
      for (int r = 0; r < size_; ++r) srcs[r] = region_->in_slot(p, r) + (a - start) * es;
      cpu::reduce_n(dtype, to_cpu(op), srcs, size_, dst + (a - my_lo) * es, b - a, size_);
    }
    start += len;
  } while (start < count);
}

void Communicator::all_gather(const void* in, void* out, DType dtype, int64_t count, const Shape& shape) {
  check_usable();
  check_count(count);
  Call call;
  call.desc = CallDesc{static_cast<uint32_t>(CallKind::kAllGather), 0, static_cast<uint32_t>(dtype), 0, count, 0, ++calls_};
  set_shape(call.desc, shape);
  const int64_t es = static_cast<int64_t>(dtype_size(dtype));
  const int64_t chunk = std::max<int64_t>(16, region_->layout().slot_bytes / es / 16 * 16);
  const char* src = static_cast<const char*>(in);
  char* dst = static_cast<char*>(out);
  int64_t start = 0;
  do {
    const int64_t len = std::min(chunk, count - start);
    const int p = stage(call);
    std::memcpy(region_->in_slot(p, rank_), src + start * es, static_cast<size_t>(len * es));
    wire_bytes_ += static_cast<uint64_t>(len * es);
    sync(call);
    for (int r = 0; r < size_; ++r) {
      const char* from = r == rank_ ? src + start * es : region_->in_slot(p, r);
      std::memcpy(dst + (r * count + start) * es, from, static_cast<size_t>(len * es));
    }
    start += len;
  } while (start < count);
}

void Communicator::broadcast(void* buf, DType dtype, int64_t count, int root, const Shape& shape) {
  check_usable();
  check_count(count);
  if (root < 0 || root >= size_) throw_invalid("root", "0 <= root < " + std::to_string(size_), std::to_string(root));
  Call call;
  call.desc = CallDesc{static_cast<uint32_t>(CallKind::kBroadcast), 0, static_cast<uint32_t>(dtype), 0, count, root, ++calls_};
  set_shape(call.desc, shape);
  const int64_t es = static_cast<int64_t>(dtype_size(dtype));
  const int64_t chunk = std::max<int64_t>(16, region_->layout().slot_bytes / es / 16 * 16);
  char* data = static_cast<char*>(buf);
  int64_t start = 0;
  do {
    const int64_t len = std::min(chunk, count - start);
    const int p = stage(call);
    if (rank_ == root) {
      std::memcpy(region_->in_slot(p, rank_), data + start * es, static_cast<size_t>(len * es));
      wire_bytes_ += static_cast<uint64_t>(len * es);
    }
    sync(call);
    if (rank_ != root) std::memcpy(data + start * es, region_->in_slot(p, root), static_cast<size_t>(len * es));
    start += len;
  } while (start < count);
}

void Communicator::barrier() {
  check_usable();
  Call call;
  call.desc = CallDesc{static_cast<uint32_t>(CallKind::kBarrier), 0, 0, 0, 0, 0, ++calls_};
  stage(call);
  sync(call);
}

}  // namespace aicc::collective
