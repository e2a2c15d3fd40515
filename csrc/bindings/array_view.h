// NumPy array -> aicc views, without copies.
//
// Takes py::array (never py::array_t<T>, which silently copies non-matching input:
// pybind11 #2455/#338, and has no float16: #4061), checks dtype, ndim and strides, and
// fails with the same "<arg>: expected ..., got ..." messages as the Python layer.
// Extract every pointer before releasing the GIL (pybind11 #4748).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "aicc/status.h"
#include "aicc/tensor.h"

namespace aicc::bindings {

namespace py = pybind11;

inline DType dtype_of(const py::array& arr, const char* name) {
  const py::dtype dt = arr.dtype();
  const char kind = dt.kind();
  const auto size = dt.itemsize();
  if (kind == 'f' && size == 4) return DType::kF32;
  if (kind == 'f' && size == 8) return DType::kF64;
  if (kind == 'f' && size == 2) return DType::kF16;
  if (kind == 'i' && size == 1) return DType::kS8;
  if (kind == 'u' && size == 1) return DType::kU8;
  if (kind == 'i' && size == 4) return DType::kS32;
  if (kind == 'i' && size == 8) return DType::kS64;
  if (kind == 'V' && size == 2 && py::str(dt.attr("name")).cast<std::string>() == "bfloat16")
    return DType::kBF16;
  throw_invalid(name, "a supported dtype (f32, f64, f16, bf16, s8, u8, s32, s64)",
                py::str(dt).cast<std::string>());
}

inline std::string shape_str(const py::array& arr) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < arr.ndim(); ++i) s += (i ? ", " : "") + std::to_string(arr.shape(i));
  return s + (arr.ndim() == 1 ? ",)" : ")");
}

inline int64_t element_stride(const py::array& arr, int dim, const char* name) {
  const auto bytes = arr.strides(dim);
  const auto item = arr.itemsize();
  if (bytes < 0 || bytes % item != 0) {
    throw_invalid(name, "non-negative strides that are multiples of the element size",
                  "stride " + std::to_string(bytes) + " bytes in dimension " + std::to_string(dim));
  }
  return bytes / item;
}

// A 2-D array as a MatrixView. `writeable` outputs must also be writeable arrays.
inline MatrixView matrix_view(const py::array& arr, const char* name, bool writeable = false) {
  if (arr.ndim() != 2) throw_invalid(name, "a 2-D array", std::to_string(arr.ndim()) + "-D " + shape_str(arr));
  if (writeable && !arr.writeable()) throw_invalid(name, "a writeable array", "a read-only array");
  MatrixView v;
  v.data = const_cast<void*>(arr.data());
  v.dtype = dtype_of(arr, name);
  v.rows = arr.shape(0);
  v.cols = arr.shape(1);
  v.row_stride = element_stride(arr, 0, name);
  v.col_stride = element_stride(arr, 1, name);
  return v;
}

// An N-D array as a TensorView.
inline TensorView tensor_view(const py::array& arr, const char* name, bool writeable = false) {
  if (arr.ndim() > TensorView::kMaxDims)
    throw_invalid(name, "at most " + std::to_string(TensorView::kMaxDims) + " dimensions",
                  std::to_string(arr.ndim()));
  if (writeable && !arr.writeable()) throw_invalid(name, "a writeable array", "a read-only array");
  TensorView v;
  v.data = const_cast<void*>(arr.data());
  v.dtype = dtype_of(arr, name);
  v.ndim = static_cast<int>(arr.ndim());
  for (int i = 0; i < v.ndim; ++i) {
    v.shape[i] = arr.shape(i);
    v.strides[i] = element_stride(arr, i, name);
  }
  return v;
}

// A contiguous 1-D vector of `expected` dtype, or nullptr for None.
template <typename T>
const T* optional_vector(const py::object& obj, const char* name, DType expected, int64_t* length) {
  *length = 0;
  if (obj.is_none()) return nullptr;
  if (!py::isinstance<py::array>(obj)) throw_invalid(name, "a numpy array or None", Py_TYPE(obj.ptr())->tp_name);
  py::array arr = py::reinterpret_borrow<py::array>(obj);
  if (arr.ndim() != 1) throw_invalid(name, "a 1-D array", std::to_string(arr.ndim()) + "-D");
  if (dtype_of(arr, name) != expected) throw_invalid(name, std::string("dtype ") + dtype_name(expected),
                                                     dtype_name(dtype_of(arr, name)));
  if (arr.shape(0) > 1 && arr.strides(0) != static_cast<py::ssize_t>(sizeof(T)))
    throw_invalid(name, "a contiguous array", "strides " + std::to_string(arr.strides(0)));
  *length = arr.shape(0);
  return static_cast<const T*>(arr.data());
}

}  // namespace aicc::bindings
