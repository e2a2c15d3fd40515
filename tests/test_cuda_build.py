"""The CUDA backend on any machine: the extension imports without a GPU or driver, says
why it cannot run, and the backend refuses host arrays. (The kernels themselves are
tested by the shared property tests, test_gemm.py / test_qgemm.py, on a GPU.)"""

import importlib.util

import numpy as np
import pytest

import aicc_kernels as ak
from aicc_kernels.backends.base import BackendUnavailable

BUILT = importlib.util.find_spec("aicc_kernels._aicc_cuda") is not None
needs_build = pytest.mark.skipif(not BUILT, reason="_aicc_cuda not built (no nvcc at build time, or AICC_CUDA=OFF)")


class FakeCudaArray:
    """Looks like a device array to the dispatcher; holds no memory."""

    def __init__(self, shape=(4, 4), typestr="<f4"):
        self.__cuda_array_interface__ = {"shape": shape, "typestr": typestr, "data": (0, False), "version": 3}


def _no_device():
    from aicc_kernels import _aicc_cuda

    return _aicc_cuda.device_count()[0] <= 0


def test_cuda_backend_is_registered():
    assert "cuda" in ak.backends.list()
    backend = ak.backends.get("cuda")
    assert backend.device == "cuda"
    caps = backend.capabilities()
    assert ("f16", "f16", "f16") in caps["gemm"] and ("u8", "s8", "u8") in caps["qgemm"]


@needs_build
def test_extension_imports_and_reports_the_runtime_reason():
    from aicc_kernels import _aicc_cuda

    count, reason = _aicc_cuda.device_count()
    assert _aicc_cuda.runtime_version() >= 11000
    backend = ak.backends.get("cuda")
    if count <= 0:
        assert reason.startswith("cuda"), reason  # the runtime's error name, e.g. cudaErrorNoDevice
        assert not backend.available
        assert reason in backend.unavailable_reason
    else:
        assert reason == ""


def test_unavailable_backend_says_why():
    backend = ak.backends.get("cuda")
    if backend.available:
        pytest.skip("a CUDA device is present: the backend is available")
    with pytest.raises(BackendUnavailable, match="unavailable here: .+"):
        backend.kernel("gemm", ("f32", "f32", "f32"))
    # A device array selects the cuda backend by itself, and the error names the reason.
    with pytest.raises((BackendUnavailable, ImportError), match="unavailable here|CuPy"):
        ak.gemm(FakeCudaArray(), FakeCudaArray())


def test_backend_refuses_host_arrays():
    from aicc_kernels.backends.cuda import CudaBackend

    probe = CudaBackend("cuda-probe", "cuda", {"gemm": {("f32", "f32", "f32"): lambda *a, **k: None}})
    assert not probe.accepts(np.zeros((2, 2), np.float32))
    assert probe.accepts(FakeCudaArray())
    with pytest.raises(TypeError, match=r"'cuda-probe' cannot read a numpy.ndarray \(its device is 'cuda'\)"):
        ak.backends.select(probe, "gemm", ("f32", "f32", "f32"), [np.zeros((2, 2), np.float32)])


def test_host_and_device_arrays_mixed_are_refused():
    backend = ak.backends.get("cuda")
    if not backend.available:
        pytest.skip(f"no CUDA device: cuda backend unavailable ({backend.unavailable_reason})")
    import cupy as cp

    a = cp.ones((3, 4), np.float32)
    with pytest.raises(TypeError, match="cannot read a numpy.ndarray"):
        ak.gemm(a, np.ones((4, 2), np.float32))


@needs_build
def test_launchers_check_arguments_before_touching_the_device():
    from aicc_kernels import _aicc_cuda as ext

    with pytest.raises(ValueError, match="multiple of 16"):
        ext.qgemm_s8(0, 0, 4, 4, 15, 15, 0, 0, 0, 0, 0, 0, 0, False, 0, 4, 5, True, 0)
    with pytest.raises(ValueError, match="16-byte aligned"):
        ext.gemm_f16_mma(1, 2, 8, 0, 8, 4, 4, 8, 1.0, 0.0, 0, 0, 0, 0, 0, 0, 4, 1, 0)
    with pytest.raises(ValueError, match="valid convolution shape"):
        ext.conv2d_fwd(0, 0, 0, 0, 0, 0, 0, (1, 4, 4, 3, 4, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 2, 0), False, 0)
    with pytest.raises(ValueError, match="17 integers"):
        ext.conv2d_bwd_data(0, 0, 0, 0, (1, 2), 0)


@needs_build
def test_launch_without_a_device_is_an_error_not_a_crash():
    from aicc_kernels import _aicc_cuda as ext

    if not _no_device():
        pytest.skip("a CUDA device is present (this test launches with null pointers)")
    with pytest.raises(RuntimeError, match="gemm_simt: cuda"):
        ext.gemm_simt(0, 0, 4, 1, 0, 4, 1, 4, 4, 4, 1.0, 0.0, 0, 0, 0, 0, 0, 0, 4, 0, 0)


def _fresh_nccl(monkeypatch, library):
    from aicc_kernels.backends import cuda_collective as cc

    monkeypatch.setattr(cc, "_lib", None)
    monkeypatch.setattr(cc, "_lib_error", None)
    monkeypatch.setenv("AICC_NCCL_LIBRARY", library)
    return cc


def test_missing_nccl_is_reported_not_fatal(monkeypatch):
    cc = _fresh_nccl(monkeypatch, "/nonexistent/libnccl.so.2")
    reason = cc.nccl_unavailable_reason()
    assert reason is not None and "/nonexistent/libnccl.so.2" in reason
    with pytest.raises(cc.NcclError, match="could not be loaded"):
        cc.nccl_unique_id()


def _pip_nccl():
    try:
        import nvidia.nccl
    except ImportError:
        return None
    import os

    for root in list(getattr(nvidia.nccl, "__path__", [])):
        path = os.path.join(root, "lib", "libnccl.so.2")
        if os.path.exists(path):
            return path
    return None


def test_nccl_bindings_against_a_real_library(monkeypatch):
    # The ctypes signatures that need no GPU: version and the 128-byte unique id (which
    # holds NUL bytes: it must round-trip whole).
    path = _pip_nccl()
    if path is None:
        pytest.skip("no libnccl.so.2 from the nvidia-nccl wheel on this machine")
    cc = _fresh_nccl(monkeypatch, path)
    assert cc.nccl_unavailable_reason() is None
    assert cc.nccl_version() >= 21000  # ncclAvg and bfloat16 need NCCL 2.10+
    uid = cc.nccl_unique_id()
    assert isinstance(uid, bytes) and len(uid) == 128 and uid.count(0) > 0


def test_nccl_communicator_checks_arguments():
    from aicc_kernels.backends import cuda_collective as cc

    with pytest.raises(ValueError, match="rank: expected an integer in"):
        cc.NcclCommunicator(2, 2, bytes(128))
    with pytest.raises(ValueError, match="unique_id: expected 128 bytes"):
        cc.NcclCommunicator(0, 1, b"short")


def test_path_switch():
    from aicc_kernels.backends import cuda

    assert cuda.get_path() == "auto"
    with pytest.raises(ValueError, match="path: expected one of"):
        cuda.set_path("tensor")


def test_import_does_not_initialize_cuda():
    # Probing initializes the driver, after which forked children cannot use CUDA: the
    # probe must wait until someone asks whether the backend is available.
    import subprocess
    import sys

    code = ("import numpy as np, aicc_kernels as ak\n"
            "ak.backends.list()\n"
            "ak.gemm(np.ones((2, 2), np.float32), np.ones((2, 2), np.float32))\n"
            "from aicc_kernels.backends import cuda\n"
            "print(cuda.backend._reason is cuda._UNPROBED)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"
