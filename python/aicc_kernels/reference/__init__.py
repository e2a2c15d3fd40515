"""aicc_kernels.reference: the specification.

Every public op has a twin here with the same signature, computed by the NumPy
reference backend (float64 / int64 arithmetic, rounded once at the end). The kernels
themselves are in the submodules (gemm.py, ...); docs/SEMANTICS.md writes the same
contract out in prose.
"""

from __future__ import annotations

import functools

from .. import ops as _ops


def _mirror(op):
    @functools.wraps(op)
    def reference_op(*args, **kwargs):
        kwargs.pop("backend", None)
        return op(*args, backend="reference", **kwargs)

    reference_op.__doc__ = f"Reference (NumPy) {op.__name__}. " + (op.__doc__ or "")
    return reference_op


matmul = _mirror(_ops.matmul)
gemm = _mirror(_ops.gemm)
qgemm = _mirror(_ops.qgemm)
conv2d = _mirror(_ops.conv2d)
qconv2d = _mirror(_ops.qconv2d)
conv2d_backward_data = _mirror(_ops.conv2d_backward_data)
conv2d_backward_weight = _mirror(_ops.conv2d_backward_weight)

# Collectives take the list of every rank's input (they cannot be mirrored call for call).
from .collective_kernels import (all_gather, allreduce, allreduce_error_bound, broadcast,  # noqa: E402
                                 int8_allreduce_model, quantize_int8_blocks, reduce_scatter)

__all__ = ["matmul", "gemm", "qgemm", "conv2d", "qconv2d", "conv2d_backward_data", "conv2d_backward_weight",
           "allreduce", "allreduce_error_bound", "reduce_scatter", "all_gather", "broadcast",
           "quantize_int8_blocks", "int8_allreduce_model"]
