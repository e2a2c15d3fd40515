"""aicc_kernels.torch: our kernels inside PyTorch (imported explicitly; needs torch).

    import aicc_kernels.torch as akt
    model = akt.convert(model)                 # nn.Linear / nn.Conv2d -> our kernels
    y = torch.ops.aicc.gemm(x, w, bias=b, trans_b=True, activation="gelu")
    torch.distributed.init_process_group("aicc")   # our collectives as a c10d backend

Importing registers the operators torch.ops.aicc.* (schema, CPU/CUDA kernels, fake
kernels for torch.compile, autograd) and the torch.distributed backend "aicc". matmul and
gemm also get a C++ per-call path, compiled against this torch at first import and cached
(`native_status()` says whether it is in use and why).
docs/PYTORCH.md is the guide.
"""

from __future__ import annotations

try:
    import torch  # noqa: F401  (fails here, with the message below, when torch is absent)
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("aicc_kernels.torch needs PyTorch: pip install 'aicc-kernels[torch]' "
                      f"(torch==2.13.0), got ImportError: {exc}") from None

from . import ops  # noqa: E402  (registers torch.ops.aicc.*)
from .modules import Conv2d, ConversionReport, Linear, convert  # noqa: E402
from . import distributed  # noqa: E402  (registers the "aicc" c10d backend)
from .distributed import AiccProcessGroup  # noqa: E402
from .comm_hooks import compression_hook  # noqa: E402
from ._native import status as native_status  # noqa: E402

__all__ = ["ops", "native_status", "Linear", "Conv2d", "convert", "ConversionReport", "distributed", "AiccProcessGroup",
           "compression_hook"]
