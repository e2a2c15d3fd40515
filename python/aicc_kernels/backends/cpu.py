"""The C++ CPU backend (csrc/), through the _aicc_cpu extension module."""

from __future__ import annotations

from . import register
from .base import Backend
from .reference import FLOAT_GEMM_COMBOS, QGEMM_COMBOS

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


backend = Backend("cpu", "cpu", {
    "gemm": {combo: _gemm for combo in FLOAT_GEMM_COMBOS},
    "qgemm": {combo: _qgemm for combo in QGEMM_COMBOS},
}, unavailable_reason=_reason, description="C++ kernels (AVX2/FMA/F16C or portable, runtime dispatch)")
register(backend)
