"""Loads a backend written in C++ against csrc/include/aicc/backend.h.

    import aicc_kernels as ak
    ak.backends.native.load("/path/to/libmychip_backend.so")      # registers "mychip"

The library exports `extern "C" const aicc::BackendDescriptor* aicc_backend_v1()`; each
table entry becomes a kernel of a Python Backend, called through ctypes (which releases
the GIL for the call). The op layer has already validated the arguments and allocated
`out`; this module only turns NumPy arrays into aicc::MatrixView structs and statuses
into exceptions. Host-memory backends only (descriptor device "cpu"): a device-memory
backend wraps its table in a Backend subclass that also provides empty/asarray/accepts.
"""

from __future__ import annotations

import ctypes
from typing import Dict, Optional

import numpy as np

from .. import _dtypes
from . import register as _register
from .base import Backend

ABI_VERSION = 1
ENTRY_SYMBOL = "aicc_backend_v1"
_OPS = {0: "gemm", 1: "qgemm"}
_DTYPE_CODES = {"f32": 0, "f64": 1, "f16": 2, "bf16": 3, "s8": 4, "u8": 5, "s32": 6, "s64": 7}
_DTYPE_NAMES = {v: k for k, v in _DTYPE_CODES.items()}
_ACTIVATIONS = {None: 0, "relu": 1, "gelu": 2}
_STATUS = {1: ValueError, 2: NotImplementedError, 3: RuntimeError}


class MatrixView(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("dtype", ctypes.c_int32), ("rows", ctypes.c_int64),
                ("cols", ctypes.c_int64), ("row_stride", ctypes.c_int64), ("col_stride", ctypes.c_int64)]


class GemmParams(ctypes.Structure):
    _fields_ = [("alpha", ctypes.c_float), ("beta", ctypes.c_float), ("bias", ctypes.c_void_p),
                ("activation", ctypes.c_int32)]


class QGemmParams(ctypes.Structure):
    _fields_ = [("a_zero_point", ctypes.c_int32), ("b_zero_point", ctypes.c_void_p),
                ("b_zero_point_len", ctypes.c_int64), ("bias", ctypes.c_void_p), ("scale", ctypes.c_void_p),
                ("scale_len", ctypes.c_int64), ("out_zero_point", ctypes.c_int32), ("activation", ctypes.c_int32)]


class KernelError(ctypes.Structure):
    _fields_ = [("message", ctypes.c_char * 256)]


class KernelEntry(ctypes.Structure):
    _fields_ = [("op", ctypes.c_int32), ("num_dtypes", ctypes.c_int32), ("dtypes", ctypes.c_int32 * 4),
                ("fn", ctypes.c_void_p)]


class BackendDescriptor(ctypes.Structure):
    _fields_ = [("abi_version", ctypes.c_uint32), ("name", ctypes.c_char_p), ("device", ctypes.c_char_p),
                ("context", ctypes.c_void_p), ("kernels", ctypes.POINTER(KernelEntry)),
                ("num_kernels", ctypes.c_size_t)]


_P = ctypes.POINTER
GemmKernelFn = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, _P(MatrixView), _P(MatrixView), _P(MatrixView),
                                _P(MatrixView), _P(GemmParams), _P(KernelError))
QGemmKernelFn = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, _P(MatrixView), _P(MatrixView), _P(MatrixView),
                                 _P(QGemmParams), _P(KernelError))


def _view(x: np.ndarray) -> MatrixView:
    itemsize = x.itemsize
    return MatrixView(x.ctypes.data, _DTYPE_CODES[_dtypes.short_name(x.dtype)], x.shape[0], x.shape[1],
                      x.strides[0] // itemsize, x.strides[1] // itemsize)


def _ptr(x: Optional[np.ndarray]):
    return None if x is None else x.ctypes.data


def _check(status: int, error: KernelError, where: str) -> None:
    if status != 0:
        message = error.message.decode(errors="replace") or f"{where}: kernel failed with status {status}"
        raise _STATUS.get(status, RuntimeError)(message)


def _gemm_kernel(fn, context, where):
    def gemm(a, b, c, out, *, alpha=1.0, beta=0.0, bias=None, activation=None):
        av, bv, ov = _view(a), _view(b), _view(out)
        cv = _view(c) if c is not None else None
        params = GemmParams(alpha, beta, _ptr(bias), _ACTIVATIONS[activation])
        error = KernelError()
        status = fn(context, ctypes.byref(av), ctypes.byref(bv), ctypes.byref(cv) if cv is not None else None,
                    ctypes.byref(ov), ctypes.byref(params), ctypes.byref(error))
        _check(status, error, where)

    return gemm


def _qgemm_kernel(fn, context, where):
    def qgemm(a, b, out, *, a_zero_point=0, b_zero_point=0, scale=None, bias=None, out_zero_point=0,
              activation=None):
        zb = np.ascontiguousarray(np.asarray(b_zero_point, dtype=np.int32).reshape(-1))
        av, bv, ov = _view(a), _view(b), _view(out)
        params = QGemmParams(int(a_zero_point), _ptr(zb), zb.size, _ptr(bias), _ptr(scale),
                             0 if scale is None else scale.size, int(out_zero_point), _ACTIVATIONS[activation])
        error = KernelError()
        status = fn(context, ctypes.byref(av), ctypes.byref(bv), ctypes.byref(ov), ctypes.byref(params),
                    ctypes.byref(error))
        _check(status, error, where)

    return qgemm


_FN_TYPES = {"gemm": (GemmKernelFn, _gemm_kernel), "qgemm": (QGemmKernelFn, _qgemm_kernel)}
_loaded: Dict[str, ctypes.CDLL] = {}  # keeps libraries loaded for the life of the process


def load(path: str, *, name: Optional[str] = None, register: bool = True, replace: bool = False) -> Backend:
    """The Backend described by the shared library at `path` (registered unless register=False).

    name: registry name (default: the descriptor's name). Entries for ops this Python
    package does not know are refused with an error naming them.
    """
    lib = ctypes.CDLL(str(path))
    try:
        entry = getattr(lib, ENTRY_SYMBOL)
    except AttributeError:
        raise ValueError(f"path: expected a library exporting {ENTRY_SYMBOL}() (aicc/backend.h), "
                         f"got {path} without it") from None
    entry.restype = ctypes.POINTER(BackendDescriptor)
    entry.argtypes = []
    desc_ptr = entry()
    if not desc_ptr:
        raise ValueError(f"path: expected {ENTRY_SYMBOL}() to return a descriptor, got NULL from {path}")
    desc = desc_ptr.contents
    if desc.abi_version != ABI_VERSION:
        raise ValueError(f"path: expected backend ABI version {ABI_VERSION}, got {desc.abi_version} from {path}")
    device = (desc.device or b"cpu").decode()
    if device != "cpu":
        raise ValueError(f"path: expected a host-memory backend (device 'cpu'), got device {device!r}; "
                         "device-memory backends need a Backend subclass with empty/asarray/accepts")
    backend_name = name or (desc.name or b"").decode()
    backend = Backend(backend_name, device, description=f"C++ backend from {path}")
    for i in range(desc.num_kernels):
        e = desc.kernels[i]
        op = _OPS.get(e.op)
        if op is None:
            raise ValueError(f"path: expected kernels for ops {sorted(_OPS.values())}, got op code {e.op} "
                             f"in entry {i} of {path} (a newer backend.h?)")
        if not 0 < e.num_dtypes <= 4 or any(e.dtypes[j] not in _DTYPE_NAMES for j in range(e.num_dtypes)):
            raise ValueError(f"path: expected 1 to 4 known dtype codes in entry {i} ({op}) of {path}, "
                             f"got {list(e.dtypes)[:max(0, min(e.num_dtypes, 4))]} (num_dtypes={e.num_dtypes})")
        combo = tuple(_DTYPE_NAMES[e.dtypes[j]] for j in range(e.num_dtypes))
        fn_type, wrap = _FN_TYPES[op]
        fn = fn_type(e.fn)
        backend.add_kernel(op, combo, wrap(fn, desc.context, f"{backend_name} {op} {'/'.join(combo)}"))
    _loaded[str(path)] = lib
    if register:
        _register(backend, replace=replace)
    return backend
