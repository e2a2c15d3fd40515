// Argument checks of the C++ GEMM entry points (the Python layer makes the same checks
// first, with the same messages; these protect C++ callers).
#pragma once

#include "aicc/gemm.h"

namespace aicc::cpu {

void check_gemm_args(const MatrixView& a, const MatrixView& b, const MatrixView* c, const MatrixView& out,
                     const GemmParams& params);
void check_qgemm_args(const MatrixView& a, const MatrixView& b, const MatrixView& out,
                      const QGemmParams& params);

}  // namespace aicc::cpu
