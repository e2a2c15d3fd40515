// INT8 multiply-add peak loop in plain C++ (int16 x int16 -> int32 multiply-accumulate,
// the same exact widening the portable INT8 GEMM does).
#include "cpu/peak/peak_probes.h"

namespace aicc::peak {

namespace {
constexpr int kAcc = 32;
}

int int8_madd_ops_per_iter_portable() { return kAcc * 2; }

double int8_madd_loop_portable(int64_t iters, int seed) {
  uint32_t acc[kAcc] = {};  // unsigned: wraps instead of overflowing (the value is irrelevant)
  int16_t a[kAcc];
  for (int j = 0; j < kAcc; ++j) a[j] = static_cast<int16_t>((seed + j) & 0x7f);
  int16_t b = -128;
  for (int64_t i = 0; i < iters; ++i) {
#if defined(__GNUC__)
    asm volatile("" : "+r"(b));  // keeps the products inside the loop (no hoisting)
#endif
    for (int j = 0; j < kAcc; ++j) acc[j] += static_cast<uint32_t>(static_cast<int32_t>(a[j]) * b);
  }
  double total = 0;
  for (uint32_t v : acc) total += v;
  return total;
}

}  // namespace aicc::peak
