"""The public ops: validation, output allocation, backend dispatch."""

from .collective import all_gather, allreduce, barrier, broadcast, reduce_scatter
from .gemm import gemm, matmul, qgemm

__all__ = ["gemm", "matmul", "qgemm", "allreduce", "reduce_scatter", "all_gather", "broadcast", "barrier"]
