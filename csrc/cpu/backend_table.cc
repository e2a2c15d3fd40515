// The CPU kernels behind the C++ backend table (aicc/backend.h): each entry calls the
// checked entry point and turns exceptions into statuses, since nothing may throw
// across the table.
#include <exception>

#include "aicc/backend.h"
#include "aicc/gemm.h"

namespace aicc::cpu {
namespace {

template <typename Fn>
KernelStatus guarded(KernelError* error, Fn&& fn) {
  try {
    fn();
    return KernelStatus::kOk;
  } catch (const InvalidArgument& e) {
    return fail(error, KernelStatus::kInvalidArgument, e.what());
  } catch (const Unsupported& e) {
    return fail(error, KernelStatus::kUnsupported, e.what());
  } catch (const std::exception& e) {
    return fail(error, KernelStatus::kDeviceError, e.what());
  }
}

KernelStatus gemm_kernel(void*, const MatrixView* a, const MatrixView* b, const MatrixView* c, const MatrixView* out,
                         const GemmParams* params, KernelError* error) {
  return guarded(error, [&] { gemm(*a, *b, c, *out, *params); });
}

KernelStatus qgemm_kernel(void*, const MatrixView* a, const MatrixView* b, const MatrixView* out,
                          const QGemmParams* params, KernelError* error) {
  return guarded(error, [&] { qgemm(*a, *b, *out, *params); });
}

}  // namespace

const BackendDescriptor& backend() {
  static const KernelEntry kEntries[] = {
      gemm_entry(DType::kF32, DType::kF32, gemm_kernel),
      gemm_entry(DType::kF16, DType::kF16, gemm_kernel),
      gemm_entry(DType::kF16, DType::kF32, gemm_kernel),
      gemm_entry(DType::kBF16, DType::kBF16, gemm_kernel),
      gemm_entry(DType::kBF16, DType::kF32, gemm_kernel),
      qgemm_entry(DType::kU8, DType::kS32, qgemm_kernel),
      qgemm_entry(DType::kU8, DType::kS8, qgemm_kernel),
      qgemm_entry(DType::kU8, DType::kU8, qgemm_kernel),
      qgemm_entry(DType::kU8, DType::kF32, qgemm_kernel),
      qgemm_entry(DType::kS8, DType::kS32, qgemm_kernel),
      qgemm_entry(DType::kS8, DType::kS8, qgemm_kernel),
      qgemm_entry(DType::kS8, DType::kU8, qgemm_kernel),
      qgemm_entry(DType::kS8, DType::kF32, qgemm_kernel),
  };
  static const BackendDescriptor kBackend{kBackendAbiVersion, "cpu", "cpu", nullptr, kEntries,
                                          sizeof(kEntries) / sizeof(kEntries[0])};
  return kBackend;
}

}  // namespace aicc::cpu
