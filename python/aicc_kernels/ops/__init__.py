"""The public ops: validation, output allocation, backend dispatch."""

from .conv import conv2d, conv2d_backward_data, conv2d_backward_weight, qconv2d
from .gemm import gemm, matmul, qgemm

__all__ = ["gemm", "matmul", "qgemm", "conv2d", "qconv2d", "conv2d_backward_data",
           "conv2d_backward_weight"]
