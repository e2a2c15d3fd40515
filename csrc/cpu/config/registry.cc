// Builds the families from the architecture files and answers the queries of registry.h.
#include "cpu/config/registry.h"

namespace aicc::cpu {
namespace registry {
namespace {

Families build() {
  Families f;
  register_x86_64(f);
  register_aarch64(f);
  register_portable(f);
  // The float families fall back on the f32 kernels (inputs converted exactly while packing):
  // bf16 where the CPU has no bf16 dot product, f16 everywhere until an f16-accumulating-in-f32
  // kernel exists (f16 inputs are never rounded to bf16).
  f.bf16_gemm.insert(f.bf16_gemm.end(), f.f32_gemm.begin(), f.f32_gemm.end());
  f.f16_gemm.insert(f.f16_gemm.end(), f.f32_gemm.begin(), f.f32_gemm.end());
  f.peak_bf16.insert(f.peak_bf16.end(), f.peak_f32.begin(), f.peak_f32.end());
  return f;
}

template <class Impl>
void add(std::vector<EntryInfo>& out, const char* family, const std::vector<Entry<Impl>>& entries) {
  const FeatureSet detected = cpu_info().features;
  const Entry<Impl>* chosen = &select(entries);
  for (const Entry<Impl>& e : entries) {
    EntryInfo info;
    info.family = family;
    info.name = e.name;
    info.required = feature_names(e.required);
    info.runnable = detected.contains(e.required);
    info.chosen = &e == chosen;
    if constexpr (std::is_same_v<Impl, const gemm_internal::FloatGemmConfig*>) {
      info.mr = e.impl->mr;
      info.nr = e.impl->nr;
      info.k_per_word = gemm_internal::k_per_word(e.impl->word);
    }
    out.push_back(info);
  }
}

}  // namespace

const Families& families() {
  static const Families f = build();
  return f;
}

std::vector<EntryInfo> describe() {
  const Families& f = families();
  std::vector<EntryInfo> out;
  add(out, "f32_gemm", f.f32_gemm);
  add(out, "bf16_gemm", f.bf16_gemm);
  add(out, "f16_gemm", f.f16_gemm);
  add(out, "int8_gemm", f.int8_gemm);
  add(out, "depthwise", f.depthwise);
  add(out, "depthwise_int8", f.depthwise_int8);
  add(out, "smallc", f.smallc);
  add(out, "smallc_int8", f.smallc_int8);
  add(out, "nchw_gather", f.nchw_gather);
  add(out, "reduce", f.reduce);
  add(out, "peak_f32", f.peak_f32);
  add(out, "peak_bf16", f.peak_bf16);
  add(out, "peak_int8", f.peak_int8);
  return out;
}

}  // namespace registry

namespace gemm_internal {

const FloatGemmConfig& float_gemm_config(DType a, DType b) {
  const registry::Families& f = registry::families();
  if (a == DType::kBF16 && b == DType::kBF16) return *registry::select(f.bf16_gemm).impl;
  if (a == DType::kU8 || a == DType::kS8) return *registry::select(f.int8_gemm).impl;
  if (a == DType::kF16 || b == DType::kF16) return *registry::select(f.f16_gemm).impl;
  return *registry::select(f.f32_gemm).impl;
}

}  // namespace gemm_internal
}  // namespace aicc::cpu
