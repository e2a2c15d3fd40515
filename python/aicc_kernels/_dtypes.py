"""Element types: NumPy dtypes <-> the short names used in capability tables and errors."""

from __future__ import annotations

import ml_dtypes
import numpy as np

bfloat16 = np.dtype(ml_dtypes.bfloat16)
float16 = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int8 = np.dtype(np.int8)
uint8 = np.dtype(np.uint8)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)

_SHORT_NAMES = {
    float32: "f32",
    float64: "f64",
    float16: "f16",
    bfloat16: "bf16",
    int8: "s8",
    uint8: "u8",
    int32: "s32",
    int64: "s64",
}
_BY_SHORT_NAME = {v: k for k, v in _SHORT_NAMES.items()}

#: Floating-point types a GEMM / conv accepts as inputs (accumulated in f32).
FLOAT_COMPUTE = (float32, float16, bfloat16)
#: Activation types of the quantized ops.
QUANT_ACTIVATION = (uint8, int8)


def short_name(dtype) -> str:
    """'f32', 'f16', 'bf16', 's8', 'u8', 's32', ... for a supported dtype; the NumPy name otherwise."""
    dtype = np.dtype(dtype)
    name = _SHORT_NAMES.get(dtype)  # not .get(dtype, dtype.name): .name costs ~2 us per call
    return name if name is not None else dtype.name


def from_short_name(name: str) -> np.dtype:
    try:
        return _BY_SHORT_NAME[name]
    except KeyError:
        raise ValueError(f"dtype: expected one of {sorted(_BY_SHORT_NAME)}, got {name!r}") from None


def normalize(dtype, *, argument: str = "dtype") -> np.dtype:
    """np.dtype(dtype), accepting the short names and 'bfloat16'; TypeError naming `argument` otherwise."""
    if isinstance(dtype, str) and dtype in _BY_SHORT_NAME:
        return _BY_SHORT_NAME[dtype]
    if isinstance(dtype, str) and dtype == "bfloat16":
        return bfloat16
    try:
        return np.dtype(dtype)
    except Exception:  # noqa: BLE001 - np.dtype("01") raises SyntaxError, np.dtype("0\x1b") ValueError
        raise TypeError(f"{argument}: expected a dtype, got {dtype!r}") from None


def is_float(dtype) -> bool:
    dtype = np.dtype(dtype)
    return dtype == bfloat16 or np.issubdtype(dtype, np.floating)


def finfo(dtype):
    """np.finfo that also understands bfloat16."""
    dtype = np.dtype(dtype)
    return ml_dtypes.finfo(dtype) if dtype == bfloat16 else np.finfo(dtype)
