// The kernel registry and CPU feature controls, for show_config, aicc-bench and the tests
// (the `_entry` functions run one registry entry directly, whatever the registry would pick).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings/array_view.h"
#include "common/cpu_features.h"
#include "cpu/config/registry.h"

namespace aicc::bindings {
namespace {

template <class Impl>
const cpu::registry::Entry<Impl>& runnable_entry(const std::vector<cpu::registry::Entry<Impl>>& family,
                                                 const std::string& name) {
  const auto* e = cpu::registry::find(family, name);
  if (e == nullptr) throw_invalid("name", "a registry entry of this family", "'" + name + "'");
  const FeatureSet missing = e->required.without(cpu_info().features);
  if (!missing.empty())
    throw Unsupported(std::string("registry entry ") + e->name + " needs " + feature_names(missing) +
                      ", which this CPU lacks");
  return *e;
}

// The float GEMM family named `family`; any other name is an error (not a silent f32_gemm).
const std::vector<cpu::registry::Entry<const cpu::gemm_internal::FloatGemmConfig*>>& float_family(
    const std::string& family) {
  const auto& f = cpu::registry::families();
  if (family == "f32_gemm") return f.f32_gemm;
  if (family == "bf16_gemm") return f.bf16_gemm;
  if (family == "f16_gemm") return f.f16_gemm;
  throw_invalid("family", "one of 'f32_gemm', 'bf16_gemm', 'f16_gemm'", "'" + family + "'");
}

}  // namespace

void bind_registry(py::module_& m) {
  m.def("cpu_info", [] {
    const CpuInfo& c = cpu_info();
    py::dict d;
    d["vendor"] = c.vendor;
    d["brand"] = c.brand;
    for (int i = 0; i < static_cast<int>(CpuFeature::kCount); ++i) {
      const auto f = static_cast<CpuFeature>(i);
      d[feature_name(f)] = c.features.has(f);
    }
    if (!c.amx_note.empty()) d["amx_note"] = c.amx_note;
    return d;
  });
  m.def("active_features", [] { return feature_names(active_features()); });
  m.def("masked_features", [] { return feature_names(masked_features()); });
  m.def("set_cpu_features", [](const std::string& spec) { set_feature_mask(spec); }, py::arg("spec"),
        "Masks features in AICC_CPU_FEATURES syntax ('-avx512_bf16,-amx'); '' clears the mask.");
  m.def("registry", [] {
    py::list out;
    for (const auto& e : cpu::registry::describe()) {
      py::dict d;
      d["family"] = e.family;
      d["name"] = e.name;
      d["required"] = e.required;
      d["runnable"] = e.runnable;
      d["chosen"] = e.chosen;
      if (e.mr) {
        d["mr"] = e.mr;
        d["nr"] = e.nr;
        d["k_per_word"] = e.k_per_word;
      }
      out.append(d);
    }
    return out;
  });
  m.def("registry_entry_blocking", [](const std::string& family, const std::string& name) {
    const auto* e = cpu::registry::find(float_family(family), name);
    if (e == nullptr) throw_invalid("name", "a float GEMM registry entry", "'" + name + "'");
    py::dict d;
    d["mr"] = e->impl->mr;
    d["nr"] = e->impl->nr;
    d["mc"] = e->impl->mc;
    d["kc"] = e->impl->kc;
    d["nc"] = e->impl->nc;
    d["k_per_word"] = cpu::gemm_internal::k_per_word(e->impl->word);
    return d;
  });

  // out = a @ b (+ bias, activation) through one float GEMM entry of `family`.
  m.def(
      "_gemm_entry",
      [](const std::string& family, const std::string& name, const py::array& a, const py::array& b,
         const py::array& out, const py::object& bias, int activation) {
        const auto& entry = runnable_entry(float_family(family), name);
        const MatrixView av = matrix_view(a, "a"), bv = matrix_view(b, "b");
        const MatrixView ov = matrix_view(out, "out", /*writeable=*/true);
        if (av.cols != bv.rows || ov.rows != av.rows || ov.cols != bv.cols)
          throw_invalid("b", "shapes (m, k) @ (k, n) -> out (m, n)", "mismatched shapes");
        if (entry.impl->word == cpu::gemm_internal::PanelWord::kBF16Pair &&
            (av.dtype != DType::kBF16 || bv.dtype != DType::kBF16))
          throw_invalid("a", "bf16 operands for a bf16-pair entry", dtype_name(av.dtype));
        int64_t bias_len = 0;
        cpu::gemm_internal::Epilogue ep;
        ep.bias = optional_vector<float>(bias, "bias", DType::kF32, &bias_len);
        if (ep.bias && bias_len != ov.cols) throw_invalid("bias", "length " + std::to_string(ov.cols), std::to_string(bias_len));
        if (activation < 0 || activation > 2) throw_invalid("activation", "0, 1 or 2", std::to_string(activation));
        ep.activation = static_cast<Activation>(activation);
        ep.out = ov;
        py::gil_scoped_release release;
        cpu::gemm_internal::MatrixAPacker ap(av);
        cpu::gemm_internal::MatrixBPacker bp(bv);
        cpu::gemm_internal::run_float_gemm(ov.rows, ov.cols, av.cols, ap, bp, ep, 0, entry.impl);
      },
      py::arg("family"), py::arg("name"), py::arg("a"), py::arg("b"), py::arg("out"), py::arg("bias") = py::none(),
      py::arg("activation") = 0);

  // out (int32) = (a - za) @ (b - zb) through one INT8 GEMM entry.
  m.def(
      "_qgemm_entry",
      [](const std::string& name, const py::array& a, const py::array& b, const py::array& out, int32_t za,
         int32_t zb) {
        const auto& entry = runnable_entry(cpu::registry::families().int8_gemm, name);
        const MatrixView av = matrix_view(a, "a"), bv = matrix_view(b, "b");
        const MatrixView ov = matrix_view(out, "out", /*writeable=*/true);
        QGemmParams p;
        p.a_zero_point = za;
        p.b_zero_point = &zb;
        p.b_zero_point_len = 1;
        py::gil_scoped_release release;
        cpu::qgemm_detail::qgemm_with_route(av, bv, ov, p, *entry.impl);
      },
      py::arg("name"), py::arg("a"), py::arg("b"), py::arg("out"), py::arg("a_zero_point") = 0,
      py::arg("b_zero_point") = 0);
}

}  // namespace aicc::bindings
