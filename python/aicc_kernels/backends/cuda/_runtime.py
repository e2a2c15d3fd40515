"""CUDA runtime plumbing shared by the backend's GEMM and convolution kernels: the
extension, availability, CuPy streams and devices, argument checks, output targets and
the kernel-path switch (tensor cores or SIMT)."""

from __future__ import annotations

import importlib.util

from ... import _device, _dtypes

_ACT = {None: 0, "relu": 1, "gelu": 2}

try:
    from ... import _aicc_cuda as _ext
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
