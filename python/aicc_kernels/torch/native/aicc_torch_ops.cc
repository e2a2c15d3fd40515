// torch.ops.aicc.matmul / gemm: the per-call path in C++.
//
// Why this file exists: with the kernels registered from Python, every call of
// torch.ops.aicc.matmul crosses from the dispatcher back into Python (its Autograd kernel,
// then its CPU kernel, then NumPy views of the tensors, then the extension): ~12 us on top
// of a 64x64 GEMM that itself takes ~6 us. This library is loaded by
// aicc_kernels/torch/_native.py (compiled once per torch version against the installed
// torch headers, cached) and registers one AutogradCPU kernel per operator that:
//   - when no gradient is needed and the tensors are plain dense CPU tensors of the common
//     case (2-D, one float dtype, valid shapes), calls our GEMM directly through the C API
//     of _aicc_cpu (aicc/c_api.h) into an output torch allocated;
//   - when no gradient is needed otherwise (other ranks or dtypes, fake/meta tensors under
//     torch.compile, modes), redispatches below autograd: the Python CPU / fake kernels;
//   - when a gradient is needed, calls aicc::_<name>_autograd, whose Python kernel applies
//     the operator's autograd.Function (torch/ops.py): one autograd formula, in Python.
// So every case the fast path does not take behaves exactly as the Python registration
// alone (validation, error messages, dtype rules): the fast path only takes calls that the
// Python kernel would send to the same GEMM with the same arguments.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/empty.h>
#include <c10/core/GradMode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <atomic>
#include <optional>
#include <string>
#include <string_view>

#include "aicc/c_api.h"

namespace {

std::atomic<const aicc_c_api*> g_api{nullptr};
// Calls the fast path served (read by the tests, through aicc_torch_fast_calls()).
std::atomic<uint64_t> g_fast_calls{0};

using MatmulFn = at::Tensor(const at::Tensor&, const at::Tensor&, std::optional<at::ScalarType>);
using GemmFn = at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                          const std::optional<at::Tensor>&, double, double, bool, bool,
                          std::optional<std::string_view>, std::optional<at::ScalarType>);

template <typename Fn>
c10::TypedOperatorHandle<Fn> op_handle(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Fn>();
}

// The GEMM dtypes of the C API, or -1.
int32_t float_code(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return AICC_DTYPE_F32;
    case at::kHalf: return AICC_DTYPE_F16;
    case at::kBFloat16: return AICC_DTYPE_BF16;
    default: return -1;
  }
}

// A dense CPU tensor with nothing the raw data pointer would miss (no lazy conj/neg bits).
bool plain_cpu(const at::Tensor& t) {
  return t.defined() && t.layout() == at::kStrided && t.device().is_cpu() && !t.is_conj() && !t.is_neg();
}

aicc_matrix matrix(const at::Tensor& t, int32_t code, bool transposed = false) {
  aicc_matrix m;
  m.data = const_cast<void*>(t.data_ptr());
  m.dtype = code;
  const int d0 = transposed ? 1 : 0, d1 = transposed ? 0 : 1;
  m.rows = t.size(d0);
  m.cols = t.size(d1);
  m.row_stride = t.stride(d0);
  m.col_stride = t.stride(d1);
  return m;
}

void check_status(int status, const char* message) {
  switch (status) {
    case AICC_OK: return;
    case AICC_ERROR_VALUE: TORCH_CHECK_VALUE(false, message);
    case AICC_ERROR_TYPE: TORCH_CHECK_TYPE(false, message);
    default: TORCH_CHECK(false, message);
  }
}

// Runs the GEMM into a new tensor; `c` only when beta != 0 (the C API never reads it then).
at::Tensor run_gemm(const at::Tensor& a, const at::Tensor& b, bool trans_a, bool trans_b, const aicc_matrix* c,
                    at::ScalarType out_type, float alpha, float beta, const float* bias, int32_t activation,
                    int32_t code) {
  const aicc_matrix am = matrix(a, code, trans_a), bm = matrix(b, code, trans_b);
  at::Tensor out = at::empty({am.rows, bm.cols}, a.options().dtype(out_type));
  g_fast_calls.fetch_add(1, std::memory_order_relaxed);
  if (out.numel() == 0) return out;
  const aicc_matrix om = matrix(out, float_code(out_type));
  char message[512];
  check_status(g_api.load(std::memory_order_acquire)->gemm(&am, &bm, c, &om, alpha, beta, bias, activation,
                                                             message, sizeof(message)),
               message);
  return out;
}

// The common matmul call, or nullopt for every other one (the Python kernel handles those).
std::optional<at::Tensor> fast_matmul(const at::Tensor& a, const at::Tensor& b,
                                      std::optional<at::ScalarType> out_dtype) {
  if (out_dtype.has_value() || a.dim() != 2 || b.dim() != 2 || !plain_cpu(a) || !plain_cpu(b)) return std::nullopt;
  const int32_t code = float_code(a.scalar_type());
  if (code < 0 || b.scalar_type() != a.scalar_type() || a.size(1) != b.size(0)) return std::nullopt;
  return run_gemm(a, b, false, false, nullptr, a.scalar_type(), 1.0f, 0.0f, nullptr, AICC_ACTIVATION_NONE, code);
}

std::optional<at::Tensor> fast_gemm(const at::Tensor& a, const at::Tensor& b, const std::optional<at::Tensor>& c,
                                    const std::optional<at::Tensor>& bias, double alpha, double beta, bool trans_a,
                                    bool trans_b, std::optional<std::string_view> activation,
                                    std::optional<at::ScalarType> out_dtype) {
  if (a.dim() != 2 || b.dim() != 2 || !plain_cpu(a) || !plain_cpu(b)) return std::nullopt;
  const int32_t code = float_code(a.scalar_type());
  if (code < 0 || b.scalar_type() != a.scalar_type()) return std::nullopt;
  const int64_t m = trans_a ? a.size(1) : a.size(0), k = trans_a ? a.size(0) : a.size(1);
  const int64_t kb = trans_b ? b.size(1) : b.size(0), n = trans_b ? b.size(0) : b.size(1);
  if (k != kb) return std::nullopt;
  const at::ScalarType out_type = out_dtype.value_or(a.scalar_type());
  if (out_type != a.scalar_type() && out_type != at::kFloat) return std::nullopt;
  int32_t act = AICC_ACTIVATION_NONE;
  if (activation.has_value()) {
    if (*activation == "relu") act = AICC_ACTIVATION_RELU;
    else if (*activation == "gelu") act = AICC_ACTIVATION_GELU;
    else return std::nullopt;
  }
  const float* bias_ptr = nullptr;
  if (bias.has_value() && bias->defined()) {
    // f32, contiguous, length n: what the C API takes; other biases go through Python.
    if (!plain_cpu(*bias) || bias->scalar_type() != at::kFloat || bias->dim() != 1 || bias->size(0) != n ||
        !bias->is_contiguous())
      return std::nullopt;
    bias_ptr = bias->data_ptr<float>();
  }
  aicc_matrix cm;
  const aicc_matrix* c_ptr = nullptr;
  if (c.has_value() && c->defined()) {
    // c broadcasts to (m, n) as in NumPy; only floats of our dtypes, at most 2-D.
    if (!plain_cpu(*c) || float_code(c->scalar_type()) < 0 || c->dim() > 2) return std::nullopt;
    const int64_t cr = c->dim() == 2 ? c->size(0) : 1, cc = c->dim() >= 1 ? c->size(c->dim() - 1) : 1;
    if ((cr != m && cr != 1) || (cc != n && cc != 1)) return std::nullopt;
    if (beta != 0.0) {
      cm.data = const_cast<void*>(c->data_ptr());
      cm.dtype = float_code(c->scalar_type());
      cm.rows = m;
      cm.cols = n;
      cm.row_stride = (c->dim() == 2 && cr == m) ? c->stride(0) : 0;
      cm.col_stride = (c->dim() >= 1 && cc == n) ? c->stride(c->dim() - 1) : 0;
      c_ptr = &cm;
    }
  }
  return run_gemm(a, b, trans_a, trans_b, c_ptr, out_type, static_cast<float>(alpha), static_cast<float>(beta),
                  bias_ptr, act, code);
}

bool needs_grad(std::initializer_list<const at::Tensor*> tensors) {
  if (!c10::GradMode::is_enabled()) return false;
  for (const at::Tensor* t : tensors)
    if (t != nullptr && t->defined() && t->requires_grad()) return true;
  return false;
}

// Plain CPU tensors and nothing else below autograd: no Python key (fake tensors,
// torch.compile, modes), no functionalization; the fast path may run.
bool only_cpu_below(c10::DispatchKeySet ks) {
  return (ks & c10::after_autograd_keyset).highestPriorityTypeId() == c10::DispatchKey::CPU;
}

at::Tensor matmul_autograd_cpu(c10::DispatchKeySet ks, const at::Tensor& a, const at::Tensor& b,
                               std::optional<at::ScalarType> out_dtype) {
  if (needs_grad({&a, &b})) {
    static const auto grad_op = op_handle<MatmulFn>("aicc::_matmul_autograd");
    return grad_op.call(a, b, out_dtype);
  }
  if (g_api.load(std::memory_order_acquire) != nullptr && only_cpu_below(ks)) {
    if (auto out = fast_matmul(a, b, out_dtype)) return *out;
  }
  static const auto op = op_handle<MatmulFn>("aicc::matmul");
  return op.redispatch(ks & c10::after_autograd_keyset, a, b, out_dtype);
}

at::Tensor gemm_autograd_cpu(c10::DispatchKeySet ks, const at::Tensor& a, const at::Tensor& b,
                             const std::optional<at::Tensor>& c, const std::optional<at::Tensor>& bias, double alpha,
                             double beta, bool trans_a, bool trans_b, std::optional<std::string_view> activation,
                             std::optional<at::ScalarType> out_dtype) {
  if (needs_grad({&a, &b, c ? &*c : nullptr, bias ? &*bias : nullptr})) {
    static const auto grad_op = op_handle<GemmFn>("aicc::_gemm_autograd");
    return grad_op.call(a, b, c, bias, alpha, beta, trans_a, trans_b, activation, out_dtype);
  }
  if (g_api.load(std::memory_order_acquire) != nullptr && only_cpu_below(ks)) {
    if (auto out = fast_gemm(a, b, c, bias, alpha, beta, trans_a, trans_b, activation, out_dtype)) return *out;
  }
  static const auto op = op_handle<GemmFn>("aicc::gemm");
  return op.redispatch(ks & c10::after_autograd_keyset, a, b, c, bias, alpha, beta, trans_a, trans_b, activation,
                       out_dtype);
}

}  // namespace

// Registered when the library is loaded (torch.ops.load_library); the schemas were defined
// from Python before that (aicc_kernels/torch/ops.py).
TORCH_LIBRARY_IMPL(aicc, AutogradCPU, m) {
  m.impl("matmul", TORCH_FN(matmul_autograd_cpu));
  m.impl("gemm", TORCH_FN(gemm_autograd_cpu));
}

namespace {

std::atomic<uint64_t> g_team_runs{0};

// Our parallel loops on torch's intra-op threads (at::parallel_for: its OpenMP team here,
// this file being compiled with -fopenmp against the libgomp torch loaded). In a model that
// mixes our kernels with torch's, two pools would otherwise take turns spinning on the same
// cores: torch's threads keep spinning for a while after each of its operators, exactly
// when our next kernel's threads need those cores. Inside a torch parallel region,
// at::parallel_for runs the workers one after another on the calling thread, which the
// library's task counter handles (any worker may take every task).
void torch_team(int workers, void (*fn)(void* ctx, int worker), void* ctx) {
  g_team_runs.fetch_add(1, std::memory_order_relaxed);
  at::parallel_for(0, workers, 1, [&](int64_t begin, int64_t end) {
    for (int64_t w = begin; w < end; ++w) fn(ctx, static_cast<int>(w));
  });
}

}  // namespace

// Our kernels' threads: torch's team (1) or the library's own pool (0).
extern "C" __attribute__((visibility("default"))) void aicc_torch_use_torch_threads(int on) {
  const aicc_c_api* api = g_api.load(std::memory_order_acquire);
  if (api != nullptr) api->set_parallel_team(on ? &torch_team : nullptr);
}

// Parallel loops run on torch's team so far (read by the tests).
extern "C" __attribute__((visibility("default"))) uint64_t aicc_torch_team_runs() {
  return g_team_runs.load(std::memory_order_relaxed);
}

// Called once by _native.py with the capsule pointer of _aicc_cpu._C_API. Returns 0, or
// the C API version it found when that one is older than this file needs.
extern "C" __attribute__((visibility("default"))) int aicc_torch_bind_c_api(const aicc_c_api* api) {
  if (api == nullptr || api->version < AICC_C_API_VERSION || api->size < sizeof(aicc_c_api))
    return api == nullptr ? -1 : static_cast<int>(api->version);
  g_api.store(api, std::memory_order_release);
  return 0;
}

extern "C" __attribute__((visibility("default"))) uint64_t aicc_torch_fast_calls() {
  return g_fast_calls.load(std::memory_order_relaxed);
}
