"""Convolution kernels of the CUDA backend (csrc/cuda/conv2d_*.cu), with the kernel
signatures of the op layer (aicc_kernels.ops.conv): geometry arrives normalized, stride /
dilation as (h, w) pairs, padding as ((top, bottom), (left, right)).

The kernels work in NHWC with weights [K, R, S, C/groups]; NCHW tensors are transposed
into NHWC copies on the device first and the result transposed back (one extra pass each
way; NHWC callers pay nothing). Bottom / right padding needs no argument: it only decides
P and Q, which come from the output shape, and every tap is bounds-checked.
"""

from __future__ import annotations

import numpy as np

from . import _runtime as _cuda

_ACT = {None: 0, "relu": 1, "gelu": 2}


def _nhwc(x, layout):
    cp = _cuda._cp()
    return cp.ascontiguousarray(x.transpose(0, 2, 3, 1) if layout == "NCHW" else x)


def _krsc(w, layout):
    cp = _cuda._cp()
    return cp.ascontiguousarray(w.transpose(0, 2, 3, 1) if layout == "NCHW" else w)


def _shape(x_nhwc, w_krsc, pq, stride, padding, dilation, groups):
    n, h, wd, c = x_nhwc
    k, r, s, _ = w_krsc
    (pt, _pb), (pl, _pr) = padding
    return (int(n), int(h), int(wd), int(c), int(k), int(r), int(s), int(pq[0]), int(pq[1]), int(stride[0]),
            int(stride[1]), int(pt), int(pl), int(dilation[0]), int(dilation[1]), int(groups), 0)


def _nhwc_target(out, layout, nhwc_shape):
    """(NHWC array the kernel writes, a function that finishes into out)."""
    cp = _cuda._cp()
    if layout == "NHWC" and out.flags.c_contiguous:
        return out, lambda: None
    tmp = cp.empty(nhwc_shape, dtype=out.dtype)

    def finish():
        out[...] = tmp.transpose(0, 3, 1, 2) if layout == "NCHW" else tmp

    return tmp, finish


def _out_pq(out, layout):
    return (out.shape[2], out.shape[3]) if layout == "NCHW" else (out.shape[1], out.shape[2])


def _conv2d(x, w, bias, out, *, stride, padding, dilation, groups, layout, activation=None, scale=None,
            residual=None):
    if scale is not None or residual is not None:
        from ..base import KernelUnsupported

        raise KernelUnsupported("conv2d: the cuda backend has no fused scale / residual epilogue yet "
                                "(bias and activation only)")
    _cuda._check_device(x=x, w=w, out=out)
    xs, ws = _nhwc(x, layout), _krsc(w, layout)
    p, q = _out_pq(out, layout)
    shape = _shape(xs.shape, ws.shape, (p, q), stride, padding, dilation, groups)
    k = ws.shape[0]
    target, finish = _nhwc_target(out, layout, (xs.shape[0], p, q, k))
    bias_dev = _cuda._device_vector(bias, k, np.float32) if bias is not None else None
    depthwise = groups > 1 and groups == xs.shape[3] and ws.shape[3] == 1
    _cuda._ext.conv2d_fwd(_cuda._code(x.dtype), xs.data.ptr, ws.data.ptr,
                          bias_dev.data.ptr if bias_dev is not None else 0, _ACT[activation], target.data.ptr,
                          _cuda._code(out.dtype), shape, depthwise, _cuda._stream())
    finish()


def _qconv2d(x, w, bias, out, *, stride, padding, dilation, groups, layout, x_zero_point=0, w_zero_point=0,
             scale=None, out_zero_point=0, activation=None, residual=None, residual_scale=1.0,
             residual_zero_point=0):
    if residual is not None:
        from ..base import KernelUnsupported

        raise KernelUnsupported("qconv2d: the cuda backend has no fused residual in the INT8 output stage yet")
    _cuda._check_device(x=x, w=w, out=out)
    xs, ws = _nhwc(x, layout), _krsc(w, layout)
    p, q = _out_pq(out, layout)
    shape = _shape(xs.shape, ws.shape, (p, q), stride, padding, dilation, groups)
    k = ws.shape[0]
    target, finish = _nhwc_target(out, layout, (xs.shape[0], p, q, k))
    wzp = _cuda._device_vector(w_zero_point, k, np.int32)
    bias_dev = _cuda._device_vector(bias, k, np.int32) if bias is not None else None
    scale_dev = _cuda._device_vector(scale, k, np.float32) if scale is not None else None
    _cuda._ext.qconv2d_fwd(_cuda._code(x.dtype), xs.data.ptr, ws.data.ptr, int(x_zero_point), wzp.data.ptr,
                           bias_dev.data.ptr if bias_dev is not None else 0,
                           scale_dev.data.ptr if scale_dev is not None else 0, int(out_zero_point),
                           activation == "relu", target.data.ptr, _cuda._code(out.dtype), shape, _cuda._stream())
    finish()


def _conv2d_backward_data(grad_out, w, out, *, stride, padding, dilation, groups, layout):
    _cuda._check_device(grad_out=grad_out, w=w, out=out)
    dys, ws = _nhwc(grad_out, layout), _krsc(w, layout)
    n, p, q, _ = dys.shape
    x_nhwc = (out.shape[0], out.shape[2], out.shape[3], out.shape[1]) if layout == "NCHW" else out.shape
    shape = _shape(x_nhwc, ws.shape, (p, q), stride, padding, dilation, groups)
    target, finish = _nhwc_target(out, layout, x_nhwc)
    _cuda._ext.conv2d_bwd_data(_cuda._code(out.dtype), dys.data.ptr, ws.data.ptr, target.data.ptr, shape,
                               _cuda._stream())
    finish()


def _conv2d_backward_weight(x, grad_out, out, *, stride, padding, dilation, groups, layout):
    _cuda._check_device(x=x, grad_out=grad_out, out=out)
    cp = _cuda._cp()
    xs, dys = _nhwc(x, layout), _nhwc(grad_out, layout)
    _, p, q, _ = dys.shape
    w_krsc = (out.shape[0], out.shape[2], out.shape[3], out.shape[1]) if layout == "NCHW" else out.shape
    shape = _shape(xs.shape, w_krsc, (p, q), stride, padding, dilation, groups)
    if layout == "NHWC" and out.flags.c_contiguous:
        target = out
    else:
        target = cp.empty(w_krsc, dtype=out.dtype)
    _cuda._ext.conv2d_bwd_weight(_cuda._code(out.dtype), xs.data.ptr, dys.data.ptr, target.data.ptr, shape,
                                 _cuda._stream())
    if target is not out:
        out[...] = target.transpose(0, 3, 1, 2) if layout == "NCHW" else target


def register_into(backend) -> bool:
    """Adds the conv kernels under the op layer's dtype combos; False when this build of
    the package has no convolution ops (the combos are defined with them)."""
    try:
        from ..reference import CONV2D_BACKWARD_COMBOS, CONV2D_COMBOS, QCONV2D_COMBOS
    except ImportError:
        return False
    for combo in CONV2D_COMBOS:
        backend.add_kernel("conv2d", combo, _conv2d)
    for combo in QCONV2D_COMBOS:
        backend.add_kernel("qconv2d", combo, _qconv2d)
    for combo in CONV2D_BACKWARD_COMBOS:
        backend.add_kernel("conv2d_backward_data", combo, _conv2d_backward_data)
        backend.add_kernel("conv2d_backward_weight", combo, _conv2d_backward_weight)
    return True
