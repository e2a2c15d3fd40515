// Tile epilogue, portable path: one element at a time (the contract's order, float_kernels.h).
#include "cpu/gemm/float_kernels.h"

namespace aicc::cpu::gemm_internal {

void epilogue_tile_portable(const Epilogue& ep, const float* tile, int64_t ldt, int64_t i0, int64_t j0,
                            int mr, int nr) {
  const MatrixView& o = ep.out;
  for (int i = 0; i < mr; ++i) {
    const int64_t row = i0 + i;
    for (int j = 0; j < nr; ++j) {
      const int64_t col = j0 + j;
      store_f32(o.data, o.dtype, row * o.row_stride + col * o.col_stride,
                epilogue_value(ep, tile[i * ldt + j], row, col));
    }
  }
}

}  // namespace aicc::cpu::gemm_internal
