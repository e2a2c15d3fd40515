"""aicc_kernels: GEMM, convolution and collective kernels for AI computing centers.

    import aicc_kernels as ak
    c = ak.gemm(a, b)                 # C++ kernels for NumPy arrays
    c_ref = ak.reference.gemm(a, b)   # the NumPy specification
    ak.show_config()

See docs/SEMANTICS.md for the contract every backend implements.
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import _dtypes, backends
from ._config import config, get_num_threads, set_num_threads, show_config
from ._dtypes import bfloat16
from .ops import (Conv2dWeights, all_gather, allreduce, barrier, broadcast, conv2d, conv2d_backward_data,
                  conv2d_backward_weight, gemm, matmul, prepack_conv2d_weights, qconv2d, qgemm,
                  reduce_scatter)
from . import collective  # noqa: E402
from .collective import CollectiveError  # noqa: E402
from . import reference  # noqa: E402  (needs ops)

__all__ = [
    "__version__", "backends", "reference", "bfloat16",
    "matmul", "gemm", "qgemm", "conv2d", "qconv2d", "conv2d_backward_data", "conv2d_backward_weight",
    "Conv2dWeights", "prepack_conv2d_weights",
    "allreduce", "reduce_scatter", "all_gather", "broadcast", "barrier", "collective", "CollectiveError",
    "set_num_threads", "get_num_threads", "show_config", "config",
]
