// Links aicc_kernels::core, calls the CPU GEMM directly and through the backend table
// (aicc/backend.h), and checks both against a naive loop; exits non-zero on any mismatch.
#include <cstdio>
#include <cstdint>
#include <vector>

#include "aicc/backend.h"
#include "aicc/gemm.h"

namespace {

aicc::MatrixView view(void* data, aicc::DType t, int64_t rows, int64_t cols) {
  aicc::MatrixView v;
  v.data = data;
  v.dtype = t;
  v.rows = rows;
  v.cols = cols;
  v.row_stride = cols;
  v.col_stride = 1;
  return v;
}

int failures = 0;
void expect(bool ok, const char* what) {
  if (!ok) {
    std::printf("FAIL: %s\n", what);
    ++failures;
  }
}

}  // namespace

int main() {
  const int64_t m = 5, k = 7, n = 3;
  std::vector<float> a(m * k), b(k * n), direct(m * n), table(m * n), expected(m * n, 0.0f);
  for (int64_t i = 0; i < m * k; ++i) a[i] = static_cast<float>(i % 5) - 2.0f;
  for (int64_t i = 0; i < k * n; ++i) b[i] = static_cast<float>(i % 3) - 1.0f;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t p = 0; p < k; ++p) expected[i * n + j] += a[i * k + p] * b[p * n + j];

  const auto A = view(a.data(), aicc::DType::kF32, m, k);
  const auto B = view(b.data(), aicc::DType::kF32, k, n);
  aicc::GemmParams params;
  aicc::cpu::gemm(A, B, nullptr, view(direct.data(), aicc::DType::kF32, m, n), params);
  expect(direct == expected, "aicc::cpu::gemm f32 (small integers are exact)");

  const aicc::BackendDescriptor& cpu = aicc::cpu::backend();
  expect(cpu.abi_version == aicc::kBackendAbiVersion, "abi version");
  expect(aicc::find_kernel(cpu, aicc::Op::kGemm, {aicc::DType::kF32, aicc::DType::kF32, aicc::DType::kF32}) != nullptr,
         "cpu table has gemm f32/f32/f32");
  aicc::call_gemm(cpu, A, B, nullptr, view(table.data(), aicc::DType::kF32, m, n), params);
  expect(table == expected, "gemm through the backend table");

  // INT8 through the table: exact, with the int16-saturating inputs (255 * -128 pairs).
  std::vector<uint8_t> qa(2 * 64, 255);
  std::vector<int8_t> qb(64 * 2, -128);
  std::vector<int32_t> qout(4, 0);
  aicc::QGemmParams qparams;
  aicc::call_qgemm(cpu, view(qa.data(), aicc::DType::kU8, 2, 64), view(qb.data(), aicc::DType::kS8, 64, 2),
                   view(qout.data(), aicc::DType::kS32, 2, 2), qparams);
  for (int32_t v : qout) expect(v == 64 * 255 * -128, "qgemm u8/s8/s32 exact through the table");

  // Errors come back as aicc exceptions with the documented message.
  bool threw = false;
  try {
    aicc::call_gemm(cpu, A, A, nullptr, view(table.data(), aicc::DType::kF32, m, n), params);
  } catch (const aicc::InvalidArgument& e) {
    threw = std::string(e.what()).rfind("b: expected", 0) == 0;
  }
  expect(threw, "shape mismatch -> InvalidArgument 'b: expected ...'");
  threw = false;
  try {
    aicc::call_gemm(cpu, view(a.data(), aicc::DType::kF64, m, k), B, nullptr, view(table.data(), aicc::DType::kF32, m, n),
                    params);
  } catch (const aicc::Unsupported& e) {
    threw = true;
  }
  expect(threw, "missing combination -> Unsupported");

  std::printf("%s: %zu kernels in the cpu table\n", failures ? "FAILED" : "ok", cpu.num_kernels);
  return failures ? 1 : 0;
}
