"""The public ops: validation, output allocation, backend dispatch."""

from .collective import all_gather, allreduce, barrier, broadcast, reduce_scatter
from .conv import (Conv2dWeights, conv2d, conv2d_backward_data, conv2d_backward_weight, prepack_conv2d_weights,
                   qconv2d)
from .gemm import gemm, matmul, qgemm

__all__ = ["gemm", "matmul", "qgemm", "conv2d", "qconv2d", "conv2d_backward_data",
           "conv2d_backward_weight", "Conv2dWeights", "prepack_conv2d_weights",
           "allreduce", "reduce_scatter", "all_gather", "broadcast", "barrier"]
