"""The C ABI (aicc/backend.h, version 2) from C: the header compiles as C, the example C
backend (examples/aicc_c_backend, compiled as C) passes the runner for conv2d and
allreduce, AICC_STATUS_UNSUPPORTED is a declared "unsupported" (fallback applies), and a
version-1 library still loads."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import aicc_kernels as ak
from aicc_kernels.backends import KernelUnsupported
from aicc_kernels.testing import conformance

ROOT = Path(__file__).resolve().parents[1]
INCLUDE = ROOT / "csrc" / "include"
CC = shutil.which("gcc") or shutil.which("cc")
pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler (gcc/cc) on PATH")


def compile_c(tmp_path, source: str, name: str, shared=True) -> Path:
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    out = tmp_path / (f"lib{name}.so" if shared else f"{name}.o")
    flags = ["-shared", "-fPIC"] if shared else ["-c"]
    subprocess.run([CC, "-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror", "-O1", *flags, f"-I{INCLUDE}",
                    str(src), "-o", str(out)], check=True, capture_output=True, text=True)
    return out


def test_backend_h_is_valid_c(tmp_path):
    compile_c(tmp_path, '#include "aicc/backend.h"\n'
              'int main(void) { aicc_backend_descriptor d = {AICC_BACKEND_ABI_VERSION, "x", "cpu", 0, 0, 0, 0, 0};\n'
              '  aicc_conv2d_fn f = 0; aicc_collective_fn g = 0; (void)f; (void)g; return (int)d.num_kernels; }\n',
              "header_only", shared=False)


@pytest.fixture(scope="module")
def c_example(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("c_example")
    lib = compile_c(tmp, (ROOT / "examples" / "aicc_c_backend" / "conv_backend.c").read_text(), "aicc_c_example")
    backend = ak.backends.native.load(str(lib), replace=True)
    yield backend
    ak.backends.unregister(backend.name)


def test_the_c_example_passes_the_runner_for_conv_and_allreduce(c_example):
    report = conformance.run("c-example", ["conv2d", "allreduce"], max_examples=25)
    assert not report.failed, conformance.format_table(report)
    rows = {(r.op, r.dtypes): r for r in report.results}
    conv, allreduce = rows[("conv2d", "f32/f32/f32")], rows[("allreduce", "f32/f32")]
    assert conv.status == "pass" and allreduce.status == "pass"
    assert 0 < allreduce.reached_kernel <= allreduce.cases
    # gelu is declared unsupported by the C kernel: counted, reported, not a failure.
    assert conv.unsupported_cases > 0 and "declared unsupported" in conv.note and "gelu" in conv.note
    assert rows[("allreduce", "f16/f16")].status == "unsupported"


def test_unsupported_status_is_a_declared_unsupported_that_fallback_reruns(c_example):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3, 5, 5)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    with pytest.raises(KernelUnsupported, match="activation: expected none or relu on c-example, got gelu"):
        ak.conv2d(x, w, activation="gelu", backend="c-example")
    got = ak.conv2d(x, w, activation="gelu", backend="c-example", fallback="reference")
    np.testing.assert_allclose(got, ak.reference.conv2d(x, w, activation="gelu"), rtol=1e-5, atol=1e-5)
    relu = ak.conv2d(x, w, activation="relu", padding=1, backend="c-example")
    np.testing.assert_allclose(relu, ak.reference.conv2d(x, w, activation="relu", padding=1), rtol=1e-5, atol=1e-5)


def test_a_version_1_library_still_loads(tmp_path):
    lib = compile_c(tmp_path, r'''
#include <string.h>
#include "aicc/backend.h"
/* A version-1 descriptor: it ends at num_kernels (no communicator fields). */
typedef struct v1_descriptor { uint32_t abi_version; const char* name; const char* device; void* context;
                               const aicc_kernel_entry* kernels; size_t num_kernels; } v1_descriptor;
static aicc_status copy_a(void* ctx, const aicc_matrix_view* a, const aicc_matrix_view* b, const aicc_matrix_view* c,
                          const aicc_matrix_view* out, const aicc_gemm_params* p, aicc_kernel_error* e) {
  int64_t i, j, k;
  (void)ctx; (void)c; (void)p; (void)e;
  for (i = 0; i < out->rows; ++i)
    for (j = 0; j < out->cols; ++j) {
      float acc = 0.0f;
      for (k = 0; k < a->cols; ++k)
        acc += ((const float*)a->data)[i * a->row_stride + k * a->col_stride] *
               ((const float*)b->data)[k * b->row_stride + j * b->col_stride];
      ((float*)out->data)[i * out->row_stride + j * out->col_stride] = acc;
    }
  return AICC_STATUS_OK;
}
const v1_descriptor* aicc_backend_v1(void) {
  static aicc_kernel_entry e[1];
  static v1_descriptor d;
  e[0].op = AICC_OP_GEMM; e[0].num_dtypes = 3;
  e[0].dtypes[0] = e[0].dtypes[1] = e[0].dtypes[2] = AICC_F32; e[0].fn = (aicc_any_kernel_fn)copy_a;
  d.abi_version = 1; d.name = "c-v1"; d.device = "cpu"; d.kernels = e; d.num_kernels = 1;
  return &d;
}
''', "v1")
    backend = ak.backends.native.load(str(lib), register=False)
    assert backend.capabilities() == {"gemm": (("f32", "f32", "f32"),)} and "ABI 1" in backend.description
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(ak.gemm(a, a.T, backend=backend), a @ a.T)


def test_fused_conv_epilogue_is_declared_unsupported_by_the_c_abi(c_example):
    """The C ABI's conv params carry bias and activation only: scale / residual are refused as
    unsupported (never silently dropped), and fallback= reruns the call."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 3, 5, 5)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    residual = rng.standard_normal((1, 4, 3, 3)).astype(np.float32)
    scale = rng.standard_normal(4).astype(np.float32)
    for fused in (dict(scale=scale), dict(residual=residual)):
        with pytest.raises(KernelUnsupported, match="no fused scale / residual epilogue"):
            ak.conv2d(x, w, backend="c-example", **fused)
        got = ak.conv2d(x, w, backend="c-example", fallback="reference", **fused)
        np.testing.assert_allclose(got, ak.reference.conv2d(x, w, **fused), rtol=1e-5, atol=1e-5)
