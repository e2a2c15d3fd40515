// The backend interface for teams implementing kernels in C++ (docs/PORTING.md).
//
// A backend is a name, a device and a table of kernels, one per (op, dtype combination),
// exactly as in Python (aicc_kernels.backends.Backend). In C++ the table is plain data
// with C-compatible layout, so a backend can live in its own shared library built with
// its own compiler: a library exports
//
//     extern "C" const aicc::BackendDescriptor* aicc_backend_v1();
//
// (AICC_BACKEND_ENTRY_SYMBOL) returning a descriptor that stays valid until unload.
// Kernels never throw across the table: they return a KernelStatus and may fill a
// KernelError message ("<argument>: expected <what>, got <what>").
//
// What a kernel may assume (the caller -- aicc_kernels.ops, or call_gemm / call_qgemm
// below after the aicc::cpu argument checks -- guarantees it):
//   * dtypes are exactly the entry's combination (inputs, then output);
//   * shapes agree: a is m x k, b is k x n, out (and c) m x n, with m > 0 and n > 0;
//     k may be 0 (the product is then zero and the epilogue still applies);
//   * strides are non-negative and in elements; inputs may be any strided view (stride 0
//     for broadcast rows of c), out has non-zero strides;
//   * out never overlaps a or b; it may be exactly c (same pointer, strides and dtype:
//     an in-place C = alpha AB + beta C), in which case each c element is read before
//     the out element at the same place is written;
//   * out is allocated and every one of its elements must be written;
//   * gemm: c is nullptr unless beta != 0 (beta == 0 must never read c: NaN in c must
//     not leak); c's dtype is f32, f16 or bf16 whatever the inputs' dtype is (it is not
//     part of the combination: widen it to f32); bias is nullptr or n contiguous f32;
//     activation is none, relu or gelu;
//   * qgemm: b_zero_point and scale have length 1 or n; scale is set (finite, > 0)
//     exactly when out is not s32; out_zero_point is 0 unless out is s8/u8; activation
//     is none or relu; k * max|a - za| * max|b - zb| + max|bias| fits in int32.
// Results must match aicc_kernels.reference within the tolerance table
// (aicc_kernels/testing/tolerance.py): bit-exact for INT8, the documented bound for floats.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>

#include "aicc/gemm.h"
#include "aicc/status.h"
#include "aicc/tensor.h"

namespace aicc {

// Bumped when the layout of these structs or a kernel signature changes.
constexpr uint32_t kBackendAbiVersion = 1;
#define AICC_BACKEND_ENTRY_SYMBOL "aicc_backend_v1"

enum class KernelStatus : int32_t {
  kOk = 0,
  kInvalidArgument = 1,  // -> aicc::InvalidArgument (ValueError in Python)
  kUnsupported = 2,      // this call's options are not implemented -> aicc::Unsupported
  kDeviceError = 3,      // anything else (device lost, out of memory) -> std::runtime_error
};

struct KernelError {
  static constexpr std::size_t kCapacity = 256;
  char message[kCapacity];  // NUL-terminated
};

// The op surface. Values are part of the ABI: new ops get new numbers, old ones keep theirs.
enum class Op : int32_t {
  kGemm = 0,   // GemmKernelFn
  kQGemm = 1,  // QGemmKernelFn
};

constexpr const char* op_name(Op op) {
  switch (op) {
    case Op::kGemm: return "gemm";
    case Op::kQGemm: return "qgemm";
  }
  return "?";
}

// out = activation(alpha * (a @ b) + beta * c + bias), f32 accumulation, rounded once to
// out's dtype (aicc::cpu::gemm, reference.gemm).
using GemmKernelFn = KernelStatus (*)(void* context, const MatrixView* a, const MatrixView* b,
                                      const MatrixView* c, const MatrixView* out, const GemmParams* params,
                                      KernelError* error);
// Exact int32 accumulation of (a - za)(b - zb) + bias, then the output stage
// (aicc::cpu::qgemm, reference.qgemm).
using QGemmKernelFn = KernelStatus (*)(void* context, const MatrixView* a, const MatrixView* b,
                                       const MatrixView* out, const QGemmParams* params, KernelError* error);

// A kernel pointer of any op's type; cast back with the typed accessors below.
using AnyKernelFn = void (*)();

constexpr int kMaxKernelDTypes = 4;

struct KernelEntry {
  Op op;
  int32_t num_dtypes;               // inputs then output, e.g. 3 for gemm / qgemm
  DType dtypes[kMaxKernelDTypes];
  AnyKernelFn fn;
};

struct BackendDescriptor {
  uint32_t abi_version;         // kBackendAbiVersion
  const char* name;             // registry name, e.g. "mychip"
  const char* device;           // "cpu" when kernels read host memory
  void* context;                // handed to every kernel (streams, handles); may be nullptr
  const KernelEntry* kernels;
  std::size_t num_kernels;
};

using BackendEntryFn = const BackendDescriptor* (*)();

inline KernelEntry make_entry(Op op, std::initializer_list<DType> dtypes, AnyKernelFn fn) {
  if (dtypes.size() == 0 || dtypes.size() > static_cast<std::size_t>(kMaxKernelDTypes))
    throw_invalid("dtypes", "1 to " + std::to_string(kMaxKernelDTypes) + " dtypes", std::to_string(dtypes.size()));
  KernelEntry e{};
  e.op = op;
  e.num_dtypes = 0;
  for (DType t : dtypes) e.dtypes[e.num_dtypes++] = t;
  e.fn = fn;
  return e;
}
inline KernelEntry gemm_entry(DType in, DType out, GemmKernelFn fn) {
  return make_entry(Op::kGemm, {in, in, out}, reinterpret_cast<AnyKernelFn>(fn));
}
inline KernelEntry qgemm_entry(DType a, DType out, QGemmKernelFn fn) {
  return make_entry(Op::kQGemm, {a, DType::kS8, out}, reinterpret_cast<AnyKernelFn>(fn));
}

// The entry for (op, dtypes), or nullptr.
inline const KernelEntry* find_kernel(const BackendDescriptor& backend, Op op, std::initializer_list<DType> dtypes) {
  if (dtypes.size() > static_cast<std::size_t>(kMaxKernelDTypes)) return nullptr;
  for (std::size_t i = 0; i < backend.num_kernels; ++i) {
    const KernelEntry& e = backend.kernels[i];
    if (e.op != op || e.num_dtypes != static_cast<int32_t>(dtypes.size())) continue;
    bool same = true;
    int j = 0;
    for (DType t : dtypes) same = same && e.dtypes[j++] == t;
    if (same) return &e;
  }
  return nullptr;
}

// "gemm f32/f32/f32": for messages and capability listings.
inline std::string entry_name(const KernelEntry& e) {
  std::string s = std::string(op_name(e.op)) + " ";
  for (int i = 0; i < e.num_dtypes && i < kMaxKernelDTypes; ++i) s += (i ? "/" : "") + std::string(dtype_name(e.dtypes[i]));
  return s;
}

namespace detail {
[[noreturn]] inline void raise(KernelStatus status, const KernelError& error, const char* backend) {
  std::string message(error.message, strnlen(error.message, KernelError::kCapacity));
  if (message.empty()) message = std::string("backend ") + backend + ": kernel failed without a message";
  if (status == KernelStatus::kInvalidArgument) throw InvalidArgument(message);
  if (status == KernelStatus::kUnsupported) throw Unsupported(message);
  throw std::runtime_error(message);
}
[[noreturn]] inline void missing(const BackendDescriptor& backend, const std::string& what) {
  throw Unsupported(std::string("backend: '") + backend.name + "' does not implement " + what);
}
}  // namespace detail

// Calls through the table, translating statuses back into aicc exceptions. These do not
// validate arguments: validate first (as aicc_kernels.ops does), or use aicc::cpu::gemm.
inline void call_gemm(const BackendDescriptor& backend, const MatrixView& a, const MatrixView& b,
                      const MatrixView* c, const MatrixView& out, const GemmParams& params) {
  const KernelEntry* e = find_kernel(backend, Op::kGemm, {a.dtype, b.dtype, out.dtype});
  if (e == nullptr)
    detail::missing(backend, std::string("gemm for ") + dtype_name(a.dtype) + "/" + dtype_name(b.dtype) + "/" +
                                 dtype_name(out.dtype));
  KernelError error{};
  const KernelStatus s = reinterpret_cast<GemmKernelFn>(e->fn)(backend.context, &a, &b, c, &out, &params, &error);
  if (s != KernelStatus::kOk) detail::raise(s, error, backend.name);
}

inline void call_qgemm(const BackendDescriptor& backend, const MatrixView& a, const MatrixView& b,
                       const MatrixView& out, const QGemmParams& params) {
  const KernelEntry* e = find_kernel(backend, Op::kQGemm, {a.dtype, b.dtype, out.dtype});
  if (e == nullptr)
    detail::missing(backend, std::string("qgemm for ") + dtype_name(a.dtype) + "/" + dtype_name(b.dtype) + "/" +
                                 dtype_name(out.dtype));
  KernelError error{};
  const KernelStatus s = reinterpret_cast<QGemmKernelFn>(e->fn)(backend.context, &a, &b, &out, &params, &error);
  if (s != KernelStatus::kOk) detail::raise(s, error, backend.name);
}

// Writes `message` into `error` (truncated); for kernels reporting a failure.
inline KernelStatus fail(KernelError* error, KernelStatus status, const std::string& message) {
  if (error != nullptr) {
    const std::size_t n = message.size() < KernelError::kCapacity - 1 ? message.size() : KernelError::kCapacity - 1;
    std::memcpy(error->message, message.data(), n);
    error->message[n] = '\0';
  }
  return status;
}

namespace cpu {
// The built-in CPU kernels (aicc::cpu::gemm / qgemm) as a descriptor named "cpu": every
// combination of the op surface. Also a worked example of filling the table.
const BackendDescriptor& backend();
}  // namespace cpu

}  // namespace aicc
