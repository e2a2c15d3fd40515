// Runtime CPU feature detection and the ISA path every CPU kernel dispatches on.
// The path is detected once (cpuid + OS support for the register state) and can be
// forced to a lower one with AICC_ISA=portable|avx2|avx512 or set_isa() (tests run the
// portable path this way on machines that have AVX2).
#pragma once

#include <string>

namespace aicc {

enum class Isa : int { kPortable = 0, kAvx2 = 1, kAvx512 = 2 };

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512dq = false;
  bool avx512vnni = false;
  bool avx_vnni = false;
  std::string vendor;
  std::string brand;
};

const CpuFeatures& cpu_features();

// Highest ISA path this CPU and this build support.
Isa detected_isa();

// The path kernels use now: detected_isa(), or lower if forced.
Isa active_isa();

// Forces a path (must be <= detected_isa(), else InvalidArgument). Thread-safe, but
// meant for tests and benchmarks, not for switching under running kernels.
void set_isa(Isa isa);

const char* isa_name(Isa isa);
Isa isa_from_name(const std::string& name);  // throws InvalidArgument

}  // namespace aicc
