"""aicc-device-example: a backend with its own device memory (docs/PORTING.md, "Device memory").

    simdev  gemm f32/f32/f32, qgemm u8/s8/s32 and s8/s8/s32, conv2d f32/f32/f32

"Device memory" is SimMemory: bytes the host cannot see (no __array__, no buffer
protocol). SimArray is an aicc_kernels DeviceArray over it, registered with
ak.backends.register_array_type, so the op layer validates and dispatches SimArrays
without copying them. The kernels are the simulated device's code: they read and write
SimMemory directly (`_device_view`), and use the reference math, since the point here is
the memory path, not the arithmetic. Every host <-> device copy goes through to_device /
to_host and is counted in TRANSFERS.
"""

from __future__ import annotations

import numpy as np

import aicc_kernels as ak
from aicc_kernels.backends import Backend, DeviceArray, register_array_type

__all__ = ["SimMemory", "SimArray", "SimBackend", "TRANSFERS", "to_device", "to_host", "make_backend"]
__version__ = "0.1.0"

#: DLPack device of the simulated accelerator: kDLExtDev, device 0.
DLPACK_DEVICE = (12, 0)
#: Host <-> device copies made so far (tests check that an op call makes none).
TRANSFERS = {"to_device": 0, "to_host": 0}


class SimMemory:
    """One device allocation. The bytes are private to the "device": nothing on the host
    side (NumPy, the op layer) can turn this object into an array."""

    __slots__ = ("_bytes",)

    def __init__(self, nbytes: int):
        self._bytes = np.zeros(max(int(nbytes), 1), np.uint8)

    def __len__(self) -> int:
        return self._bytes.size


class SimArray(DeviceArray):
    """A view onto SimMemory (shape, byte strides, byte offset, dtype)."""

    __slots__ = ()

    @classmethod
    def empty(cls, shape, dtype) -> "SimArray":
        dtype = np.dtype(dtype)
        n = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        return cls(SimMemory(n), shape, dtype, device=DLPACK_DEVICE)


def _device_view(x: DeviceArray) -> np.ndarray:
    """Device-side access to a view's elements (what a kernel on the device does): a
    NumPy view of the device bytes, no copy. Only kernels and the transfer functions call it."""
    return np.ndarray(x.shape, x.dtype, buffer=x.buffer._bytes, offset=x.offset, strides=x.strides)


def to_device(host) -> SimArray:
    """Copies a host array to the device (the one host -> device path)."""
    host = np.asarray(host)
    out = SimArray.empty(host.shape, host.dtype)
    _device_view(out)[...] = host
    TRANSFERS["to_device"] += 1
    return out


def to_host(x: DeviceArray) -> np.ndarray:
    """Copies a device array to the host (the one device -> host path)."""
    TRANSFERS["to_host"] += 1
    return np.array(_device_view(x))


def _host_or_device(x):
    """Small parameters (bias, zero points, scales) arrive as host arrays (the op layer
    validates them there); tensors arrive as device views."""
    return _device_view(x) if isinstance(x, DeviceArray) else x


class SimBackend(Backend):
    def empty(self, shape, dtype):
        return SimArray.empty(shape, dtype)

    def asarray(self, array):
        return array if isinstance(array, SimArray) else to_device(array)

    def to_numpy(self, array):
        return to_host(array) if isinstance(array, DeviceArray) else np.asarray(array)


def _gemm(a, b, c, out, *, alpha, beta, bias, activation):
    _device_view(out)[...] = ak.reference.gemm(_device_view(a), _device_view(b),
                                               None if c is None else _host_or_device(c), alpha=alpha, beta=beta,
                                               bias=bias, activation=activation, out_dtype=out.dtype)


def _qgemm(a, b, out, *, a_zero_point, b_zero_point, scale, bias, out_zero_point, activation):
    _device_view(out)[...] = ak.reference.qgemm(_device_view(a), _device_view(b), a_zero_point=a_zero_point,
                                                b_zero_point=b_zero_point, scale=scale, bias=bias,
                                                out_zero_point=out_zero_point, out_dtype=out.dtype,
                                                activation=activation)


def _conv2d(x, w, bias, out, *, stride, padding, dilation, groups, layout, activation):
    _device_view(out)[...] = ak.reference.conv2d(_device_view(x), _device_view(w), bias, stride=stride,
                                                 padding=padding, dilation=dilation, groups=groups, layout=layout,
                                                 activation=activation, out_dtype=out.dtype)


def make_backend(name: str = "simdev") -> SimBackend:
    backend = SimBackend(name, "simdev", dlpack_device=DLPACK_DEVICE, tiles={"gemm": (128, 128, 64)},
                         description="aicc-device-example: its own device memory (SimMemory)")
    backend.implements("gemm", "f32/f32/f32")(_gemm)
    backend.implements("qgemm", "u8/s8/s32", "s8/s8/s32")(_qgemm)
    backend.implements("conv2d", "f32/f32/f32")(_conv2d)
    register_array_type(SimArray, name)
    return backend
