/* aicc_kernels C API: the CPU kernels of the _aicc_cpu extension as a table of plain C
 * function pointers, for native code that calls them without going through Python.
 *
 * Why: a framework operator written in C++ (aicc_kernels/torch/native/aicc_torch_ops.cc, a
 * torch.library kernel) would otherwise pay a Python round trip per call — ~10 us, as much
 * as a 64x64 GEMM. The table is handed out the way NumPy hands out its C API: as a
 * PyCapsule, `aicc_kernels._aicc_cpu._C_API`, named AICC_C_API_CAPSULE. Check `version`
 * (and `size`, for fields added later) before using a field.
 *
 * Contract: the same as the C++ entry points in csrc/include/aicc/ (docs/SEMANTICS.md).
 * Functions never throw across this boundary: they return AICC_OK, or an error kind with a
 * "<argument>: expected ..., got ..." message written into `message` (NUL-terminated,
 * truncated to message_size). They run on the library's own thread pool
 * (aicc_kernels.set_num_threads) and do not need the Python GIL.
 *
 * Installed with the other headers (aicc_kernels.get_include()/aicc/c_api.h), so code
 * compiled against an installed aicc_kernels finds it. Plain C: no C++ types cross it.
 */
#ifndef AICC_C_API_H_
#define AICC_C_API_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AICC_C_API_CAPSULE "aicc_kernels._aicc_cpu._C_API"
#define AICC_C_API_VERSION 2 /* 2: set_parallel_team */

/* Element types: the values of aicc::DType (csrc/include/aicc/tensor.h). */
enum aicc_dtype {
  AICC_DTYPE_F32 = 0,
  AICC_DTYPE_F64 = 1,
  AICC_DTYPE_F16 = 2,
  AICC_DTYPE_BF16 = 3,
  AICC_DTYPE_S8 = 4,
  AICC_DTYPE_U8 = 5,
  AICC_DTYPE_S32 = 6,
  AICC_DTYPE_S64 = 7
};

/* Epilogue activations: the values of aicc::Activation (csrc/include/aicc/gemm.h). */
enum aicc_activation { AICC_ACTIVATION_NONE = 0, AICC_ACTIVATION_RELU = 1, AICC_ACTIVATION_GELU = 2 };

enum aicc_status {
  AICC_OK = 0,
  AICC_ERROR_VALUE = 1,       /* a bad argument value or shape (Python: ValueError) */
  AICC_ERROR_TYPE = 2,        /* an unsupported dtype or combination (Python: TypeError) */
  AICC_ERROR_INTERNAL = 3     /* anything else (Python: RuntimeError) */
};

/* A strided 2-D operand; strides in elements, non-negative (0 broadcasts). */
typedef struct aicc_matrix {
  void* data;
  int32_t dtype; /* enum aicc_dtype */
  int64_t rows;
  int64_t cols;
  int64_t row_stride;
  int64_t col_stride;
} aicc_matrix;

typedef struct aicc_c_api {
  uint32_t version; /* AICC_C_API_VERSION of the library that filled the table */
  uint32_t size;    /* sizeof(aicc_c_api) of that library */

  /* out = activation(alpha * a @ b + beta * c + bias), f32 accumulation, one rounding to
   * out's dtype: aicc::cpu::gemm. a, b: f32 x f32, f16 x f16 or bf16 x bf16; c: NULL unless
   * beta != 0; bias: NULL or n contiguous f32; out: m x n of a's dtype or f32, not
   * overlapping a or b. */
  int (*gemm)(const aicc_matrix* a, const aicc_matrix* b, const aicc_matrix* c, const aicc_matrix* out,
              float alpha, float beta, const float* bias, int32_t activation, char* message,
              size_t message_size);

  /* Version 2. Runs the library's parallel loops on a host framework's threads instead of
   * its own pool (NULL: back to its own). team(workers, fn, ctx) must call fn(ctx, w) once for
   * every w in [0, workers), concurrently or not, and return when all calls have returned.
   * A forked child always starts without a team. */
  void (*set_parallel_team)(void (*team)(int workers, void (*fn)(void* ctx, int worker), void* ctx));
} aicc_c_api;

#ifdef __cplusplus
}
#endif

#endif /* AICC_C_API_H_ */
