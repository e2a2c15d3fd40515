"""conv2d, qconv2d and the two conv2d backward ops: validation, output allocation and
backend dispatch (every check happens here, once).

Geometry reaches the kernels normalized: stride and dilation as (h, w) pairs, padding as
((top, bottom), (left, right)), layout "NCHW" or "NHWC". Inputs reach the C++ kernels
C-contiguous (a non-contiguous input is copied once; documented in SEMANTICS.md).
"""

from __future__ import annotations

import operator

import numpy as np

from .. import _device, _dtypes, backends
from .._validation import (GEOMETRY_MAX, as_array, as_int, check_activation, check_dtype, check_ndim, check_out,
                           describe, float_out_choices)
from .conv_geometry import LAYOUTS, ConvGeometry, check_layout  # noqa: F401  (LAYOUTS: public)
from .gemm import _same_memory
from .quant import INT32_MAX, max_abs_offset, quant_output_stage, zero_point

def _contiguous(x):
    if x.flags.c_contiguous:
        return x
    return _device.array_module(x).ascontiguousarray(x)  # device arrays stay on their device


def _kernel_out(out):
    """(buffer the kernel writes, caller's out to copy into or None). The conv kernels write
    C-contiguous memory; any other `out` (Fortran order, negative or padded strides) gets
    the result through a temporary, the same rule as every other op (SEMANTICS.md, "Layouts")."""
    if isinstance(out, np.ndarray) and not out.flags.c_contiguous:
        return np.empty(out.shape, out.dtype), out
    if _device.is_device_array(out) and not out.flags.c_contiguous:
        return _device.array_module(out).empty(out.shape, out.dtype), out
    return out, None


def _copy_back(buf, caller):
    if caller is not None:
        caller[...] = buf
        return caller
    return buf


def _run_empty_input(op, combo, chosen, kernel_args, out, kwargs):
    """An input with no elements (C = 0, or H / W = 0 with padding) still has outputs: every
    output sums zero products, so it is the bias / zero point through the epilogue. The
    backends' kernels need real extents (and NumPy gives such arrays arbitrary strides),
    so the reference kernel computes these few values on the host; they are copied into
    `out` wherever it lives."""
    reference = backends.get("reference").kernel(op, combo)
    host = [np.ascontiguousarray(a) if isinstance(a, np.ndarray) else a for a in kernel_args]
    if isinstance(out, np.ndarray):
        reference(*host, out, **kwargs)
    else:
        tmp = np.empty(out.shape, out.dtype)
        reference(*host, tmp, **kwargs)
        out[...] = chosen.asarray(tmp)
    return out


def _float_pair(x, w, x_name="x", w_name="w"):
    check_dtype(x, x_name, _dtypes.FLOAT_COMPUTE)
    if w.dtype != x.dtype:
        raise TypeError(f"{w_name}: expected dtype {_dtypes.short_name(x.dtype)} (the dtype of {x_name}), "
                        f"got {_dtypes.short_name(w.dtype)}")


def _shape_tuple(shape, name):
    try:
        shape = tuple(operator.index(v) for v in shape)
    except TypeError:
        raise TypeError(f"{name}: expected a tuple of 4 integers, got {shape!r}") from None
    if len(shape) != 4 or min(shape) < 0 or max(shape) > GEOMETRY_MAX:
        raise ValueError(f"{name}: expected 4 integers in [0, {GEOMETRY_MAX}], got {shape!r}")
    return shape


class Conv2dWeights:
    """Weights prepared once for many ak.conv2d calls (keep it next to the layer): the CPU
    backend packs each group's GEMM operand for its microkernel when first used and reuses
    it; other backends use `.weights`. Build with ak.prepack_conv2d_weights(w, ...).
    Immutable (the weights are copied); valid for any input size, stride, padding, dilation."""

    def __init__(self, w, *, groups=1, layout="NCHW"):
        w = as_array(w, "w")
        check_ndim(w, "w", 4)
        check_dtype(w, "w", _dtypes.FLOAT_COMPUTE)
        self.layout = check_layout(layout)
        self.groups = as_int(groups, "groups", minimum=1)
        if w.shape[0] % self.groups:
            raise ValueError(f"groups: expected a divisor of the {w.shape[0]} output channels of w, got {self.groups}")
        self.weights = np.array(w, order="C", copy=True)
        self.weights.flags.writeable = False
        self._packed = {}

    @property
    def shape(self):
        return self.weights.shape

    @property
    def dtype(self):
        return self.weights.dtype

    def for_backend(self, name):
        """What a backend's conv2d kernel takes for these weights: the packed object the
        backend made (made once, then cached), or the weight array."""
        if name not in self._packed:
            from .. import backends as _b

            if self.weights.size == 0:  # nothing to pack; conv2d computes such calls on the host
                self._packed[name] = self.weights
                return self.weights

            prepack = getattr(_b.get(name), "prepack_conv2d_weights", None)
            self._packed[name] = (prepack(self.weights, self.groups, self.layout) if prepack is not None
                                  else self.weights)
        return self._packed[name]

    def __repr__(self):
        return (f"Conv2dWeights(shape={self.weights.shape}, dtype={_dtypes.short_name(self.dtype)}, "
                f"groups={self.groups}, layout={self.layout!r})")


def prepack_conv2d_weights(w, *, groups=1, layout="NCHW", backend=None):
    """Conv2dWeights for w ([K, C/groups, R, S] NCHW or [K, R, S, C/groups] NHWC), packed now
    for `backend` (default: the CPU backend when available)."""
    cw = Conv2dWeights(w, groups=groups, layout=layout)
    name = backend or ("cpu" if backends.get("cpu").available else "reference")
    cw.for_backend(name)
    return cw


def conv2d(x, w, bias=None, *, stride=1, padding=0, dilation=1, groups=1, layout="NCHW",
           activation=None, out_dtype=None, out=None, backend=None, fallback=None, scale=None,
           residual=None):
    """y = activation(scale[k] * conv2d(x, w) + bias[k] + residual), f32 accumulation
    (SEMANTICS.md, "Convolution"); every term but the conv is optional.

    x: [N, C, H, W] (NCHW) or [N, H, W, C] (NHWC), f32 / f16 / bf16.
    w: [K, C/groups, R, S] (NCHW) or [K, R, S, C/groups] (NHWC), x's dtype.
    padding: int, (h, w), ((top, bottom), (left, right)), "same" or "valid".
    bias, scale: (K,), any float dtype (used in f32); scale * conv + bias is a folded batch norm.
    residual: the output's shape and layout, x's dtype or f32 (read in f32); may be `out` itself.
    out dtype: x's dtype, or f32 (out_dtype). The epilogue is fused: one rounding, no extra pass.
    """
    prepacked = w if isinstance(w, Conv2dWeights) else None
    if prepacked is not None:
        if prepacked.layout != layout:
            raise ValueError(f"layout: expected {prepacked.layout!r} (the layout the weights were prepacked for), "
                             f"got {layout!r}")
        if as_int(groups, "groups", minimum=1) != prepacked.groups:
            raise ValueError(f"groups: expected {prepacked.groups} (the groups the weights were prepacked for), "
                             f"got {groups}")
        w = prepacked.weights
    x = as_array(x, "x")
    w = as_array(w, "w")
    check_ndim(x, "x", 4)
    check_ndim(w, "w", 4)
    _float_pair(x, w)
    check_activation(activation)
    geo = ConvGeometry(x.shape, w.shape, stride=stride, padding=padding, dilation=dilation, groups=groups,
                    layout=layout)
    if out_dtype is None:
        odt = out.dtype if hasattr(out, "dtype") else x.dtype
    else:
        odt = _dtypes.normalize(out_dtype, argument="out_dtype")
    if odt not in (x.dtype, _dtypes.float32):
        raise TypeError(f"{'out_dtype' if out_dtype is not None else 'out'}: expected "
                        f"{float_out_choices(x.dtype)} for {_dtypes.short_name(x.dtype)} inputs, "
                        f"got {_dtypes.short_name(odt)}")
    bias32 = None
    if bias is not None:
        bias = as_array(_device.to_host_small(bias), "bias")  # small: validated on the host
        check_dtype(bias, "bias", _dtypes.FLOAT_COMPUTE + (_dtypes.float64,))
        if bias.shape != (geo.k,):
            raise ValueError(f"bias: expected shape ({geo.k},), got {bias.shape}")
        bias32 = np.ascontiguousarray(bias, dtype=np.float32)
    # The fused-epilogue arguments reach the kernel only when given, so the plain call (and a
    # backend kernel written before they existed) is untouched.
    epilogue = {}
    if scale is not None:
        epilogue["scale"] = _per_channel_f32(scale, "scale", geo.k)
    if residual is not None:
        residual = _residual(residual, x.dtype, geo.out_shape)
    combo = (_dtypes.short_name(x.dtype),) * 2 + (_dtypes.short_name(odt),)
    chosen, kernel = backends.select(backend, "conv2d", combo, [x, w, out, residual], fallback,
                                     names=("x", "w", "out", "residual"))
    if out is None:
        out = chosen.empty(geo.out_shape, odt)
    else:
        # out may be exactly the residual (an in-place out = act(conv + out)): the kernels read
        # each residual element before writing that out element. Any other overlap is refused.
        inputs = [("x", x), ("w", w)]
        if residual is not None and not _same_memory(out, residual):
            inputs.append(("residual", residual))
        check_out(out, "out", geo.out_shape, odt, inputs)
    if out.size and (x.size == 0 or w.size == 0):
        if residual is not None:
            epilogue["residual"] = _device.to_host_small(residual)
        return _run_empty_input("conv2d", combo, chosen, (_device.to_host_small(x), _device.to_host_small(w), bias32),
                                out, dict(activation=activation, **epilogue, **geo.kwargs()))
    if out.size:
        wk = prepacked.for_backend(chosen.name) if prepacked is not None else _contiguous(w)
        buf, caller = _kernel_out(out)
        if residual is not None:
            # A residual aliasing a non-contiguous out is read from a copy: the kernel writes
            # a temporary, not the caller's out.
            epilogue["residual"] = _contiguous(residual)
        kernel(_contiguous(x), wk, bias32, buf, activation=activation, **epilogue, **geo.kwargs())
        _copy_back(buf, caller)
    return out


def _per_channel_f32(v, name, k):
    """A length-K float vector (scale, bias) as contiguous host f32."""
    v = as_array(_device.to_host_small(v), name)  # small: validated on the host
    check_dtype(v, name, _dtypes.FLOAT_COMPUTE + (_dtypes.float64,))
    if v.shape != (k,):
        raise ValueError(f"{name}: expected shape ({k},), got {v.shape}")
    return np.ascontiguousarray(v, dtype=np.float32)


def _residual(residual, x_dtype, out_shape):
    """The residual input: the conv output's shape (and so its layout), x's dtype or f32."""
    residual = as_array(residual, "residual")
    if residual.shape != tuple(out_shape):
        raise ValueError(f"residual: expected shape {tuple(out_shape)} (the conv2d output), got {residual.shape}")
    if residual.dtype not in (x_dtype, _dtypes.float32):
        raise TypeError(f"residual: expected dtype {float_out_choices(x_dtype)} for "
                        f"{_dtypes.short_name(x_dtype)} inputs, got {_dtypes.short_name(residual.dtype)}")
    return residual


def qconv2d(x, w, bias=None, *, x_zero_point=0, w_zero_point=0, scale=None, out_zero_point=0,
            out_dtype=np.int32, stride=1, padding=0, dilation=1, groups=1, layout="NCHW",
            activation=None, out=None, backend=None, fallback=None, residual=None, residual_scale=1.0,
            residual_zero_point=0):
    """Quantized conv2d: exact int32 accumulation of (x - x_zero_point)(w - w_zero_point[k]) + bias[k]
    (padding holds x_zero_point, so padded taps contribute 0), then qgemm's output stage:
    s32, dequantized f32, or requantized s8/u8 (round half to even, saturate); relu optional.

    x: u8 or s8; w: s8. w_zero_point, scale: scalar or shape (K,). bias: int32 (K,).
    residual: u8/s8 of the output's shape and layout (the ResNet block's skip input), added in
    the output stage as residual_scale * (residual - residual_zero_point) after the scale
    multiply, before rounding and relu (SEMANTICS.md, "Quantized convolution"); s8/u8/f32
    outputs only. May be `out` itself (in-place).
    """
    x = as_array(x, "x")
    w = as_array(w, "w")
    check_ndim(x, "x", 4)
    check_ndim(w, "w", 4)
    check_dtype(x, "x", _dtypes.QUANT_ACTIVATION)
    check_dtype(w, "w", (_dtypes.int8,))
    check_activation(activation, (None, "relu"))
    # Per-channel parameters are small: validated on the host even for device inputs.
    w_zero_point, scale, bias = (_device.to_host_small(v) for v in (w_zero_point, scale, bias))
    geo = ConvGeometry(x.shape, w.shape, stride=stride, padding=padding, dilation=dilation, groups=groups,
                    layout=layout)
    k = geo.k
    odt, scale32, ozp, bias32, max_bias = quant_output_stage(out_dtype, scale, out_zero_point, bias, k)
    if scale32 is not None:
        scale32 = np.ascontiguousarray(np.broadcast_to(scale32, (k,)))
    zx = zero_point(x_zero_point, "x_zero_point", x.dtype)
    zw = zero_point(w_zero_point, "w_zero_point", np.int8, k)
    zw_arr = np.ascontiguousarray(np.broadcast_to(np.asarray(zw, dtype=np.int32).reshape(-1), (k,)))
    depth = geo.cg * geo.r * geo.s
    per_product = max_abs_offset(x.dtype, zx) * max_abs_offset(np.int8, zw_arr)
    if depth * per_product + max_bias > INT32_MAX:
        raise ValueError(f"w: expected C/groups*R*S <= {(INT32_MAX - max_bias) // max(per_product, 1)} so that "
                         f"int32 accumulation cannot overflow, got {depth}")
    # The residual arguments reach the kernel only when a residual is given, so the plain call
    # (and a backend kernel written before they existed) is untouched.
    res_kw = {}
    if residual is not None:
        residual, res_kw = _quant_residual(residual, residual_scale, residual_zero_point, odt, geo.out_shape)
    combo = (_dtypes.short_name(x.dtype), "s8", _dtypes.short_name(odt))
    chosen, kernel = backends.select(backend, "qconv2d", combo, [x, w, out, residual], fallback,
                                     names=("x", "w", "out", "residual"))
    if out is None:
        out = chosen.empty(geo.out_shape, odt)
    else:
        # out may be exactly the residual (in place: out = requant(conv + out)); the kernels
        # read each residual element before writing that out element. Any other overlap is refused.
        inputs = [("x", x), ("w", w)]
        if residual is not None and not _same_memory(out, residual):
            inputs.append(("residual", residual))
        check_out(out, "out", geo.out_shape, odt, inputs)
    qkw = dict(x_zero_point=zx, w_zero_point=zw_arr, scale=scale32, out_zero_point=ozp, activation=activation,
               **res_kw, **geo.kwargs())
    if out.size and (x.size == 0 or w.size == 0):
        if residual is not None:
            qkw["residual"] = _device.to_host_small(residual)
        return _run_empty_input("qconv2d", combo, chosen, (_device.to_host_small(x), _device.to_host_small(w), bias32),
                                out, qkw)
    if out.size:
        buf, caller = _kernel_out(out)
        if residual is not None:
            # A residual aliasing a non-contiguous out is read from a copy: the kernel writes
            # a temporary, not the caller's out.
            qkw["residual"] = _contiguous(residual)
        kernel(_contiguous(x), _contiguous(w), bias32, buf, **qkw)
        _copy_back(buf, caller)
    return out


def _quant_residual(residual, residual_scale, residual_zero_point, out_dtype, out_shape):
    """qconv2d's residual input and its quantization: (residual, kernel keywords)."""
    if out_dtype == _dtypes.int32:
        raise ValueError("residual: expected None for an s32 output (the residual is added after the scale; "
                         "use out_dtype s8, u8 or f32), got an array")
    residual = as_array(residual, "residual")
    check_dtype(residual, "residual", _dtypes.QUANT_ACTIVATION)
    if residual.shape != tuple(out_shape):
        raise ValueError(f"residual: expected shape {tuple(out_shape)} (the qconv2d output), got {residual.shape}")
    try:
        with np.errstate(over="ignore"):  # a value past the f32 range becomes inf: refused below
            rs = float(np.float32(residual_scale)) if np.ndim(residual_scale) == 0 else None
    except (TypeError, ValueError):
        rs = None
    if rs is None or isinstance(residual_scale, (bool, np.bool_, str, bytes)):
        raise TypeError(f"residual_scale: expected a real scalar, got {describe(residual_scale)}")
    if not (np.isfinite(rs) and rs > 0):
        raise ValueError(f"residual_scale: expected a finite positive value (as f32), got {residual_scale!r}")
    rzp = zero_point(residual_zero_point, "residual_zero_point", residual.dtype)
    return residual, dict(residual_scale=rs, residual_zero_point=rzp)


def conv2d_backward_data(grad_out, w, input_shape, *, stride=1, padding=0, dilation=1, groups=1,
                         layout="NCHW", out=None, backend=None, fallback=None):
    """grad_x = the adjoint of conv2d in x: <conv2d(x, w), grad_out> == <x, grad_x> for every x.
    f32 accumulation; result in grad_out's dtype, shape input_shape."""
    grad_out = as_array(grad_out, "grad_out")
    w = as_array(w, "w")
    check_ndim(grad_out, "grad_out", 4)
    check_ndim(w, "w", 4)
    _float_pair(grad_out, w, "grad_out")
    input_shape = _shape_tuple(input_shape, "input_shape")
    geo = ConvGeometry(input_shape, w.shape, stride=stride, padding=padding, dilation=dilation, groups=groups,
                    layout=layout, x_name="input_shape")
    if grad_out.shape != geo.out_shape:
        raise ValueError(f"grad_out: expected shape {geo.out_shape} (the conv2d output for input_shape "
                         f"{input_shape}), got {grad_out.shape}")
    dt = _dtypes.short_name(grad_out.dtype)
    chosen, kernel = backends.select(backend, "conv2d_backward_data", (dt, dt, dt), [grad_out, w, out], fallback,
                                     names=("grad_out", "w", "out"))
    if out is None:
        out = chosen.empty(input_shape, grad_out.dtype)
    else:
        check_out(out, "out", input_shape, grad_out.dtype, [("grad_out", grad_out), ("w", w)])
    if out.size:
        if grad_out.size == 0:
            out[...] = 0
        else:
            buf, caller = _kernel_out(out)
            kernel(_contiguous(grad_out), _contiguous(w), buf, **geo.kwargs())
            _copy_back(buf, caller)
    return out


def conv2d_backward_weight(x, grad_out, weight_shape, *, stride=1, padding=0, dilation=1, groups=1,
                           layout="NCHW", out=None, backend=None, fallback=None):
    """grad_w = the gradient of <conv2d(x, w), grad_out> in w, in the weight layout of `layout`.
    f32 accumulation; result in x's dtype; independent of the thread count."""
    x = as_array(x, "x")
    grad_out = as_array(grad_out, "grad_out")
    check_ndim(x, "x", 4)
    check_ndim(grad_out, "grad_out", 4)
    _float_pair(x, grad_out, "x", "grad_out")
    weight_shape = _shape_tuple(weight_shape, "weight_shape")
    geo = ConvGeometry(x.shape, weight_shape, stride=stride, padding=padding, dilation=dilation, groups=groups,
                    layout=layout, w_name="weight_shape")
    if grad_out.shape != geo.out_shape:
        raise ValueError(f"grad_out: expected shape {geo.out_shape} (the conv2d output of x), "
                         f"got {grad_out.shape}")
    dt = _dtypes.short_name(x.dtype)
    chosen, kernel = backends.select(backend, "conv2d_backward_weight", (dt, dt, dt), [x, grad_out, out],
                                     fallback, names=("x", "grad_out", "out"))
    if out is None:
        out = chosen.empty(weight_shape, x.dtype)
    else:
        check_out(out, "out", weight_shape, x.dtype, [("x", x), ("grad_out", grad_out)])
    if out.size:
        if x.size == 0 or grad_out.size == 0:
            out[...] = 0
        else:
            buf, caller = _kernel_out(out)
            kernel(_contiguous(x), _contiguous(grad_out), buf, **geo.kwargs())
            _copy_back(buf, caller)
    return out
