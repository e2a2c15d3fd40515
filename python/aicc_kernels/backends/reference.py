"""The reference backend: the NumPy specification, always available."""

from __future__ import annotations

from ..reference import gemm_kernels as _gemm
from . import register
from .base import Backend

FLOAT_GEMM_COMBOS = [("f32", "f32", "f32"), ("f16", "f16", "f16"), ("f16", "f16", "f32"),
                     ("bf16", "bf16", "bf16"), ("bf16", "bf16", "f32")]
QGEMM_COMBOS = [(a, "s8", out) for a in ("u8", "s8") for out in ("s32", "s8", "u8", "f32")]

backend = Backend("reference", "cpu", {
    "gemm": {combo: _gemm.gemm_kernel for combo in FLOAT_GEMM_COMBOS},
    "qgemm": {combo: _gemm.qgemm_kernel for combo in QGEMM_COMBOS},
}, description="NumPy reference (float64 / int64 arithmetic): the specification")
register(backend)
