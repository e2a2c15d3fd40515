// The C API table (csrc/include/aicc/c_api.h) as the capsule
// _aicc_cpu._C_API: native callers (the torch operators) reach the kernels without Python.
// Each entry converts the plain C structs to aicc views and turns C++ exceptions into status
// codes and messages; it does no validation of its own (the kernels' checks apply).
#include <pybind11/pybind11.h>

#include <cstring>
#include <exception>

#include "aicc/gemm.h"
#include "aicc/c_api.h"
#include "aicc/status.h"
#include "common/thread_pool.h"

namespace aicc::bindings {

namespace py = pybind11;
namespace {

static_assert(static_cast<int>(DType::kF32) == AICC_DTYPE_F32 && static_cast<int>(DType::kF16) == AICC_DTYPE_F16 &&
                  static_cast<int>(DType::kBF16) == AICC_DTYPE_BF16 && static_cast<int>(DType::kS8) == AICC_DTYPE_S8 &&
                  static_cast<int>(DType::kU8) == AICC_DTYPE_U8 && static_cast<int>(DType::kS32) == AICC_DTYPE_S32 &&
                  static_cast<int>(DType::kS64) == AICC_DTYPE_S64 && static_cast<int>(DType::kF64) == AICC_DTYPE_F64,
              "aicc_dtype must mirror aicc::DType");
static_assert(static_cast<int>(Activation::kRelu) == AICC_ACTIVATION_RELU &&
                  static_cast<int>(Activation::kGelu) == AICC_ACTIVATION_GELU,
              "aicc_activation must mirror aicc::Activation");

void write_message(char* message, size_t size, const char* text) {
  if (message == nullptr || size == 0) return;
  std::strncpy(message, text, size - 1);
  message[size - 1] = '\0';
}

// Runs fn, mapping the library's exception types to the C status codes.
template <typename Fn>
int guarded(char* message, size_t size, Fn&& fn) noexcept {
  try {
    fn();
    return AICC_OK;
  } catch (const InvalidArgument& e) {
    write_message(message, size, e.what());
    return AICC_ERROR_VALUE;
  } catch (const Unsupported& e) {
    write_message(message, size, e.what());
    return AICC_ERROR_TYPE;
  } catch (const std::exception& e) {
    write_message(message, size, e.what());
    return AICC_ERROR_INTERNAL;
  } catch (...) {
    write_message(message, size, "unknown C++ exception");
    return AICC_ERROR_INTERNAL;
  }
}

MatrixView to_view(const aicc_matrix& m) {
  MatrixView v;
  v.data = m.data;
  v.dtype = static_cast<DType>(m.dtype);
  v.rows = m.rows;
  v.cols = m.cols;
  v.row_stride = m.row_stride;
  v.col_stride = m.col_stride;
  return v;
}

int c_gemm(const aicc_matrix* a, const aicc_matrix* b, const aicc_matrix* c, const aicc_matrix* out, float alpha,
           float beta, const float* bias, int32_t activation, char* message, size_t message_size) {
  return guarded(message, message_size, [&] {
    if (a == nullptr || b == nullptr || out == nullptr) throw InvalidArgument("a, b, out: expected non-null matrices");
    if (activation < AICC_ACTIVATION_NONE || activation > AICC_ACTIVATION_GELU)
      throw InvalidArgument("activation: expected 0, 1 or 2, got " + std::to_string(activation));
    GemmParams params;
    params.alpha = alpha;
    params.beta = beta;
    params.bias = bias;
    params.activation = static_cast<Activation>(activation);
    const MatrixView cv = c ? to_view(*c) : MatrixView{};
    cpu::gemm(to_view(*a), to_view(*b), c ? &cv : nullptr, to_view(*out), params);
  });
}

void c_set_parallel_team(void (*team)(int, void (*)(void*, int), void*)) { set_external_team(team); }

const aicc_c_api kCApi = {AICC_C_API_VERSION, sizeof(aicc_c_api), &c_gemm, &c_set_parallel_team};

}  // namespace

void bind_c_api(py::module_& m) {
  m.attr("_C_API") = py::capsule(static_cast<const void*>(&kCApi), AICC_C_API_CAPSULE);
}

}  // namespace aicc::bindings
