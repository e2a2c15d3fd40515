"""ResNet-50 training step — forward and backward of every convolution and of the classifier
through our kernels — against the same step in PyTorch eager, measured in the same run.

    aicc-bench resnet50 --train                  # batch 8 and 32, 2 threads
    python benchmarks/resnet50.py --train --batches 8

The network is torchvision's ResNet-50 (v1.5: the stride on the 3x3; batch norm; random
weights), built here because torchvision does not import beside the CPU torch. Both models
are channels_last f32 in train mode; ours is `aicc_kernels.torch.convert(native)`, so every
nn.Conv2d / nn.Linear runs torch.ops.aicc.conv2d / gemm forward and our
conv2d_backward_data / _weight and GEMMs backward, while batch norm, relu, pooling, the
residual adds, the loss and SGD stay PyTorch's, in both models alike. A step is forward +
cross-entropy + backward + SGD, on the same data; images/s = batch / median step time.

Per step the module also reports where the time goes (one profiled step per model): the
seconds inside the convolution / linear operators, forward and backward, and the rest
(batch norm, pooling, loss, optimizer, autograd), so a gap is attributed to our kernels or
not. Gradients are checked once per batch (gradient_errors): the weight gradients of every
conv and linear layer, ours and PyTorch's, against the float64 network.

Each Result: op "resnet50-train", impl "aicc" / "torch", dtype f32, unit img/s, work = the
batch; extra: batch, conv_fc_s, other_s (profiled step), grad_max_rel_err and
torch_grad_max_rel_err (aicc rows).
"""

from __future__ import annotations

import copy
import time
from typing import Callable, List, Optional, Sequence

from aicc_kernels.bench.record import Result, bench_threads, make_result, time_call

#: Forward + backward GFLOP per image of the convs and the FC (3x the forward: data and
#: weight gradients each cost one forward), for the GFLOPS column.
GFLOP_PER_IMAGE_TRAIN = 3 * 4.11

#: Each layer's f32 weight gradient of ours against float64 (batch norm frozen) may be off by
#: at most GRAD_RATIO times PyTorch's error on the same layer, or GRAD_FLOOR (gradient_errors).
GRAD_RATIO = 10.0
GRAD_FLOOR = 1e-4

#: Operators whose time is "convolution / linear" (outermost occurrence only).
OUR_OPS = ("aicc::conv2d", "aicc::conv2d_backward_data", "aicc::conv2d_backward_weight", "aicc::gemm",
           "aicc::matmul")
TORCH_OPS = ("aten::convolution", "aten::convolution_backward", "aten::linear", "aten::addmm", "aten::mm")


def resnet50_model():
    """torchvision.models.resnet50's architecture (v1.5: stride on the 3x3), random weights."""
    from torch import nn

    class Bottleneck(nn.Module):
        def __init__(self, cin, width, stride):
            super().__init__()
            cout = width * 4
            self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            idt = x if self.downsample is None else self.downsample(x)
            y = self.relu(self.bn1(self.conv1(x)))
            y = self.relu(self.bn2(self.conv2(y)))
            return self.relu(self.bn3(self.conv3(y)) + idt)

    layers = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for i in range(blocks):
            layers.append(Bottleneck(cin, width, stride if i == 0 else 1))
            cin = width * 4
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2048, 1000)]
    return nn.Sequential(*layers)


def _step_fn(torch, model, x, target):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _split_time(torch, step, names) -> tuple:
    """(seconds in the outermost `names` operators, seconds of the whole step), one profiled step."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        step()
        total = time.perf_counter() - t0
    inside = 0.0
    for ev in prof.events():
        if ev.name not in names:
            continue
        parent, nested = ev.cpu_parent, False
        while parent is not None:
            if parent.name in names:
                nested = True
                break
            parent = parent.cpu_parent
        if not nested:
            inside += ev.cpu_time_total * 1e-6
    return inside, total


def gradient_errors(torch, native, ours, x, target) -> tuple:
    """Per conv / linear weight gradient, max|g - g64| / max|g64| against the same network in
    float64, after one forward/backward from the same weights on the same data, for ours and
    for PyTorch's f32: returns (worst of ours, worst of PyTorch's, wrong), where wrong means
    some layer of ours is off by more than max(GRAD_RATIO x PyTorch's error on that layer,
    GRAD_FLOOR).

    Batch norm is frozen for this check (eval mode: a fixed per-channel affine map). In train
    mode, with random weights and small batches, the batch statistics make the gradients so
    ill-conditioned that PyTorch's own f32 gradients are up to ~40 % away from float64 on
    some layers at batch 2, ours alike. Frozen, most layers of both are within ~1e-6, but a
    few lose up to ~1e-2 to cancellation in either implementation, which is why each layer
    is judged against PyTorch's error on the same layer rather than against one bound."""
    models = [copy.deepcopy(native).double().eval(), copy.deepcopy(native).eval(), copy.deepcopy(ours).eval()]
    grads = []
    for m in models:
        xx = x.double() if m is models[0] else x
        m.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(m(xx), target).backward()
        grads.append({name: p.grad.detach().double() for name, p in m.named_parameters()
                      if p.grad is not None and p.dim() in (2, 4)})
    worst_ours = worst_torch = 0.0
    wrong = False
    for name, g64 in grads[0].items():
        denom = float(g64.abs().max())
        if denom == 0:
            continue
        e_ours = float((grads[2][name] - g64).abs().max()) / denom
        e_torch = float((grads[1][name] - g64).abs().max()) / denom
        worst_ours, worst_torch = max(worst_ours, e_ours), max(worst_torch, e_torch)
        wrong |= e_ours > max(GRAD_RATIO * e_torch, GRAD_FLOOR)
    return worst_ours, worst_torch, wrong


def run(threads: Optional[Sequence[int]] = None, batches: Optional[Sequence[int]] = None, repeats: Optional[int] = None,
        quick: bool = False, check: bool = True, progress: Optional[Callable] = None,
        image_size: int = 224, cpu_time: bool = False) -> List[Result]:
    """Training-step images/s of the converted and the native model per (threads, batch).
    image_size: the input's height and width (224 as in ImageNet training; the tests use a
    smaller one, which every layer of the network takes down to 2x2 at 64). cpu_time: time each
    step by the calling thread's CPU time (time.thread_time) instead of the wall clock, for a
    shared machine whose other jobs would otherwise be counted against whichever model was
    running; needs threads=(1,) (with more threads the work runs on other threads)."""
    import torch

    import aicc_kernels.torch as akt

    threads = list(threads or (2,))
    if cpu_time and threads != [1]:
        raise ValueError(f"threads: cpu_time needs threads=(1,), got {tuple(threads)}")
    batches = list(batches or ((2,) if quick else (8, 32)))
    repeats = repeats or (1 if quick else 3)
    results: List[Result] = []
    for t in threads:
        with bench_threads(t, torch):
            for batch in batches:
                if progress:
                    progress(f"resnet50 training step N={batch} t={t}")
                torch.manual_seed(0)
                native = resnet50_model().to(memory_format=torch.channels_last).train()
                ours = akt.convert(copy.deepcopy(native))
                x = torch.randn(batch, 3, image_size, image_size).contiguous(memory_format=torch.channels_last)
                target = torch.randint(0, 1000, (batch,))
                err, torch_err, grads_wrong = (gradient_errors(torch, native, ours, x, target) if check
                                               else (None, None, None))
                models = {"torch": native, "aicc": ours}
                steps = {name: _step_fn(torch, m, x, target) for name, m in models.items()}
                for fn in steps.values():
                    fn()  # warm-up: first-touch allocations, prepacked weights, the native build
                samples = {name: [] for name in steps}
                for _ in range(repeats):  # interleaved: the same machine load for both
                    for name, fn in steps.items():
                        samples[name] += _thread_time_call(fn) if cpu_time else time_call(fn, repeats=1, warmup=0)
                split = {"torch": _split_time(torch, steps["torch"], TORCH_OPS),
                         "aicc": _split_time(torch, steps["aicc"], OUR_OPS)}
                rows = {}
                for name, s in samples.items():
                    inside, total = split[name]
                    extra = dict(batch=batch, layout="NHWC", conv_fc_s=inside, other_s=max(total - inside, 0.0),
                                 profiled_step_s=total,
                                 gflop_per_image=GFLOP_PER_IMAGE_TRAIN * (image_size / 224) ** 2)
                    wrong = None
                    if name == "aicc" and err is not None:
                        extra["grad_max_rel_err"] = err
                        extra["torch_grad_max_rel_err"] = torch_err
                        wrong = int(grads_wrong)
                    rows[name] = make_result("resnet50-train", name, "f32", f"N={batch} train step" + ("" if image_size == 224 else f" {image_size}x{image_size}"), t, s, batch,
                                             "img/s", wrong, clock="thread_time" if cpu_time else "wall", **extra)
                rows["aicc"].extra["vs_torch"] = rows["torch"].seconds / rows["aicc"].seconds
                results += rows.values()
    return results


def _thread_time_call(fn) -> List[float]:
    t0 = time.thread_time()
    fn()
    return [time.thread_time() - t0]


def summary(results: List[Result]) -> str:
    lines = [f"{'impl':<8}{'batch':>6}{'img/s':>9}{'conv+fc s':>11}{'other s':>9}  check"]
    for r in results:
        err = r.extra.get("grad_max_rel_err")
        vs = r.extra.get("vs_torch")
        lines.append(f"{r.impl:<8}{r.extra['batch']:>6}{r.throughput:>9.2f}{r.extra['conv_fc_s']:>11.3f}"
                     f"{r.extra['other_s']:>9.3f}  " + ("" if err is None else f"grad rel err {err:.1e} (torch {r.extra['torch_grad_max_rel_err']:.1e})")
                     + ("" if vs is None else f"  {vs:.2f}x torch"))
    return "\n".join(lines)
