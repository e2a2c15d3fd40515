// The per-call state the algorithms and the transport share (private to csrc/collective).
#pragma once

#include "aicc/collective.h"
#include "collective/region.h"

namespace aicc::collective {

enum class CallKind : uint32_t { kAllreduce = 1, kReduceScatter = 2, kAllGather = 3, kBroadcast = 4, kBarrier = 5 };

const char* call_kind_name(uint32_t kind);
std::string describe_call(const CallDesc& d);
void set_shape(CallDesc& d, const Shape& shape);
bool same_call(const CallDesc& a, const CallDesc& b);

struct Communicator::Call {
  CallDesc desc;
  bool first = true;
};

}  // namespace aicc::collective
