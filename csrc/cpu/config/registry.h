// The kernel registry: the only place a CPU kernel is chosen.
//
// Per op family, one ordered list of entries {name, required CPU features, implementation};
// the first entry whose features are all active (common/cpu_features.h: detected, capped by
// AICC_ISA, minus AICC_CPU_FEATURES masks) wins. Models: XNNPACK src/configs/gemm-config.c,
// BLIS config/<arch>/bli_cntx_init_<arch>.c.
//
// Each architecture family registers its entries in one file (config/x86_64.cc,
// config/aarch64.cc, config/portable.cc), best first; portable entries come
// last and require nothing, so every family always has a choice. Adding a kernel touches:
// the kernel file (its name suffix gives its compiler flags, cmake/AiccIsa.cmake), one line in
// its architecture's registry file, and its declaration in the family's kernel header.
#pragma once

#include <string>
#include <vector>

#include "aicc/conv.h"
#include "aicc/gemm.h"
#include "common/cpu_features.h"
#include "cpu/conv/conv2d_common.h"
#include "cpu/conv/depthwise_conv2d.h"
#include "cpu/conv/depthwise_qconv2d.h"
#include "cpu/conv/qstem_conv2d.h"
#include "cpu/conv/smallc_conv2d.h"
#include "cpu/gemm/gemm_driver.h"
#include "cpu/gemm/qgemm_internal.h"
#include "cpu/reduce/reduce.h"
#include "cpu/peak/peak_probes.h"

namespace aicc::cpu::registry {

template <class Impl>
struct Entry {
  const char* name;     // what the kernel is: dtype_tile_isa ("bf16_12x32_avx512bf16")
  FeatureSet required;  // every feature its code uses
  Impl impl;
};

using DepthwiseOpsFor = const DepthwiseOps& (*)(DType);
using DepthwiseQconv = void (*)(const Conv2dDesc&, const TensorView& x, const TensorView& w, const QGemmParams&,
                                const TensorView& out, const QResidual* residual);
using SmallCOpsFor = const SmallCOps& (*)();

// The families. f32 GEMM serves f32 (and is the fallback of the other float families: their
// inputs are converted exactly to f32 while packing); bf16 and f16 list their own kernels first.
struct Families {
  std::vector<Entry<const gemm_internal::FloatGemmConfig*>> f32_gemm, bf16_gemm, f16_gemm;
  // INT8 GEMM: entries of the same driver with INT8 panel words (gemm_driver.h PanelWord).
  std::vector<Entry<const gemm_internal::FloatGemmConfig*>> int8_gemm;
  std::vector<Entry<DepthwiseOpsFor>> depthwise;
  std::vector<Entry<DepthwiseQconv>> depthwise_int8;
  std::vector<Entry<SmallCOpsFor>> smallc;  // the direct conv of few input channels (the stem)
  // Its INT8 twin; the portable entry's impl is nullptr: no direct kernel, the conv runs as
  // a GEMM on the int8_gemm family's entry (NHWC implicit GEMM, NCHW im2col + qgemm).
  std::vector<Entry<const QStemOps*>> smallc_int8;
  // The NCHW implicit-GEMM B-panel gathers (f32 words, bf16 pair words).
  std::vector<Entry<const conv::NchwGatherOps*>> nchw_gather;
  std::vector<Entry<const ReduceKernels*>> reduce;
  // peak_bf16 falls back on peak_f32 (bf16 then runs on the f32 kernels).
  std::vector<Entry<const peak::ComputeLoop*>> peak_f32, peak_bf16, peak_int8;
};

// Registration, one function per architecture family file; called once, in priority order.
void register_x86_64(Families& f);   // empty unless built for x86-64
void register_aarch64(Families& f);  // empty unless built for aarch64
void register_portable(Families& f);

const Families& families();

// The first entry of `family` whose required features are in `active` (always found: the
// portable entry requires nothing).
template <class Impl>
const Entry<Impl>& select(const std::vector<Entry<Impl>>& family, FeatureSet active = active_features()) {
  for (const Entry<Impl>& e : family)
    if (active.contains(e.required)) return e;
  return family.back();
}

// The entry named `name` in `family` (nullptr if none): tests call one entry directly.
template <class Impl>
const Entry<Impl>* find(const std::vector<Entry<Impl>>& family, const std::string& name) {
  for (const Entry<Impl>& e : family)
    if (name == e.name) return &e;
  return nullptr;
}

// For show_config / aicc-bench / tests: every entry of every family, with its features, whether
// this CPU can run it (detected features) and whether it is the one chosen now.
struct EntryInfo {
  std::string family;
  std::string name;
  std::string required;  // feature names
  bool runnable;         // the CPU has the features (masks and caps aside)
  bool chosen;           // the family's choice under the active features
  int mr = 0, nr = 0, k_per_word = 0;  // GEMM families only
};
std::vector<EntryInfo> describe();

}  // namespace aicc::cpu::registry
