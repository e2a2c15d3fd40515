"""torch.Tensor <-> the arrays our op layer takes, without copies.

CPU tensors become NumPy views of the same memory (the buffer / array interface, so the
strides travel with them). NumPy has no bfloat16, so a bf16 tensor is viewed as int16 by
torch and that NumPy view is reinterpreted as ml_dtypes.bfloat16: still the same bytes,
no copy. CUDA tensors go to the op layer as they are: it reads them through DLPack
(CuPy views), and our cuda backend runs on torch's current stream.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from .. import _dtypes

#: torch dtype -> NumPy dtype of the arrays our kernels take.
NP_DTYPE = {
    torch.float32: _dtypes.float32,
    torch.float64: _dtypes.float64,
    torch.float16: _dtypes.float16,
    torch.bfloat16: _dtypes.bfloat16,
    torch.int8: _dtypes.int8,
    torch.uint8: _dtypes.uint8,
    torch.int32: _dtypes.int32,
    torch.int64: _dtypes.int64,
}
TORCH_DTYPE = {v: k for k, v in NP_DTYPE.items()}
FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
QUANT_ACTIVATION_DTYPES = (torch.uint8, torch.int8)


def check_tensor(t, name: str, device=None) -> None:
    """A dense (strided) tensor of a dtype we know, on `device` when given."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if t.layout != torch.strided:
        raise TypeError(f"{name}: expected a dense (strided) tensor, got layout {t.layout}")
    if t.dtype not in NP_DTYPE:
        raise TypeError(f"{name}: expected dtype in ({', '.join(str(d) for d in NP_DTYPE)}), got {t.dtype}")
    if device is not None and t.device != device:
        raise ValueError(f"{name}: expected a tensor on {device} (the device of the first tensor), "
                         f"got one on {t.device}")


def as_array(t: torch.Tensor):
    """The array our op layer reads for tensor t: a zero-copy NumPy view on the CPU (any
    strides), the tensor itself on CUDA (the op layer takes it through DLPack)."""
    if not t.is_cpu:
        return t
    if t.requires_grad:
        t = t.detach()  # same storage; numpy() refuses tensors that require grad
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(_dtypes.bfloat16)
    return t.numpy()


def from_array(x) -> torch.Tensor:
    """The inverse of as_array on the CPU: a tensor over the NumPy array's memory, no copy
    (bf16 through an int16 view, as NumPy has no bfloat16 torch could read); None stays None."""
    if x is None:
        return None
    x = np.asarray(x)
    if x.dtype == _dtypes.bfloat16:
        return torch.from_numpy(x.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(x)


def as_array_or_none(t):
    return None if t is None else as_array(t)


def np_dtype(dtype, name: str = "out_dtype"):
    if dtype is None:
        return None
    try:
        return NP_DTYPE[dtype]
    except KeyError:
        raise TypeError(f"{name}: expected one of ({', '.join(str(d) for d in NP_DTYPE)}), got {dtype}") from None


def is_channels_last(t) -> bool:
    """The convolution ops compute in NHWC when the input is channels_last (and not also
    plain contiguous, as tensors with C == 1 or H == W == 1 are): the output then has the
    same memory format. Fake and real kernels share this rule, so their strides agree."""
    return t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last)


def empty(shape, dtype, device, channels_last=False):
    if channels_last:
        return torch.empty(shape, dtype=dtype, device=device, memory_format=torch.channels_last)
    return torch.empty(shape, dtype=dtype, device=device)


def nhwc(t):
    """The NHWC view of an NCHW-shaped tensor (contiguous when t is channels_last)."""
    return t.permute(0, 2, 3, 1)


@contextlib.contextmanager
def kernel_stream(device):
    """CUDA: run our kernels on torch's current stream (our cuda backend enqueues on CuPy's
    current stream), so they order with the torch work around them. CPU: nothing."""
    if device.type != "cuda":
        yield
        return
    import cupy

    with cupy.cuda.Device(device.index or 0), cupy.cuda.ExternalStream(torch.cuda.current_stream(device).cuda_stream):
        yield


def scalar_or_array(t, name):
    """A small parameter tensor (zero points, scales) as a NumPy array on the host: 0-d or
    1-element tensors become Python scalars (per tensor), others stay arrays (per channel)."""
    if t is None:
        return None
    check_tensor(t, name)
    arr = t.detach().cpu()
    if arr.dtype == torch.bfloat16:
        arr = arr.float()
    arr = arr.numpy()
    return arr.reshape(()).item() if arr.size == 1 and arr.ndim <= 1 else arr


__all__ = ["NP_DTYPE", "TORCH_DTYPE", "FLOAT_DTYPES", "check_tensor", "as_array", "from_array", "np_dtype",
           "is_channels_last", "empty", "nhwc", "kernel_stream", "scalar_or_array"]
