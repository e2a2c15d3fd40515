"""Reference GEMM kernels: the specification every backend is tested against.

Each function here is the reference backend's implementation of one entry of the op
surface (docs/PORTING.md): arguments arrive validated and normalized by
aicc_kernels.ops, and the result is written into `out`. Arithmetic is exact or float64
(int64 for integers), rounded once at the end, so the reference has no error of its own
worth speaking of next to the tolerances in aicc_kernels.testing.tolerance.
"""

from __future__ import annotations

import numpy as np

from .. import _dtypes
from ._epilogue import activation as apply_activation
from ._epilogue import cast_float


def _matmul_f64(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a64 = a.astype(np.float64)
    b64 = b.astype(np.float64)
    if np.isfinite(a64).all() and np.isfinite(b64).all():
        return a64 @ b64
    # Non-finite inputs: a plain sum of products, so that inf * 0 gives NaN wherever it
    # occurs (some BLAS kernels skip zero operands and would hide it).
    with np.errstate(invalid="ignore", over="ignore"):
        return np.einsum("ik,kj->ij", a64, b64, optimize=False)


def gemm_kernel(a, b, c, out, *, alpha=1.0, beta=0.0, bias=None, activation=None) -> None:
    """out = cast(activation(alpha * (a @ b) + beta * c + bias)); beta == 0 never reads c."""
    with np.errstate(invalid="ignore", over="ignore"):
        y = _matmul_f64(a, b) * float(alpha)
        if beta != 0.0:
            y = y + float(beta) * np.asarray(c).astype(np.float64)
        if bias is not None:
            y = y + np.asarray(bias).astype(np.float64)[None, :]
    y = apply_activation(y, activation)
    out[...] = cast_float(y, out.dtype)


def _per_column(value, n: int, dtype) -> np.ndarray:
    arr = np.asarray(value, dtype=dtype)
    return np.broadcast_to(arr.reshape(-1), (n,)) if arr.size == 1 else arr.reshape(n)


def qgemm_accumulate(a, b, *, a_zero_point=0, b_zero_point=0, bias=None) -> np.ndarray:
    """The exact int64 accumulator: sum_k (a - za) (b - zb[j]) + bias[j]."""
    n = b.shape[1]
    a64 = a.astype(np.int64) - int(a_zero_point)
    b64 = b.astype(np.int64) - _per_column(b_zero_point, n, np.int64)[None, :]
    acc = a64 @ b64
    if bias is not None:
        acc = acc + np.asarray(bias, dtype=np.int64)[None, :]
    return acc


def requantize(acc: np.ndarray, out_dtype, *, scale=None, out_zero_point=0, activation=None, residual=None,
               residual_scale=1.0, residual_zero_point=0) -> np.ndarray:
    """The quantized output stage (SEMANTICS.md "INT8"), from an exact int64 accumulator.

    s32: acc (relu: max(acc, 0)).
    f32: f32(acc) * f32(scale[j]), one f32 multiply (relu after).
    s8/u8: saturate(rint_half_even(f32(acc) * f32(scale[j])) + out_zero_point); relu clamps
           at out_zero_point, the quantized zero.
    residual (u8/s8, acc's shape; s8/u8/f32 outputs only): after the scale multiply,
           v = v + f32(residual_scale) * f32(residual - residual_zero_point), a multiply and
           an add, each rounded once to f32 (no fused multiply-add), then as above.
    """
    out_dtype = np.dtype(out_dtype)
    n = acc.shape[-1]
    if out_dtype == _dtypes.int32:
        if residual is not None:
            raise ValueError("residual: expected None for an s32 output (no scale to add it under)")
        result = np.maximum(acc, 0) if activation == "relu" else acc
        return result.astype(np.int32)
    scale32 = _per_column(scale, n, np.float32)
    with np.errstate(over="ignore"):
        scaled = acc.astype(np.float32) * scale32  # float32 x float32 -> float32, one rounding
        if residual is not None:
            # r - zr is an integer in [-255, 255]: exact in f32. Then one f32 multiply, one f32 add.
            offset = (np.asarray(residual).astype(np.int32) - int(residual_zero_point)).astype(np.float32)
            scaled = scaled + np.float32(residual_scale) * offset
    if out_dtype == _dtypes.float32:
        return np.maximum(scaled, np.float32(0)) if activation == "relu" else scaled
    info = np.iinfo(out_dtype)
    lowest = max(info.min, int(out_zero_point)) if activation == "relu" else info.min
    rounded = np.rint(scaled).astype(np.float64) + int(out_zero_point)
    return np.clip(rounded, lowest, info.max).astype(out_dtype)


def qgemm_kernel(a, b, out, *, a_zero_point=0, b_zero_point=0, scale=None, bias=None,
                 out_zero_point=0, activation=None) -> None:
    acc = qgemm_accumulate(a, b, a_zero_point=a_zero_point, b_zero_point=b_zero_point, bias=bias)
    out[...] = requantize(acc, out.dtype, scale=scale, out_zero_point=out_zero_point,
                          activation=activation)
