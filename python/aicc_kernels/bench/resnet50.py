"""ResNet-50 inference (batch-norm folded into conv bias, random weights) built from our
kernels — ak.conv2d with fused bias+relu (and the residual add of each block in the last
conv's epilogue), ak.gemm for the classifier, NumPy for max-pool and average pool — timed in images/s against the same network built from
PyTorch functional ops (eager, and TorchScript-frozen), measured in the same run.

    from aicc_kernels.bench import resnet50
    rows = resnet50.run(batches=(1, 8), threads=(2,))
    rows = resnet50.run(dtypes=("bf16",))   # bf16 weights and activations vs torch bf16 eager

bf16: the same weights rounded to bf16 once; every conv takes bf16 activations and writes bf16
(f32 accumulation, one rounding of each output), max-pool and the average pool run on the bf16
values (the mean summed in f32, then rounded, as torch does), the classifier is a bf16 GEMM with
f32 logits. The peer is the same network in torch bf16 eager on channels_last tensors (oneDNN).
Both are checked against the f32 network's logits (`BF16_TOLERANCE`, why there).

torchvision is not needed: the PyTorch network is built here from the same weights.
Each Result: op "resnet50", impl "aicc" / "torch" / "torch-jit-frozen", unit img/s, work =
images per call; extra: batch, layout, gflop_per_image, max_rel_err (ours vs torch's f32 logits),
and for bf16 torch_bf16_rel_err (the peer's own error against the same f32 logits).
"""

from __future__ import annotations

import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

import aicc_kernels as ak
from aicc_kernels.bench.record import Result, bench_threads, make_result, time_call

#: bf16 check: max |logits - f32 logits| / max |f32 logits|. bf16 keeps 8 significant bits
#: (unit roundoff 2^-9); the weights and the input are rounded once and each conv rounds its
#: output once, all independently, so the logits carry a few units of roundoff: measured
#: 3.2e-3 (ours) and 3.6e-3 (torch bf16) at batch 1, 4.1e-3 and 5.0e-3 at batch 8. 1e-2 is 2x the
#: largest of those. It is not a fine test of the kernels (the per-op tests against the
#: reference are): this random network damps single-layer errors, and taps flipped in one 3x3
#: conv of block 8 move the logits by 1.7e-2, which it does catch (tests/test_bf16_pairs.py).
BF16_TOLERANCE = 1e-2

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


def _np_dtype(dtype: str):
    if dtype == "f32":
        return np.float32
    if dtype == "bf16":
        import ml_dtypes

        return ml_dtypes.bfloat16
    raise ValueError(f"dtype: expected 'f32' or 'bf16', got {dtype!r}")


def _max3s2(x, axis):
    """Max over windows of 3 along `axis`, stride 2, padding 1 (-inf): out[i] = max(x[2i - 1],
    x[2i], x[2i + 1]) over the indices inside x. NaN propagates (np.maximum)."""
    n = x.shape[axis]
    o = (n - 1) // 2 + 1

    def sl(start, stop, step=2):
        idx = [slice(None)] * x.ndim
        idx[axis] = slice(start, stop, step)
        return tuple(idx)

    out = np.ascontiguousarray(x[sl(0, 2 * o - 1)])        # x[2i], i < o
    odd = x[sl(1, None)]                                    # x[2i + 1], i < n // 2
    k = min(o, n // 2)
    np.maximum(out[sl(0, k, 1)], odd[sl(0, k, 1)], out=out[sl(0, k, 1)])
    np.maximum(out[sl(1, o, 1)], odd[sl(0, o - 1, 1)], out=out[sl(1, o, 1)])  # x[2i - 1], i >= 1
    return out


class AiccResNet50:
    """The forward pass on our kernels, in `layout` and `dtype` ("f32" or "bf16": weights and
    activations; bias f32, logits f32); weights converted to the layout and dtype and prepacked
    once (ak.prepack_conv2d_weights), as a framework would keep them."""

    def __init__(self, params, layout: str = "NHWC", prepack: bool = True, dtype: str = "f32"):
        self.layout = layout
        self.dtype = _np_dtype(dtype)

        def conv(p):
            w = p["w"] if layout == "NCHW" else np.ascontiguousarray(p["w"].transpose(0, 2, 3, 1))
            w = w.astype(self.dtype)
            if prepack:
                w = ak.prepack_conv2d_weights(w, layout=layout)
            return {"w": w, "b": p["b"], "stride": p["stride"], "pad": p["pad"]}

        self.conv1 = conv(params["conv1"])
        self.blocks = [{k: conv(v) for k, v in b.items()} for b in params["blocks"]]
        self.fc_w = np.ascontiguousarray(params["fc_w"].T).astype(self.dtype)  # [2048, 1000]
        self.fc_b = params["fc_b"]

    def _conv(self, x, p, activation="relu", residual=None):
        if residual is None:  # the plain call (no new arguments: the unchanged fast path)
            return ak.conv2d(x, p["w"], p["b"], stride=p["stride"], padding=p["pad"], layout=self.layout,
                             activation=activation)
        return ak.conv2d(x, p["w"], p["b"], stride=p["stride"], padding=p["pad"], layout=self.layout,
                         activation=activation, residual=residual)

    def _maxpool(self, x):
        """3x3, stride 2, padding 1 (padding is -inf), in NumPy: a max over the 3 columns, then
        over the 3 rows (separable; no padded copy: the border windows just have fewer taps).
        bf16 is pooled in f32 (a bit shift each way: every bf16 value is an f32 value and a
        max is one of its inputs, so it is exact); NumPy's bf16 maximum is an element loop
        through ml_dtypes."""
        if x.dtype != np.float32:
            wide = (x.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
            return (self._maxpool_f32(wide).view(np.uint32) >> 16).astype(np.uint16).view(x.dtype)
        return self._maxpool_f32(x)

    def _maxpool_f32(self, x):
        h_axis = 1 if self.layout == "NHWC" else 2
        return _max3s2(_max3s2(x, h_axis + 1), h_axis)

    def __call__(self, x):
        x = x.astype(self.dtype, copy=False)
        y = self._maxpool(self._conv(x, self.conv1))
        for b in self.blocks:
            identity = self._conv(y, b["down"], None) if "down" in b else y
            t = self._conv(self._conv(y, b["a"]), b["b"])
            # relu(conv + bias + identity) in the conv's epilogue: no pass over the block output.
            y = self._conv(t, b["c"], "relu", residual=identity)
        pooled = y.mean(axis=(1, 2) if self.layout == "NHWC" else (2, 3), dtype=np.float32).astype(self.dtype)
        return ak.gemm(np.ascontiguousarray(pooled), self.fc_w, bias=self.fc_b, out_dtype=np.float32)


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
        repeats: Optional[int] = None, jit: bool = True, progress: Optional[Callable] = None,
        dtypes: Sequence[str] = ("f32",), cpu_time: bool = False) -> List[Result]:
    """images/s of ours and PyTorch's ResNet-50 per (threads, batch, dtype). quick: batch 1, 1
    repeat. dtypes: "f32" (peers: torch eager NCHW and TorchScript-frozen) and/or "bf16" (peer:
    torch bf16 eager, channels_last); both checked against torch's f32 logits.
    cpu_time: time each call by the calling thread's CPU time (time.thread_time) instead of the
    wall clock; 1 thread only (both libraries then compute on the calling thread). On a shared
    machine the wall clock of a 2-thread run also measures the other jobs (torch's OpenMP team
    spins, and loses its cores, under load)."""
    threads = list(threads or (2,))
    if cpu_time and threads != [1]:
        raise ValueError(f"threads: cpu_time needs threads=(1,), got {tuple(threads)}")
    batches = list(batches or ((1,) if quick else (1, 8)))
    repeats = repeats or (1 if quick else 3)
    aliases = {"fp32": "f32", "float32": "f32", "bfloat16": "bf16"}
    dtypes = [aliases.get(d, d) for d in dtypes]
    for d in dtypes:
        _np_dtype(d)  # ValueError naming the argument for anything else
    params = build_params()
    gflop = gflop_per_image(params)
    torch = None
    if "torch" in baselines:
        try:
            import torch
        except ImportError:
            torch = None
    tnet = torch_resnet50(params) if torch is not None else None
    tnet_bf16 = None
    if tnet is not None and "bf16" in dtypes:
        tnet_bf16 = torch_resnet50(params).to(torch.bfloat16).to(memory_format=torch.channels_last)
    results: List[Result] = []
    for t in threads:
        with bench_threads(t, torch):
            for batch in batches:
                x = np.random.default_rng(1).standard_normal((batch, 3, 224, 224)).astype(np.float32)
                ref = None
                if tnet is not None:
                    with torch.no_grad():
                        ref = tnet(torch.from_numpy(x)).numpy()
                for dtype in dtypes:
                    results += _run_dtype(dtype, t, batch, x, ref, params, gflop, torch, tnet, tnet_bf16, layouts,
                                          repeats, jit, check, progress, cpu_time)
    return results


def _rel_err(logits, ref) -> float:
    return float(np.abs(logits.astype(np.float64) - ref).max() / max(np.abs(ref).max(), 1e-30))


def _thread_time_call(fn) -> List[float]:
    t0 = time.thread_time()
    fn()
    return [time.thread_time() - t0]


def _run_dtype(dtype, t, batch, x, ref, params, gflop, torch, tnet, tnet_bf16, layouts, repeats, jit, check,
               progress, cpu_time=False) -> List[Result]:
    calls = {}  # impl -> (shape label, layout, callable, extra)
    peer_extra = {}
    if dtype == "f32" and tnet is not None:
        xt = torch.from_numpy(x)
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
    if dtype == "bf16" and tnet_bf16 is not None:
        xt = torch.from_numpy(x).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
        no_grad = torch.no_grad
        with no_grad():
            peer_logits = tnet_bf16(xt).float().numpy()
        peer_extra = {"max_rel_err": _rel_err(peer_logits, ref)}

        def eager_bf16(xt=xt):
            with no_grad():
                tnet_bf16(xt)

        calls["torch"] = (f"N={batch} NHWC bf16 eager", "NHWC", eager_bf16, peer_extra)
    tolerance = 1e-3 if dtype == "f32" else BF16_TOLERANCE
    for layout in layouts:
        if progress:
            progress(f"resnet50 {dtype} N={batch} {layout} t={t}")
        net = AiccResNet50(params, layout, dtype=dtype)
        xo = x if layout == "NCHW" else np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        xo = xo.astype(net.dtype)
        logits = net(xo)
        extra = {}
        if check and ref is not None:
            err = _rel_err(logits, ref)
            extra = {"max_rel_err": err, "tolerance": tolerance, "wrong": int(err > tolerance)}
            if "max_rel_err" in peer_extra:
                extra["torch_bf16_rel_err"] = peer_extra["max_rel_err"]
        label = f"N={batch} {layout}" + (" bf16" if dtype == "bf16" else "")
        calls[f"aicc:{layout}"] = (label, layout, lambda net=net, xo=xo: net(xo), extra)
    # Every implementation timed in turn, call by call: the same machine load for all.
    samples = {name: [] for name in calls}
    for _ in range(repeats):
        for name, (_, _, fn, _) in calls.items():
            samples[name] += _thread_time_call(fn) if cpu_time else time_call(fn, repeats=1, warmup=0)
    rows = {}
    for name, (label, layout, _, extra) in calls.items():
        impl = name.split(":")[0]
        extra = dict(extra)
        wrong = extra.pop("wrong", None)
        rows[name] = make_result("resnet50", impl, dtype, label, t, samples[name], batch, "img/s", wrong,
                                 batch=batch, layout=layout, gflop_per_image=gflop,
                                 clock="thread_time" if cpu_time else "wall", **extra)
    for name, row in rows.items():
        if row.impl == "aicc":
            for peer_name, peer in rows.items():
                if peer.impl != "aicc":
                    row.extra[f"vs_{peer_name}"] = peer.seconds / row.seconds
    return list(rows.values())


def layer_profile(dtype: str = "bf16", batch: int = 8, layout: str = "NHWC", threads: int = 2, repeats: int = 5,
                  seed: int = 0, cpu_time: bool = False) -> List[dict]:
    """Where the network's conv time goes: every distinct conv of the network (shape, stride,
    epilogue) timed alone, ours (the prepacked weights and the fused epilogue the network uses)
    against torch's F.conv2d (+ relu, + the residual add: what the eager peer runs) in the same
    dtype (channels_last for NHWC), alternating call by call; medians, times the number of
    such convs in the network. Rows sorted by our total time, largest first. cpu_time: as in
    run() (threads must be 1)."""
    if cpu_time and threads != 1:
        raise ValueError(f"threads: cpu_time needs threads=1, got {threads}")

    import torch
    import torch.nn.functional as F

    params = build_params(seed)
    net = AiccResNet50(params, layout, dtype=dtype)
    tdt = torch.float32 if dtype == "f32" else torch.bfloat16
    rng = np.random.default_rng(1)
    convs = []  # (name, raw params, our prepacked params, input hw, activation, residual?)
    hw = 224
    convs.append(("conv1 7x7/2", params["conv1"], net.conv1, hw, "relu", False))
    hw = 56
    for i, (b, ob) in enumerate(zip(params["blocks"], net.blocks)):
        s = b["b"]["stride"]
        if "down" in b:
            convs.append(("down", b["down"], ob["down"], hw, None, False))
        convs += [("a", b["a"], ob["a"], hw, "relu", False), ("b", b["b"], ob["b"], hw, "relu", False),
                  ("c+res", b["c"], ob["c"], hw // s, "relu", True)]
        hw //= s
    groups: Dict[tuple, dict] = {}
    for name, p, op, h, act, res in convs:
        k, c, r, _ = p["w"].shape
        key = (k, c, r, p["stride"], p["pad"], h, act, res)
        if key in groups:
            groups[key]["count"] += 1
            continue
        o = (h + 2 * p["pad"] - r) // p["stride"] + 1
        label = f"{name} {r}x{r}{'/' + str(p['stride']) if p['stride'] > 1 else ''} {c}->{k} @{h}"
        groups[key] = dict(layer=label, count=1, p=p, op=op, h=h, o=o, act=act, res=res,
                           gflop=2.0 * batch * k * c * r * r * o * o / 1e9)
    nd = _np_dtype(dtype)
    rows = []
    with bench_threads(threads, torch):
        for g in groups.values():
            p, op, h, o = g["p"], g["op"], g["h"], g["o"]
            k, c = p["w"].shape[:2]
            x = rng.standard_normal((batch, c, h, h)).astype(np.float32)
            res = rng.standard_normal((batch, k, o, o)).astype(np.float32) if g["res"] else None
            xo = (x if layout == "NCHW" else np.ascontiguousarray(x.transpose(0, 2, 3, 1))).astype(nd)
            ro = None if res is None else (res if layout == "NCHW" else
                                           np.ascontiguousarray(res.transpose(0, 2, 3, 1))).astype(nd)
            xt = torch.from_numpy(x).to(tdt)
            wt = torch.from_numpy(p["w"]).to(tdt)
            bt = torch.from_numpy(p["b"]).to(tdt)
            rt = None if res is None else torch.from_numpy(res).to(tdt)
            if layout == "NHWC":
                xt, wt = (a.contiguous(memory_format=torch.channels_last) for a in (xt, wt))
                rt = None if rt is None else rt.contiguous(memory_format=torch.channels_last)

            def ours():
                net._conv(xo, op, g["act"], residual=ro)

            def peer():
                with torch.no_grad():
                    y = F.conv2d(xt, wt, bt, stride=p["stride"], padding=p["pad"])
                    if rt is not None:
                        y = y + rt
                    if g["act"]:
                        y = F.relu(y)

            ours(), peer()
            a, b = [], []
            for _ in range(repeats):
                for fn, acc in ((ours, a), (peer, b)):
                    time.sleep(0.02)  # the other library's spinning threads (bench/conv.py)
                    acc += _thread_time_call(fn) if cpu_time else time_call(fn, repeats=1, warmup=0)
            ta, tb = float(np.median(a)), float(np.median(b))
            rows.append(dict(layer=g["layer"], count=g["count"], ours_ms=ta * 1e3, torch_ms=tb * 1e3,
                             ours_total_ms=ta * 1e3 * g["count"], torch_total_ms=tb * 1e3 * g["count"],
                             vs_torch=tb / ta, ours_gflops=g["gflop"] / ta))
    rows.sort(key=lambda r: -r["ours_total_ms"])
    return rows


def profile_summary(rows: List[dict]) -> str:
    lines = [f"{'layer':<28}{'n':>3}{'ours ms':>9}{'torch ms':>9}{'ratio':>7}{'GFLOPS':>8}{'ours tot':>10}"
             f"{'gap ms':>8}"]
    for r in rows:
        lines.append(f"{r['layer']:<28}{r['count']:>3}{r['ours_ms']:>9.2f}{r['torch_ms']:>9.2f}{r['vs_torch']:>7.2f}"
                     f"{r['ours_gflops']:>8.1f}{r['ours_total_ms']:>10.1f}{r['ours_total_ms'] - r['torch_total_ms']:>8.1f}")
    ta = sum(r["ours_total_ms"] for r in rows)
    tb = sum(r["torch_total_ms"] for r in rows)
    lines.append(f"{'all convs':<28}{'':>3}{'':>9}{'':>9}{tb / ta:>7.2f}{'':>8}{ta:>10.1f}{ta - tb:>8.1f}")
    return "\n".join(lines)


def summary(results: List[Result]) -> str:
    lines = [f"{'impl':<18}{'dtype':<6}{'batch':>5} {'layout':<7}{'img/s':>8}{'GFLOPS':>9}  check"]
    for r in results:
        gflops = r.throughput * r.extra.get("gflop_per_image", 0)
        err = r.extra.get("max_rel_err")
        ratio = r.extra.get("vs_torch")
        lines.append(f"{r.impl:<18}{r.dtype:<6}{r.extra['batch']:>5} {r.extra['layout']:<7}{r.throughput:>8.2f}"
                     f"{gflops:>9.1f}  " + ("" if err is None else f"max rel err vs torch f32 {err:.1e}")
                     + ("" if ratio is None else f"  {ratio:.2f}x torch"))
    return "\n".join(lines)
