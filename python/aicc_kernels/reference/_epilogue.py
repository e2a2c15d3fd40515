"""Epilogue pieces of the reference: activations and the final casts, in float64."""

from __future__ import annotations

import math

import numpy as np

from .. import _dtypes

_erf = np.vectorize(math.erf, otypes=[np.float64])


def activation(x: np.ndarray, name) -> np.ndarray:
    """relu(x) = max(x, 0) (NaN stays NaN); gelu(x) = x/2 * (1 + erf(x / sqrt(2))), the exact form."""
    if name is None:
        return x
    if name == "relu":
        return np.where(np.isnan(x), x, np.maximum(x, 0.0))
    if name == "gelu":
        with np.errstate(invalid="ignore", over="ignore"):
            y = 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))
        # x = -inf: 0.5 * -inf * (1 + -1) is nan in float arithmetic; the limit is 0.
        return np.where(np.isneginf(x), 0.0, y)
    raise ValueError(f"activation: expected one of (None, 'relu', 'gelu'), got {name!r}")


def cast_float(x64: np.ndarray, dtype) -> np.ndarray:
    """Round float64 to the output type. Through f32 first: the kernels hold f32 values
    and round them once to f16 / bf16; doing the same here keeps the reference's rounding
    path identical to the contract (SEMANTICS.md: "rounded once from the f32 result")."""
    with np.errstate(over="ignore", invalid="ignore"):
        x32 = x64.astype(np.float32)
        return x32 if np.dtype(dtype) == _dtypes.float32 else x32.astype(dtype)


def round_half_even_f32(x32: np.ndarray) -> np.ndarray:
    """np.rint in float32: round half to even, as the CPU's default rounding mode does."""
    return np.rint(x32.astype(np.float32))
