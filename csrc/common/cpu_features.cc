#include "common/cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "aicc/status.h"

#if defined(AICC_X86)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

namespace aicc {
namespace {

constexpr int kNumFeatures = static_cast<int>(CpuFeature::kCount);

const char* const kFeatureNames[kNumFeatures] = {
    "avx2",        "fma",         "f16c",     "avx512f",  "avx512bw", "avx512vl",
    "avx512dq",    "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_tile",
    "amx_bf16",    "amx_int8",    "neon",     "dotprod",  "i8mm",     "arm_bf16",
};

using F = CpuFeature;
constexpr FeatureSet kAvx2Level{F::kAvx2, F::kFma, F::kF16c, F::kAvxVnni};
constexpr FeatureSet kAvx512Level = kAvx2Level | FeatureSet{F::kAvx512f,    F::kAvx512bw,   F::kAvx512vl,
                                                            F::kAvx512dq,   F::kAvx512Vnni, F::kAvx512Bf16,
                                                            F::kAvx512Fp16};
constexpr FeatureSet kAmxLevel = kAvx512Level | FeatureSet{F::kAmxTile, F::kAmxBf16, F::kAmxInt8};
// "portable" on aarch64 is plain C++ too: the NEON bits are above it.
constexpr FeatureSet kArmLevel{F::kNeon, F::kDotprod, F::kI8mm, F::kArmBf16};

#if defined(AICC_X86)
uint64_t read_xcr0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

// Linux hands out the AMX tile-data state only on request (it makes signal frames larger);
// the first tile instruction of a process that did not ask faults.
bool request_amx_permission(std::string* note) {
#if defined(__linux__)
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtiledata = 18;
  if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0) return true;
  *note = "the kernel refused the AMX tile state (arch_prctl(ARCH_REQ_XCOMP_PERM)); AMX kernels are off";
  return false;
#else
  *note = "AMX needs Linux's arch_prctl permission request; AMX kernels are off on this OS";
  return false;
#endif
}
#endif

CpuInfo detect() {
  CpuInfo info;
  uint64_t bits = 0;
  auto set = [&bits](CpuFeature f, bool on) {
    if (on) bits |= uint64_t{1} << static_cast<int>(f);
  };
#if defined(AICC_X86)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return info;
  const unsigned max_leaf = eax;
  char vendor[13] = {};
  std::memcpy(vendor + 0, &ebx, 4);
  std::memcpy(vendor + 4, &edx, 4);
  std::memcpy(vendor + 8, &ecx, 4);
  info.vendor = vendor;

  __get_cpuid(1, &eax, &ebx, &ecx, &edx);
  const bool osxsave = (ecx >> 27) & 1;
  const bool avx = (ecx >> 28) & 1;
  const uint64_t xcr0 = osxsave ? read_xcr0() : 0;
  const bool os_ymm = (xcr0 & 0x6) == 0x6;                  // SSE + AVX state
  const bool os_zmm = os_ymm && (xcr0 & 0xe0) == 0xe0;      // + opmask, ZMM_Hi256, Hi16_ZMM
  const bool os_tiles = (xcr0 & (3u << 17)) == (3u << 17);  // XTILECFG + XTILEDATA
  set(F::kFma, ((ecx >> 12) & 1) && os_ymm);
  set(F::kF16c, ((ecx >> 29) & 1) && os_ymm);
  if (max_leaf >= 7) {
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    set(F::kAvx2, avx && ((ebx >> 5) & 1) && os_ymm);
    set(F::kAvx512f, ((ebx >> 16) & 1) && os_zmm);
    set(F::kAvx512dq, ((ebx >> 17) & 1) && os_zmm);
    set(F::kAvx512bw, ((ebx >> 30) & 1) && os_zmm);
    set(F::kAvx512vl, ((ebx >> 31) & 1) && os_zmm);
    set(F::kAvx512Vnni, ((ecx >> 11) & 1) && os_zmm);
    set(F::kAvx512Fp16, ((edx >> 23) & 1) && os_zmm);
    const bool amx_tile = ((edx >> 24) & 1) && os_tiles;
    const bool amx_bf16 = amx_tile && ((edx >> 22) & 1);
    const bool amx_int8 = amx_tile && ((edx >> 25) & 1);
    const unsigned sub7_eax_query = eax;
    if (sub7_eax_query >= 1) {
      __cpuid_count(7, 1, eax, ebx, ecx, edx);
      set(F::kAvxVnni, ((eax >> 4) & 1) && os_ymm);
      set(F::kAvx512Bf16, ((eax >> 5) & 1) && os_zmm);
    }
    if (amx_tile && request_amx_permission(&info.amx_note)) {
      set(F::kAmxTile, true);
      set(F::kAmxBf16, amx_bf16);
      set(F::kAmxInt8, amx_int8);
    }
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
    info.brand = brand;
    while (!info.brand.empty() && info.brand.back() == ' ') info.brand.pop_back();
  }
#elif defined(__aarch64__) && defined(__linux__)
  const unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
  set(F::kNeon, (hw >> 1) & 1);       // HWCAP_ASIMD
  set(F::kDotprod, (hw >> 20) & 1);   // HWCAP_ASIMDDP
  set(F::kI8mm, (hw2 >> 13) & 1);     // HWCAP2_I8MM
  set(F::kArmBf16, (hw2 >> 14) & 1);  // HWCAP2_BF16
  info.vendor = "arm";
#endif
  (void)set;
  info.features = FeatureSet(bits);
  return info;
}

// The controls, parsed from the environment on first use, then changed only by set_isa /
// set_feature_mask. One mutex: these are called rarely; kernels read the cached active set.
struct Controls {
  std::mutex mu;
  FeatureSet cap;     // the AICC_ISA level's features (everything when no cap)
  FeatureSet masked;  // AICC_CPU_FEATURES '-' names
  std::atomic<uint64_t> active{0};

  void refresh() { active.store(cpu_info().features.without(masked).bits() & cap.bits(), std::memory_order_release); }
};

FeatureSet all_features() { return FeatureSet((uint64_t{1} << kNumFeatures) - 1); }

std::string accepted_feature_names() {
  std::string s;
  for (int i = 0; i < kNumFeatures; ++i) s += std::string(i ? ", " : "") + kFeatureNames[i];
  return s + ", amx (all three AMX features)";
}

// Parses "-a,-b,+c" into the masked set; required (+/bare) names must be present.
FeatureSet parse_feature_spec(const std::string& spec, const char* what) {
  FeatureSet masked;
  size_t pos = 0;
  while (pos <= spec.size()) {
    size_t end = spec.find(',', pos);
    if (end == std::string::npos) end = spec.size();
    std::string item = spec.substr(pos, end - pos);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    pos = end + 1;
    if (item.empty()) continue;
    bool mask = false;
    if (item[0] == '-' || item[0] == '+') {
      mask = item[0] == '-';
      item.erase(item.begin());
    }
    FeatureSet named;
    if (item == "amx") {
      named = FeatureSet{F::kAmxTile, F::kAmxBf16, F::kAmxInt8};
    } else {
      for (int i = 0; i < kNumFeatures; ++i)
        if (item == kFeatureNames[i]) named = FeatureSet{static_cast<CpuFeature>(i)};
    }
    if (named.empty())
      throw_invalid(what, "comma-separated feature names, each optionally prefixed by '-' (mask) or '+' (require): " +
                              accepted_feature_names(),
                    "'" + item + "'");
    // A feature of the other architecture is a mistake even as a mask (it would silently
    // mask nothing): most likely a setting copied from another machine.
#if defined(AICC_X86)
    if (kArmLevel.contains(named))
      throw_invalid(what, "features of this CPU architecture (x86-64: avx2, fma, ..., amx_int8)",
                    "'" + item + "', an aarch64 feature");
#elif defined(__aarch64__)
    if (!kArmLevel.contains(named))
      throw_invalid(what, "features of this CPU architecture (aarch64: neon, dotprod, i8mm, arm_bf16)",
                    "'" + item + "', an x86-64 feature");
#endif
    if (mask) {
      masked = masked | named;
    } else if (!cpu_info().features.contains(named)) {
      throw_invalid(what, "features this CPU has (" + feature_names(cpu_info().features) + ")",
                    "'" + item + "', which it lacks");
    }
  }
  return masked;
}

Controls& controls() {
  static Controls* c = [] {
    auto* ctl = new Controls;  // never destroyed: kernels may run during static destruction
    ctl->cap = all_features();
    if (const char* env = std::getenv("AICC_ISA"); env != nullptr && *env != '\0') {
      const Isa requested = isa_from_name(env, "AICC_ISA");
      if (requested > detected_isa())
        throw_invalid("AICC_ISA", std::string("a level this CPU supports (<= ") + isa_name(detected_isa()) + ")",
                      std::string("'") + env + "'");
      ctl->cap = isa_features(requested);
    }
    if (const char* env = std::getenv("AICC_CPU_FEATURES"); env != nullptr)
      ctl->masked = parse_feature_spec(env, "AICC_CPU_FEATURES");
    ctl->refresh();
    return ctl;
  }();
  return *c;
}

}  // namespace

const char* feature_name(CpuFeature f) {
  const int i = static_cast<int>(f);
  return i >= 0 && i < kNumFeatures ? kFeatureNames[i] : "?";
}

std::string feature_names(FeatureSet s) {
  std::string out;
  for (int i = 0; i < kNumFeatures; ++i) {
    if (!s.has(static_cast<CpuFeature>(i))) continue;
    if (!out.empty()) out += ' ';
    out += kFeatureNames[i];
  }
  return out;
}

const CpuInfo& cpu_info() {
  static const CpuInfo info = detect();
  return info;
}

FeatureSet isa_features(Isa isa) {
  switch (isa) {
    case Isa::kPortable: return kArmLevel;  // x86 portable: no x86 features; arm bits are outside the x86 cap
    case Isa::kAvx2: return kAvx2Level | kArmLevel;
    case Isa::kAvx512: return kAvx512Level | kArmLevel;
    case Isa::kAmx: return kAmxLevel | kArmLevel;
  }
  return FeatureSet();
}

Isa detected_isa() {
  static const Isa level = [] {
    const FeatureSet f = cpu_info().features;
    // A level counts as present when the kernels written for it can run: its base features.
    if (f.contains({F::kAvx2, F::kFma, F::kF16c, F::kAvx512f, F::kAvx512bw, F::kAvx512vl, F::kAvx512dq})) {
      return f.has(F::kAmxTile) ? Isa::kAmx : Isa::kAvx512;
    }
    if (f.contains({F::kAvx2, F::kFma, F::kF16c})) return Isa::kAvx2;
    return Isa::kPortable;
  }();
  return level;
}

FeatureSet active_features() { return FeatureSet(controls().active.load(std::memory_order_acquire)); }

Isa active_isa() {
  const FeatureSet f = active_features();
  if (f.contains({F::kAvx2, F::kFma, F::kF16c, F::kAvx512f, F::kAvx512bw, F::kAvx512vl, F::kAvx512dq}))
    return f.has(F::kAmxTile) ? Isa::kAmx : Isa::kAvx512;
  if (f.contains({F::kAvx2, F::kFma, F::kF16c})) return Isa::kAvx2;
  return Isa::kPortable;
}

void set_isa(Isa isa) {
  if (isa > detected_isa()) {
    throw_invalid("isa", std::string("a level this CPU supports (<= ") + isa_name(detected_isa()) + ")",
                  isa_name(isa));
  }
  Controls& c = controls();
  std::lock_guard<std::mutex> lock(c.mu);
  c.cap = isa_features(isa);
  c.refresh();
}

void set_feature_mask(const std::string& spec) {
  const FeatureSet masked = parse_feature_spec(spec, "features");
  Controls& c = controls();
  std::lock_guard<std::mutex> lock(c.mu);
  c.masked = masked;
  c.refresh();
}

FeatureSet masked_features() {
  Controls& c = controls();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.masked;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kPortable: return "portable";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
    case Isa::kAmx: return "amx";
  }
  return "?";
}

Isa isa_from_name(const std::string& name, const char* what) {
  if (name == "portable") return Isa::kPortable;
  if (name == "avx2") return Isa::kAvx2;
  if (name == "avx512") return Isa::kAvx512;
  if (name == "amx") return Isa::kAmx;
  throw_invalid(what, "one of 'portable', 'avx2', 'avx512', 'amx'", "'" + name + "'");
}

}  // namespace aicc
