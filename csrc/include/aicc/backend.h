// The backend interface for teams implementing kernels in C or C++ (docs/PORTING.md).
//
// Valid C (C99) and C++: the first half of this header is the C ABI (aicc_* types); the
// second half, compiled only as C++, is the aicc:: spelling of the same layout plus
// helpers (find_kernel, call_gemm, ...).
//
// A backend is a name, a device and a table of kernels, one per (op, dtype combination),
// exactly as in Python (aicc_kernels.backends.Backend). The table is plain data, so a
// backend can live in its own shared library built with its own compiler: a library
// exports
//
//     const aicc_backend_descriptor* aicc_backend_v1(void);     (C, or extern "C" in C++)
//
// (AICC_BACKEND_ENTRY_SYMBOL; the name stays "v1" for every ABI version: the descriptor's
// abi_version field says which layout follows) returning a descriptor that stays valid
// until unload. Kernels never throw or abort across the table: they return a status and
// may fill an aicc_kernel_error message ("<argument>: expected <what>, got <what>").
//
// ABI versions: 1 had gemm and qgemm and a descriptor ending at num_kernels; 2 adds the
// conv ops (conv2d, its backward passes, qconv2d), the collectives and the communicator
// hooks at the end of the descriptor. The loader (aicc_kernels.backends.native) reads
// the version first, so version-1 libraries still load unchanged.
//
// Statuses: AICC_STATUS_UNSUPPORTED means "this call's options are not implemented here"
// (an epilogue, a layout): the op raises KernelUnsupported, fallback= reruns the call on
// the fallback backend, and the conformance runner counts the case as unsupported, not
// failed. AICC_STATUS_INVALID_ARGUMENT is a ValueError, AICC_STATUS_DEVICE_ERROR a
// RuntimeError.
//
// What a kernel may assume (the caller -- aicc_kernels.ops, or call_gemm / call_qgemm
// below after the aicc::cpu argument checks -- guarantees it):
//   * dtypes are exactly the entry's combination (inputs, then output);
//   * gemm/qgemm shapes agree: a is m x k, b is k x n, out (and c) m x n, with m > 0 and
//     n > 0; k may be 0 (the product is then zero and the epilogue still applies);
//   * strides are non-negative and in elements; inputs may be any strided view (stride 0
//     for broadcast rows of c), out has non-zero strides;
//   * out never overlaps the inputs; for gemm it may be exactly c (same pointer, strides
//     and dtype: an in-place C = alpha AB + beta C), in which case each c element is read
//     before the out element at the same place is written;
//   * out is allocated and every one of its elements must be written;
//   * gemm: c is NULL unless beta != 0 (beta == 0 must never read c: NaN in c must
//     not leak); c's dtype is f32, f16 or bf16 whatever the inputs' dtype is (it is not
//     part of the combination: widen it to f32); bias is NULL or n contiguous f32;
//     activation is none, relu or gelu;
//   * qgemm: b_zero_point and scale have length 1 or n; scale is set (finite, > 0)
//     exactly when out is not s32; out_zero_point is 0 unless out is s8/u8; activation
//     is none or relu; k * max|a - za| * max|b - zb| + max|bias| fits in int32;
//   * conv ops: 4-D C-contiguous tensors in the params' layout (NCHW: x [N, C, H, W],
//     w [K, C/groups, R, S]; NHWC: x [N, H, W, C], w [K, R, S, C/groups]); padding is
//     explicit (top, bottom, left, right), the geometry valid and out non-empty;
//     qconv2d's w_zero_point is K int32, scale K f32 or NULL for s32 outputs, padded taps
//     hold x_zero_point (they contribute exactly 0);
//   * collectives: one call covers all nranks ranks of a communicator the backend made
//     with comm_create (single-process multi-device, as an NCCL group call): inputs[r]
//     and outputs[r] are rank r's buffers, contiguous, of the entry's dtypes. allreduce
//     and broadcast outputs have the input's count; reduce_scatter's outputs[r] is rank
//     r's part (the input split into nranks parts, the first count % nranks one longer);
//     all_gather's outputs are nranks * count long, in rank order.
// Results must match aicc_kernels.reference within the tolerance table
// (aicc_kernels/testing/tolerance.py): bit-exact for INT8, the documented bound for floats.
#ifndef AICC_BACKEND_H_
#define AICC_BACKEND_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AICC_BACKEND_ABI_VERSION 2
#define AICC_BACKEND_ENTRY_SYMBOL "aicc_backend_v1"

typedef int32_t aicc_status;
#define AICC_STATUS_OK 0
#define AICC_STATUS_INVALID_ARGUMENT 1
#define AICC_STATUS_UNSUPPORTED 2
#define AICC_STATUS_DEVICE_ERROR 3

/* Element types (aicc::DType). */
#define AICC_F32 0
#define AICC_F64 1
#define AICC_F16 2
#define AICC_BF16 3
#define AICC_S8 4
#define AICC_U8 5
#define AICC_S32 6
#define AICC_S64 7

/* Ops. Values are part of the ABI: new ops get new numbers, old ones keep theirs. */
#define AICC_OP_GEMM 0                    /* aicc_gemm_fn */
#define AICC_OP_QGEMM 1                   /* aicc_qgemm_fn */
#define AICC_OP_CONV2D 2                  /* aicc_conv2d_fn (ABI 2) */
#define AICC_OP_CONV2D_BACKWARD_DATA 3    /* aicc_conv2d_backward_fn: (grad_out, w) -> grad_x */
#define AICC_OP_CONV2D_BACKWARD_WEIGHT 4  /* aicc_conv2d_backward_fn: (x, grad_out) -> grad_w */
#define AICC_OP_QCONV2D 5                 /* aicc_qconv2d_fn */
#define AICC_OP_ALLREDUCE 6               /* aicc_collective_fn */
#define AICC_OP_REDUCE_SCATTER 7
#define AICC_OP_ALL_GATHER 8
#define AICC_OP_BROADCAST 9

#define AICC_ACTIVATION_NONE 0
#define AICC_ACTIVATION_RELU 1
#define AICC_ACTIVATION_GELU 2

#define AICC_LAYOUT_NCHW 0
#define AICC_LAYOUT_NHWC 1

#define AICC_REDUCE_SUM 0
#define AICC_REDUCE_AVG 1
#define AICC_REDUCE_MAX 2
#define AICC_REDUCE_MIN 3

#define AICC_KERNEL_ERROR_CAPACITY 256
#define AICC_MAX_KERNEL_DTYPES 4

typedef struct aicc_kernel_error {
  char message[AICC_KERNEL_ERROR_CAPACITY]; /* NUL-terminated */
} aicc_kernel_error;

/* A strided matrix; strides in elements (layout of aicc::MatrixView). */
typedef struct aicc_matrix_view {
  void* data;
  int32_t dtype;
  int64_t rows, cols;
  int64_t row_stride, col_stride;
} aicc_matrix_view;

/* out = activation(alpha * (a @ b) + beta * c + bias) (layout of aicc::GemmParams). */
typedef struct aicc_gemm_params {
  float alpha, beta;
  const float* bias;
  int32_t activation;
} aicc_gemm_params;

/* Layout of aicc::QGemmParams. */
typedef struct aicc_qgemm_params {
  int32_t a_zero_point;
  const int32_t* b_zero_point;
  int64_t b_zero_point_len;
  const int32_t* bias;
  const float* scale;
  int64_t scale_len;
  int32_t out_zero_point;
  int32_t activation;
} aicc_qgemm_params;

/* A 4-D tensor, C-contiguous in the op's layout; strides in elements (ABI 2). */
typedef struct aicc_tensor4d_view {
  void* data;
  int32_t dtype;
  int64_t shape[4];
  int64_t strides[4];
} aicc_tensor4d_view;

typedef struct aicc_conv2d_geometry {
  int64_t stride[2];   /* h, w */
  int64_t padding[4];  /* top, bottom, left, right */
  int64_t dilation[2]; /* h, w */
  int64_t groups;
  int32_t layout;      /* AICC_LAYOUT_* */
} aicc_conv2d_geometry;

typedef struct aicc_conv2d_params {
  aicc_conv2d_geometry geometry;
  const float* bias; /* K f32 or NULL (forward only) */
  int32_t activation;
} aicc_conv2d_params;

typedef struct aicc_qconv2d_params {
  aicc_conv2d_geometry geometry;
  int32_t x_zero_point;
  const int32_t* w_zero_point; /* K */
  const float* scale;          /* K, or NULL for s32 outputs */
  const int32_t* bias;         /* K or NULL */
  int32_t out_zero_point;
  int32_t activation;
} aicc_qconv2d_params;

/* A contiguous 1-D buffer of one rank (ABI 2). */
typedef struct aicc_buffer_view {
  void* data;
  int32_t dtype;
  int64_t count;
} aicc_buffer_view;

typedef struct aicc_collective_params {
  int32_t op;   /* AICC_REDUCE_* (allreduce, reduce_scatter) */
  int32_t root; /* broadcast */
} aicc_collective_params;

typedef aicc_status (*aicc_gemm_fn)(void* context, const aicc_matrix_view* a, const aicc_matrix_view* b,
                                    const aicc_matrix_view* c, const aicc_matrix_view* out,
                                    const aicc_gemm_params* params, aicc_kernel_error* error);
typedef aicc_status (*aicc_qgemm_fn)(void* context, const aicc_matrix_view* a, const aicc_matrix_view* b,
                                     const aicc_matrix_view* out, const aicc_qgemm_params* params,
                                     aicc_kernel_error* error);
typedef aicc_status (*aicc_conv2d_fn)(void* context, const aicc_tensor4d_view* x, const aicc_tensor4d_view* w,
                                      const aicc_tensor4d_view* out, const aicc_conv2d_params* params,
                                      aicc_kernel_error* error);
/* backward data: (grad_out, w) -> out = grad_x; backward weight: (x, grad_out) -> out = grad_w. */
typedef aicc_status (*aicc_conv2d_backward_fn)(void* context, const aicc_tensor4d_view* first,
                                               const aicc_tensor4d_view* second, const aicc_tensor4d_view* out,
                                               const aicc_conv2d_params* params, aicc_kernel_error* error);
typedef aicc_status (*aicc_qconv2d_fn)(void* context, const aicc_tensor4d_view* x, const aicc_tensor4d_view* w,
                                       const aicc_tensor4d_view* out, const aicc_qconv2d_params* params,
                                       aicc_kernel_error* error);
typedef aicc_status (*aicc_collective_fn)(void* context, void* comm, int32_t nranks, const aicc_buffer_view* inputs,
                                          const aicc_buffer_view* outputs, const aicc_collective_params* params,
                                          aicc_kernel_error* error);
typedef aicc_status (*aicc_comm_create_fn)(void* context, int32_t nranks, void** comm, aicc_kernel_error* error);
typedef void (*aicc_comm_destroy_fn)(void* context, void* comm);

/* Any kernel pointer; cast to the op's type. */
typedef void (*aicc_any_kernel_fn)(void);

typedef struct aicc_kernel_entry {
  int32_t op;         /* AICC_OP_* */
  int32_t num_dtypes; /* inputs then output: 3 for gemm/qgemm/conv ops, 2 for collectives */
  int32_t dtypes[AICC_MAX_KERNEL_DTYPES];
  aicc_any_kernel_fn fn;
} aicc_kernel_entry;

typedef struct aicc_backend_descriptor {
  uint32_t abi_version; /* AICC_BACKEND_ABI_VERSION (1: the fields up to num_kernels only) */
  const char* name;     /* registry name, e.g. "mychip" */
  const char* device;   /* "cpu" when kernels read host memory */
  void* context;        /* handed to every kernel (streams, handles); may be NULL */
  const aicc_kernel_entry* kernels;
  size_t num_kernels;
  /* ABI 2: the communicator the collectives run on (NULL when there are none). */
  aicc_comm_create_fn comm_create;
  aicc_comm_destroy_fn comm_destroy;
} aicc_backend_descriptor;

typedef const aicc_backend_descriptor* (*aicc_backend_entry_fn)(void);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#ifdef __cplusplus
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>

#include "aicc/gemm.h"
#include "aicc/status.h"
#include "aicc/tensor.h"

namespace aicc {

// Bumped when the layout of these structs or a kernel signature changes (the C spelling:
// AICC_BACKEND_ABI_VERSION).
constexpr uint32_t kBackendAbiVersion = AICC_BACKEND_ABI_VERSION;

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
  kGemm = AICC_OP_GEMM,                                      // GemmKernelFn
  kQGemm = AICC_OP_QGEMM,                                    // QGemmKernelFn
  kConv2d = AICC_OP_CONV2D,                                  // aicc_conv2d_fn
  kConv2dBackwardData = AICC_OP_CONV2D_BACKWARD_DATA,        // aicc_conv2d_backward_fn
  kConv2dBackwardWeight = AICC_OP_CONV2D_BACKWARD_WEIGHT,    // aicc_conv2d_backward_fn
  kQConv2d = AICC_OP_QCONV2D,                                // aicc_qconv2d_fn
  kAllreduce = AICC_OP_ALLREDUCE,                            // aicc_collective_fn
  kReduceScatter = AICC_OP_REDUCE_SCATTER,
  kAllGather = AICC_OP_ALL_GATHER,
  kBroadcast = AICC_OP_BROADCAST,
};

constexpr const char* op_name(Op op) {
  switch (op) {
    case Op::kGemm: return "gemm";
    case Op::kQGemm: return "qgemm";
    case Op::kConv2d: return "conv2d";
    case Op::kConv2dBackwardData: return "conv2d_backward_data";
    case Op::kConv2dBackwardWeight: return "conv2d_backward_weight";
    case Op::kQConv2d: return "qconv2d";
    case Op::kAllreduce: return "allreduce";
    case Op::kReduceScatter: return "reduce_scatter";
    case Op::kAllGather: return "all_gather";
    case Op::kBroadcast: return "broadcast";
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
  aicc_comm_create_fn comm_create = nullptr;    // ABI 2: collectives' communicator
  aicc_comm_destroy_fn comm_destroy = nullptr;
};

// The C and C++ spellings are one layout: a descriptor built in either language loads
// through the same loader.
static_assert(sizeof(MatrixView) == sizeof(aicc_matrix_view) && offsetof(aicc_matrix_view, rows) == 16,
              "aicc_matrix_view and aicc::MatrixView must share a layout");
static_assert(sizeof(KernelEntry) == sizeof(aicc_kernel_entry), "aicc_kernel_entry layout");
static_assert(sizeof(BackendDescriptor) == sizeof(aicc_backend_descriptor) &&
                  offsetof(BackendDescriptor, comm_create) == offsetof(aicc_backend_descriptor, comm_create),
              "aicc_backend_descriptor layout");
static_assert(sizeof(KernelError) == sizeof(aicc_kernel_error), "aicc_kernel_error layout");

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
#endif  // __cplusplus

#endif  // AICC_BACKEND_H_
