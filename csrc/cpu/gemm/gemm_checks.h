// Argument checks of the C++ GEMM entry points (the Python layer makes the same checks
// first, with the same messages; these protect C++ callers).
#pragma once

#include "aicc/gemm.h"

namespace aicc::cpu {

void check_gemm_args(const MatrixView& a, const MatrixView& b, const MatrixView* c, const MatrixView& out,
                     const GemmParams& params);
void check_qgemm_args(const MatrixView& a, const MatrixView& b, const MatrixView& out,
                      const QGemmParams& params);
// The residual of the INT8 output stage, when given (nullptr passes).
void check_qresidual(const MatrixView& out, const QResidual* residual);

}  // namespace aicc::cpu
