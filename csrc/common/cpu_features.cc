#include "common/cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "aicc/status.h"

#if defined(AICC_X86)
#include <cpuid.h>
#endif

namespace aicc {
namespace {

#if defined(AICC_X86)
uint64_t read_xcr0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
#if defined(AICC_X86)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return f;
  const unsigned max_leaf = eax;
  char vendor[13] = {};
  std::memcpy(vendor + 0, &ebx, 4);
  std::memcpy(vendor + 4, &edx, 4);
  std::memcpy(vendor + 8, &ecx, 4);
  f.vendor = vendor;

  __get_cpuid(1, &eax, &ebx, &ecx, &edx);
  const bool osxsave = (ecx >> 27) & 1;
  const bool avx = (ecx >> 28) & 1;
  const bool fma = (ecx >> 12) & 1;
  const bool f16c = (ecx >> 29) & 1;
  const uint64_t xcr0 = osxsave ? read_xcr0() : 0;
  const bool os_ymm = (xcr0 & 0x6) == 0x6;     // SSE + AVX state
  const bool os_zmm = (xcr0 & 0xe6) == 0xe6;   // + opmask, ZMM_Hi256, Hi16_ZMM
  if (max_leaf >= 7) {
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    const bool avx2 = (ebx >> 5) & 1;
    f.avx2 = avx && avx2 && os_ymm;
    f.fma = fma && os_ymm;
    f.f16c = f16c && os_ymm;
    f.avx512f = ((ebx >> 16) & 1) && os_zmm;
    f.avx512dq = ((ebx >> 17) & 1) && os_zmm;
    f.avx512bw = ((ebx >> 30) & 1) && os_zmm;
    f.avx512vl = ((ebx >> 31) & 1) && os_zmm;
    f.avx512vnni = ((ecx >> 11) & 1) && os_zmm;
    __cpuid_count(7, 1, eax, ebx, ecx, edx);
    f.avx_vnni = ((eax >> 4) & 1) && os_ymm;
  }
  unsigned ext = 0;
  __get_cpuid(0x80000000u, &ext, &ebx, &ecx, &edx);
  if (ext >= 0x80000004u) {
    char brand[49] = {};
    for (unsigned i = 0; i < 3; ++i) {
      __get_cpuid(0x80000002u + i, &eax, &ebx, &ecx, &edx);
      std::memcpy(brand + 16 * i + 0, &eax, 4);
      std::memcpy(brand + 16 * i + 4, &ebx, 4);
      std::memcpy(brand + 16 * i + 8, &ecx, 4);
      std::memcpy(brand + 16 * i + 12, &edx, 4);
    }
    f.brand = brand;
    while (!f.brand.empty() && f.brand.back() == ' ') f.brand.pop_back();
  }
#endif
  return f;
}

Isa compute_detected_isa() {
#if defined(AICC_X86)
  const CpuFeatures& f = cpu_features();
  const bool avx2 = f.avx2 && f.fma && f.f16c;
  // kAvx512 needs the VNNI subset its kernels use (the INT8 vpdpbusd route); kernels with no
  // AVX-512 version take their AVX2 path there (dispatch is on >= kAvx2).
  if (avx2 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512vnni) return Isa::kAvx512;
  if (avx2) return Isa::kAvx2;
#endif
  return Isa::kPortable;
}

std::atomic<int>& forced_isa() {
  static std::atomic<int> forced{[] {
    const char* env = std::getenv("AICC_ISA");
    if (env == nullptr || *env == '\0') return -1;
    Isa requested = isa_from_name(env);
    Isa detected = detected_isa();
    return static_cast<int>(requested < detected ? requested : detected);
  }()};
  return forced;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

Isa detected_isa() {
  static const Isa isa = compute_detected_isa();
  return isa;
}

Isa active_isa() {
  const int forced = forced_isa().load(std::memory_order_relaxed);
  return forced < 0 ? detected_isa() : static_cast<Isa>(forced);
}

void set_isa(Isa isa) {
  if (isa > detected_isa()) {
    throw_invalid("isa", std::string("a path this CPU supports (<= ") + isa_name(detected_isa()) + ")",
                  isa_name(isa));
  }
  forced_isa().store(static_cast<int>(isa), std::memory_order_relaxed);
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kPortable: return "portable";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
  }
  return "?";
}

Isa isa_from_name(const std::string& name) {
  if (name == "portable") return Isa::kPortable;
  if (name == "avx2") return Isa::kAvx2;
  if (name == "avx512") return Isa::kAvx512;
  throw_invalid("isa", "one of 'portable', 'avx2', 'avx512'", "'" + name + "'");
}

}  // namespace aicc
