// A C++ backend "cxx-example": its own f32 GEMM (plain loops, f32 accumulation, its own
// epilogue) plus the library's INT8 kernels for u8 x s8 -> s32, taken from the CPU table.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "aicc/backend.h"

namespace {

float activate(float x, aicc::Activation act) {
  if (act == aicc::Activation::kRelu) return x < 0.0f ? 0.0f : x;  // NaN stays NaN
  if (act == aicc::Activation::kGelu) {
    if (std::isinf(x) && x < 0) return 0.0f;
    return static_cast<float>(0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))));
  }
  return x;
}

float bits_to_float(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// c may be f32, f16 or bf16 whatever the inputs are (SEMANTICS.md): widen it to f32.
float load_c(const aicc::MatrixView& c, int64_t i, int64_t j) {
  const int64_t at = i * c.row_stride + j * c.col_stride;
  if (c.dtype == aicc::DType::kF32) return c.ptr<float>()[at];
  const uint16_t h = c.ptr<uint16_t>()[at];
  if (c.dtype == aicc::DType::kBF16) return bits_to_float(static_cast<uint32_t>(h) << 16);
  const uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ffu;  // IEEE binary16
  if (exp == 0x1f) return bits_to_float(sign | 0x7f800000u | (mant << 13));
  if (exp != 0) return bits_to_float(sign | ((exp + 112) << 23) | (mant << 13));
  const float sub = std::ldexp(static_cast<float>(mant), -24);
  return sign ? -sub : sub;
}

aicc::KernelStatus naive_gemm_f32(void*, const aicc::MatrixView* a, const aicc::MatrixView* b,
                                  const aicc::MatrixView* c, const aicc::MatrixView* out, const aicc::GemmParams* p,
                                  aicc::KernelError* error) {
  if (c != nullptr && c->dtype == aicc::DType::kF64)
    return aicc::fail(error, aicc::KernelStatus::kUnsupported, "c: expected dtype f32, f16 or bf16, got f64");
  const float* A = a->ptr<float>();
  const float* B = b->ptr<float>();
  float* O = out->ptr<float>();
  for (int64_t i = 0; i < out->rows; ++i) {
    for (int64_t j = 0; j < out->cols; ++j) {
      float acc = 0.0f;
      for (int64_t k = 0; k < a->cols; ++k)
        acc += A[i * a->row_stride + k * a->col_stride] * B[k * b->row_stride + j * b->col_stride];
      float y = p->alpha * acc;
      if (p->beta != 0.0f) y += p->beta * load_c(*c, i, j);
      if (p->bias != nullptr) y += p->bias[j];
      O[i * out->row_stride + j * out->col_stride] = activate(y, p->activation);
    }
  }
  return aicc::KernelStatus::kOk;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) const aicc::BackendDescriptor* aicc_backend_v1() {
  static std::vector<aicc::KernelEntry> entries = [] {
    std::vector<aicc::KernelEntry> e{aicc::gemm_entry(aicc::DType::kF32, aicc::DType::kF32, naive_gemm_f32)};
    const aicc::BackendDescriptor& cpu = aicc::cpu::backend();
    if (const aicc::KernelEntry* q = aicc::find_kernel(cpu, aicc::Op::kQGemm,
                                                       {aicc::DType::kU8, aicc::DType::kS8, aicc::DType::kS32}))
      e.push_back(*q);
    return e;
  }();
  static const aicc::BackendDescriptor desc{aicc::kBackendAbiVersion, "cxx-example", "cpu", nullptr,
                                            entries.data(), entries.size()};
  return &desc;
}
