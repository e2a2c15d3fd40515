"""The CUDA backend (csrc/cuda/, through the _aicc_cuda extension), for CuPy arrays and
any array exposing ``__cuda_array_interface__`` or a CUDA DLPack capsule.

Registered whenever the package is importable. It is *available* only when the extension
was built, the CUDA runtime finds a device, and CuPy is installed; otherwise
`unavailable_reason` says which of these failed (e.g. the runtime's own error string,
"cudaErrorInsufficientDriver: ..." on a machine without a driver).

Stream semantics: every kernel is enqueued on CuPy's *current* stream
(``cupy.cuda.get_current_stream()``) of the current device, and the call returns without
synchronizing, as CuPy operations do. Temporaries (packed INT8 operands, padded copies)
come from CuPy's memory pool on that stream, so stream ordering keeps them alive long
enough. Results are CuPy arrays. All arrays of one call must live on the current device;
host arrays mixed with device arrays, or arrays on another device, raise TypeError /
ValueError naming the argument.

Kernel choice (docs/CUDA.md): f16/bf16 GEMM on tensor cores (mma.sync) on sm_80+, the
SIMT tiled kernel otherwise and for f32; INT8 GEMM on mma.sync m16n8k32 on sm_80+, dp4a
below.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from .. import _device, _dtypes
from . import register
from .base import Backend
from .reference import FLOAT_GEMM_COMBOS, QGEMM_COMBOS

_ACT = {None: 0, "relu": 1, "gelu": 2}

try:
    from .. import _aicc_cuda as _ext
except ImportError as exc:  # not built (no nvcc at build time, or AICC_CUDA=OFF)
    _ext = None
    _import_error = f"the _aicc_cuda extension is not built or did not import ({exc})"
else:
    _import_error = None


def unavailable_reason():
    """None when the backend can run here, else why not (extension, device, CuPy)."""
    if _ext is None:
        return _import_error
    count, why = _ext.device_count()
    if count <= 0:
        return f"no usable CUDA device ({why})"
    if importlib.util.find_spec("cupy") is None:
        return "CuPy is not installed (pip install cupy-cuda12x or cupy-cuda13x)"
    return None


def _code(dtype) -> int:
    return _ext.DTYPES[_dtypes.short_name(dtype)]


# ---- arrays ------------------------------------------------------------------------------
def _cp():
    return _device.cupy()


def _stream() -> int:
    return _cp().cuda.get_current_stream().ptr


def _current_device() -> int:
    return _cp().cuda.Device().id


def _check_device(**arrays):
    """Every device array of a call on the current device; host arrays refused by name."""
    dev = _current_device()
    for name, x in arrays.items():
        if x is None:
            continue
        if not _device.is_device_array(x):
            raise TypeError(f"{name}: expected a CUDA array on device {dev}, got a host "
                            f"{type(x).__module__}.{type(x).__name__}")
        if x.device.id != dev:
            raise ValueError(f"{name}: expected an array on the current device {dev}, got one on device "
                             f"{x.device.id} (use `with cupy.cuda.Device({x.device.id}):` or move it)")


def _elem_strides(x):
    """Strides in elements; a copy when they are not whole elements (never for CuPy's own)."""
    if any(s % x.itemsize for s in x.strides):
        x = _cp().ascontiguousarray(x)
    return x, tuple(s // x.itemsize for s in x.strides)


def _k_major(x, align_elems: int):
    """x (rows x K) as a row-major operand the tensor-core kernels can stream with 16-byte
    cp.async: unit column stride, row stride and base 16-byte aligned, K a multiple of
    align_elems. Otherwise a zero-padded copy (zeros in K add nothing to a product of
    two zero-padded operands)."""
    rows, k = x.shape
    ok = (x.strides[1] == x.itemsize and x.strides[0] > 0 and x.strides[0] % 16 == 0
          and x.data.ptr % 16 == 0 and k % align_elems == 0)
    if ok:
        return x, x.strides[0] // x.itemsize, k
    kp = -(-max(k, 1) // align_elems) * align_elems
    padded = _cp().zeros((rows, kp), dtype=x.dtype)
    padded[:, :k] = x
    return padded, kp, kp


def _out_target(out):
    """(array the kernel writes, its row stride in elements): out itself when its columns
    are unit-stride, else a contiguous temporary copied back by `_finish`."""
    if out.strides[1] == out.itemsize and out.strides[0] >= 0 and out.strides[0] % out.itemsize == 0:
        return out, out.strides[0] // out.itemsize
    tmp = _cp().empty(out.shape, dtype=out.dtype)
    return tmp, out.shape[1]


def _finish(target, out):
    if target is not out:
        out[...] = target


def _device_vector(value, n, dtype):
    """A length-n device vector from a scalar or a host/device array of shape (1,) or (n,)."""
    cp = _cp()
    arr = cp.asarray(value, dtype=dtype).reshape(-1)
    return cp.ascontiguousarray(cp.broadcast_to(arr, (n,)) if arr.size == 1 else arr)


_PATHS = ("auto", "simt")
_path = "auto"


def set_path(path: str) -> None:
    """"auto": tensor cores (mma.sync) where the GPU has them (sm_80+); "simt": always the
    CUDA-core kernels (SIMT f32 tiles, dp4a INT8), e.g. to test the fallbacks on a new GPU."""
    global _path
    if path not in _PATHS:
        raise ValueError(f"path: expected one of {_PATHS}, got {path!r}")
    _path = path


def get_path() -> str:
    return _path


def _mma_ok() -> bool:
    return _path == "auto" and _ext.compute_capability(_current_device()) >= 80


# ---- kernels -----------------------------------------------------------------------------
def _gemm(a, b, c, out, *, alpha=1.0, beta=0.0, bias=None, activation=None):
    _check_device(a=a, b=b, out=out, c=c if beta != 0.0 else None)
    m, k = a.shape
    n = b.shape[1]
    stream = _stream()
    c_ptr, c_rs, c_cs = 0, 0, 0
    if beta != 0.0:
        c32 = c if c.dtype == np.float32 else c.astype(np.float32)
        c32, (c_rs, c_cs) = _elem_strides(c32)
        c_ptr = c32.data.ptr
    bias_dev = _device_vector(bias, n, np.float32) if bias is not None else None
    bias_ptr = bias_dev.data.ptr if bias_dev is not None else 0
    target, ldo = _out_target(out)
    args = (float(alpha), float(beta), c_ptr, c_rs, c_cs, bias_ptr, _ACT[activation], target.data.ptr, ldo,
            _code(out.dtype), stream)
    if a.dtype in (_dtypes.float16, _dtypes.bfloat16) and k > 0 and _mma_ok():
        # Both come back with K = round_up(k, 8): used as is only when k is already a multiple.
        a_op, lda, kp = _k_major(a, 8)
        bt_op, ldb, _ = _k_major(b.T, 8)
        _ext.gemm_f16_mma(_code(a.dtype), a_op.data.ptr, lda, bt_op.data.ptr, ldb, m, n, kp, *args)
    else:
        a_s, (a_rs, a_cs) = _elem_strides(a)
        b_s, (b_rs, b_cs) = _elem_strides(b)
        _ext.gemm_simt(_code(a.dtype), a_s.data.ptr, a_rs, a_cs, b_s.data.ptr, b_rs, b_cs, m, n, k, *args)
    _finish(target, out)


def _pack_int8(x, rows, k, rs, cs, kp, is_u8, stream):
    cp = _cp()
    packed = cp.empty((rows, kp), dtype=np.int8)
    sums = cp.empty((rows,), dtype=np.int32)
    _ext.pack_s8_rows(x.data.ptr, is_u8, rs, cs, rows, k, kp, packed.data.ptr, sums.data.ptr, stream)
    return packed, sums


def _qgemm(a, b, out, *, a_zero_point=0, b_zero_point=0, scale=None, bias=None, out_zero_point=0,
           activation=None):
    _check_device(a=a, b=b, out=out)
    m, k = a.shape
    n = b.shape[1]
    stream = _stream()
    kp = -(-max(k, 1) // 16) * 16
    is_u8 = a.dtype == np.uint8
    a8, rowsum_a = _pack_int8(a, m, k, a.strides[0], a.strides[1], kp, is_u8, stream)
    # Bt[j, kk] = b[kk, j]: row stride = b's column stride.
    bt8, colsum_b = _pack_int8(b, n, k, b.strides[1], b.strides[0], kp, False, stream)
    za = int(a_zero_point) - (128 if is_u8 else 0)  # the zero point in the packed (shifted) domain
    zb = _device_vector(b_zero_point, n, np.int32)
    bias_dev = _device_vector(bias, n, np.int32) if bias is not None else None
    scale_dev = _device_vector(scale, n, np.float32) if scale is not None else None
    target, ldo = _out_target(out)
    _ext.qgemm_s8(a8.data.ptr, bt8.data.ptr, m, n, kp, k, rowsum_a.data.ptr, colsum_b.data.ptr, za,
                  zb.data.ptr, bias_dev.data.ptr if bias_dev is not None else 0,
                  scale_dev.data.ptr if scale_dev is not None else 0, int(out_zero_point),
                  activation == "relu", target.data.ptr, ldo, _code(out.dtype), _mma_ok(), stream)
    _finish(target, out)


_UNPROBED = object()


class CudaBackend(Backend):
    """Device "cuda": takes and returns CuPy arrays (module docstring: stream semantics).

    Availability is probed on first use of `unavailable_reason` / `available`, not at
    import: the probe initializes the CUDA driver, after which a forked child process can
    no longer use CUDA, so importing aicc_kernels must not do it."""

    _reason = _UNPROBED

    @property
    def unavailable_reason(self):
        if self._reason is _UNPROBED:
            self._reason = unavailable_reason()
        return self._reason

    @unavailable_reason.setter
    def unavailable_reason(self, value):
        self._reason = value

    def accepts(self, array) -> bool:
        return _device.is_device_array(array)

    def empty(self, shape, dtype):
        cp = _cp()
        try:
            return cp.empty(shape, dtype=dtype)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"out: expected a dtype CuPy can allocate, got {_dtypes.short_name(dtype)} "
                            f"({exc}); pass out= as a DLPack array of that dtype") from None

    def asarray(self, array):
        return _cp().asarray(array)


backend = CudaBackend("cuda", "cuda", {
    "gemm": {combo: _gemm for combo in FLOAT_GEMM_COMBOS},
    "qgemm": {combo: _qgemm for combo in QGEMM_COMBOS},
}, unavailable_reason=_UNPROBED,
    description="CUDA kernels: mma.sync tensor cores (sm_80+), SIMT / dp4a fallbacks, NCCL collectives")

from . import cuda_conv as _cuda_conv  # noqa: E402  (uses this module's helpers)

_cuda_conv.register_into(backend)
register(backend)
