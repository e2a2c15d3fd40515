"""matmul, gemm and qgemm: validation, output allocation and backend dispatch.

Every check happens here, once; backends receive arrays they can use as they are
(docs/PORTING.md lists what a kernel may assume).
"""

from __future__ import annotations

import math

import numpy as np

from .. import _device, _dtypes, backends
from .._validation import (as_array, as_flag, as_float, check_activation, check_dtype, check_ndim, check_out,
                           float_out_choices)
from .quant import INT32_MAX, max_abs_offset, quant_output_stage, zero_point



def _kernel_view(x: np.ndarray) -> np.ndarray:
    """Strided views go to the kernels as they are (the packers read any non-negative
    strides); negative or non-element-multiple strides are copied once (documented in
    SEMANTICS.md, "Layouts")."""
    if any(s < 0 or s % x.itemsize for s in x.strides):
        # A fresh copy, not np.ascontiguousarray: that returns a size-1 reversed view as it is
        # (NumPy calls it contiguous), negative stride and all.
        return x.copy(order="C")
    return x


# The common call — plain NumPy operands, no backend= / fallback=, a fresh output — goes straight
# to the CPU extension: the generic dispatch (device lookup, combo parsing, backend tables) costs
# 10-50 us per call, as much as a 128^3 GEMM. Only calls the generic path would send to the cpu
# backend with exactly these arguments take it, and every check it skips is one those calls
# cannot fail (the dtypes, ranks and shapes are checked here first).
_FAST_FLOAT = frozenset(np.dtype(d) for d in (np.float32, np.float16, _dtypes.bfloat16))
_FAST_QUANT = frozenset(np.dtype(d) for d in (np.uint8, np.int8))


_CPU_MODULE = []


def _fast_ext():
    """The extension module when the cpu backend is what a NumPy call gets, else None."""
    cpu = backends._registry.get("cpu")
    if cpu is None or not cpu.available:
        return None
    if not _CPU_MODULE:
        from ..backends import cpu as cpu_module

        _CPU_MODULE.append(cpu_module)
    return _CPU_MODULE[0]._ext if cpu is _CPU_MODULE[0].backend else None


def _fast_float(a, b, alpha, out=None):
    """alpha * a @ b for 2-D same-dtype float ndarrays, into `out` (a C-contiguous, writeable
    ndarray of the result's shape, a's dtype or f32, apart from a and b) or a new array; None
    when the call is not the common one."""
    if (type(a) is not np.ndarray or type(b) is not np.ndarray or a.ndim != 2 or b.ndim != 2
            or a.dtype != b.dtype or a.dtype not in _FAST_FLOAT or a.shape[1] != b.shape[0]
            or type(alpha) not in (float, int)):
        return None
    if out is not None and (type(out) is not np.ndarray or out.shape != (a.shape[0], b.shape[1])
                            or (out.dtype != a.dtype and out.dtype != np.float32)
                            or not out.flags.c_contiguous or not out.flags.writeable
                            or np.may_share_memory(out, a) or np.may_share_memory(out, b)):
        return None
    ext = _fast_ext()
    if ext is None:
        return None
    if out is None:
        out = np.empty((a.shape[0], b.shape[1]), a.dtype)
    if out.size:
        ext.gemm(_kernel_view(a), _kernel_view(b), None, out, float(alpha), 0.0, None, 0)
    return out


def _float_out_dtype(in_dtype, out_dtype, name="out_dtype"):
    if out_dtype is None:
        return in_dtype
    out_dtype = _dtypes.normalize(out_dtype, argument=name)
    if out_dtype not in (in_dtype, _dtypes.float32):
        raise TypeError(f"{name}: expected {float_out_choices(in_dtype)} for "
                        f"{_dtypes.short_name(in_dtype)} inputs, got {_dtypes.short_name(out_dtype)}")
    return out_dtype


def _float_pair(a, b):
    check_dtype(a, "a", _dtypes.FLOAT_COMPUTE)
    if b.dtype != a.dtype:
        raise TypeError(f"b: expected dtype {_dtypes.short_name(a.dtype)} (the dtype of a), "
                        f"got {_dtypes.short_name(b.dtype)}")


def gemm(a, b, c=None, *, alpha=1.0, beta=0.0, trans_a=False, trans_b=False, bias=None,
         activation=None, out_dtype=None, out=None, backend=None, fallback=None):
    """out = activation(alpha * op(a) @ op(b) + beta * c + bias), op = transpose if trans_*.

    a, b: 2-D f32, f16 or bf16 (same dtype); accumulation in f32; out is a's dtype or f32.
    c:    broadcastable to (M, N); read only when beta != 0.
    bias: shape (N,), any float dtype (used in f32).
    """
    if (c is None and bias is None and activation is None and out_dtype is None
            and backend is None and fallback is None and trans_a is False and trans_b is False
            and (beta == 0.0 if type(beta) in (float, int) else False)):
        result = _fast_float(a, b, alpha, out)
        if result is not None:
            return result
    a = as_array(a, "a")
    b = as_array(b, "b")
    check_ndim(a, "a", 2)
    check_ndim(b, "b", 2)
    _float_pair(a, b)
    alpha = as_float(alpha, "alpha")
    beta = as_float(beta, "beta")
    check_activation(activation)
    trans_a, trans_b = as_flag(trans_a, "trans_a"), as_flag(trans_b, "trans_b")
    a2 = a.T if trans_a else a
    b2 = b.T if trans_b else b
    m, k = a2.shape
    if b2.shape[0] != k:
        raise ValueError(f"b: expected {k} rows (op(a) is {m}x{k}{', trans_b' if trans_b else ''}), "
                         f"got op(b) of shape {b2.shape}")
    n = b2.shape[1]
    odt = _float_out_dtype(a.dtype, out_dtype)
    if out is not None:
        odt = out.dtype if hasattr(out, "dtype") and out_dtype is None else odt
        if odt not in (a.dtype, _dtypes.float32):
            raise TypeError(f"out: expected dtype {float_out_choices(a.dtype)}, "
                            f"got {_dtypes.short_name(odt)}")
    c_view = None
    if beta != 0.0:
        if c is None:
            raise ValueError(f"c: expected an array broadcastable to ({m}, {n}) because beta={beta}, got None")
        c = as_array(c, "c")
        check_dtype(c, "c", _dtypes.FLOAT_COMPUTE)
        try:
            c_view = _kernel_view(_device.array_module(c).broadcast_to(c, (m, n)))
        except ValueError:
            raise ValueError(f"c: expected a shape broadcastable to ({m}, {n}), got {c.shape}") from None
    bias32 = None
    if bias is not None:
        bias = as_array(_device.to_host_small(bias), "bias")
        check_dtype(bias, "bias", _dtypes.FLOAT_COMPUTE + (_dtypes.float64,))
        if bias.shape != (n,):
            raise ValueError(f"bias: expected shape ({n},), got {bias.shape}")
        bias32 = np.ascontiguousarray(bias, dtype=np.float32)

    combo = (_dtypes.short_name(a.dtype),) * 2 + (_dtypes.short_name(odt),)
    chosen, kernel = backends.select(backend, "gemm", combo, [a, b, out, c_view], fallback,
                                      names=("a", "b", "out", "c"))
    if out is None:
        out = chosen.empty((m, n), odt)
    else:
        # out may be exactly c (an in-place update C = alpha AB + beta C): the kernel reads
        # each C element before writing the same out element. Any other overlap is refused.
        same_as_c = c is not None and _same_memory(out, c) and c.shape == out.shape
        check_out(out, "out", (m, n), odt, [("a", a), ("b", b)] + ([] if same_as_c else [("c", c)]))
    if m and n:
        kernel(_kernel_view(a2), _kernel_view(b2), c_view, out, alpha=alpha, beta=beta,
               bias=bias32, activation=activation)
    return out


def _batched_view(out, shape):
    """`out` viewed as `shape` without a copy (NumPy, CuPy or another device's DeviceArray), or
    None where its strides do not allow it."""
    if _device.is_device_array(out):
        view = _device.as_device_array(out)
        if view.shape == shape:
            return view
        if isinstance(view, backends.DeviceArray):
            try:
                return view.reshape(shape)  # a view of the same buffer, or ValueError
            except ValueError:
                return None
        result = view.reshape(shape)
        return result if result.data.ptr == view.data.ptr else None
    if out.shape == shape:
        return out
    result = out.reshape(shape)
    return result if np.shares_memory(result, out) else None


def _same_memory(x, y) -> bool:
    if _device.is_device_array(x) and _device.is_device_array(y):
        return _device.device_same_memory(_device.as_device_array(x), _device.as_device_array(y))
    return (isinstance(x, np.ndarray) and isinstance(y, np.ndarray)
            and x.__array_interface__["data"][0] == y.__array_interface__["data"][0]
            and x.strides == y.strides and x.dtype == y.dtype)


def matmul(a, b, *, out=None, out_dtype=None, backend=None, fallback=None):
    """NumPy matmul semantics (1-D promotion, batch broadcasting).

    f32/f16/bf16 pairs go to gemm (f32 accumulation; out_dtype = input dtype or f32);
    u8 x s8 and s8 x s8 go to qgemm with an exact int32 result.
    """
    if out is None and out_dtype is None and backend is None and fallback is None:
        result = _fast_float(a, b, 1.0)
        if result is None:
            result = _fast_quant(a, b)
        if result is not None:
            return result
    a = as_array(a, "a")
    b = as_array(b, "b")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"{'a' if a.ndim == 0 else 'b'}: expected an array of at least 1 dimension, got a scalar")
    a_nd = a[None, :] if a.ndim == 1 else a
    b_nd = b[:, None] if b.ndim == 1 else b
    if a_nd.shape[-1] != b_nd.shape[-2]:
        raise ValueError(f"b: expected {a_nd.shape[-1]} rows to match a's last dimension, "
                         f"got shape {b.shape}")
    try:
        batch = np.broadcast_shapes(a_nd.shape[:-2], b_nd.shape[:-2])
    except ValueError:
        raise ValueError(f"b: expected batch dimensions broadcastable with a's {a.shape[:-2]}, "
                         f"got {b.shape[:-2]}") from None
    m, n = a_nd.shape[-2], b_nd.shape[-1]
    full_shape = batch + (m, n)
    final_shape = batch + ((m,) if a.ndim > 1 else ()) + ((n,) if b.ndim > 1 else ())

    quantized = a.dtype in _dtypes.QUANT_ACTIVATION
    if quantized:
        if b.dtype != _dtypes.int8:
            raise TypeError(f"b: expected dtype s8 for {_dtypes.short_name(a.dtype)} a, "
                            f"got {_dtypes.short_name(b.dtype)}")
        if out_dtype is not None and _dtypes.normalize(out_dtype) != _dtypes.int32:
            raise TypeError(f"out_dtype: expected s32 for integer matmul, got {out_dtype}")
        odt = _dtypes.int32
    else:
        _float_pair(a, b)
        odt = _float_out_dtype(a.dtype, out_dtype)
    if out is not None:
        if hasattr(out, "dtype") and out_dtype is None and not quantized:
            odt = _float_out_dtype(a.dtype, out.dtype, "out")
        check_out(out, "out", final_shape, odt, [("a", a), ("b", b)])
        # None where the strides cannot be viewed as the batched shape: the result is then
        # computed into a temporary and copied (the one rule for `out`, SEMANTICS.md "Layouts").
        result = _batched_view(out, full_shape)
    else:
        result = None
    copy_back = out is not None and result is None

    op = qgemm if quantized else gemm
    extra = {} if quantized else {"out_dtype": odt}
    if result is None:
        combo = (_dtypes.short_name(a.dtype), _dtypes.short_name(b.dtype), _dtypes.short_name(odt))
        chosen, _ = backends.select(backend, "qgemm" if quantized else "gemm", combo, [a, b], fallback,
                                     names=("a", "b"))
        result = chosen.empty(full_shape, odt)
    xp = _device.array_module(a, b)
    a_b = xp.broadcast_to(a_nd, batch + a_nd.shape[-2:])
    b_b = xp.broadcast_to(b_nd, batch + b_nd.shape[-2:])
    # One 2-D GEMM per batch element; each writes straight into its slice of the result. An
    # empty result needs none, and must not walk a batch that only broadcasting made large
    # (a (2**40, 0, 0) stride-0 view holds no data but has 2**40 batch indices).
    batch_elements = 0 if m == 0 or n == 0 else math.prod(batch)
    for index in (np.ndindex(*batch) if batch_elements else ()):
        op(a_b[index], b_b[index], out=result[index], backend=backend, fallback=fallback, **extra)
    if copy_back:
        out[...] = result.reshape(final_shape)
    return out if out is not None else result.reshape(final_shape)


def _fast_quant(a, b, out=None):
    """Exact int32 a @ b for 2-D u8/s8 x s8 ndarrays with no zero points, into `out` (a
    C-contiguous, writeable int32 ndarray of the result's shape, apart from a and b) or a new
    array; None when the call is not the common one (or K could overflow int32: the generic
    path then raises)."""
    if (type(a) is not np.ndarray or type(b) is not np.ndarray or a.ndim != 2 or b.ndim != 2
            or a.dtype not in _FAST_QUANT or b.dtype != np.int8 or a.shape[1] != b.shape[0]
            or a.shape[1] * (255 if a.dtype == np.uint8 else 128) * 128 > INT32_MAX):
        return None
    if out is not None:
        flags = out.flags if type(out) is np.ndarray else None
        if (flags is None or out.shape != (a.shape[0], b.shape[1]) or out.dtype != np.int32
                or not flags.c_contiguous or not flags.writeable):
            return None
        # Arrays that own their memory (base None) are separate allocations and cannot overlap,
        # so the overlap test (~0.5 us of a ~15 us 128^3 call) is only needed for views.
        if ((a.base is not None or out.base is not None) and np.may_share_memory(out, a)) or (
                (b.base is not None or out.base is not None) and np.may_share_memory(out, b)):
            return None
    ext = _fast_ext()
    if ext is None:
        return None
    if out is None:
        out = np.empty((a.shape[0], b.shape[1]), np.int32)
    if out.size:
        # 1-byte elements: every stride is a whole number of elements, so only a negative
        # stride needs _kernel_view's copy.
        sa, sb = a.strides, b.strides
        ext.qgemm(a if sa[0] >= 0 and sa[1] >= 0 else _kernel_view(a),
                  b if sb[0] >= 0 and sb[1] >= 0 else _kernel_view(b), out, 0, 0, None, None, 0, 0)
    return out


def qgemm(a, b, *, a_zero_point=0, b_zero_point=0, scale=None, bias=None, out_zero_point=0,
          out_dtype=np.int32, activation=None, trans_a=False, trans_b=False, out=None,
          backend=None, fallback=None):
    """Quantized GEMM: exact int32 accumulation of (a - a_zero_point)(b - b_zero_point), then
    the output stage of SEMANTICS.md ("INT8"): int32, dequantized f32, or requantized s8/u8.

    a: 2-D u8 or s8; b: 2-D s8 (trans_b=True for [N, K] weights).
    b_zero_point, scale: scalar (per tensor) or shape (N,) (per output channel).
    bias: int32, shape (N,), added to the accumulator.
    """
    if (backend is None and fallback is None and trans_a is False and trans_b is False and scale is None
            and bias is None and activation is None and out_dtype is np.int32
            and type(a_zero_point) is int and a_zero_point == 0 and type(b_zero_point) is int and b_zero_point == 0
            and type(out_zero_point) is int and out_zero_point == 0):
        result = _fast_quant(a, b, out)
        if result is not None:
            return result
    a = as_array(a, "a")
    b = as_array(b, "b")
    check_ndim(a, "a", 2)
    check_ndim(b, "b", 2)
    check_dtype(a, "a", _dtypes.QUANT_ACTIVATION)
    check_dtype(b, "b", (_dtypes.int8,))
    check_activation(activation, (None, "relu"))
    # Per-channel parameters are small: validated on the host even for device inputs.
    b_zero_point, scale, bias = (_device.to_host_small(v) for v in (b_zero_point, scale, bias))
    trans_a, trans_b = as_flag(trans_a, "trans_a"), as_flag(trans_b, "trans_b")
    a2 = a.T if trans_a else a
    b2 = b.T if trans_b else b
    m, k = a2.shape
    if b2.shape[0] != k:
        raise ValueError(f"b: expected {k} rows (op(a) is {m}x{k}), got op(b) of shape {b2.shape}")
    n = b2.shape[1]
    odt, scale32, ozp, bias32, max_bias = quant_output_stage(out_dtype, scale, out_zero_point, bias, n)
    za = zero_point(a_zero_point, "a_zero_point", a.dtype)
    zb = zero_point(b_zero_point, "b_zero_point", np.int8, n)

    # Worst case over the dtype ranges, so the check does not depend on the data.
    per_product = max_abs_offset(a.dtype, za) * max_abs_offset(np.int8, zb)
    if k * per_product + max_bias > INT32_MAX:
        limit = (INT32_MAX - max_bias) // max(per_product, 1)
        raise ValueError(f"a: expected K <= {limit} so that int32 accumulation cannot overflow "
                         f"(|a - a_zero_point| <= {max_abs_offset(a.dtype, za)}, "
                         f"|b - b_zero_point| <= {max_abs_offset(np.int8, zb)}), got K={k}")

    combo = (_dtypes.short_name(a.dtype), "s8", _dtypes.short_name(odt))
    chosen, kernel = backends.select(backend, "qgemm", combo, [a, b, out], fallback, names=("a", "b", "out"))
    if out is None:
        out = chosen.empty((m, n), odt)
    else:
        check_out(out, "out", (m, n), odt, [("a", a), ("b", b)])
    if m and n:
        kernel(_kernel_view(a2), _kernel_view(b2), out, a_zero_point=za, b_zero_point=zb,
               scale=scale32, bias=bias32, out_zero_point=ozp, activation=activation)
    return out
