// The _aicc_cuda extension: thin glue from Python integers (device pointers, strides,
// a cudaStream_t) to the launchers in launchers.h. No math here; the Python backend
// (aicc_kernels/backends/cuda/) lays the arrays out and passes their pointers.
// Launches are asynchronous, so the GIL is released only around the launch itself.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "launchers.h"

namespace py = pybind11;
using namespace aicc::cuda;
using ptr_t = std::uintptr_t;

namespace {

template <typename T>
T* as_ptr(ptr_t p) {
  return reinterpret_cast<T*>(p);
}

FloatEpilogue float_epilogue(float alpha, float beta, ptr_t c, int64_t c_rs, int64_t c_cs, ptr_t bias, int act,
                             ptr_t out, int64_t ldo, int out_dtype) {
  FloatEpilogue e;
  e.alpha = alpha;
  e.beta = beta;
  e.c = as_ptr<const float>(c);
  e.c_rs = c_rs;
  e.c_cs = c_cs;
  e.bias = as_ptr<const float>(bias);
  e.act = static_cast<Activation>(act);
  e.out = as_ptr<void>(out);
  e.ldo = ldo;
  e.out_dtype = static_cast<DType>(out_dtype);
  if (beta != 0.0f && c == 0) throw std::invalid_argument("c: expected a device pointer because beta != 0");
  return e;
}

ConvShape conv_shape(const py::tuple& t) {
  if (t.size() != 17) throw std::invalid_argument("shape: expected 17 integers (n,h,w,c,k,r,s,p,q,sh,sw,ph,pw,dh,dw,groups,_)");
  int v[17];
  for (int i = 0; i < 17; ++i) v[i] = t[i].cast<int>();
  ConvShape s;
  s.n = v[0]; s.h = v[1]; s.w = v[2]; s.c = v[3]; s.k = v[4]; s.r = v[5]; s.s = v[6]; s.p = v[7]; s.q = v[8];
  s.stride_h = v[9]; s.stride_w = v[10]; s.pad_h = v[11]; s.pad_w = v[12]; s.dil_h = v[13]; s.dil_w = v[14];
  s.groups = v[15];
  return s;
}

}  // namespace

PYBIND11_MODULE(_aicc_cuda, m) {
  m.doc() = "aicc_kernels CUDA kernels (called through aicc_kernels.backends.cuda; arguments are validated there)";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const std::invalid_argument& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });

  m.def("device_count", [] {
    std::string reason;
    const int n = device_count(&reason);
    return py::make_tuple(n, reason);
  }, "(count, reason): count is -1 (and reason the CUDA runtime's error) when no device can be used");
  m.def("compute_capability", &compute_capability, py::arg("device"));
  m.def("runtime_version", &runtime_version);
  m.def("driver_version", &driver_version);
  m.def("synchronize", &synchronize_device, py::call_guard<py::gil_scoped_release>());
  m.def("gemm_mma_supported", &gemm_mma_supported, py::arg("device"));
  m.attr("DTYPES") = py::dict(py::arg("f32") = 0, py::arg("f16") = 1, py::arg("bf16") = 2, py::arg("s8") = 3,
                              py::arg("u8") = 4, py::arg("s32") = 5);

  m.def("gemm_simt", [](int in_dt, ptr_t a, int64_t a_rs, int64_t a_cs, ptr_t b, int64_t b_rs, int64_t b_cs, int mm,
                        int n, int k, float alpha, float beta, ptr_t c, int64_t c_rs, int64_t c_cs, ptr_t bias,
                        int act, ptr_t out, int64_t ldo, int out_dt, ptr_t stream) {
    const FloatEpilogue e = float_epilogue(alpha, beta, c, c_rs, c_cs, bias, act, out, ldo, out_dt);
    py::gil_scoped_release release;
    gemm_simt(static_cast<DType>(in_dt), as_ptr<const void>(a), a_rs, a_cs, as_ptr<const void>(b), b_rs, b_cs, mm,
              n, k, e, stream);
  });
  m.def("gemm_f16_mma", [](int in_dt, ptr_t a, int64_t lda, ptr_t bt, int64_t ldb, int mm, int n, int k, float alpha,
                           float beta, ptr_t c, int64_t c_rs, int64_t c_cs, ptr_t bias, int act, ptr_t out,
                           int64_t ldo, int out_dt, ptr_t stream) {
    const FloatEpilogue e = float_epilogue(alpha, beta, c, c_rs, c_cs, bias, act, out, ldo, out_dt);
    py::gil_scoped_release release;
    gemm_f16_mma(static_cast<DType>(in_dt), as_ptr<const void>(a), lda, as_ptr<const void>(bt), ldb, mm, n, k, e,
                 stream);
  });

  m.def("pack_s8_rows", [](ptr_t src, bool is_u8, int64_t rs, int64_t cs, int rows, int k, int kp, ptr_t dst,
                           ptr_t rowsum, ptr_t stream) {
    py::gil_scoped_release release;
    pack_s8_rows(as_ptr<const void>(src), is_u8, rs, cs, rows, k, kp, as_ptr<int8_t>(dst), as_ptr<int32_t>(rowsum),
                 stream);
  });
  m.def("qgemm_s8", [](ptr_t a8, ptr_t bt8, int mm, int n, int kp, int k, ptr_t rowsum_a, ptr_t colsum_b, int za,
                       ptr_t zb, ptr_t bias, ptr_t scale, int out_zp, bool relu, ptr_t out, int64_t ldo, int out_dt,
                       bool use_mma, ptr_t stream) {
    QuantEpilogue e;
    e.rowsum_a = as_ptr<const int32_t>(rowsum_a);
    e.colsum_b = as_ptr<const int32_t>(colsum_b);
    e.za = za;
    e.zb = as_ptr<const int32_t>(zb);
    e.bias = as_ptr<const int32_t>(bias);
    e.k = k;
    e.scale = as_ptr<const float>(scale);
    e.out_zp = out_zp;
    e.relu = relu;
    e.out = as_ptr<void>(out);
    e.ldo = ldo;
    e.out_dtype = static_cast<DType>(out_dt);
    if (e.out_dtype != DType::kS32 && scale == 0) throw std::invalid_argument("scale: expected a device pointer");
    py::gil_scoped_release release;
    qgemm_s8(as_ptr<const int8_t>(a8), as_ptr<const int8_t>(bt8), mm, n, kp, e, use_mma, stream);
  });

  m.def("conv2d_fwd", [](int in_dt, ptr_t x, ptr_t w, ptr_t bias, int act, ptr_t y, int out_dt, const py::tuple& shape,
                         bool depthwise, ptr_t stream) {
    const ConvShape s = conv_shape(shape);
    py::gil_scoped_release release;
    if (depthwise) {
      conv2d_depthwise_fwd(static_cast<DType>(in_dt), as_ptr<const void>(x), as_ptr<const void>(w),
                           as_ptr<const float>(bias), static_cast<Activation>(act), as_ptr<void>(y),
                           static_cast<DType>(out_dt), s, stream);
    } else {
      conv2d_fwd(static_cast<DType>(in_dt), as_ptr<const void>(x), as_ptr<const void>(w), as_ptr<const float>(bias),
                 static_cast<Activation>(act), as_ptr<void>(y), static_cast<DType>(out_dt), s, stream);
    }
  });
  m.def("conv2d_bwd_data", [](int dt, ptr_t dy, ptr_t w, ptr_t dx, const py::tuple& shape, ptr_t stream) {
    const ConvShape s = conv_shape(shape);
    py::gil_scoped_release release;
    conv2d_bwd_data(static_cast<DType>(dt), as_ptr<const void>(dy), as_ptr<const void>(w), as_ptr<void>(dx), s,
                    stream);
  });
  m.def("conv2d_bwd_weight", [](int dt, ptr_t x, ptr_t dy, ptr_t dw, const py::tuple& shape, ptr_t stream) {
    const ConvShape s = conv_shape(shape);
    py::gil_scoped_release release;
    conv2d_bwd_weight(static_cast<DType>(dt), as_ptr<const void>(x), as_ptr<const void>(dy), as_ptr<void>(dw), s,
                      stream);
  });
  m.def("qconv2d_fwd", [](int x_dt, ptr_t x, ptr_t w, int xzp, ptr_t wzp, ptr_t bias, ptr_t scale, int out_zp,
                          bool relu, ptr_t y, int out_dt, const py::tuple& shape, ptr_t stream) {
    const ConvShape s = conv_shape(shape);
    QConvParams q;
    q.xzp = xzp;
    q.wzp = as_ptr<const int32_t>(wzp);
    q.bias = as_ptr<const int32_t>(bias);
    q.scale = as_ptr<const float>(scale);
    q.out_zp = out_zp;
    q.relu = relu;
    q.out_dtype = static_cast<DType>(out_dt);
    if (q.out_dtype != DType::kS32 && scale == 0) throw std::invalid_argument("scale: expected a device pointer");
    py::gil_scoped_release release;
    qconv2d_fwd(static_cast<DType>(x_dt), as_ptr<const void>(x), as_ptr<const int8_t>(w), q, as_ptr<void>(y), s,
                stream);
  });

  m.def("reduce_inplace", [](int dt, int op, ptr_t dst, ptr_t src, int64_t n, ptr_t stream) {
    py::gil_scoped_release release;
    reduce_inplace(static_cast<DType>(dt), static_cast<ReduceOp>(op), as_ptr<void>(dst), as_ptr<const void>(src), n,
                   stream);
  });
  m.def("divide_inplace", [](int dt, ptr_t dst, int divisor, int64_t n, ptr_t stream) {
    py::gil_scoped_release release;
    divide_inplace(static_cast<DType>(dt), as_ptr<void>(dst), divisor, n, stream);
  });
  m.def("convert", [](int from, ptr_t src, int to, ptr_t dst, int64_t n, ptr_t stream) {
    py::gil_scoped_release release;
    convert(static_cast<DType>(from), as_ptr<const void>(src), static_cast<DType>(to), as_ptr<void>(dst), n, stream);
  });
  m.def("quantize_int8_blocks", [](int dt, ptr_t x, int64_t n, int block, ptr_t q, ptr_t scales, ptr_t stream) {
    py::gil_scoped_release release;
    quantize_int8_blocks(static_cast<DType>(dt), as_ptr<const void>(x), n, block, as_ptr<int8_t>(q),
                         as_ptr<float>(scales), stream);
  });
  m.def("dequantize_int8_blocks", [](int dt, ptr_t q, ptr_t scales, int64_t n, int block, ptr_t out, bool accumulate,
                                     ptr_t stream) {
    py::gil_scoped_release release;
    dequantize_int8_blocks(static_cast<DType>(dt), as_ptr<const int8_t>(q), as_ptr<const float>(scales), n, block,
                           as_ptr<void>(out), accumulate, stream);
  });
}
