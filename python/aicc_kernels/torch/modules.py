"""Drop-in Linear / Conv2d modules and convert(model).

aicc_kernels.torch.Linear and Conv2d are torch.nn.Linear / Conv2d subclasses: same
constructor, same parameters, same state_dict keys, so checkpoints load unchanged; only
forward runs our kernels (torch.ops.aicc.gemm / conv2d, with autograd).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from . import _tensors as T
from . import ops as _ops  # noqa: F401  (the operators must be registered)


def _device_supported(device) -> bool:
    if device.type == "cpu":
        return True
    return device.type == "cuda" and _ops._cuda_built()


def _input_problem(module, x, name="input"):
    """Why our kernel cannot take this call (None when it can). With fallback=True the
    module then runs the torch op instead; without, the reason is the error."""
    if not isinstance(x, torch.Tensor) or x.layout != torch.strided:
        return f"{name}: expected a dense torch.Tensor, got {type(x).__name__}"
    if x.dtype not in T.FLOAT_DTYPES:
        return f"{name}: expected dtype float32, float16 or bfloat16, got {x.dtype}"
    if x.dtype != module.weight.dtype:
        return f"{name}: expected dtype {module.weight.dtype} (the weight's), got {x.dtype}"
    if not _device_supported(x.device):
        return f"{name}: expected a CPU tensor (or CUDA with our cuda backend built), got one on {x.device}"
    if x.device != module.weight.device:
        return f"{name}: expected a tensor on {module.weight.device} (the weight's device), got one on {x.device}"
    return None


class Linear(nn.Linear):
    """torch.nn.Linear running our GEMM: y = x W^T + b (bias fused into the GEMM epilogue).

    fallback: when True, a call our kernels cannot take (dtype, device) runs F.linear
    instead of raising; convert(model, fallback=True) sets it."""

    fallback = False

    def forward(self, x):
        problem = _input_problem(self, x)
        if problem is not None:
            if self.fallback:
                return F.linear(x, self.weight, self.bias)
            raise TypeError(f"aicc Linear: {problem} (convert(..., fallback=True) runs torch's op instead)")
        lead = x.shape[:-1]
        y = torch.ops.aicc.gemm(x.reshape(-1, x.shape[-1]), self.weight, None, self.bias, trans_b=True)
        return y.reshape(*lead, self.out_features)


def _conv_padding(module, x_hw):
    """The module's padding as the op's int[] (2 or 4 entries), or None when unsupported."""
    pad = module.padding
    if isinstance(pad, str):
        if pad == "valid":
            return [0, 0]
        # 'same' (stride 1, checked by torch): total d(k-1), the odd pixel bottom/right as in torch.
        out = []
        for d, k in zip(module.dilation, module.kernel_size):
            total = d * (k - 1)
            out += [total // 2, total - total // 2]
        return out
    return [int(pad[0]), int(pad[1])]


class Conv2d(nn.Conv2d):
    """torch.nn.Conv2d running our conv2d (bias fused; NCHW, or NHWC kernels for
    channels_last inputs); backward through our conv2d_backward_data / _weight kernels.
    Supports padding_mode='zeros' only (convert leaves other modes). fallback as in Linear."""

    fallback = False

    def forward(self, x):
        problem = _input_problem(self, x)
        if problem is None and x.dim() != 4:
            problem = f"input: expected a 4-D NCHW tensor, got shape {tuple(x.shape)}"
        if problem is None and self.padding_mode != "zeros":
            problem = f"padding_mode: expected 'zeros', got {self.padding_mode!r}"
        if problem is not None:
            if self.fallback:
                return self._conv_forward(x, self.weight, self.bias)
            raise TypeError(f"aicc Conv2d: {problem} (convert(..., fallback=True) runs torch's op instead)")
        return torch.ops.aicc.conv2d(x, self.weight, self.bias, list(self.stride), _conv_padding(self, x.shape[2:]),
                                     list(self.dilation), self.groups)


@dataclass
class ConversionReport:
    """What convert() did: the modules it swapped, and the ones it left with the reason."""

    converted: list = field(default_factory=list)   # qualified module names
    left: list = field(default_factory=list)        # (qualified name, module type, reason)

    def __str__(self):
        lines = [f"aicc convert: {len(self.converted)} module(s) converted, {len(self.left)} left"]
        lines += [f"  left {name or '<root>'} ({kind}): {reason}" for name, kind, reason in self.left]
        return "\n".join(lines)


def unsupported_reason(module) -> str | None:
    """Why convert() leaves this nn.Linear / nn.Conv2d (None: it converts it)."""
    weight = getattr(module, "weight", None)
    if weight is None or weight.layout != torch.strided:
        return "weight: expected a dense tensor"
    if weight.is_meta:
        return "weight: on the meta device (materialize the model first)"
    if weight.dtype not in T.FLOAT_DTYPES:
        return f"dtype: our kernels take float32/float16/bfloat16, got {weight.dtype}"
    if not _device_supported(weight.device):
        return f"device: no aicc backend for {weight.device}"
    if isinstance(module, nn.Conv2d):
        if module.padding_mode != "zeros":
            return f"padding_mode: only 'zeros' is supported, got {module.padding_mode!r}"
    return None


_SWAPS = ((nn.Linear, Linear), (nn.Conv2d, Conv2d))


def _swap(module, cls, fallback):
    new = cls.__new__(cls)
    # Same parameter objects, buffers, hooks and attributes: only the class (forward) changes.
    new.__dict__ = {k: (v.copy() if isinstance(v, dict) else v) for k, v in module.__dict__.items()}
    new.fallback = bool(fallback)
    return new


def convert(model: nn.Module, *, inplace: bool = False, fallback: bool = False) -> nn.Module:
    """Swaps every nn.Linear / nn.Conv2d (exactly those classes; subclasses may change
    forward, so they are left) whose configuration our kernels support for our modules.

    inplace=False (default) converts a deep copy. fallback=True makes the converted modules
    run torch's op for calls our kernels cannot take, instead of raising.
    Returns the model; `model.aicc_report` (a ConversionReport) lists what was converted
    and what was left, with the reason.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if not inplace:
        model = copy.deepcopy(model)
    report = ConversionReport()

    def visit(parent, prefix):
        for child_name, child in list(parent.named_children()):
            name = f"{prefix}{child_name}"
            target = next((ours for theirs, ours in _SWAPS if type(child) is theirs), None)
            if target is not None:
                reason = unsupported_reason(child)
                if reason is None:
                    setattr(parent, child_name, _swap(child, target, fallback))
                    report.converted.append(name)
                else:
                    report.left.append((name, type(child).__name__, reason))
                continue
            if isinstance(child, (Linear, Conv2d)):
                child.fallback = bool(fallback)
                report.converted.append(name)
                continue
            if isinstance(child, (nn.Linear, nn.Conv2d)):
                report.left.append((name, type(child).__name__,
                                    "a subclass of nn.Linear/nn.Conv2d (its forward may differ)"))
            visit(child, name + ".")

    root_target = next((ours for theirs, ours in _SWAPS if type(model) is theirs), None)
    if root_target is not None:
        reason = unsupported_reason(model)
        if reason is None:
            model = _swap(model, root_target, fallback)
            report.converted.append("")
        else:
            report.left.append(("", type(model).__name__, reason))
    else:
        visit(model, "")
    model.aicc_report = report
    return model


__all__ = ["Linear", "Conv2d", "convert", "ConversionReport", "unsupported_reason"]
