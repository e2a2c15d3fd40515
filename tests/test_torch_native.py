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


to_torch = torch_ops.T.from_array  # a tensor over the NumPy array's memory


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


# ---- our parallel loops on torch's threads --------------------------------------------------
@needs_native
def test_parallel_loops_run_on_torch_threads_and_give_the_same_bits():
    if os.environ.get("AICC_TORCH_THREADS", "1").strip() == "0":
        pytest.skip("torch's threads turned off for our kernels (AICC_TORCH_THREADS=0)")
    assert akt.native_status()["torch_threads"]
    rng = np.random.default_rng(0)
    a = rng.standard_normal((300, 200)).astype(np.float32)
    b = rng.standard_normal((200, 170)).astype(np.float32)
    x = rng.standard_normal((2, 9, 9, 16)).astype(np.float32)
    w = rng.standard_normal((24, 3, 3, 16)).astype(np.float32)
    previous = ak.get_num_threads()
    ak.set_num_threads(2)
    try:
        before = _native.team_runs()
        on_team = (ak.gemm(a, b), ak.conv2d(x, w, padding=1, layout="NHWC"))
        assert _native.team_runs() > before  # the 2-thread calls went to torch's team
        _native.use_torch_threads(False)
        try:
            before = _native.team_runs()
            on_pool = (ak.gemm(a, b), ak.conv2d(x, w, padding=1, layout="NHWC"))
            assert _native.team_runs() == before
        finally:
            _native.use_torch_threads(True)
    finally:
        ak.set_num_threads(previous)
    for t, p in zip(on_team, on_pool):  # the library's results never depend on its threads
        np.testing.assert_array_equal(t, p)


@needs_native
def test_forked_child_runs_kernels_on_its_own_pool():
    # GNU OpenMP's team does not survive a fork: the child must fall back to a fresh pool of
    # ours (the fork handler clears the team) instead of hanging in torch's.
    script = r"""
import os, sys
import numpy as np
import torch
import aicc_kernels as ak
import aicc_kernels.torch
ak.set_num_threads(2)
a = np.random.default_rng(0).standard_normal((256, 256)).astype(np.float32)
ref = ak.matmul(a, a)  # on torch's team in the parent
pid = os.fork()
if pid == 0:
    ok = np.array_equal(ak.matmul(a, a), ref)
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr


def test_torch_threads_off_by_environment():
    env = dict(os.environ, AICC_TORCH_THREADS="0")
    probe = subprocess.run([sys.executable, "-c", "import aicc_kernels.torch as t; print(t.native_status())"],
                           env=env, capture_output=True, text=True, timeout=300)
    assert "'torch_threads': False" in probe.stdout, probe.stdout + probe.stderr
