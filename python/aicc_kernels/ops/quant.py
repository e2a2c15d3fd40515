"""The quantization arguments qgemm and qconv2d share (docs/SEMANTICS.md, "INT8"): zero
points, the worst-case |x - zero_point| that bounds int32 accumulation, and the output
stage (s32, dequantized f32, or requantized s8/u8)."""

from __future__ import annotations

import numpy as np

from .. import _dtypes
from .._validation import as_array, as_int, describe

INT32_MAX = 2**31 - 1


def zero_point(value, name, dtype, n=None):
    """A scalar zero point in dtype's range, or (n=N) a per-column int array of length N."""
    info = np.iinfo(dtype)
    if n is not None and not np.isscalar(value) and not (isinstance(value, np.ndarray) and value.ndim == 0):
        arr = as_array(value, name)
        if arr.dtype.kind not in "iu":
            raise TypeError(f"{name}: expected integer zero points, got dtype {arr.dtype}")
        if arr.shape not in ((n,), (1,)):
            raise ValueError(f"{name}: expected a scalar or shape ({n},), got shape {arr.shape}")
        if arr.size and (arr.min() < info.min or arr.max() > info.max):
            raise ValueError(f"{name}: expected values in [{info.min}, {info.max}], "
                             f"got range [{arr.min()}, {arr.max()}]")
        return np.ascontiguousarray(arr, dtype=np.int32)
    return as_int(value, name, minimum=info.min, maximum=info.max)


def max_abs_offset(dtype, zero_point) -> int:
    info = np.iinfo(dtype)
    zp = np.asarray(zero_point, dtype=np.int64)
    if zp.size == 0:
        return 0
    return int(max(np.abs(info.min - zp).max(), np.abs(info.max - zp).max()))


def quant_output_stage(out_dtype, scale, out_zero_point, bias, channels: int):
    """Validates the quantized output stage shared by qgemm and qconv2d (SEMANTICS.md, "INT8").

    Returns (out dtype, scale as f32 of shape (1,) or (channels,) or None for s32,
    out zero point, bias as contiguous int32 (channels,) or None, max |bias|).
    """
    odt = _dtypes.normalize(out_dtype, argument="out_dtype")
    if odt not in (_dtypes.int32, _dtypes.int8, _dtypes.uint8, _dtypes.float32):
        raise TypeError(f"out_dtype: expected one of (s32, s8, u8, f32), got {_dtypes.short_name(odt)}")
    scale32 = None
    if odt == _dtypes.int32:
        if scale is not None:
            raise ValueError("scale: expected None for an s32 output (the accumulator is returned as is), "
                             f"got {describe(scale)}")
    else:
        if scale is None:
            raise ValueError(f"scale: expected a scalar or shape ({channels},) for out_dtype {_dtypes.short_name(odt)} "
                             "output, got None")
        try:
            scale32 = np.ascontiguousarray(np.asarray(scale, dtype=np.float32).reshape(-1))
        except (TypeError, ValueError):
            raise TypeError(f"scale: expected real numbers, got {describe(scale)}") from None
        if scale32.shape not in ((1,), (channels,)):
            raise ValueError(f"scale: expected a scalar or shape ({channels},), got shape {np.shape(scale)}")
        if not (np.isfinite(scale32).all() and (scale32 > 0).all()):
            raise ValueError("scale: expected finite positive values, got "
                             f"range [{scale32.min()}, {scale32.max()}]")
    if odt in (_dtypes.int8, _dtypes.uint8):
        ozp = zero_point(out_zero_point, "out_zero_point", odt)
    else:
        ozp = as_int(out_zero_point, "out_zero_point", minimum=0, maximum=0)
    bias32 = None
    max_bias = 0
    if bias is not None:
        bias = as_array(bias, "bias")
        if bias.dtype.kind not in "iu":
            raise TypeError(f"bias: expected an int32 array, got dtype {_dtypes.short_name(bias.dtype)}")
        if bias.shape != (channels,):
            raise ValueError(f"bias: expected shape ({channels},), got {bias.shape}")
        if bias.size and (bias.min() < -INT32_MAX - 1 or bias.max() > INT32_MAX):
            raise ValueError("bias: expected values that fit in int32, got range "
                             f"[{bias.min()}, {bias.max()}]")
        bias32 = np.ascontiguousarray(bias, dtype=np.int32)
        max_bias = int(np.abs(bias32.astype(np.int64)).max()) if channels else 0
    return odt, scale32, ozp, bias32, max_bias
