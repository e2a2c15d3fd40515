"""The C++ CPU backend (csrc/), through the _aicc_cpu extension module."""

from __future__ import annotations

import numpy as np

from . import register
from .base import Backend
from .reference import (CONV2D_BACKWARD_COMBOS, CONV2D_COMBOS, FLOAT_GEMM_COMBOS, QCONV2D_COMBOS,
                        QGEMM_COMBOS)

_ACTIVATION_CODES = {None: 0, "relu": 1, "gelu": 2}

try:
    from .. import _aicc_cpu as _ext
except ImportError as exc:  # a source checkout without a build, or a broken build
    _ext = None
    _reason = f"the C++ extension did not import ({exc})"
else:
    _reason = None


def _gemm(a, b, c, out, *, alpha=1.0, beta=0.0, bias=None, activation=None):
    _ext.gemm(a, b, c, out, float(alpha), float(beta), bias, _ACTIVATION_CODES[activation])


def _qgemm(a, b, out, *, a_zero_point=0, b_zero_point=0, scale=None, bias=None,
           out_zero_point=0, activation=None):
    _ext.qgemm(a, b, out, int(a_zero_point), b_zero_point, scale, bias, int(out_zero_point),
               _ACTIVATION_CODES[activation])


def _geometry(stride, padding, dilation, groups, layout):
    (pt, pb), (pl, pr) = padding
    return (stride[0], stride[1], pt, pb, pl, pr, dilation[0], dilation[1], groups,
            0 if layout == "NCHW" else 1)


def _conv2d(x, w, bias, out, *, stride, padding, dilation, groups, layout, activation=None, scale=None,
            residual=None):
    """w: the weight array, or the _aicc_cpu.Conv2dWeights made by _prepack_conv2d_weights.
    scale / residual: the fused epilogue (out = act(scale * conv + bias + residual))."""
    run = _ext.conv2d if isinstance(w, np.ndarray) else _ext.conv2d_prepacked
    geometry = _geometry(stride, padding, dilation, groups, layout)
    if scale is None and residual is None:
        run(x, w, bias, out, geometry, _ACTIVATION_CODES[activation])
    else:
        run(x, w, bias, out, geometry, _ACTIVATION_CODES[activation], scale, residual)


def _prepack_conv2d_weights(w, groups, layout):
    return _ext.Conv2dWeights(w, groups, 0 if layout == "NCHW" else 1)


def _qconv2d(x, w, bias, out, *, stride, padding, dilation, groups, layout, x_zero_point=0,
             w_zero_point=None, scale=None, out_zero_point=0, activation=None, residual=None,
             residual_scale=1.0, residual_zero_point=0):
    """residual: the requantized skip input added in the output stage (SEMANTICS.md)."""
    args = (x, w, bias, out, _geometry(stride, padding, dilation, groups, layout), int(x_zero_point),
            w_zero_point, scale, int(out_zero_point), _ACTIVATION_CODES[activation])
    if residual is None:
        _ext.qconv2d(*args)
    else:
        _ext.qconv2d(*args, residual, float(residual_scale), int(residual_zero_point))


def _conv2d_backward_data(grad_out, w, out, *, stride, padding, dilation, groups, layout):
    _ext.conv2d_backward_data(grad_out, w, out, _geometry(stride, padding, dilation, groups, layout))


def _conv2d_backward_weight(x, grad_out, out, *, stride, padding, dilation, groups, layout):
    _ext.conv2d_backward_weight(x, grad_out, out, _geometry(stride, padding, dilation, groups, layout))


backend = Backend("cpu", "cpu", {
    "gemm": {combo: _gemm for combo in FLOAT_GEMM_COMBOS},
    "qgemm": {combo: _qgemm for combo in QGEMM_COMBOS},
    "conv2d": {combo: _conv2d for combo in CONV2D_COMBOS},
    "qconv2d": {combo: _qconv2d for combo in QCONV2D_COMBOS},
    "conv2d_backward_data": {combo: _conv2d_backward_data for combo in CONV2D_BACKWARD_COMBOS},
    "conv2d_backward_weight": {combo: _conv2d_backward_weight for combo in CONV2D_BACKWARD_COMBOS},
}, unavailable_reason=_reason, description="C++ kernels (AVX2/FMA/F16C or portable, runtime dispatch)")
backend.prepack_conv2d_weights = _prepack_conv2d_weights
register(backend)
