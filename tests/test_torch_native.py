"""The C++ per-call path of torch.ops.aicc.matmul / gemm (aicc_kernels/torch/native): built and
in use, taken only by the common calls, bit-identical to the Python kernels it stands in for,
and the Python registration alone still passes the operator tests."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

torch = pytest.importorskip("torch", reason="torch is not installed (pip install 'aicc-kernels[torch]')")

import aicc_kernels as ak  # noqa: E402
import aicc_kernels.torch as akt  # noqa: E402
from aicc_kernels import _dtypes  # noqa: E402
from aicc_kernels.testing.cases.gemm import gemm_cases  # noqa: E402
from aicc_kernels.torch import _native  # noqa: E402
from aicc_kernels.torch import ops as torch_ops  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
NATIVE_OFF = os.environ.get("AICC_TORCH_NATIVE", "1").strip() == "0"
pytestmark = [pytest.mark.skipif(not ak.backends.get("cpu").available, reason="cpu backend not built")]
needs_native = pytest.mark.skipif(NATIVE_OFF, reason="native torch kernels turned off (AICC_TORCH_NATIVE=0)")


def to_torch(x):
    if x is None:
        return None
    x = np.asarray(x)
    if x.dtype == _dtypes.bfloat16:
        return torch.from_numpy(x.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(x)


@needs_native
def test_native_path_is_built_and_in_use():
    # The package was built with a C++ compiler and the [torch] extra brings ninja: the
    # native kernels must load here; a failure is a bug, with its reason in the message.
    st_ = akt.native_status()
    assert st_["native"], st_["reason"]
    assert pathlib.Path(st_["path"]).is_file()


def _bits(t):
    return t.view(torch.int16 if t.element_size() == 2 else torch.int32).numpy()


@needs_native
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_fast_path_is_bit_identical_to_the_python_kernel(data):
    # Same GEMM, same arguments: the fast path may not change a single bit (c broadcast to
    # stride-0 views, transposes, bias, activation, out dtype, NaN/Inf, zero sizes).
    dtype = data.draw(st.sampled_from([np.float32, np.float16, _dtypes.bfloat16]))
    case = data.draw(gemm_cases(dtype, max_dim=24, max_k=40, nonfinite=True))
    args = (to_torch(case["a"]), to_torch(case["b"]), to_torch(case["c"]), to_torch(case["bias"]))
    kwargs = dict(alpha=case["alpha"], beta=case["beta"], trans_a=case["trans_a"], trans_b=case["trans_b"],
                  activation=case["activation"],
                  out_dtype=None if case["out_dtype"] is None else torch_ops.T.TORCH_DTYPE[np.dtype(case["out_dtype"])])
    native = torch.ops.aicc.gemm(*args, **kwargs)
    python = torch_ops._gemm_cpu(*args, **kwargs)
    assert native.dtype == python.dtype and native.shape == python.shape
    np.testing.assert_array_equal(_bits(native), _bits(python))


@needs_native
def test_fast_path_takes_the_common_calls_only():
    a, b = torch.randn(5, 7), torch.randn(7, 3)
    before = _native.fast_calls()
    torch.ops.aicc.matmul(a, b)
    torch.ops.aicc.gemm(a, b, torch.randn(3), torch.randn(3), beta=1.0, activation="gelu")
    torch.ops.aicc.matmul(a.t(), b[:5].t().contiguous().t())  # strided views: still the fast path
    assert _native.fast_calls() == before + 3
    # Everything else goes through the Python kernels: batched, integer, out_dtype, a
    # non-f32 bias, gradients, meta tensors, errors.
    torch.ops.aicc.matmul(torch.randn(2, 5, 7), b)
    torch.ops.aicc.matmul(torch.zeros(2, 3, dtype=torch.uint8), torch.zeros(3, 2, dtype=torch.int8))
    torch.ops.aicc.matmul(a, b, out_dtype=torch.float32)
    torch.ops.aicc.gemm(a, b, bias=torch.randn(3, dtype=torch.float16))
    torch.ops.aicc.matmul(torch.empty(5, 7, device="meta"), torch.empty(7, 3, device="meta"))
    with pytest.raises(ValueError, match="^b: expected 7 rows"):
        torch.ops.aicc.gemm(a, torch.randn(6, 3))
    assert _native.fast_calls() == before + 3
    y = torch.ops.aicc.matmul(a.requires_grad_(), b)  # a gradient is needed: the autograd.Function
    assert y.grad_fn is not None and _native.fast_calls() == before + 3
    y.sum().backward()  # its backward's grad_a = g @ b^T is a plain call again: fast
    assert _native.fast_calls() == before + 4
    torch.testing.assert_close(a.grad, torch.ones(5, 3) @ b.t(), rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        torch.ops.aicc.matmul(a, b)  # requires_grad input, grad mode off: fast
    assert _native.fast_calls() == before + 5


@needs_native
def test_fast_path_result_is_a_fresh_tensor_torch_owns():
    a, b = torch.randn(4, 4), torch.randn(4, 4)
    y = torch.ops.aicc.matmul(a, b)
    assert y.is_contiguous() and not y.requires_grad and y.data_ptr() not in (a.data_ptr(), b.data_ptr())
    torch.testing.assert_close(y, a @ b, rtol=1e-5, atol=1e-5)
    assert torch.ops.aicc.matmul(torch.randn(0, 4), b).shape == (0, 4)
    assert torch.equal(torch.ops.aicc.matmul(torch.randn(3, 0), torch.randn(0, 2)), torch.zeros(3, 2))


def test_python_registration_alone_passes_the_operator_tests():
    # AICC_TORCH_NATIVE=0 keeps the pure-Python kernels (what a machine without a compiler
    # gets): the matmul/gemm operator tests must pass on them too.
    env = dict(os.environ, AICC_TORCH_NATIVE="0")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
                          str(ROOT / "tests" / "test_torch_ops.py"), "-k",
                          "gemm or matmul or opcheck or compile or bad_input or meta"],
                         env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and " failed" not in run.stdout
    probe = subprocess.run([sys.executable, "-c", "import aicc_kernels.torch as t; print(t.native_status())"],
                           env=env, capture_output=True, text=True, timeout=300)
    assert "'native': False" in probe.stdout and "AICC_TORCH_NATIVE=0" in probe.stdout, probe.stdout + probe.stderr
