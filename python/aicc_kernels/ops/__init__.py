"""The public ops: validation, output allocation, backend dispatch."""

from .conv import (Conv2dWeights, conv2d, conv2d_backward_data, conv2d_backward_weight, prepack_conv2d_weights,
                   qconv2d)
from .gemm import gemm, matmul, qgemm

__all__ = ["gemm", "matmul", "qgemm", "conv2d", "qconv2d", "conv2d_backward_data",
           "conv2d_backward_weight", "Conv2dWeights", "prepack_conv2d_weights"]
