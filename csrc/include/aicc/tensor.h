// Element types and non-owning views shared by every kernel and binding.
#pragma once

#include <cstddef>
#include <cstdint>

namespace aicc {

enum class DType : int {
  kF32 = 0,
  kF64 = 1,
  kF16 = 2,   // IEEE binary16 (NumPy float16)
  kBF16 = 3,  // bfloat16 (ml_dtypes.bfloat16)
  kS8 = 4,
  kU8 = 5,
  kS32 = 6,
  kS64 = 7,
};

constexpr std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::kF32: return 4;
    case DType::kF64: return 8;
    case DType::kF16: return 2;
    case DType::kBF16: return 2;
    case DType::kS8: return 1;
    case DType::kU8: return 1;
    case DType::kS32: return 4;
    case DType::kS64: return 8;
  }
  return 0;
}

// Short names used in error messages, capability tables and the Python layer.
constexpr const char* dtype_name(DType t) {
  switch (t) {
    case DType::kF32: return "f32";
    case DType::kF64: return "f64";
    case DType::kF16: return "f16";
    case DType::kBF16: return "bf16";
    case DType::kS8: return "s8";
    case DType::kU8: return "u8";
    case DType::kS32: return "s32";
    case DType::kS64: return "s64";
  }
  return "?";
}

// A 2-D strided view. Strides are in elements, may be any non-negative value
// (0 for broadcast rows/columns is allowed for inputs, never for outputs).
struct MatrixView {
  void* data = nullptr;
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t row_stride = 0;  // elements between (i, j) and (i + 1, j)
  int64_t col_stride = 1;  // elements between (i, j) and (i, j + 1)

  template <typename T>
  T* ptr() const { return static_cast<T*>(data); }
};

// An N-D strided view (N <= kMaxDims), strides in elements.
struct TensorView {
  static constexpr int kMaxDims = 8;
  void* data = nullptr;
  DType dtype = DType::kF32;
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};

  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= shape[i];
    return n;
  }
  bool is_contiguous() const {
    int64_t expected = 1;
    for (int i = ndim - 1; i >= 0; --i) {
      if (shape[i] != 1 && strides[i] != expected) return false;
      expected *= shape[i];
    }
    return true;
  }
};

}  // namespace aicc
