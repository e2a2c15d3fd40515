"""ResNet-50 inference (batch-norm folded into conv bias, random weights) built from our
kernels — ak.conv2d with fused bias+relu (and the residual add of each block in the last
conv's epilogue), ak.gemm for the classifier, NumPy for max-pool and average pool — timed in images/s against the same network built from
PyTorch functional ops (eager, and TorchScript-frozen), measured in the same run.

    from aicc_kernels.bench import resnet50
    rows = resnet50.run(batches=(1, 8), threads=(2,))

torchvision is not needed: the PyTorch network is built here from the same weights.
Each Result: op "resnet50", impl "aicc" / "torch" / "torch-jit-frozen", unit img/s, work =
images per call; extra: batch, layout, gflop_per_image, max_rel_err (ours vs torch logits).
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

import aicc_kernels as ak
from aicc_kernels.bench.record import Result, bench_threads, make_result, time_call

#: (bottleneck width, blocks, first stride) per stage; output channels are 4x the width.
STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))


def _conv_param(rng, k, c, r, stride=1, pad=0):
    w = (rng.standard_normal((k, c, r, r)) * np.sqrt(2.0 / (c * r * r))).astype(np.float32)
    b = (rng.standard_normal(k) * 0.01).astype(np.float32)
    return {"w": w, "b": b, "stride": stride, "pad": pad}


def build_params(seed: int = 0) -> Dict[str, object]:
    """Weights in NCHW order ([K, C, R, S]); folded batch norm = a per-channel bias."""
    rng = np.random.default_rng(seed)
    params: Dict[str, object] = {"conv1": _conv_param(rng, 64, 3, 7, 2, 3), "blocks": []}
    c_in = 64
    for width, blocks, stride in STAGES:
        for i in range(blocks):
            s = stride if i == 0 else 1
            block = {"a": _conv_param(rng, width, c_in, 1), "b": _conv_param(rng, width, width, 3, s, 1),
                     "c": _conv_param(rng, 4 * width, width, 1)}
            # The last conv of a residual branch starts small, as zero-init-gamma training does,
            # so activations stay in range across 16 blocks of random weights.
            block["c"]["w"] *= 0.2
            if i == 0:
                block["down"] = _conv_param(rng, 4 * width, c_in, 1, s, 0)
            params["blocks"].append(block)
            c_in = 4 * width
    params["fc_w"] = (rng.standard_normal((1000, 2048)) / np.sqrt(2048)).astype(np.float32)
    params["fc_b"] = (rng.standard_normal(1000) * 0.01).astype(np.float32)
    return params


def gflop_per_image(params) -> float:
    total = 0.0
    hw = 224

    def conv(p, h):
        k, c, r, _ = p["w"].shape
        o = (h + 2 * p["pad"] - r) // p["stride"] + 1
        return 2.0 * k * c * r * r * o * o, o

    f, hw = conv(params["conv1"], hw)
    total += f
    hw = (hw + 2 - 3) // 2 + 1
    for block in params["blocks"]:
        f, h1 = conv(block["a"], hw)
        total += f
        f, h2 = conv(block["b"], h1)
        total += f
        f, _ = conv(block["c"], h2)
        total += f
        if "down" in block:
            total += conv(block["down"], hw)[0]
        hw = h2
    return (total + 2.0 * 2048 * 1000) / 1e9


class AiccResNet50:
    """The forward pass on our kernels, in `layout`; weights converted to the layout and
    prepacked once (ak.prepack_conv2d_weights), as a framework would keep them."""

    def __init__(self, params, layout: str = "NHWC", prepack: bool = True):
        self.layout = layout

        def conv(p):
            w = p["w"] if layout == "NCHW" else np.ascontiguousarray(p["w"].transpose(0, 2, 3, 1))
            if prepack:
                w = ak.prepack_conv2d_weights(w, layout=layout)
            return {"w": w, "b": p["b"], "stride": p["stride"], "pad": p["pad"]}

        self.conv1 = conv(params["conv1"])
        self.blocks = [{k: conv(v) for k, v in b.items()} for b in params["blocks"]]
        self.fc_w = np.ascontiguousarray(params["fc_w"].T)  # [2048, 1000]
        self.fc_b = params["fc_b"]

    def _conv(self, x, p, activation="relu", residual=None):
        if residual is None:  # the plain call (no new arguments: the unchanged fast path)
            return ak.conv2d(x, p["w"], p["b"], stride=p["stride"], padding=p["pad"], layout=self.layout,
                             activation=activation)
        return ak.conv2d(x, p["w"], p["b"], stride=p["stride"], padding=p["pad"], layout=self.layout,
                         activation=activation, residual=residual)

    def _maxpool(self, x):
        """3x3, stride 2, padding 1 (padding is -inf)."""
        if self.layout == "NCHW":
            x = x.transpose(0, 2, 3, 1)
        n, h, w, c = x.shape
        xp = np.full((n, h + 2, w + 2, c), -np.inf, np.float32)
        xp[:, 1:-1, 1:-1] = x
        p, q = (h - 1) // 2 + 1, (w - 1) // 2 + 1
        out = xp[:, 0:2 * p - 1:2, 0:2 * q - 1:2].copy()
        for r in range(3):
            for s in range(3):
                np.maximum(out, xp[:, r:r + 2 * p - 1:2, s:s + 2 * q - 1:2], out=out)
        return out if self.layout == "NHWC" else np.ascontiguousarray(out.transpose(0, 3, 1, 2))

    def __call__(self, x):
        y = self._maxpool(self._conv(x, self.conv1))
        for b in self.blocks:
            identity = self._conv(y, b["down"], None) if "down" in b else y
            t = self._conv(self._conv(y, b["a"]), b["b"])
            # relu(conv + bias + identity) in the conv's epilogue: no pass over the block output.
            y = self._conv(t, b["c"], "relu", residual=identity)
        pooled = y.mean(axis=(1, 2) if self.layout == "NHWC" else (2, 3), dtype=np.float32)
        return ak.gemm(np.ascontiguousarray(pooled), self.fc_w, bias=self.fc_b)


def torch_resnet50(params):
    """The same network from PyTorch functional ops (NCHW), as an nn.Module."""
    import torch
    import torch.nn.functional as F

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = torch.nn.ParameterList()
            self.meta: List[tuple] = []

            def add(p):
                self.convs.append(torch.nn.Parameter(torch.from_numpy(p["w"]), requires_grad=False))
                self.convs.append(torch.nn.Parameter(torch.from_numpy(p["b"]), requires_grad=False))
                self.meta.append((p["stride"], p["pad"]))
                return len(self.meta) - 1

            self.c1 = add(params["conv1"])
            self.block_ids = []
            for b in params["blocks"]:
                self.block_ids.append((add(b["a"]), add(b["b"]), add(b["c"]), add(b["down"]) if "down" in b else -1))
            self.fc_w = torch.nn.Parameter(torch.from_numpy(params["fc_w"]), requires_grad=False)
            self.fc_b = torch.nn.Parameter(torch.from_numpy(params["fc_b"]), requires_grad=False)

        def conv(self, x, i: int):
            s, p = self.meta[i]
            return F.conv2d(x, self.convs[2 * i], self.convs[2 * i + 1], stride=s, padding=p)

        def forward(self, x):
            y = F.relu(self.conv(x, self.c1))
            y = F.max_pool2d(y, 3, 2, 1)
            for a, b, c, d in self.block_ids:
                identity = self.conv(y, d) if d >= 0 else y
                t = F.relu(self.conv(y, a))
                t = F.relu(self.conv(t, b))
                y = F.relu(self.conv(t, c) + identity)
            return F.linear(y.mean(dim=(2, 3)), self.fc_w, self.fc_b)

    return Net().eval()


def run(threads: Optional[Sequence[int]] = None, baselines: Sequence[str] = ("torch",), check: bool = True,
        quick: bool = False, batches: Optional[Sequence[int]] = None, layouts: Sequence[str] = ("NHWC",),
        repeats: Optional[int] = None, jit: bool = True, progress: Optional[Callable] = None) -> List[Result]:
    """images/s of ours and PyTorch's ResNet-50 per (threads, batch). quick: batch 1, 1 repeat."""
    threads = list(threads or (2,))
    batches = list(batches or ((1,) if quick else (1, 8)))
    repeats = repeats or (1 if quick else 3)
    params = build_params()
    gflop = gflop_per_image(params)
    torch = None
    if "torch" in baselines:
        try:
            import torch
        except ImportError:
            torch = None
    tnet = torch_resnet50(params) if torch is not None else None
    results: List[Result] = []
    for t in threads:
        with bench_threads(t, torch):
            for batch in batches:
                x = np.random.default_rng(1).standard_normal((batch, 3, 224, 224)).astype(np.float32)
                ref = None
                calls = {}  # impl -> (shape label, layout, callable, extra)
                if tnet is not None:
                    xt = torch.from_numpy(x)
                    with torch.no_grad():
                        ref = tnet(xt).numpy()
                    no_grad = torch.no_grad

                    def eager(xt=xt):
                        with no_grad():
                            tnet(xt)

                    calls["torch"] = (f"N={batch} NCHW eager", "NCHW", eager, {})
                    if jit:
                        with torch.no_grad():
                            frozen = torch.jit.freeze(torch.jit.trace(tnet, xt))
                            frozen(xt)

                        def jitted(xt=xt, frozen=frozen):
                            with no_grad():
                                frozen(xt)

                        calls["torch-jit-frozen"] = (f"N={batch} NCHW jit-frozen", "NCHW", jitted, {})
                for layout in layouts:
                    if progress:
                        progress(f"resnet50 N={batch} {layout} t={t}")
                    net = AiccResNet50(params, layout)
                    xo = x if layout == "NCHW" else np.ascontiguousarray(x.transpose(0, 2, 3, 1))
                    logits = net(xo)
                    extra = {}
                    if check and ref is not None:
                        err = float(np.abs(logits - ref).max() / max(np.abs(ref).max(), 1e-30))
                        extra = {"max_rel_err": err, "wrong": int(err > 1e-3)}
                    calls[f"aicc:{layout}"] = (f"N={batch} {layout}", layout, lambda net=net, xo=xo: net(xo), extra)
                # Every implementation timed in turn, call by call: the same machine load for all.
                samples = {name: [] for name in calls}
                for _ in range(repeats):
                    for name, (_, _, fn, _) in calls.items():
                        samples[name] += time_call(fn, repeats=1, warmup=0)
                rows = {}
                for name, (label, layout, _, extra) in calls.items():
                    impl = name.split(":")[0]
                    extra = dict(extra)
                    wrong = extra.pop("wrong", None)
                    rows[name] = make_result("resnet50", impl, "f32", label, t, samples[name], batch, "img/s", wrong,
                                             batch=batch, layout=layout, gflop_per_image=gflop, **extra)
                for name, row in rows.items():
                    if row.impl == "aicc":
                        for peer_name, peer in rows.items():
                            if peer.impl != "aicc":
                                row.extra[f"vs_{peer_name}"] = peer.seconds / row.seconds
                results += rows.values()
    return results


def summary(results: List[Result]) -> str:
    lines = [f"{'impl':<18}{'batch':>5} {'layout':<7}{'img/s':>8}{'GFLOPS':>9}  check"]
    for r in results:
        gflops = r.throughput * r.extra.get("gflop_per_image", 0)
        err = r.extra.get("max_rel_err")
        lines.append(f"{r.impl:<18}{r.extra['batch']:>5} {r.extra['layout']:<7}{r.throughput:>8.2f}{gflops:>9.1f}  "
                     + ("" if err is None else f"max rel err vs torch {err:.1e}"))
    return "\n".join(lines)
