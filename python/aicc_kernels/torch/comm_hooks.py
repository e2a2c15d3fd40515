"""A DDP communication hook that compresses gradients on the wire with our allreduce.

    ddp = DistributedDataParallel(model, process_group=pg)     # pg: backend "aicc"
    ddp.register_comm_hook(pg, aicc_kernels.torch.compression_hook("int8"))

"bf16" / "fp16": each bucket travels as 16-bit floats and is reduced in f32 (error bound
in docs/COLLECTIVES.md); "int8": 256-value blocks with one f32 scale (~0.26x the bytes,
|error| <= (1/127 + n 2^-24)(1 + 1e-4) sum_r m_r / n per element, m_r the block's max |x|
on rank r). The bucket is averaged over the ranks in place, as DDP's default hook does.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch.futures import Future

from .. import ops as _ak_ops
from . import _tensors as T
from .distributed import AiccProcessGroup

COMPRESSIONS = ("bf16", "fp16", "int8")


def _group(state):
    pg = state if state is not None else dist.distributed_c10d._get_default_group()
    if not isinstance(pg, AiccProcessGroup):
        raise TypeError(f"state: expected a process group of backend 'aicc' (or None for the default group), "
                        f"got {type(pg).__name__}")
    return pg


def compression_hook(compression: str = "bf16"):
    """A DDP comm hook, hook(state, bucket) -> Future[Tensor]; state is the 'aicc' process
    group given to register_comm_hook (None: the default group)."""
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression: expected one of {COMPRESSIONS}, got {compression!r}")

    def hook(state, bucket):
        pg = _group(state)
        buf = bucket.buffer()
        fut = Future()
        x = T.as_array(buf)
        # Compression is defined for f32 gradients; other dtypes are averaged as they are.
        _ak_ops.allreduce(x, "avg", comm=pg.comm, compression=compression if buf.dtype == torch.float32 else None,
                          out=x)
        fut.set_result(buf)
        return fut

    hook.__name__ = f"aicc_{compression}_compression_hook"
    hook.__qualname__ = hook.__name__
    return hook


__all__ = ["compression_hook", "COMPRESSIONS"]
