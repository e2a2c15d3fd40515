// conv2d / qconv2d / conv2d_backward_* glue: arrays -> views, GIL released around the
// kernel. No math here. Geometry arrives as (stride_h, stride_w, pad_top, pad_bottom,
// pad_left, pad_right, dilation_h, dilation_w, groups, layout) with layout 0 = NCHW, 1 = NHWC.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <memory>

#include "aicc/conv.h"
#include "bindings/array_view.h"

namespace aicc::bindings {
namespace {

using Geometry = std::array<int64_t, 10>;

// Sizes from the input-shaped and weight-shaped tensors, options from the geometry tuple.
Conv2dDesc make_desc(const TensorView& x, const TensorView& w, int64_t k_out, const Geometry& g) {
  Conv2dDesc d;
  if (g[9] != 0 && g[9] != 1) throw_invalid("layout", "0 (NCHW) or 1 (NHWC)", std::to_string(g[9]));
  d.layout = g[9] == 0 ? Layout::kNCHW : Layout::kNHWC;
  if (x.ndim != 4) throw_invalid("x", "a 4-D array", std::to_string(x.ndim) + "-D");
  if (w.ndim != 4) throw_invalid("w", "a 4-D array", std::to_string(w.ndim) + "-D");
  const bool nchw = d.layout == Layout::kNCHW;
  d.n = x.shape[0];
  d.c = nchw ? x.shape[1] : x.shape[3];
  d.h = nchw ? x.shape[2] : x.shape[1];
  d.w = nchw ? x.shape[3] : x.shape[2];
  d.k = k_out;
  d.r = nchw ? w.shape[2] : w.shape[1];
  d.s = nchw ? w.shape[3] : w.shape[2];
  d.stride_h = g[0];
  d.stride_w = g[1];
  d.pad_top = g[2];
  d.pad_bottom = g[3];
  d.pad_left = g[4];
  d.pad_right = g[5];
  d.dilation_h = g[6];
  d.dilation_w = g[7];
  d.groups = g[8];
  return d;
}

// The fused epilogue from the Python arguments (bias / scale: f32 vectors of length K or
// None; residual: an array or None, checked by cpu::conv2d). `residual_view` holds the view
// the returned epilogue points to.
cpu::Conv2dEpilogue epilogue(const Conv2dDesc& d, const py::object& bias, const py::object& scale,
                             const py::object& residual, int activation, TensorView* residual_view) {
  cpu::Conv2dEpilogue ep;
  int64_t len = 0;
  ep.bias = optional_vector<float>(bias, "bias", DType::kF32, &len);
  if (ep.bias && len != d.k) throw_invalid("bias", "length " + std::to_string(d.k), std::to_string(len));
  ep.scale = optional_vector<float>(scale, "scale", DType::kF32, &len);
  if (ep.scale && len != d.k) throw_invalid("scale", "length " + std::to_string(d.k), std::to_string(len));
  if (!residual.is_none()) {
    if (!py::isinstance<py::array>(residual))
      throw_invalid("residual", "a numpy array or None", Py_TYPE(residual.ptr())->tp_name);
    *residual_view = tensor_view(residual.cast<py::array>(), "residual");
    ep.residual = residual_view;
  }
  if (activation < 0 || activation > 2) throw_invalid("activation", "0, 1 or 2", std::to_string(activation));
  ep.activation = static_cast<Activation>(activation);
  return ep;
}

}  // namespace

void bind_conv(py::module_& m) {
  m.def(
      "conv2d",
      [](const py::array& x, const py::array& w, const py::object& bias, const py::array& out,
         const Geometry& geo, int activation, const py::object& scale, const py::object& residual) {
        const TensorView xv = tensor_view(x, "x");
        const TensorView wv = tensor_view(w, "w");
        const TensorView ov = tensor_view(out, "out", /*writeable=*/true);
        const Conv2dDesc d = make_desc(xv, wv, wv.ndim == 4 ? wv.shape[0] : 0, geo);
        TensorView rv;
        const cpu::Conv2dEpilogue ep = epilogue(d, bias, scale, residual, activation, &rv);
        py::gil_scoped_release release;
        cpu::conv2d(d, xv, wv, ep, ov);
      },
      py::arg("x"), py::arg("w"), py::arg("bias"), py::arg("out"), py::arg("geometry"), py::arg("activation"),
      py::arg("scale") = py::none(), py::arg("residual") = py::none());

  py::class_<cpu::Conv2dWeights, std::shared_ptr<cpu::Conv2dWeights>>(m, "Conv2dWeights")
      .def(py::init([](const py::array& w, int64_t groups, int layout) {
             if (layout != 0 && layout != 1) throw_invalid("layout", "0 (NCHW) or 1 (NHWC)", std::to_string(layout));
             const TensorView wv = tensor_view(w, "w");
             py::gil_scoped_release release;
             return std::make_shared<cpu::Conv2dWeights>(wv, groups, layout == 0 ? Layout::kNCHW : Layout::kNHWC);
           }),
           py::arg("w"), py::arg("groups"), py::arg("layout"))
      .def_property_readonly("packed_bytes", &cpu::Conv2dWeights::packed_bytes);

  m.def(
      "conv2d_prepacked",
      [](const py::array& x, const cpu::Conv2dWeights& w, const py::object& bias, const py::array& out,
         const Geometry& geo, int activation, const py::object& scale, const py::object& residual) {
        const TensorView xv = tensor_view(x, "x");
        const TensorView ov = tensor_view(out, "out", /*writeable=*/true);
        TensorView wshape;  // sizes only, for the descriptor
        wshape.ndim = 4;
        const bool nchw = geo[9] == 0;
        wshape.shape[0] = w.k();
        wshape.shape[nchw ? 1 : 3] = w.cg();
        wshape.shape[nchw ? 2 : 1] = w.r();
        wshape.shape[nchw ? 3 : 2] = w.s();
        const Conv2dDesc d = make_desc(xv, wshape, w.k(), geo);
        TensorView rv;
        const cpu::Conv2dEpilogue ep = epilogue(d, bias, scale, residual, activation, &rv);
        py::gil_scoped_release release;
        cpu::conv2d(d, xv, w, ep, ov);
      },
      py::arg("x"), py::arg("w"), py::arg("bias"), py::arg("out"), py::arg("geometry"), py::arg("activation"),
      py::arg("scale") = py::none(), py::arg("residual") = py::none());

  m.def(
      "qconv2d",
      [](const py::array& x, const py::array& w, const py::object& bias, const py::array& out,
         const Geometry& geo, int32_t x_zero_point, const py::object& w_zero_point, const py::object& scale,
         int32_t out_zero_point, int activation, const py::object& residual, float residual_scale,
         int32_t residual_zero_point) {
        const TensorView xv = tensor_view(x, "x");
        const TensorView wv = tensor_view(w, "w");
        const TensorView ov = tensor_view(out, "out", /*writeable=*/true);
        const Conv2dDesc d = make_desc(xv, wv, wv.ndim == 4 ? wv.shape[0] : 0, geo);
        QGemmParams p;
        p.a_zero_point = x_zero_point;
        p.b_zero_point = optional_vector<int32_t>(w_zero_point, "w_zero_point", DType::kS32, &p.b_zero_point_len);
        p.scale = optional_vector<float>(scale, "scale", DType::kF32, &p.scale_len);
        int64_t bias_len = 0;
        p.bias = optional_vector<int32_t>(bias, "bias", DType::kS32, &bias_len);
        if (p.bias && bias_len != d.k) throw_invalid("bias", "length " + std::to_string(d.k), std::to_string(bias_len));
        p.out_zero_point = out_zero_point;
        if (activation != 0 && activation != 1) throw_invalid("activation", "none or relu", std::to_string(activation));
        p.activation = static_cast<Activation>(activation);
        TensorView rv;
        if (!residual.is_none()) {
          if (!py::isinstance<py::array>(residual))
            throw_invalid("residual", "a numpy array or None", Py_TYPE(residual.ptr())->tp_name);
          rv = tensor_view(residual.cast<py::array>(), "residual");
        }
        py::gil_scoped_release release;
        cpu::qconv2d(d, xv, wv, p, ov, residual.is_none() ? nullptr : &rv, residual_scale, residual_zero_point);
      },
      py::arg("x"), py::arg("w"), py::arg("bias"), py::arg("out"), py::arg("geometry"), py::arg("x_zero_point"),
      py::arg("w_zero_point"), py::arg("scale"), py::arg("out_zero_point"), py::arg("activation"),
      py::arg("residual") = py::none(), py::arg("residual_scale") = 1.0f, py::arg("residual_zero_point") = 0);

  m.def(
      "conv2d_backward_data",
      [](const py::array& grad_out, const py::array& w, const py::array& grad_in, const Geometry& geo) {
        const TensorView gv = tensor_view(grad_out, "grad_out");
        const TensorView wv = tensor_view(w, "w");
        const TensorView iv = tensor_view(grad_in, "out", /*writeable=*/true);
        const Conv2dDesc d = make_desc(iv, wv, wv.ndim == 4 ? wv.shape[0] : 0, geo);
        py::gil_scoped_release release;
        cpu::conv2d_backward_data(d, gv, wv, iv);
      },
      py::arg("grad_out"), py::arg("w"), py::arg("out"), py::arg("geometry"));

  m.def(
      "conv2d_backward_weight",
      [](const py::array& x, const py::array& grad_out, const py::array& grad_w, const Geometry& geo) {
        const TensorView xv = tensor_view(x, "x");
        const TensorView gv = tensor_view(grad_out, "grad_out");
        const TensorView wv = tensor_view(grad_w, "out", /*writeable=*/true);
        const Conv2dDesc d = make_desc(xv, wv, wv.ndim == 4 ? wv.shape[0] : 0, geo);
        py::gil_scoped_release release;
        cpu::conv2d_backward_weight(d, xv, gv, wv);
      },
      py::arg("x"), py::arg("grad_out"), py::arg("out"), py::arg("geometry"));

  m.def(
      "conv2d_workspace_bytes",
      [](const std::array<int64_t, 7>& sizes, const Geometry& geo, const std::string& dtype) {
        Conv2dDesc d;
        d.n = sizes[0], d.c = sizes[1], d.h = sizes[2], d.w = sizes[3], d.k = sizes[4], d.r = sizes[5], d.s = sizes[6];
        d.stride_h = geo[0], d.stride_w = geo[1], d.pad_top = geo[2], d.pad_bottom = geo[3];
        d.pad_left = geo[4], d.pad_right = geo[5], d.dilation_h = geo[6], d.dilation_w = geo[7];
        d.groups = geo[8];
        d.layout = geo[9] == 0 ? Layout::kNCHW : Layout::kNHWC;
        DType t = DType::kF32;
        if (dtype == "f16") t = DType::kF16;
        else if (dtype == "bf16") t = DType::kBF16;
        else if (dtype == "u8") t = DType::kU8;
        else if (dtype == "s8") t = DType::kS8;
        else if (dtype != "f32") throw_invalid("dtype", "f32, f16, bf16, u8 or s8", dtype);
        return cpu::conv2d_workspace_bytes(d, t);
      },
      py::arg("sizes"), py::arg("geometry"), py::arg("dtype"));
}

}  // namespace aicc::bindings
