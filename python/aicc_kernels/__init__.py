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
from ._cmake import get_cmake_dir, get_include
from ._config import config, get_num_threads, set_num_threads, show_config
from ._dtypes import bfloat16
from .ops import gemm, matmul, qgemm
from . import reference  # noqa: E402  (needs ops)

__all__ = [
    "__version__", "backends", "reference", "bfloat16",
    "matmul", "gemm", "qgemm",
    "set_num_threads", "get_num_threads", "show_config", "config",
    "get_cmake_dir", "get_include",
]
