"""Host / device array helpers used by the op layer, so the same validation serves NumPy
arrays and CUDA arrays (CuPy, or anything exposing ``__cuda_array_interface__`` or a CUDA
DLPack capsule). CuPy is imported only when a device array is actually seen."""

from __future__ import annotations

import numpy as np

_KDL_CUDA = (2, 13)  # kDLCUDA, kDLCUDAManaged


def _foreign():
    from .backends import device  # imported late: backends imports this module's users

    return device


def is_device_array(x) -> bool:
    if x is None or isinstance(x, np.ndarray):
        return False
    if _foreign().is_foreign(x):
        return True  # a non-CUDA device (backends/device.py): viewed as a DeviceArray
    if hasattr(x, "__cuda_array_interface__"):
        return True
    device = getattr(x, "__dlpack_device__", None)
    if device is None:
        return False
    try:
        return device()[0] in _KDL_CUDA
    except Exception:  # noqa: BLE001 - a broken __dlpack_device__ is simply not a CUDA array
        return False


def cupy():
    """The cupy module, or a clear ImportError."""
    try:
        import cupy as cp
    except ImportError as exc:
        raise ImportError(f"CUDA arrays need CuPy (pip install cupy-cuda12x or cupy-cuda13x): {exc}") from None
    return cp


def as_device_array(x):
    """A CuPy view of a CUDA array (zero copy: CuPy as is, __cuda_array_interface__ or DLPack),
    or a DeviceArray view of another device's array (zero copy, backends/device.py)."""
    if _foreign().is_foreign(x):
        return _foreign().view(x)
    cp = cupy()
    if isinstance(x, cp.ndarray):
        return x
    if hasattr(x, "__cuda_array_interface__"):
        return cp.asarray(x)
    return cp.from_dlpack(x)


def array_module(*arrays):
    """numpy, or cupy when any argument is a CUDA array, or the DeviceArray functions when
    one is another device's array."""
    if any(_foreign().is_foreign(a) for a in arrays):
        return _foreign().module
    return cupy() if any(is_device_array(a) for a in arrays) else np


def to_host_small(x):
    """Small parameter arrays (zero points, scales, bias) given on the device are validated
    on the host: one copy, then the backend moves them back (backend.asarray)."""
    if _foreign().is_foreign(x):
        return _foreign().owner(x).to_numpy(x)
    if is_device_array(x):
        return cupy().asnumpy(as_device_array(x))
    return x


def _extent(x):
    """[first byte, last byte + 1) spanned by a CuPy array (any strides, possibly negative)."""
    start = x.data.ptr
    lo = hi = 0
    for size, stride in zip(x.shape, x.strides):
        if size == 0:
            return start, start
        span = (size - 1) * stride
        lo, hi = (lo + span, hi) if span < 0 else (lo, hi + span)
    return start + lo, start + hi + x.itemsize


def device_overlaps(x, y) -> bool:
    """Conservative: true when the byte ranges of two device arrays intersect."""
    dev = _foreign()
    if isinstance(x, dev.DeviceArray) or isinstance(y, dev.DeviceArray):
        return isinstance(x, dev.DeviceArray) and isinstance(y, dev.DeviceArray) and dev.overlaps(x, y)
    x0, x1 = _extent(x)
    y0, y1 = _extent(y)
    return x0 < y1 and y0 < x1 and x1 > x0 and y1 > y0


def device_same_memory(x, y) -> bool:
    dev = _foreign()
    if isinstance(x, dev.DeviceArray) or isinstance(y, dev.DeviceArray):
        return isinstance(x, dev.DeviceArray) and isinstance(y, dev.DeviceArray) and dev.same_memory(x, y)
    return (x.data.ptr == y.data.ptr and x.strides == y.strides and x.dtype == y.dtype)
