"""Device memory that is not CUDA: how a backend's own arrays reach its kernels.

The op layer (aicc_kernels.ops) validates shapes, dtypes and strides and takes transposed
or broadcast views before any kernel runs. For NumPy and CUDA arrays it uses NumPy and
CuPy; for the arrays of any other device it uses a `DeviceArray`: a strided view
(shape, byte strides, byte offset, dtype) onto a buffer the backend owns. Building one
never touches the memory, so validation and dispatch make no host copy.

Two ways an array is recognised as a device array:

* its type is registered: `register_array_type(MyArray, "mychip", view=fn)`, where
  `fn(x)` returns a DeviceArray describing x (zero copy); a DeviceArray subclass needs no
  view function;
* it reports a DLPack device (`__dlpack_device__()` -> (device type, device id)) that a
  registered backend declared with `Backend(..., dlpack_device=(type, id))`; that
  backend's `view(x)` describes it (its default reads the DLPack capsule: the data
  pointer, shape, strides and dtype, without copying).

Either way the call dispatches to the owning backend (unless backend= names another,
which must then accept the array), and its kernels receive DeviceArrays: `buffer` is the
backend's own memory object, `offset`, `shape`, `strides` (bytes, NumPy's convention) and
`dtype` locate the elements. `out` is what the backend's `empty` returned (or the user's
out=), viewed the same way.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Callable, Dict, Optional, Tuple

import numpy as np

KDL_CPU, KDL_CUDA, KDL_CUDA_HOST, KDL_CUDA_MANAGED = 1, 2, 3, 13
_HOST_OR_CUDA = (KDL_CPU, KDL_CUDA, KDL_CUDA_HOST, KDL_CUDA_MANAGED)


class DeviceArray:
    """A strided view onto device memory: buffer + byte offset + shape + byte strides + dtype.

    It has what the op layer's validation reads (shape, dtype, strides, ndim, size, T,
    integer indexing of leading axes, reshape of contiguous views) and nothing that would
    read the elements: no __array__, no buffer protocol, so nothing can copy it to the host
    by accident. `device` is the DLPack (device type, device id) pair.
    """

    __slots__ = ("buffer", "offset", "shape", "strides", "dtype", "device", "ptr")

    def __init__(self, buffer, shape, dtype, strides=None, offset: int = 0, device: Tuple[int, int] = (12, 0),
                 ptr: Optional[int] = None):
        self.buffer = buffer
        self.dtype = np.dtype(dtype)
        self.shape = tuple(int(s) for s in shape)
        if strides is None:  # C-contiguous
            strides, step = [], self.dtype.itemsize
            for s in reversed(self.shape):
                strides.append(step)
                step *= max(s, 1)
            strides = tuple(reversed(strides))
        self.strides = tuple(int(s) for s in strides)
        if len(self.strides) != len(self.shape):
            raise ValueError(f"strides: expected {len(self.shape)} strides for shape {self.shape}, got {strides}")
        self.offset = int(offset)
        self.device = (int(device[0]), int(device[1]))
        self.ptr = ptr  # device address of the buffer's first byte, when it has one (DLPack)

    # -- what validation reads -------------------------------------------------------
    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def itemsize(self) -> int:
        return self.dtype.itemsize

    @property
    def nbytes(self) -> int:
        return self.size * self.itemsize

    @property
    def c_contiguous(self) -> bool:
        expected = DeviceArray(None, self.shape, self.dtype).strides
        return all(st == e for st, e, n in zip(self.strides, expected, self.shape) if n > 1)

    @property
    def flags(self):
        """The NumPy flags the op layer reads (c_contiguous, f_contiguous, writeable)."""
        from types import SimpleNamespace

        return SimpleNamespace(c_contiguous=self.c_contiguous, f_contiguous=self.T.c_contiguous, writeable=True)

    @property
    def T(self) -> "DeviceArray":
        return self._view(self.shape[::-1], self.strides[::-1], self.offset)

    def _view(self, shape, strides, offset) -> "DeviceArray":
        return DeviceArray(self.buffer, shape, self.dtype, strides, offset, self.device, self.ptr)

    def __getitem__(self, index) -> "DeviceArray":
        """Integer indices on the leading axes (the batch loop of matmul); a None adds an axis."""
        index = index if isinstance(index, tuple) else (index,)
        shape, strides, offset, axis = [], [], self.offset, 0
        for i in index:
            if i is None:
                shape.append(1)
                strides.append(0)
                continue
            if isinstance(i, slice) and i == slice(None):
                shape.append(self.shape[axis])
                strides.append(self.strides[axis])
                axis += 1
                continue
            try:
                j = int(i)
            except TypeError:
                raise TypeError(f"index: expected integers, ':' or None on a DeviceArray, got {i!r}") from None
            n = self.shape[axis]
            if not -n <= j < n:
                raise IndexError(f"index: expected -{n} <= i < {n} on axis {axis}, got {j}")
            offset += (j % n) * self.strides[axis]
            axis += 1
        shape += self.shape[axis:]
        strides += self.strides[axis:]
        return self._view(shape, strides, offset)

    def reshape(self, *shape) -> "DeviceArray":
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        if int(np.prod(shape, dtype=np.int64)) != self.size:
            raise ValueError(f"shape: expected {self.size} elements, got {shape}")
        if not self.c_contiguous:
            raise ValueError(f"shape: a strided DeviceArray (strides {self.strides}) cannot be viewed as {shape}")
        return DeviceArray(self.buffer, shape, self.dtype, None, self.offset, self.device, self.ptr)

    def extent(self) -> Tuple[int, int]:
        """[first byte, last byte + 1) of the elements, relative to the buffer."""
        if self.size == 0:
            return self.offset, self.offset
        lo = hi = 0
        for n, s in zip(self.shape, self.strides):
            span = (n - 1) * s
            lo, hi = (lo + span, hi) if span < 0 else (lo, hi + span)
        return self.offset + lo, self.offset + hi + self.itemsize

    def __dlpack_device__(self) -> Tuple[int, int]:
        return self.device

    def __repr__(self) -> str:
        return (f"DeviceArray(shape={self.shape}, dtype={self.dtype}, strides={self.strides}, "
                f"offset={self.offset}, device={self.device}, buffer={type(self.buffer).__name__})")


def broadcast_to(x: DeviceArray, shape) -> DeviceArray:
    """A stride-0 view of x broadcast to `shape` (NumPy's rules), without copying."""
    shape = tuple(int(s) for s in shape)
    if len(shape) < x.ndim:
        raise ValueError(f"shape: cannot broadcast {x.shape} to {shape}")
    pad = len(shape) - x.ndim
    strides = []
    for i, n in enumerate(shape):
        if i < pad:
            strides.append(0)
            continue
        have = x.shape[i - pad]
        if have == n:
            strides.append(x.strides[i - pad])
        elif have == 1:
            strides.append(0)
        else:
            raise ValueError(f"shape: cannot broadcast {x.shape} to {shape}")
    return x._view(shape, strides, x.offset)


class _Module:
    """The few array functions the op layer calls through `_device.array_module` (the role
    NumPy and CuPy play for their arrays)."""

    broadcast_to = staticmethod(broadcast_to)

    @staticmethod
    def ascontiguousarray(x: DeviceArray) -> DeviceArray:
        if x.c_contiguous:
            return x
        backend = owner(x)
        make = getattr(backend, "ascontiguousarray", None)
        if make is None:
            raise TypeError(f"x: expected a C-contiguous device array (backend {backend.name!r} has no "
                            f"ascontiguousarray to make one on its device), got strides {x.strides}")
        return view(make(x))


module = _Module()

# -- registration and lookup ---------------------------------------------------------------

_lock = threading.Lock()
_types: Dict[type, Tuple[str, Optional[Callable]]] = {}


def register_array_type(cls: type, backend, view: Optional[Callable] = None) -> None:
    """Declares `cls` as an array type living on `backend`'s device (a name or a Backend):
    the op layer dispatches calls with such arrays to that backend, describing each one
    with view(x) -> DeviceArray (zero copy; not needed when cls subclasses DeviceArray)."""
    if not isinstance(cls, type):
        raise TypeError(f"cls: expected a type, got {type(cls).__name__}")
    name = getattr(backend, "name", backend)
    if not isinstance(name, str):
        raise TypeError(f"backend: expected a backend name or a Backend, got {type(backend).__name__}")
    if view is None and not issubclass(cls, DeviceArray):
        raise TypeError(f"view: expected a function returning a DeviceArray for {cls.__name__} "
                        "(only DeviceArray subclasses need none), got None")
    if view is not None and not callable(view):
        raise TypeError(f"view: expected a callable, got {type(view).__name__}")
    with _lock:
        _types[cls] = (name, view)


def unregister_array_type(cls: type) -> None:
    with _lock:
        _types.pop(cls, None)


def _registered(x):
    for klass in type(x).__mro__:
        if klass in _types:
            return _types[klass]
    return None


def _dlpack_device(x):
    fn = getattr(x, "__dlpack_device__", None)
    if fn is None or isinstance(x, np.ndarray):
        return None
    try:
        dev = fn()
        return int(dev[0]), int(dev[1])
    except Exception:  # noqa: BLE001 - a broken __dlpack_device__ is not a device array of ours
        return None


def is_foreign(x) -> bool:
    """True for a device array that is neither host memory nor CUDA: a DeviceArray, a
    registered array type, or a DLPack tensor on another device type."""
    if x is None or isinstance(x, np.ndarray):
        return False
    if isinstance(x, DeviceArray) or _registered(x) is not None:
        return True
    dev = _dlpack_device(x)
    return dev is not None and dev[0] not in _HOST_OR_CUDA


def owner(x):
    """The registered Backend that owns x's memory; TypeError naming the fix when none does."""
    from . import _ensure_loaded, _registry, get

    reg = _registered(x)
    if reg is not None:
        return get(reg[0])
    dev = x.device if isinstance(x, DeviceArray) else _dlpack_device(x)
    _ensure_loaded()
    for b in list(_registry.values()):
        if getattr(b, "dlpack_device", None) == dev:
            return b
    raise TypeError(f"{type(x).__name__}: expected an array of a registered device, got DLPack device {dev} "
                    "(declare it with Backend(..., dlpack_device=(type, id)) or "
                    "ak.backends.register_array_type)")


def view(x) -> DeviceArray:
    """x as a DeviceArray, without copying."""
    if isinstance(x, DeviceArray):
        return x
    reg = _registered(x)
    if reg is not None:
        result = reg[1](x)
    else:
        result = owner(x).view(x)
    if not isinstance(result, DeviceArray):
        raise TypeError(f"view: expected a DeviceArray describing a {type(x).__name__}, "
                        f"got {type(result).__name__}")
    return result


def _base(x: DeviceArray):
    """(what the offsets are relative to, absolute offset): the device address when both
    views have one (two DLPack capsules of the same memory), else the buffer object."""
    return (None, x.ptr) if x.ptr is not None else (id(x.buffer), 0)


def overlaps(x: DeviceArray, y: DeviceArray) -> bool:
    """Conservative: the same memory and intersecting byte ranges."""
    (bx, ox), (by, oy) = _base(x), _base(y)
    if bx != by:
        return False
    x0, x1 = x.extent()
    y0, y1 = y.extent()
    return x0 + ox < y1 + oy and y0 + oy < x1 + ox


def same_memory(x: DeviceArray, y: DeviceArray) -> bool:
    (bx, ox), (by, oy) = _base(x), _base(y)
    return bx == by and x.offset + ox == y.offset + oy and x.strides == y.strides and x.dtype == y.dtype


# -- DLPack: describing a capsule without copying ---------------------------------------------

class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", _DLDevice), ("ndim", ctypes.c_int32),
                ("dtype", _DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


_DL_CODES = {(0, 8): "i1", (0, 32): "i4", (0, 64): "i8", (1, 8): "u1", (2, 16): "f2", (2, 32): "f4", (2, 64): "f8"}


def from_dlpack_capsule(x) -> DeviceArray:
    """A DeviceArray describing x.__dlpack__() (shape, strides, dtype, data pointer). The
    capsule is kept as the view's buffer, so the producer keeps the memory alive; no byte
    is read."""
    capsule = x.__dlpack__()
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    address = get(capsule, b"dltensor")
    if not address:
        raise TypeError(f"{type(x).__name__}: expected a DLPack 'dltensor' capsule from __dlpack__()")
    t = _DLTensor.from_address(address)  # DLManagedTensor starts with its DLTensor
    if t.dtype.lanes != 1:
        raise TypeError(f"{type(x).__name__}: expected a DLPack dtype with 1 lane, got {t.dtype.lanes}")
    if (t.dtype.code, t.dtype.bits) == (4, 16):  # kDLBfloat
        from .. import _dtypes
        dtype = np.dtype(_dtypes.bfloat16)
    else:
        try:
            dtype = np.dtype(_DL_CODES[(t.dtype.code, t.dtype.bits)])
        except KeyError:
            raise TypeError(f"{type(x).__name__}: expected a numeric DLPack dtype, got code {t.dtype.code} "
                            f"bits {t.dtype.bits}") from None
    shape = [t.shape[i] for i in range(t.ndim)]
    strides = None if not t.strides else [t.strides[i] * dtype.itemsize for i in range(t.ndim)]
    # The device is the one the producer reports (dispatch went by it); the capsule's agrees
    # for a well-behaved producer.
    device = _dlpack_device(x) or (t.device.device_type, t.device.device_id)
    return DeviceArray(capsule, shape, dtype, strides, int(t.byte_offset), device, ptr=t.data)
