"""The reference backend: the NumPy specification, always available."""

from __future__ import annotations

from ..reference import conv_kernels as _conv
from ..reference import gemm_kernels as _gemm
from . import register
from .base import Backend

FLOAT_GEMM_COMBOS = [("f32", "f32", "f32"), ("f16", "f16", "f16"), ("f16", "f16", "f32"),
                     ("bf16", "bf16", "bf16"), ("bf16", "bf16", "f32")]
QGEMM_COMBOS = [(a, "s8", out) for a in ("u8", "s8") for out in ("s32", "s8", "u8", "f32")]
# conv2d: (x, w, out); the backward ops: (grad_out or x, w or grad_out, result), one dtype.
CONV2D_COMBOS = FLOAT_GEMM_COMBOS
QCONV2D_COMBOS = QGEMM_COMBOS
CONV2D_BACKWARD_COMBOS = [(t, t, t) for t in ("f32", "f16", "bf16")]

backend = Backend("reference", "cpu", {
    "gemm": {combo: _gemm.gemm_kernel for combo in FLOAT_GEMM_COMBOS},
    "qgemm": {combo: _gemm.qgemm_kernel for combo in QGEMM_COMBOS},
    "conv2d": {combo: _conv.conv2d_kernel for combo in CONV2D_COMBOS},
    "qconv2d": {combo: _conv.qconv2d_kernel for combo in QCONV2D_COMBOS},
    "conv2d_backward_data": {combo: _conv.conv2d_backward_data_kernel for combo in CONV2D_BACKWARD_COMBOS},
    "conv2d_backward_weight": {combo: _conv.conv2d_backward_weight_kernel for combo in CONV2D_BACKWARD_COMBOS},
}, description="NumPy reference (float64 / int64 arithmetic): the specification")
register(backend)
