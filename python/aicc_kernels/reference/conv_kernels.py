"""Reference convolution kernels: direct convolutions in NumPy, the specification.

Arguments arrive validated and normalized by aicc_kernels.ops.conv: stride and dilation
as (h, w) pairs, padding as ((top, bottom), (left, right)), layout "NCHW" or "NHWC",
weights [K, C/groups, R, S] (NCHW) or [K, R, S, C/groups] (NHWC). Each kernel writes its
result into `out`.

Arithmetic is float64 (int64 for the quantized conv), one (r, s) tap at a time:

    y[n, k, p, q] = sum_{c, r, s} x_pad[n, g*Cg + c, p*sh + r*dh, q*sw + s*dw] * w[k, c, r, s]

with g = k // (K/groups), x_pad the input padded with zeros (with x_zero_point for the
quantized conv, so a padded tap contributes exactly 0), rounded once at the end.
"""

from __future__ import annotations

import numpy as np

from ._epilogue import activation as apply_activation
from ._epilogue import cast_float
from .gemm_kernels import requantize


def _nchw(x, layout):
    return x if layout == "NCHW" else x.transpose(0, 3, 1, 2)


def _kcrs(w, layout):
    return w if layout == "NCHW" else w.transpose(0, 3, 1, 2)


def _from_nchw(y, layout):
    return y if layout == "NCHW" else y.transpose(0, 2, 3, 1)


def output_size(size, kernel, stride, pad_lo, pad_hi, dilation):
    return (size + pad_lo + pad_hi - dilation * (kernel - 1) - 1) // stride + 1


def _taps(x_pad, r, s, p, q, stride, dilation):
    """x_pad[:, :, p*sh + r*dh, q*sw + s*dw] for every output (p, q): shape [N, C, P, Q]."""
    (sh, sw), (dh, dw) = stride, dilation
    h0, w0 = r * dh, s * dw
    return x_pad[:, :, h0:h0 + sh * (p - 1) + 1:sh, w0:w0 + sw * (q - 1) + 1:sw]


def _grouped_einsum(spec, a, b, groups, finite):
    """einsum over groups; exact-order einsum when non-finite values are present, so
    inf * 0 gives NaN wherever it occurs (BLAS may skip zero operands)."""
    if finite:
        return np.einsum(spec, a, b, optimize=True)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.einsum(spec, a, b, optimize=False)


def conv_accumulate(x, w, *, stride, padding, dilation, groups, pad_value=0, dtype=np.float64):
    """sum_{c,r,s} x_pad * w in `dtype` (float64 or int64), NCHW x and KCRS w; [N, K, P, Q]."""
    n, c, h, wd = x.shape
    k, cg, r_, s_ = w.shape
    (pt, pb), (pl, pr) = padding
    p = output_size(h, r_, stride[0], pt, pb, dilation[0])
    q = output_size(wd, s_, stride[1], pl, pr, dilation[1])
    x_pad = np.full((n, c, h + pt + pb, wd + pl + pr), pad_value, dtype=dtype)
    x_pad[:, :, pt:pt + h, pl:pl + wd] = x.astype(dtype)
    w64 = w.astype(dtype)
    kg = k // groups
    finite = dtype != np.float64 or (np.isfinite(x_pad).all() and np.isfinite(w64).all())
    y = np.zeros((n, groups, kg, p, q), dtype=dtype)
    for r in range(r_):
        for s in range(s_):
            t = _taps(x_pad, r, s, p, q, stride, dilation).reshape(n, groups, cg, p, q)
            ws = w64[:, :, r, s].reshape(groups, kg, cg)
            with np.errstate(invalid="ignore", over="ignore"):
                y += _grouped_einsum("ngchw,gkc->ngkhw", t, ws, groups, finite)
    return y.reshape(n, k, p, q)


def conv2d_kernel(x, w, bias, out, *, stride, padding, dilation, groups, layout, activation=None, scale=None,
                  residual=None):
    """out = cast(activation(scale[k] * conv(x, w) + bias[k] + residual)), in that order,
    float64 inside, rounded once (through f32). scale / bias: per output channel k;
    residual: the output's shape and layout (x's dtype or f32)."""
    y = conv_accumulate(_nchw(x, layout), _kcrs(w, layout), stride=stride, padding=padding,
                        dilation=dilation, groups=groups)
    with np.errstate(invalid="ignore", over="ignore"):
        if scale is not None:
            y = y * np.asarray(scale).astype(np.float64)[None, :, None, None]
        if bias is not None:
            y = y + np.asarray(bias).astype(np.float64)[None, :, None, None]
        if residual is not None:
            y = y + _nchw(np.asarray(residual), layout).astype(np.float64)
    y = apply_activation(y, activation)
    out[...] = _from_nchw(cast_float(y, out.dtype), layout)


def qconv2d_kernel(x, w, bias, out, *, stride, padding, dilation, groups, layout, x_zero_point=0,
                   w_zero_point=0, scale=None, out_zero_point=0, activation=None, residual=None,
                   residual_scale=1.0, residual_zero_point=0):
    """Exact int64 accumulation of (x - zx)(w - zw[k]) + bias[k] (padding = zx, contributing
    0), then the output stage of qgemm (gemm_kernels.requantize), per output channel k, with
    the requantized residual (out's shape and layout) added after the scale when given."""
    wk = _kcrs(w, layout).astype(np.int64)
    k = wk.shape[0]
    zw = np.asarray(w_zero_point, dtype=np.int64).reshape(-1)
    wk = wk - (np.broadcast_to(zw, (k,)) if zw.size == 1 else zw)[:, None, None, None]
    acc = conv_accumulate(_nchw(x, layout).astype(np.int64) - int(x_zero_point), wk, stride=stride,
                          padding=padding, dilation=dilation, groups=groups, pad_value=0,
                          dtype=np.int64)
    if bias is not None:
        acc = acc + np.asarray(bias, dtype=np.int64)[None, :, None, None]
    # requantize works on the last axis: channels last.
    res = None if residual is None else _nchw(np.asarray(residual), layout).transpose(0, 2, 3, 1)
    y = requantize(acc.transpose(0, 2, 3, 1), out.dtype, scale=scale, out_zero_point=out_zero_point,
                   activation=activation, residual=res, residual_scale=residual_scale,
                   residual_zero_point=residual_zero_point)
    out[...] = y if layout == "NHWC" else y.transpose(0, 3, 1, 2)


def conv2d_backward_data_kernel(grad_out, w, out, *, stride, padding, dilation, groups, layout):
    """out = d<conv(x, w), grad_out>/dx: the adjoint of conv2d in x (float64 inside)."""
    g = _nchw(grad_out, layout).astype(np.float64)
    wk = _kcrs(w, layout).astype(np.float64)
    n, k, p, q = g.shape
    _, cg, r_, s_ = wk.shape
    x_shape = _nchw(out, layout).shape
    h, wd = x_shape[2], x_shape[3]
    (pt, pb), (pl, pr) = padding
    (sh, sw), (dh, dw) = stride, dilation
    kg = k // groups
    finite = np.isfinite(g).all() and np.isfinite(wk).all()
    gx = np.zeros((n, groups * cg, h + pt + pb, wd + pl + pr))
    gg = g.reshape(n, groups, kg, p, q)
    for r in range(r_):
        for s in range(s_):
            ws = wk[:, :, r, s].reshape(groups, kg, cg)
            with np.errstate(invalid="ignore", over="ignore"):
                contrib = _grouped_einsum("ngkhw,gkc->ngchw", gg, ws, groups, finite)
                gx[:, :, r * dh:r * dh + sh * (p - 1) + 1:sh, s * dw:s * dw + sw * (q - 1) + 1:sw] += \
                    contrib.reshape(n, groups * cg, p, q)
    gx = gx[:, :, pt:pt + h, pl:pl + wd]
    out[...] = _from_nchw(cast_float(gx, out.dtype), layout)


def conv2d_backward_weight_kernel(x, grad_out, out, *, stride, padding, dilation, groups, layout):
    """out = d<conv(x, w), grad_out>/dw, in the weight layout of `layout` (float64 inside)."""
    xn = _nchw(x, layout).astype(np.float64)
    g = _nchw(grad_out, layout).astype(np.float64)
    n, c, h, wd = xn.shape
    _, k, p, q = g.shape
    w_shape = _kcrs(out, layout).shape
    cg, r_, s_ = w_shape[1], w_shape[2], w_shape[3]
    (pt, pb), (pl, pr) = padding
    x_pad = np.zeros((n, c, h + pt + pb, wd + pl + pr))
    x_pad[:, :, pt:pt + h, pl:pl + wd] = xn
    kg = k // groups
    finite = np.isfinite(x_pad).all() and np.isfinite(g).all()
    gw = np.zeros((k, cg, r_, s_))
    gg = g.reshape(n, groups, kg, p, q)
    for r in range(r_):
        for s in range(s_):
            t = _taps(x_pad, r, s, p, q, stride, dilation).reshape(n, groups, cg, p, q)
            with np.errstate(invalid="ignore", over="ignore"):
                gw[:, :, r, s] = _grouped_einsum("ngkhw,ngchw->gkc", gg, t, groups, finite).reshape(k, cg)
    out[...] = cast_float(gw if layout == "NCHW" else gw.transpose(0, 2, 3, 1), out.dtype)
