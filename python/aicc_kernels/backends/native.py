"""Loads a backend written in C or C++ against csrc/include/aicc/backend.h.

    import aicc_kernels as ak
    ak.backends.native.load("/path/to/libmychip_backend.so")      # registers "mychip"

The library exports `const aicc_backend_descriptor* aicc_backend_v1(void)`; each table
entry becomes a kernel of a Python Backend, called through ctypes (which releases the GIL
for the call). The op layer has already validated the arguments and allocated `out`;
this module only turns NumPy arrays into the ABI's views and statuses into exceptions
(AICC_STATUS_UNSUPPORTED -> KernelUnsupported: fallback= applies, the runner reports the
case as unsupported). ABI versions 1 (gemm, qgemm) and 2 (+ conv ops, collectives on a
communicator the library creates) load. Host-memory backends only (descriptor device
"cpu"): a device-memory backend wraps its table in a Backend subclass that also provides
empty/asarray/accepts (backends/device.py).
"""

from __future__ import annotations

import ctypes
from typing import Dict, Optional

import numpy as np

from .. import _dtypes
from . import register as _register
from .base import Backend, KernelUnsupported

ABI_VERSION = 2
SUPPORTED_ABI_VERSIONS = (1, 2)
ENTRY_SYMBOL = "aicc_backend_v1"
_OPS = {0: "gemm", 1: "qgemm", 2: "conv2d", 3: "conv2d_backward_data", 4: "conv2d_backward_weight",
        5: "qconv2d", 6: "allreduce", 7: "reduce_scatter", 8: "all_gather", 9: "broadcast"}
_V1_OPS = ("gemm", "qgemm")
_REDUCE = {"sum": 0, "avg": 1, "max": 2, "min": 3}
_DTYPE_CODES = {"f32": 0, "f64": 1, "f16": 2, "bf16": 3, "s8": 4, "u8": 5, "s32": 6, "s64": 7}
_DTYPE_NAMES = {v: k for k, v in _DTYPE_CODES.items()}
_ACTIVATIONS = {None: 0, "relu": 1, "gelu": 2}
_STATUS = {1: ValueError, 2: KernelUnsupported, 3: RuntimeError}


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


class BackendDescriptorV1(ctypes.Structure):
    _fields_ = [("abi_version", ctypes.c_uint32), ("name", ctypes.c_char_p), ("device", ctypes.c_char_p),
                ("context", ctypes.c_void_p), ("kernels", ctypes.POINTER(KernelEntry)),
                ("num_kernels", ctypes.c_size_t)]


_P = ctypes.POINTER
CommCreateFn = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_int32, _P(ctypes.c_void_p), _P(KernelError))
CommDestroyFn = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)


class BackendDescriptor(ctypes.Structure):  # ABI 2: v1's fields, then the communicator hooks
    _fields_ = BackendDescriptorV1._fields_ + [("comm_create", ctypes.c_void_p), ("comm_destroy", ctypes.c_void_p)]


class Tensor4dView(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("dtype", ctypes.c_int32), ("shape", ctypes.c_int64 * 4),
                ("strides", ctypes.c_int64 * 4)]


class ConvGeometry(ctypes.Structure):
    _fields_ = [("stride", ctypes.c_int64 * 2), ("padding", ctypes.c_int64 * 4), ("dilation", ctypes.c_int64 * 2),
                ("groups", ctypes.c_int64), ("layout", ctypes.c_int32)]


class Conv2dParams(ctypes.Structure):
    _fields_ = [("geometry", ConvGeometry), ("bias", ctypes.c_void_p), ("activation", ctypes.c_int32)]


class QConv2dParams(ctypes.Structure):
    _fields_ = [("geometry", ConvGeometry), ("x_zero_point", ctypes.c_int32), ("w_zero_point", ctypes.c_void_p),
                ("scale", ctypes.c_void_p), ("bias", ctypes.c_void_p), ("out_zero_point", ctypes.c_int32),
                ("activation", ctypes.c_int32)]


class BufferView(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("dtype", ctypes.c_int32), ("count", ctypes.c_int64)]


class CollectiveParams(ctypes.Structure):
    _fields_ = [("op", ctypes.c_int32), ("root", ctypes.c_int32)]

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


Conv2dKernelFn = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, _P(Tensor4dView), _P(Tensor4dView),
                                  _P(Tensor4dView), _P(Conv2dParams), _P(KernelError))
QConv2dKernelFn = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, _P(Tensor4dView), _P(Tensor4dView),
                                   _P(Tensor4dView), _P(QConv2dParams), _P(KernelError))
CollectiveKernelFn = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32,
                                      _P(BufferView), _P(BufferView), _P(CollectiveParams), _P(KernelError))


def _tensor(x: np.ndarray) -> Tensor4dView:
    x = np.ascontiguousarray(x) if not x.flags.c_contiguous else x  # the op layer already made them contiguous
    return Tensor4dView(x.ctypes.data, _DTYPE_CODES[_dtypes.short_name(x.dtype)], (ctypes.c_int64 * 4)(*x.shape),
                        (ctypes.c_int64 * 4)(*(s // x.itemsize for s in x.strides)))


def _geometry(stride, padding, dilation, groups, layout) -> ConvGeometry:
    (top, bottom), (left, right) = padding
    return ConvGeometry((ctypes.c_int64 * 2)(*stride), (ctypes.c_int64 * 4)(top, bottom, left, right),
                        (ctypes.c_int64 * 2)(*dilation), groups, {"NCHW": 0, "NHWC": 1}[layout])


def _conv2d_kernel(fn, context, where):
    def conv2d(x, w, bias, out, *, stride, padding, dilation, groups, layout, activation=None, scale=None,
               residual=None):
        if scale is not None or residual is not None:
            # The C ABI's Conv2dParams carries bias and activation only.
            raise KernelUnsupported(f"{where}: the C backend ABI has no fused scale / residual epilogue")
        xv, wv, ov = _tensor(x), _tensor(w), _tensor(out)
        params = Conv2dParams(_geometry(stride, padding, dilation, groups, layout), _ptr(bias),
                              _ACTIVATIONS[activation])
        error = KernelError()
        _check(fn(context, ctypes.byref(xv), ctypes.byref(wv), ctypes.byref(ov), ctypes.byref(params),
                  ctypes.byref(error)), error, where)

    return conv2d


def _conv2d_backward_kernel(fn, context, where):
    def backward(first, second, out, *, stride, padding, dilation, groups, layout):
        fv, sv, ov = _tensor(first), _tensor(second), _tensor(out)
        params = Conv2dParams(_geometry(stride, padding, dilation, groups, layout), None, 0)
        error = KernelError()
        _check(fn(context, ctypes.byref(fv), ctypes.byref(sv), ctypes.byref(ov), ctypes.byref(params),
                  ctypes.byref(error)), error, where)

    return backward


def _qconv2d_kernel(fn, context, where):
    def qconv2d(x, w, bias, out, *, x_zero_point, w_zero_point, scale, out_zero_point, activation,
                stride, padding, dilation, groups, layout, residual=None, residual_scale=1.0,
                residual_zero_point=0):
        if residual is not None:
            # The C ABI's QConv2dParams has no residual term.
            raise KernelUnsupported(f"{where}: the C backend ABI has no fused residual in the INT8 output stage")
        xv, wv, ov = _tensor(x), _tensor(w), _tensor(out)
        params = QConv2dParams(_geometry(stride, padding, dilation, groups, layout), int(x_zero_point),
                               _ptr(w_zero_point), _ptr(scale), _ptr(bias), int(out_zero_point),
                               _ACTIVATIONS[activation])
        error = KernelError()
        _check(fn(context, ctypes.byref(xv), ctypes.byref(wv), ctypes.byref(ov), ctypes.byref(params),
                  ctypes.byref(error)), error, where)

    return qconv2d


class _Communicators:
    """The library's communicators, one per rank count, made on first use with its
    comm_create and released with comm_destroy when the backend is collected."""

    def __init__(self, desc, context, where):
        self.create = CommCreateFn(desc.comm_create) if desc.comm_create else None
        self.destroy = CommDestroyFn(desc.comm_destroy) if desc.comm_destroy else None
        self.context, self.where, self.comms = context, where, {}

    def get(self, nranks: int):
        if nranks not in self.comms:
            comm = ctypes.c_void_p()
            if self.create is not None:
                error = KernelError()
                _check(self.create(self.context, nranks, ctypes.byref(comm), ctypes.byref(error)), error,
                       f"{self.where} comm_create")
            self.comms[nranks] = comm
        return self.comms[nranks]

    def __del__(self):
        if self.destroy is not None:
            for comm in self.comms.values():
                self.destroy(self.context, comm)


def _buffers(arrays):
    views = (BufferView * len(arrays))()
    for i, x in enumerate(arrays):
        if not x.flags.c_contiguous:
            raise ValueError(f"inputs[{i}]: expected a contiguous buffer, got strides {x.strides}")
        views[i] = BufferView(x.ctypes.data, _DTYPE_CODES[_dtypes.short_name(x.dtype)], x.size)
    return views


def _collective_kernel(fn, context, where, comms, op_name):
    def collective(inputs, outputs, *, op="sum", root=0):
        inputs = [np.ascontiguousarray(x) for x in inputs]
        params = CollectiveParams(_REDUCE[op], int(root))
        error = KernelError()
        _check(fn(context, comms.get(len(inputs)), len(inputs), _buffers(inputs), _buffers(outputs),
                  ctypes.byref(params), ctypes.byref(error)), error, where)

    collective.__name__ = op_name
    return collective


_FN_TYPES = {"gemm": (GemmKernelFn, _gemm_kernel), "qgemm": (QGemmKernelFn, _qgemm_kernel),
             "conv2d": (Conv2dKernelFn, _conv2d_kernel),
             "conv2d_backward_data": (Conv2dKernelFn, _conv2d_backward_kernel),
             "conv2d_backward_weight": (Conv2dKernelFn, _conv2d_backward_kernel),
             "qconv2d": (QConv2dKernelFn, _qconv2d_kernel)}
_COLLECTIVES = ("allreduce", "reduce_scatter", "all_gather", "broadcast")
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
    entry.restype = ctypes.c_void_p
    entry.argtypes = []
    address = entry()
    if not address:
        raise ValueError(f"path: expected {ENTRY_SYMBOL}() to return a descriptor, got NULL from {path}")
    version = ctypes.c_uint32.from_address(address).value  # first field of every ABI version
    if version not in SUPPORTED_ABI_VERSIONS:
        raise ValueError(f"path: expected backend ABI version {' or '.join(map(str, SUPPORTED_ABI_VERSIONS))}, "
                         f"got {version} from {path}")
    # A version-1 descriptor ends at num_kernels: read only the fields it has.
    desc = (BackendDescriptor if version >= 2 else BackendDescriptorV1).from_address(address)
    device = (desc.device or b"cpu").decode()
    if device != "cpu":
        raise ValueError(f"path: expected a host-memory backend (device 'cpu'), got device {device!r}; "
                         "device-memory backends need a Backend subclass with empty/asarray/accepts")
    backend_name = name or (desc.name or b"").decode()
    backend = Backend(backend_name, device, description=f"native backend (ABI {version}) from {path}")
    comms = _Communicators(desc, desc.context, backend_name) if version >= 2 else None
    backend._native_communicators = comms  # lives (and destroys its communicators) with the backend
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
        if version < 2 and op not in _V1_OPS:
            raise ValueError(f"path: expected ops {list(_V1_OPS)} in an ABI 1 descriptor, got {op} in entry {i} "
                             f"of {path} (set abi_version = AICC_BACKEND_ABI_VERSION)")
        where = f"{backend_name} {op} {'/'.join(combo)}"
        if op in _COLLECTIVES:
            backend.add_kernel(op, combo, _collective_kernel(CollectiveKernelFn(e.fn), desc.context, where, comms, op))
            continue
        fn_type, wrap = _FN_TYPES[op]
        backend.add_kernel(op, combo, wrap(fn_type(e.fn), desc.context, where))
    _loaded[str(path)] = lib
    if register:
        _register(backend, replace=replace)
    return backend
