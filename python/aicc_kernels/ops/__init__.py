"""The public ops: validation, output allocation, backend dispatch."""

from .gemm import gemm, matmul, qgemm

__all__ = ["gemm", "matmul", "qgemm"]
