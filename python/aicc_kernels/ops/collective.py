"""allreduce, reduce_scatter, all_gather, broadcast: validation, output allocation and
the call into the communicator (comm=None: ak.collective.default_communicator()).

Inputs may be any shape; the collectives work on the C-order elements. Non-contiguous
inputs are copied once; a non-contiguous `out` receives a copy of the result.
"""

from __future__ import annotations

import numpy as np

from .. import _dtypes
from .. import collective as _collective
from .._validation import as_array, check_out, describe, is_choice

DTYPES = (_dtypes.float32, _dtypes.float64, _dtypes.float16, _dtypes.bfloat16, _dtypes.int32, _dtypes.int64,
          _dtypes.int8)
_DTYPE_SET = frozenset(DTYPES)
_FLOAT = frozenset((_dtypes.float32, _dtypes.float64, _dtypes.float16, _dtypes.bfloat16))
OPS = ("sum", "avg", "max", "min")
_FAST_OPS = frozenset(OPS)
COMPRESSIONS = (None, "fp16", "bf16", "int8")


def _comm(comm):
    if comm is None:
        return _collective.default_communicator()
    if not isinstance(comm, _collective.Communicator):
        raise TypeError(f"comm: expected an aicc_kernels.collective.Communicator or None, got {describe(comm)}")
    return comm


def _input(x, name="x"):
    if type(x) is not np.ndarray or x.dtype not in _DTYPE_SET:  # noqa: E721 - fast path for plain arrays
        x = as_array(x, name)
        if x.dtype not in _DTYPE_SET:
            names = ", ".join(_dtypes.short_name(d) for d in DTYPES)
            raise TypeError(f"{name}: expected dtype in ({names}), got {_dtypes.short_name(x.dtype)}")
    return x if x.flags.c_contiguous else np.ascontiguousarray(x)


def _op(op, dtype):
    if not is_choice(op, OPS):
        raise ValueError(f"op: expected one of {OPS}, got {op!r}")
    if op == "avg" and dtype not in _FLOAT:
        raise TypeError(f"op: expected 'sum', 'max' or 'min' for integer dtypes, got 'avg' over "
                        f"{_dtypes.short_name(dtype)} (integer averages are not defined here)")


def _finish(result, out):
    """result is contiguous; copy into a non-contiguous caller `out` when needed."""
    if out is not None and result is not out:
        out[...] = result
        return out
    return result


def _output(out, shape, dtype, x):
    """(buffer the kernel writes, caller's out or None)."""
    if out is None:
        return np.empty(shape, dtype=dtype), None
    check_out(out, "out", shape, dtype, inputs=(("x", x),))
    if out.flags.c_contiguous:
        return out, None
    return np.empty(shape, dtype=dtype), out


def _plain_out(out, x) -> bool:
    """out can take the result directly: same shape and dtype, contiguous, writeable, disjoint."""
    return (type(out) is np.ndarray and out.shape == x.shape and out.dtype == x.dtype and out.flags.c_contiguous
            and out.flags.writeable and not np.may_share_memory(out, x))


def allreduce(x, op="sum", *, comm=None, compression=None, out=None):
    """Elementwise reduction of x over every rank; every rank receives the same bits.

    op: "sum" | "avg" | "max" | "min" (avg: floating-point dtypes only).
    dtypes: f32, f64, f16, bf16 (reduced in f32, rounded once per reduction step),
    s32, s64, s8 (wrap-around sums, like NumPy).
    compression: None | "fp16" | "bf16" | "int8": the wire format for f32 input (int8:
    256-value blocks with one f32 scale; error bound in docs/COLLECTIVES.md).
    out: x itself (in place) or an array of x's shape and dtype.
    """
    c = _comm(comm)
    if (compression is None and type(x) is np.ndarray and x.dtype in _DTYPE_SET and x.flags.c_contiguous
            and isinstance(op, str) and op in _FAST_OPS and (op != "avg" or x.dtype in _FLOAT)):
        # The common case, checked in about a microsecond (small-message latency); any
        # other argument takes the general path below, which also words the errors.
        if out is None or (out is x and x.flags.writeable) or _plain_out(out, x):
            if out is None:
                out = np.empty_like(x)
            c._allreduce(x, out, op, None)
            return out
    xin = _input(x)
    _op(op, xin.dtype)
    if not is_choice(compression, COMPRESSIONS):
        raise ValueError(f"compression: expected one of {COMPRESSIONS}, got {compression!r}")
    if compression is not None and xin.dtype != _dtypes.float32:
        raise TypeError(f"compression: expected None for {_dtypes.short_name(xin.dtype)} input "
                        f"(compression applies to f32), got {compression!r}")
    if out is not None and out is x:  # in place
        if not x.flags.writeable:
            raise ValueError("out: expected a writeable array, got a read-only one")
        c._allreduce(xin, xin, op, compression)
        if xin is not x:
            x[...] = xin
        return x
    buf, caller = _output(out, xin.shape, xin.dtype, x)
    c._allreduce(xin, buf, op, compression)
    return _finish(buf, caller)


def _partition(rows: int, size: int):
    base, extra = divmod(rows, size)
    bounds = [0]
    for r in range(size):
        bounds.append(bounds[-1] + base + (1 if r < extra else 0))
    return bounds


def reduce_scatter(x, op="sum", *, comm=None, out=None):
    """Reduces x over every rank and gives rank r part r of the result, split along axis 0
    like np.array_split: the first (rows % size) ranks get one row more. x must be at
    least 1-D and have the same shape on every rank."""
    c = _comm(comm)
    x = _input(x)
    if x.ndim < 1:
        raise ValueError("x: expected an array with at least 1 dimension, got a 0-d array")
    _op(op, x.dtype)
    bounds = _partition(x.shape[0], c.size)
    row = int(np.prod(x.shape[1:], dtype=np.int64))
    offsets = [b * row for b in bounds]
    shape = (bounds[c.rank + 1] - bounds[c.rank],) + x.shape[1:]
    buf, caller = _output(out, shape, x.dtype, x)
    c._reduce_scatter(x, buf, offsets, op)
    return _finish(buf, caller)


def all_gather(x, *, comm=None, out=None):
    """Concatenates every rank's x (same shape everywhere) along axis 0, in rank order;
    a 0-d x gives a 1-D result of length size."""
    c = _comm(comm)
    x = _input(x)
    shape = (c.size * x.shape[0],) + x.shape[1:] if x.ndim else (c.size,)
    buf, caller = _output(out, shape, x.dtype, x)
    c._all_gather(x, buf)
    return _finish(buf, caller)


def broadcast(x, root=0, *, comm=None):
    """Copies root's x into x on every rank, in place, and returns x. x must have the
    same shape and dtype on every rank and be writeable."""
    c = _comm(comm)
    from .._validation import as_int

    root = as_int(root, "root", minimum=0, maximum=c.size - 1)
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x: expected a numpy.ndarray (broadcast writes into it), got {describe(x)}")
    if x.dtype not in _DTYPE_SET:
        _input(x)
    if not x.flags.writeable:
        raise ValueError("x: expected a writeable array, got a read-only one")
    if x.flags.c_contiguous:
        c._broadcast(x, root)
        return x
    tmp = np.ascontiguousarray(x)
    c._broadcast(tmp, root)
    x[...] = tmp
    return x


def barrier(*, comm=None):
    """Returns once every rank has called barrier."""
    _comm(comm).barrier()
