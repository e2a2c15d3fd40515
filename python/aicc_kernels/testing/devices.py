"""Moving test data to the backend under test and back, so one property test runs
unchanged on host and device backends.

    case = to_device(case, backend)      # numpy arrays -> CuPy when backend == "cuda"
    out = to_host(ak.gemm(**case, backend=backend))

Non-array values (scalars, None, strings, dtypes) pass through; dicts, lists and tuples
are converted element-wise. CuPy has no bfloat16: a bf16 operand skips the test, except
under the dict keys in `bf16_as_f32` (default "c" and "bias": epilogue inputs every kernel
reads as f32), which travel as their exact f32 values. Strided NumPy views stay strided views on the device (same
element strides), so the device kernels see the layouts the host kernels see.
"""

from __future__ import annotations

import numpy as np

DEVICE_BACKENDS = ("cuda",)


def _device_copy(x: np.ndarray):
    import cupy as cp

    if x.dtype.kind not in "biuf" or x.dtype.itemsize == 0:
        raise TypeError(f"to_device: CuPy cannot hold dtype {x.dtype}")
    # Preserve the view's strides (positive ones): copy the underlying span, view it alike.
    if x.size and all(s >= 0 and s % x.itemsize == 0 for s in x.strides) and not x.flags.c_contiguous:
        span = 1 + sum((d - 1) * (s // x.itemsize) for d, s in zip(x.shape, x.strides))
        base = np.lib.stride_tricks.as_strided(x, shape=(span,), strides=(x.itemsize,))
        flat = cp.asarray(np.ascontiguousarray(base))
        return cp.lib.stride_tricks.as_strided(flat, shape=x.shape, strides=x.strides)
    return cp.asarray(x)


def to_device(value, backend, *, bf16_as_f32=("c", "bias")):
    """`value` with every NumPy array moved to the device of `backend` (a name or Backend)."""
    name = getattr(backend, "name", backend)
    if name not in DEVICE_BACKENDS:
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.name == "bfloat16":
            import pytest

            pytest.skip("CuPy has no bfloat16 arrays; the bf16 CUDA kernels are reached through DLPack")
        return _device_copy(value)
    if isinstance(value, dict):
        return {k: to_device(v.astype(np.float32) if k in bf16_as_f32 and _is_bf16(v) else v, backend)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v, backend, bf16_as_f32=bf16_as_f32) for v in value)
    return value


def _is_bf16(x) -> bool:
    return isinstance(x, np.ndarray) and x.dtype.name == "bfloat16"


def to_host(value):
    """A NumPy array for a device array (anything else unchanged)."""
    if isinstance(value, np.ndarray) or value is None:
        return value
    if hasattr(value, "__cuda_array_interface__"):
        import cupy as cp

        return cp.asnumpy(value)
    return value
