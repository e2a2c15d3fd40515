// gemm / qgemm glue: arrays -> views, GIL released around the kernel. No math here.
#include <pybind11/pybind11.h>

#include "aicc/gemm.h"
#include "bindings/array_view.h"

namespace aicc::bindings {

void bind_gemm(py::module_& m) {
  m.def(
      "gemm",
      [](const py::array& a, const py::array& b, const py::object& c, const py::array& out, float alpha,
         float beta, const py::object& bias, int activation) {
        const MatrixView av = matrix_view(a, "a");
        const MatrixView bv = matrix_view(b, "b");
        MatrixView cv;
        const bool has_c = !c.is_none();
        if (has_c) cv = matrix_view(py::reinterpret_borrow<py::array>(c), "c");
        const MatrixView ov = matrix_view(out, "out", /*writeable=*/true);
        GemmParams params;
        params.alpha = alpha;
        params.beta = beta;
        int64_t bias_len = 0;
        params.bias = optional_vector<float>(bias, "bias", DType::kF32, &bias_len);
        if (params.bias && bias_len != ov.cols) throw_invalid("bias", "length " + std::to_string(ov.cols),
                                                              std::to_string(bias_len));
        if (activation < 0 || activation > 2) throw_invalid("activation", "0, 1 or 2", std::to_string(activation));
        params.activation = static_cast<Activation>(activation);
        py::gil_scoped_release release;
        cpu::gemm(av, bv, has_c ? &cv : nullptr, ov, params);
      },
      py::arg("a"), py::arg("b"), py::arg("c"), py::arg("out"), py::arg("alpha"), py::arg("beta"),
      py::arg("bias"), py::arg("activation"));

  m.def(
      "qgemm",
      [](const py::array& a, const py::array& b, const py::array& out, int32_t a_zero_point,
         const py::object& b_zero_point, const py::object& scale, const py::object& bias,
         int32_t out_zero_point, int activation) {
        const MatrixView av = matrix_view(a, "a");
        const MatrixView bv = matrix_view(b, "b");
        const MatrixView ov = matrix_view(out, "out", /*writeable=*/true);
        QGemmParams params;
        params.a_zero_point = a_zero_point;
        int32_t zb_scalar = 0;
        if (py::isinstance<py::array>(b_zero_point)) {
          params.b_zero_point = optional_vector<int32_t>(b_zero_point, "b_zero_point", DType::kS32,
                                                         &params.b_zero_point_len);
        } else {
          zb_scalar = b_zero_point.cast<int32_t>();
          params.b_zero_point = &zb_scalar;
          params.b_zero_point_len = 1;
        }
        params.scale = optional_vector<float>(scale, "scale", DType::kF32, &params.scale_len);
        int64_t bias_len = 0;
        params.bias = optional_vector<int32_t>(bias, "bias", DType::kS32, &bias_len);
        if (params.bias && bias_len != ov.cols) throw_invalid("bias", "length " + std::to_string(ov.cols),
                                                              std::to_string(bias_len));
        params.out_zero_point = out_zero_point;
        if (activation != 0 && activation != 1) throw_invalid("activation", "none or relu", std::to_string(activation));
        params.activation = static_cast<Activation>(activation);
        py::gil_scoped_release release;
        cpu::qgemm(av, bv, ov, params);
      },
      py::arg("a"), py::arg("b"), py::arg("out"), py::arg("a_zero_point"), py::arg("b_zero_point"),
      py::arg("scale"), py::arg("bias"), py::arg("out_zero_point"), py::arg("activation"));
}

}  // namespace aicc::bindings
