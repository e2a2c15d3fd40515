"""The collectives' specification: what every rank must receive, from the list of every
rank's input (index = rank), in float64 (floats) or exactly (integers, wrapping like the
dtype), plus the error bounds docs/COLLECTIVES.md promises, and a bit-exact NumPy model of
the INT8 block quantizer.

    ref = ak.reference.allreduce([x0, x1, x2], "sum")          # float64 for float inputs
    bound = ak.reference.allreduce_error_bound([x0, x1, x2], "sum", compression="int8")
    assert np.all(np.abs(y - ref) <= bound)
"""

from __future__ import annotations

import numpy as np

from .. import _dtypes

INT8_BLOCK = 256
_U32 = 2.0 ** -24
# unit roundoff and half the smallest subnormal of the wire / storage types
_UNIT = {"f32": (2.0 ** -24, 2.0 ** -150), "f64": (2.0 ** -53, 2.0 ** -1075), "f16": (2.0 ** -11, 2.0 ** -25),
         "bf16": (2.0 ** -8, 2.0 ** -134)}


def _stack(inputs, name="inputs"):
    if not isinstance(inputs, (list, tuple)) or not inputs:
        raise TypeError(f"{name}: expected a non-empty list of per-rank arrays, got {type(inputs).__name__}")
    arrays = [np.asarray(x) for x in inputs]
    first = arrays[0]
    for r, a in enumerate(arrays):
        if a.shape != first.shape or a.dtype != first.dtype:
            raise ValueError(f"{name}: expected every rank's array to have shape {first.shape} and dtype "
                             f"{_dtypes.short_name(first.dtype)}, got rank {r}: {a.shape} {_dtypes.short_name(a.dtype)}")
    return arrays


def allreduce(inputs, op="sum", *, compression=None):
    """The exact result: float64 arithmetic for float inputs (returned as float64; the
    implementation rounds to the dtype and stays within allreduce_error_bound), wrapping
    integer arithmetic for integer inputs (returned in their dtype, exact)."""
    arrays = _stack(inputs)
    dtype = arrays[0].dtype
    n = len(arrays)
    if _dtypes.is_float(dtype):
        stack = np.stack([a.astype(np.float64) for a in arrays])
        if op in ("sum", "avg"):
            out = stack.sum(axis=0)
            return out / n if op == "avg" else out
        if op == "max":
            return np.max(stack, axis=0)
        if op == "min":
            return np.min(stack, axis=0)
        raise ValueError(f"op: expected one of ('sum', 'avg', 'max', 'min'), got {op!r}")
    if op == "sum":
        acc = np.zeros(arrays[0].shape, dtype=np.uint64)
        for a in arrays:
            acc += a.astype(np.int64).astype(np.uint64)
        return acc.astype(dtype)  # wraps to the dtype's width like the kernels
    if op == "max":
        return np.max(np.stack(arrays), axis=0)
    if op == "min":
        return np.min(np.stack(arrays), axis=0)
    raise ValueError(f"op: expected 'sum', 'max' or 'min' for integer dtypes, got {op!r}")


def _block_max(a: np.ndarray) -> np.ndarray:
    """Per element: the largest |value| of its 256-element block of the flattened array."""
    flat = np.abs(a.astype(np.float64).reshape(-1))
    n = flat.size
    if n == 0:
        return flat.reshape(a.shape)
    pad = -n % INT8_BLOCK
    blocks = np.concatenate([flat, np.zeros(pad)]).reshape(-1, INT8_BLOCK).max(axis=1)
    return np.repeat(blocks, INT8_BLOCK)[:n].reshape(a.shape)


def allreduce_error_bound(inputs, op="sum", *, compression=None):
    """Elementwise bound on |allreduce(...) - reference.allreduce(...)| (float inputs;
    integers and max/min without compression are exact: bound 0). See docs/COLLECTIVES.md.

    Every bound ends with the final rounding to the result dtype: u |result| plus half the
    spacing of that dtype's subnormals (f16 2^-25, bf16 2^-134, f32 2^-150). That absolute
    term is never divided by the rank count for avg: the division happens before the last
    rounding, so a correctly rounded tie among subnormals (e.g. an f16 mean of 384.5 * 2^-24,
    rounded to even) errs by the full half spacing."""
    arrays = _stack(inputs)
    dtype = arrays[0].dtype
    n = len(arrays)
    shape = arrays[0].shape
    if not _dtypes.is_float(dtype):
        return np.zeros(shape)
    absum = np.sum([np.abs(a.astype(np.float64)) for a in arrays], axis=0) if arrays[0].size else np.zeros(shape)
    scale = 1.0 / n if op == "avg" else 1.0
    name = _dtypes.short_name(dtype)
    out_u, out_sub = _UNIT[name]
    if compression == "int8":
        blocks = np.sum([_block_max(a) for a in arrays], axis=0)
        return blocks * (1.0 / 127 + n * _U32) * (1 + 1e-4) * scale + out_sub
    if compression in ("fp16", "bf16"):
        u, sub = _UNIT["f16" if compression == "fp16" else "bf16"]
        # n input conversions to the wire type (scaled with the sum), then the reduced value's
        # rounding to the wire type, after the division.
        return ((2 * u + n * _U32) * absum * (1 + 2 * u) + n * sub) * scale + sub + out_sub
    if compression is not None:
        raise ValueError(f"compression: expected None, 'fp16', 'bf16' or 'int8', got {compression!r}")
    if op in ("max", "min"):
        return np.zeros(shape)
    if name in ("f16", "bf16"):
        return ((n * _U32) * absum * (1 + out_u) + out_u * absum) * scale + out_sub
    return (n * out_u * absum) * scale + out_sub


def reduce_scatter(inputs, op="sum"):
    """Per rank: its part (np.array_split along axis 0) of allreduce(inputs, op)."""
    full = allreduce(inputs, op)
    return np.array_split(full, len(inputs), axis=0)


def all_gather(inputs):
    """Every rank's input, concatenated along axis 0 in rank order (0-d inputs: stacked)."""
    arrays = _stack(inputs)
    return np.stack(arrays) if arrays[0].ndim == 0 else np.concatenate(arrays, axis=0)


def broadcast(inputs, root=0):
    """What every rank holds after broadcast: root's input."""
    arrays = _stack(inputs)
    return arrays[root].copy()


def quantize_int8_blocks(x):
    """The INT8 block quantizer, bit-exact: per 256-value block of the flattened f32 input,
    s = max|x| / 127 and q = round_half_even(x * (127 / max|x|)), clipped to [-127, 127]
    (all-zero block: s = 0, q = 0; a non-finite value makes the block's scale NaN)."""
    flat = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    n = flat.size
    nb = -(-n // INT8_BLOCK)
    q = np.zeros(n, dtype=np.int8)
    s = np.zeros(nb, dtype=np.float32)
    with np.errstate(all="ignore"):
        for b in range(nb):
            blk = flat[b * INT8_BLOCK:(b + 1) * INT8_BLOCK]
            m = np.max(np.abs(blk))
            if not np.isfinite(m):
                s[b] = np.nan
                continue
            if m == 0:
                continue
            s[b] = m / np.float32(127)
            inv = np.float32(127) / m
            q[b * INT8_BLOCK:b * INT8_BLOCK + blk.size] = np.clip(np.rint(blk * inv), -127, 127).astype(np.int8)
    return q, s


def dequantize_int8_blocks(q, s):
    q = np.asarray(q, dtype=np.int8).reshape(-1)
    return q.astype(np.float32) * np.repeat(np.asarray(s, np.float32), INT8_BLOCK)[:q.size]


def int8_allreduce_model(inputs, op="sum"):
    """The INT8-compressed allreduce, bit for bit: quantize each rank, dequantize and
    reduce in f32 in rank order (avg: then divide), requantize once, dequantize."""
    arrays = _stack(inputs)
    n = len(arrays)
    deq = [dequantize_int8_blocks(*quantize_int8_blocks(a)) for a in arrays]
    acc = deq[0].copy()
    with np.errstate(all="ignore"):
        for d in deq[1:]:
            if op in ("sum", "avg"):
                acc = acc + d
            elif op == "max":
                acc = np.where(np.isnan(acc), acc, np.where(np.isnan(d), d, np.where(acc > d, acc, d)))
            else:
                acc = np.where(np.isnan(acc), acc, np.where(np.isnan(d), d, np.where(acc < d, acc, d)))
        if op == "avg":
            acc = acc / np.float32(n)
    return dequantize_int8_blocks(*quantize_int8_blocks(acc)).reshape(arrays[0].shape)
