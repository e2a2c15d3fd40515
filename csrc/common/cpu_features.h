// Runtime CPU feature detection: the feature set every kernel registry entry is matched
// against (csrc/cpu/config/registry.h).
//
// Detected once (cpuid + the OS's support for the register state; on aarch64 getauxval).
// Two controls narrow what the kernels may use, so every registry entry can be forced and
// tested on a machine that has it:
//   AICC_ISA=portable|avx2|avx512|amx      a cap: only the features of that level and below
//   AICC_CPU_FEATURES=-avx512_bf16,-amx    masks single features (a leading '-' masks,
//                                          a bare or '+' name requires the feature: an error
//                                          where the CPU lacks it)
// and the same from code through set_isa() / set_feature_mask() (tests, benchmarks).
// Bad names are an InvalidArgument naming the variable and the accepted values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace aicc {

// One bit per instruction-set feature a kernel may require. aarch64 bits are reserved for the
// NEON port; nothing sets them on x86.
enum class CpuFeature : int {
  kAvx2 = 0,
  kFma,
  kF16c,
  kAvx512f,
  kAvx512bw,
  kAvx512vl,
  kAvx512dq,
  kAvx512Vnni,
  kAvxVnni,
  kAvx512Bf16,
  kAvx512Fp16,
  kAmxTile,
  kAmxBf16,
  kAmxInt8,
  kNeon,
  kDotprod,
  kI8mm,
  kArmBf16,
  kCount
};

class FeatureSet {
 public:
  constexpr FeatureSet() = default;
  constexpr explicit FeatureSet(uint64_t bits) : bits_(bits) {}
  constexpr FeatureSet(std::initializer_list<CpuFeature> fs) {
    for (CpuFeature f : fs) bits_ |= bit(f);
  }
  constexpr bool has(CpuFeature f) const { return (bits_ & bit(f)) != 0; }
  constexpr bool contains(FeatureSet other) const { return (bits_ & other.bits_) == other.bits_; }
  constexpr FeatureSet operator|(FeatureSet o) const { return FeatureSet(bits_ | o.bits_); }
  constexpr FeatureSet operator&(FeatureSet o) const { return FeatureSet(bits_ & o.bits_); }
  constexpr FeatureSet without(FeatureSet o) const { return FeatureSet(bits_ & ~o.bits_); }
  constexpr bool empty() const { return bits_ == 0; }
  constexpr uint64_t bits() const { return bits_; }
  constexpr bool operator==(FeatureSet o) const { return bits_ == o.bits_; }
  constexpr bool operator!=(FeatureSet o) const { return bits_ != o.bits_; }

 private:
  static constexpr uint64_t bit(CpuFeature f) { return uint64_t{1} << static_cast<int>(f); }
  uint64_t bits_ = 0;
};

// Feature names as AICC_CPU_FEATURES spells them ("avx512_bf16", "amx_int8", ...).
const char* feature_name(CpuFeature f);
// "avx2 fma f16c" (space separated, in enum order); "" for the empty set.
std::string feature_names(FeatureSet s);

struct CpuInfo {
  FeatureSet features;  // what the CPU and OS support (AMX only if the OS granted the tile state)
  std::string vendor;
  std::string brand;
  std::string amx_note;  // why AMX is off where the CPU has it (e.g. the kernel refused the permission)
};

const CpuInfo& cpu_info();

// The ISA levels AICC_ISA caps at. Each level is a set of features (levels nest).
enum class Isa : int { kPortable = 0, kAvx2 = 1, kAvx512 = 2, kAmx = 3 };
const char* isa_name(Isa isa);
Isa isa_from_name(const std::string& name, const char* what = "isa");  // throws InvalidArgument
FeatureSet isa_features(Isa isa);

// What kernels may use now: detected, capped by AICC_ISA / set_isa, minus the masked features.
FeatureSet active_features();
// The highest level whose features are all active (for reports; kernels never compare levels).
Isa active_isa();
Isa detected_isa();

// Caps the features at a level (must be <= detected_isa(), else InvalidArgument). Thread-safe,
// meant for tests and benchmarks, not for switching under running kernels.
void set_isa(Isa isa);
// Applies a feature spec in AICC_CPU_FEATURES syntax ("" clears the mask).
void set_feature_mask(const std::string& spec);
// The features masked now (by AICC_CPU_FEATURES or set_feature_mask).
FeatureSet masked_features();

}  // namespace aicc
