"""The device-array protocol for non-CUDA devices (backends/device.py): a backend's own
array type, or a DLPack device, is validated without copying and dispatched to the
backend that owns it; the example device backend passes the runner."""

import ctypes
import importlib
from pathlib import Path

import numpy as np
import pytest

import aicc_kernels as ak
from aicc_kernels.backends import Backend, DeviceArray
from aicc_kernels.testing import conformance

EXAMPLE_SRC = Path(__file__).resolve().parents[1] / "examples" / "aicc_device_example" / "src"


@pytest.fixture
def sim(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE_SRC))
    module = importlib.import_module("aicc_device_example")
    backend = module.make_backend("simdev-test")
    ak.backends.register(backend, replace=True)
    yield module
    ak.backends.unregister("simdev-test")
    ak.backends.unregister_array_type(module.SimArray)


def test_ops_dispatch_device_arrays_to_their_backend_without_a_host_copy(sim):
    rng = np.random.default_rng(0)
    a, b, c = (rng.standard_normal(s).astype(np.float32) for s in ((5, 7), (7, 3), (3,)))
    da, db, dc = sim.to_device(a), sim.to_device(b), sim.to_device(c)
    before = dict(sim.TRANSFERS)
    out = ak.gemm(da, db.T.T, dc, beta=2.0, bias=np.ones(3, np.float32))  # no backend=: owned arrays decide
    wq = ak.gemm(db, da, trans_a=True, trans_b=True)                         # transposed views, no copy
    assert sim.TRANSFERS == before, "an op call copied between host and device"
    assert isinstance(out, sim.SimArray) and isinstance(wq, sim.SimArray)
    np.testing.assert_allclose(sim.to_host(out), a @ b + 2 * c + 1, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sim.to_host(wq), (a @ b).T, rtol=1e-5, atol=1e-5)
    # The host cannot read device memory by accident: NumPy sees an opaque object.
    assert np.asarray(da).dtype == object
    # Validation runs on the view: shape and dtype errors name the argument, with no copy.
    with pytest.raises(ValueError, match="b: expected 7 rows"):
        ak.gemm(da, sim.to_device(np.ones((4, 3), np.float32)))
    with pytest.raises(TypeError, match="b: expected dtype f32"):
        ak.gemm(da, sim.to_device(np.ones((7, 3), np.float16)))
    square = sim.to_device(np.eye(3, dtype=np.float32))
    with pytest.raises(ValueError, match="out: expected memory not overlapping a"):
        ak.gemm(square, square.T, out=square)
    inplace = sim.to_device(np.ones((3, 3), np.float32))
    ak.gemm(square, square, inplace, beta=1.0, out=inplace)  # out may be exactly c
    np.testing.assert_array_equal(sim.to_host(inplace), np.eye(3) + 1)


def test_a_host_backend_refuses_device_arrays_by_name(sim):
    da = sim.to_device(np.ones((2, 2), np.float32))
    with pytest.raises(TypeError, match=r"^a: 'cpu' cannot read a .*SimArray"):
        ak.gemm(da, da, backend="cpu")


def test_the_example_device_backend_passes_the_runner(sim):
    report = conformance.run("simdev-test", ["gemm", "qgemm", "conv2d"], max_examples=10)
    assert not report.failed, conformance.format_table(report)
    passed = {(r.op, r.dtypes) for r in report.results if r.status == "pass"}
    assert passed == {("gemm", "f32/f32/f32"), ("qgemm", "u8/s8/s32"), ("qgemm", "s8/s8/s32"),
                      ("conv2d", "f32/f32/f32")}


class _ForeignTensor:
    """A DLPack producer on device (14, 3) whose memory is host memory in disguise."""

    def __init__(self, host):
        self.host = host

    def __dlpack_device__(self):
        return (14, 3)

    def __dlpack__(self, **kwargs):
        return self.host.__dlpack__()


def _read(view: DeviceArray) -> np.ndarray:
    """Kernel-side access through the DLPack data pointer (no copy)."""
    nbytes = view.extent()[1]
    raw = (ctypes.c_uint8 * nbytes).from_address(view.ptr)
    return np.ndarray(view.shape, view.dtype, buffer=raw, offset=view.offset, strides=view.strides)


def test_a_dlpack_device_dispatches_to_the_backend_declaring_it():
    seen = []

    def gemm(a, b, c, out, **kw):
        seen.append((type(a).__name__, a.device))
        out[...] = ak.reference.gemm(_read(a), _read(b), **kw)

    class HostOut(Backend):
        def empty(self, shape, dtype):
            return np.empty(shape, dtype)

        def accepts(self, array):
            return isinstance(array, np.ndarray) or super().accepts(array)

    ak.backends.register(HostOut("dl14", "dl14", {"gemm": {"f32/f32/f32": gemm}}, dlpack_device=(14, 3)),
                         replace=True)
    try:
        a = np.arange(6, dtype=np.float32).reshape(2, 3)
        b = np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2]  # strided: strides travel in the capsule
        out = ak.gemm(_ForeignTensor(a), _ForeignTensor(b))
        np.testing.assert_array_equal(out, a @ b)
        assert seen and seen[0][0] == "DeviceArray"
    finally:
        ak.backends.unregister("dl14")
    with pytest.raises(TypeError, match=r"expected an array of a registered device, got DLPack device \(14, 3\)"):
        ak.gemm(_ForeignTensor(a), _ForeignTensor(a.T.copy()))


def test_register_array_type_checks_its_arguments(sim):
    with pytest.raises(TypeError, match="view: expected a function returning a DeviceArray"):
        ak.backends.register_array_type(int, "simdev-test")
    with pytest.raises(TypeError, match="cls: expected a type"):
        ak.backends.register_array_type(3, "simdev-test")


def test_matmul_writes_a_device_out_in_place_without_a_host_copy(sim):
    """ak.matmul(..., out=<device array>), 2-D and batched: the result lands in the caller's
    device buffer (it used to read out.data.ptr, which only CuPy arrays have)."""
    rng = np.random.default_rng(1)
    a2, b = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((3, 2)).astype(np.float32)
    a3 = rng.standard_normal((2, 4, 3)).astype(np.float32)
    da2, da3, db = sim.to_device(a2), sim.to_device(a3), sim.to_device(b)
    out2, out3 = sim.to_device(np.zeros((4, 2), np.float32)), sim.to_device(np.zeros((2, 4, 2), np.float32))
    before = dict(sim.TRANSFERS)
    assert ak.matmul(da2, db, out=out2) is out2
    assert ak.matmul(da3, db, out=out3) is out3
    assert sim.TRANSFERS == before, "matmul copied between host and device"
    np.testing.assert_allclose(sim.to_host(out2), a2 @ b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sim.to_host(out3), a3 @ b, rtol=1e-5, atol=1e-6)
