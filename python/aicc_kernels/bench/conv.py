"""conv2d / qconv2d benchmark: the ResNet-50 layer set plus a depthwise 3x3, ours against
PyTorch (F.conv2d on oneDNN for floats, the fbgemm quantized conv for INT8), both measured
in the same run with the same thread count.

    from aicc_kernels.bench import conv
    rows = conv.run(dtypes=("f32", "int8"), batches=(8,), layouts=("NHWC",), threads=(2,))

Each Result: op "conv2d" (floats) or "qconv2d" (int8: u8 activations, s8 per-channel weights,
requantized u8 output), impl "aicc" or "torch", work = 2*N*K*(C/groups)*R*S*P*Q.
extra: layer, layout, batch, workspace_bytes (ours), output_bytes, and for ours the ratio
to the peer (`vs_torch`) and for f16/bf16 the ratio to our f32 (`vs_aicc_f32`).
`wrong` counts output elements outside the tolerance of the check (f32 against PyTorch's
float64 conv; INT8 bit-exact against the exact accumulator + our requantize reference).
"""

from __future__ import annotations

import time

import warnings
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

import numpy as np

import aicc_kernels as ak
from aicc_kernels import _dtypes
from aicc_kernels.bench import plugin
from aicc_kernels.bench.record import Result, bench_threads, make_result, time_call
from aicc_kernels.testing.tolerance import float_bound


@dataclass(frozen=True)
class Layer:
    name: str
    c: int
    k: int
    hw: int
    rs: int
    stride: int = 1
    pad: int = 0
    groups: int = 1


#: The ResNet-50 layer set of issue 3, plus a MobileNet-style depthwise 3x3.
LAYERS = (
    Layer("conv1_7x7s2_3-64@224", 3, 64, 224, 7, 2, 3),
    Layer("3x3_64-64@56", 64, 64, 56, 3, 1, 1),
    Layer("1x1_256-64@56", 256, 64, 56, 1),
    Layer("3x3_128-128@28", 128, 128, 28, 3, 1, 1),
    Layer("3x3_256-256@14", 256, 256, 14, 3, 1, 1),
    Layer("1x1_1024-256@14", 1024, 256, 14, 1),
    Layer("3x3_512-512@7", 512, 512, 7, 3, 1, 1),
    Layer("dw3x3_256@28", 256, 256, 28, 3, 1, 1, 256),
)

#: Layers measured only when named (`layers=` / `--layers`), outside the ResNet-50 geomeans:
#: the MobileNet stem (3x3/2, C=3), the other stem the small-C direct conv serves.
EXTRA_LAYERS = (
    Layer("conv1_3x3s2_3-32@224", 3, 32, 224, 3, 2, 1),
)


def out_hw(layer: Layer) -> int:
    return (layer.hw + 2 * layer.pad - layer.rs) // layer.stride + 1


def flops(layer: Layer, batch: int) -> float:
    p = out_hw(layer)
    return 2.0 * batch * layer.k * (layer.c // layer.groups) * layer.rs * layer.rs * p * p


def _arrays(layer: Layer, batch: int, layout: str, dtype, rng):
    """x, w in our layout, plus the NCHW float32 copies torch uses."""
    x = rng.standard_normal((batch, layer.c, layer.hw, layer.hw)).astype(np.float32)
    w = (rng.standard_normal((layer.k, layer.c // layer.groups, layer.rs, layer.rs))
         / np.sqrt(layer.c // layer.groups * layer.rs * layer.rs)).astype(np.float32)
    xo = x if layout == "NCHW" else np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    wo = w if layout == "NCHW" else np.ascontiguousarray(w.transpose(0, 2, 3, 1))
    return xo.astype(dtype), wo.astype(dtype), x, w


# Pause before each timed call of an alternating pair: the other library's worker threads keep
# spinning for a while after its call (torch's OpenMP: measured to swing its depthwise times
# between ~1 and ~30 ms, and ours with them, when the calls followed each other directly), and
# on a 2-core machine they would hold the cores of the call timed next.
PAIR_PAUSE_SECONDS = 0.05


def time_pair(ours, peer, repeats):
    """Wall times of `ours` and `peer` (None: not measured), alternating call by call so both
    see the same load on a shared machine; one warm-up call each; with a peer, each timed call
    starts after PAIR_PAUSE_SECONDS so neither runs against the other's spinning threads."""
    ours()
    if peer is not None:
        peer()
    a, b = [], []
    for _ in range(repeats):
        if peer is not None:
            time.sleep(PAIR_PAUSE_SECONDS)
        a += time_call(ours, repeats=1, warmup=0)
        if peer is not None:
            time.sleep(PAIR_PAUSE_SECONDS)
            b += time_call(peer, repeats=1, warmup=0)
    return a, b


def _torch():
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None, None
    return torch, F


def workspace_bytes(layer: Layer, batch: int, layout: str, dtype: str) -> int:
    from aicc_kernels import _aicc_cpu

    geo = (layer.stride, layer.stride, layer.pad, layer.pad, layer.pad, layer.pad, 1, 1, layer.groups,
           0 if layout == "NCHW" else 1)
    sizes = (batch, layer.c, layer.hw, layer.hw, layer.k, layer.rs, layer.rs)
    return int(_aicc_cpu.conv2d_workspace_bytes(sizes, geo, dtype))


def _plugin_rows(backend, op, combo, ours, kw, tensors, out, layer, batch, layout, threads, repeats):
    """The plugin backend's row for this layer (bench/plugin.py), or [] when it has no kernel."""
    if backend is None:
        return []
    return plugin.row(backend, op, combo, lambda **a: getattr(ak, op)(**a, **kw), tensors, out.shape, out.dtype,
                      dtype_label=ours.dtype, shape=ours.shape, threads=threads, work=ours.work, unit=ours.unit,
                      ours=ours, timing=dict(repeats=repeats), layer=layer.name, layout=layout, batch=batch)


def _float_rows(layer, batch, layout, dtype, threads, repeats, baselines, check, rng, f32_seconds,
                plugin_backend=None):
    torch, F = _torch()
    dt = _dtypes.from_short_name(dtype)
    x, w, x32, w32 = _arrays(layer, batch, layout, dt, rng)
    kw = dict(stride=layer.stride, padding=layer.pad, groups=layer.groups, layout=layout)
    out = ak.conv2d(x, w, **kw)
    shape = f"{layer.name} N={batch} {layout}"
    work = flops(layer, batch)
    wrong = None
    if check and torch is not None:
        def conv64(a, b):
            a = a.astype(np.float64) if layout == "NCHW" else a.astype(np.float64).transpose(0, 3, 1, 2).copy()
            b = b.astype(np.float64) if layout == "NCHW" else b.astype(np.float64).transpose(0, 3, 1, 2).copy()
            return F.conv2d(torch.from_numpy(a), torch.from_numpy(b), stride=layer.stride, padding=layer.pad,
                            groups=layer.groups).numpy()

        ref = conv64(x, w)
        mag = conv64(np.abs(x.astype(np.float32)), np.abs(w.astype(np.float32)))
        got = out.astype(np.float64)
        got = got if layout == "NCHW" else got.transpose(0, 3, 1, 2)
        bound = float_bound(ref, mag, layer.c // layer.groups * layer.rs * layer.rs, out.dtype)
        wrong = int((np.abs(got - ref) > bound).sum())
    peer = None
    if "torch" in baselines and torch is not None and dtype in ("f32", "bf16"):
        tdt = torch.float32 if dtype == "f32" else torch.bfloat16
        xt = torch.from_numpy(x32).to(tdt)
        wt = torch.from_numpy(w32).to(tdt)
        if layout == "NHWC":
            xt = xt.contiguous(memory_format=torch.channels_last)
            wt = wt.contiguous(memory_format=torch.channels_last)

        def peer():
            with torch.no_grad():
                F.conv2d(xt, wt, stride=layer.stride, padding=layer.pad, groups=layer.groups)

    samples, ps = time_pair(lambda: ak.conv2d(x, w, out=out, **kw), peer, repeats)
    extra = dict(layer=layer.name, layout=layout, batch=batch,
                 workspace_bytes=workspace_bytes(layer, batch, layout, dtype),
                 output_bytes=int(out.nbytes))
    ours = make_result("conv2d", "aicc", dtype, shape, threads, samples, work, "GFLOPS", wrong, **extra)
    rows = [ours] + _plugin_rows(plugin_backend, "conv2d", (dtype,) * 3, ours, kw, {"x": x, "w": w}, out, layer,
                                 batch, layout, threads, repeats)
    if dtype == "f32":
        f32_seconds[(layer.name, batch, layout)] = ours.seconds
    elif (layer.name, batch, layout) in f32_seconds:
        ours.extra["vs_aicc_f32"] = f32_seconds[(layer.name, batch, layout)] / ours.seconds
    if peer is not None:
        peer_row = make_result("conv2d", "torch", dtype, shape, threads, ps, work, "GFLOPS", None,
                               layer=layer.name, layout=layout, batch=batch)
        ours.extra["vs_torch"] = peer_row.seconds / ours.seconds
        rows.append(peer_row)
    return rows


def _int8_rows(layer, batch, layout, threads, repeats, baselines, check, rng, plugin_backend=None):
    torch, F = _torch()
    cg = layer.c // layer.groups
    x = rng.integers(0, 256, (batch, layer.c, layer.hw, layer.hw)).astype(np.uint8)
    w = rng.integers(-127, 128, (layer.k, cg, layer.rs, layer.rs)).astype(np.int8)
    zx = 128
    scale_x, scale_w = 0.02, (0.5 + rng.random(layer.k)) * 1e-2
    scale_out = 0.5
    scale = (scale_x * scale_w / scale_out).astype(np.float32)
    zout = 3
    xo = x if layout == "NCHW" else np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    wo = w if layout == "NCHW" else np.ascontiguousarray(w.transpose(0, 2, 3, 1))
    kw = dict(stride=layer.stride, padding=layer.pad, groups=layer.groups, layout=layout, x_zero_point=zx,
              scale=scale, out_zero_point=zout, out_dtype=np.uint8)
    out = ak.qconv2d(xo, wo, **kw)
    shape = f"{layer.name} N={batch} {layout}"
    work = flops(layer, batch)
    wrong = None
    if check and torch is not None:
        # Exact accumulator through a float64 conv (integers below 2^53), then our requantize.
        from aicc_kernels.reference.gemm_kernels import requantize

        acc = F.conv2d(torch.from_numpy(x.astype(np.float64) - zx), torch.from_numpy(w.astype(np.float64)),
                       stride=layer.stride, padding=layer.pad, groups=layer.groups).numpy()
        ref = requantize(np.rint(acc).astype(np.int64).transpose(0, 2, 3, 1), np.uint8, scale=scale,
                         out_zero_point=zout)
        got = out if layout == "NHWC" else out.transpose(0, 2, 3, 1)
        wrong = int((got != ref).sum())
    peer = None
    peer_error = None
    if "torch" in baselines and torch is not None:
        try:
            import torch.ao.nn.quantized.functional as qF

            torch.backends.quantized.engine = "fbgemm"
            warnings.filterwarnings("ignore", message=".*quantize_per_.*deprecated", category=UserWarning)
            xq = torch.quantize_per_tensor(torch.from_numpy(x.astype(np.float32) - zx) * scale_x, scale_x, zx,
                                           torch.quint8)
            wq = torch.quantize_per_channel(torch.from_numpy((w * scale_w[:, None, None, None]).astype(np.float32)),
                                            torch.from_numpy(scale_w), torch.zeros(layer.k, dtype=torch.long), 0,
                                            torch.qint8)
            if layout == "NHWC":
                xq = xq.contiguous(memory_format=torch.channels_last)

            def peer():
                qF.conv2d(xq, wq, None, stride=layer.stride, padding=layer.pad, groups=layer.groups,
                          scale=scale_out, zero_point=zout)

            peer()
        except Exception as exc:  # noqa: BLE001 - a torch without quantized CPU kernels
            peer, peer_error = None, f"torch quantized conv unavailable: {exc}"
    samples, ps = time_pair(lambda: ak.qconv2d(xo, wo, out=out, **kw), peer, repeats)
    ours = make_result("qconv2d", "aicc", "u8s8u8", shape, threads, samples, work, "GOPS", wrong,
                       layer=layer.name, layout=layout, batch=batch,
                       workspace_bytes=workspace_bytes(layer, batch, layout, "u8"), output_bytes=int(out.nbytes))
    if peer_error:
        ours.extra["peer_error"] = peer_error
    plugin_rows = _plugin_rows(plugin_backend, "qconv2d", ("u8", "s8", "u8"), ours, kw, {"x": xo, "w": wo}, out,
                               layer, batch, layout, threads, repeats)
    rows = [ours] + plugin_rows
    if peer is not None:
        peer_row = make_result("qconv2d", "torch", "u8s8u8", shape, threads, ps, work, "GOPS", None,
                               layer=layer.name, layout=layout, batch=batch, engine="fbgemm")
        ours.extra["vs_torch"] = peer_row.seconds / ours.seconds
        rows.append(peer_row)
    return rows


def _backward_rows(layer, batch, layout, threads, repeats, baselines, check, rng, dtype="f32"):
    """backward_data and backward_weight (f32 or bf16 inputs, f32 accumulation), vs torch's
    aten.convolution_backward on tensors of the same dtype."""
    torch, F = _torch()
    dt = _dtypes.from_short_name(dtype)
    x, w, x32, w32 = _arrays(layer, batch, layout, dt, rng)
    kw = dict(stride=layer.stride, padding=layer.pad, groups=layer.groups, layout=layout)
    y_shape = ak.conv2d(x[:1], w, **kw).shape
    g = rng.standard_normal((batch,) + y_shape[1:]).astype(dt)
    g32 = g.astype(np.float32)
    g_nchw = g32 if layout == "NCHW" else np.ascontiguousarray(g32.transpose(0, 3, 1, 2))
    # the peer sees the same (rounded) values as ours
    x32 = x.astype(np.float32) if layout == "NCHW" else np.ascontiguousarray(x.astype(np.float32).transpose(0, 3, 1, 2))
    w32 = w.astype(np.float32) if layout == "NCHW" else np.ascontiguousarray(w.astype(np.float32).transpose(0, 3, 1, 2))
    shape = f"{layer.name} N={batch} {layout}"
    work = flops(layer, batch)
    rows = []
    ours_fns = {"conv2d_backward_data": lambda: ak.conv2d_backward_data(g, w, x.shape, **kw),
                "conv2d_backward_weight": lambda: ak.conv2d_backward_weight(x, g, w.shape, **kw)}
    for op, mask in (("conv2d_backward_data", [True, False, False]), ("conv2d_backward_weight", [False, True, False])):
        peer = None
        wrong = None
        if "torch" in baselines and torch is not None:
            gt, xt, wt = (torch.from_numpy(a) for a in (g_nchw, x32, w32))
            if dtype == "bf16":
                gt, xt, wt = (a.to(torch.bfloat16) for a in (gt, xt, wt))
            elif dtype == "f16":
                gt, xt, wt = (a.to(torch.float16) for a in (gt, xt, wt))
            if layout == "NHWC":
                gt, xt, wt = (a.contiguous(memory_format=torch.channels_last) for a in (gt, xt, wt))

            def peer(gt=gt, xt=xt, wt=wt, mask=mask):
                return torch.ops.aten.convolution_backward(gt, xt, wt, None, [layer.stride] * 2, [layer.pad] * 2,
                                                           [1, 1], False, [0, 0], layer.groups, mask)

            if check:
                ref = peer()[0 if mask[0] else 1].float().numpy()
                got = ours_fns[op]().astype(np.float32)
                got = got if layout == "NCHW" else got.transpose(0, 3, 1, 2)
                tol = 1e-3 if dtype == "f32" else 2e-2  # both round the f32 sum once to 8 bits
                wrong = int((np.abs(got - ref) > tol * (1 + np.abs(ref).max())).sum())
        samples, ps = time_pair(ours_fns[op], peer, repeats)
        ours = make_result(op, "aicc", dtype, shape, threads, samples, work, "GFLOPS", wrong, layer=layer.name,
                           layout=layout, batch=batch, workspace_bytes=0, output_bytes=0)
        rows.append(ours)
        if peer is not None:
            peer_row = make_result(op, "torch", dtype, shape, threads, ps, work, "GFLOPS", None, layer=layer.name,
                                   layout=layout, batch=batch)
            ours.extra["vs_torch"] = peer_row.seconds / ours.seconds
            rows.append(peer_row)
    return rows


def run(dtypes: Optional[Sequence[str]] = None, threads: Optional[Sequence[int]] = None,
        baselines: Sequence[str] = ("torch",), check: bool = True, quick: bool = False,
        batches: Optional[Sequence[int]] = None, layouts: Sequence[str] = ("NCHW", "NHWC"),
        layers: Optional[Sequence[str]] = None, repeats: Optional[int] = None, backward: bool = False,
        progress: Optional[Callable] = None, backend: Optional[str] = None) -> List[Result]:
    """Results for every (threads, batch, layout, dtype, layer). quick: batch 1, 3 repeats.
    backend: a plugin backend's name, measured beside the built-in kernels (bench/plugin.py).
    dtypes: from f32, f16, bf16, int8 (default all); layers: names from LAYERS or EXTRA_LAYERS
    (default: all of LAYERS);
    backward: also conv2d_backward_data / _weight, in each float dtype of `dtypes`, against torch's
    convolution_backward."""
    aliases = {"fp32": "f32", "float32": "f32", "fp16": "f16", "float16": "f16", "bfloat16": "bf16",
               "u8": "int8", "s8": "int8", "u8s8": "int8", "qint8": "int8"}
    dtypes = [aliases.get(d, d) for d in (dtypes or ("f32", "f16", "bf16", "int8"))]
    unknown = [d for d in dtypes if d not in ("f32", "f16", "bf16", "int8")]
    if unknown:
        raise ValueError(f"dtypes: expected names from (f32, f16, bf16, int8), got {unknown}")
    dtypes.sort(key=lambda d: d != "f32")  # f32 first: the f16/bf16 rows report a ratio to it
    threads = list(threads or (2,))
    batches = list(batches or ((1,) if quick else (1, 8)))
    repeats = repeats or (3 if quick else 5)
    chosen = list(LAYERS) if layers is None else [l for l in LAYERS + EXTRA_LAYERS if l.name in layers]
    torch, _ = _torch()
    plugin_backend = plugin.resolve(backend)
    plugin.notes.clear()
    results: List[Result] = []
    for t in threads:
        with bench_threads(t, torch):
            f32_seconds = {}
            for batch in batches:
                for layout in layouts:
                    for dtype in dtypes:
                        for layer in chosen:
                            rng = np.random.default_rng(0)
                            if progress:
                                progress(f"{layer.name} {dtype} N={batch} {layout} t={t}")
                            if dtype == "int8":
                                results += _int8_rows(layer, batch, layout, t, repeats, baselines, check, rng,
                                                      plugin_backend)
                            else:
                                results += _float_rows(layer, batch, layout, dtype, t, repeats, baselines, check,
                                                       rng, f32_seconds, plugin_backend)
                    if backward:
                        for dtype in [d for d in dtypes if d != "int8"]:
                            for layer in chosen:
                                if progress:
                                    progress(f"{layer.name} backward {dtype} N={batch} {layout} t={t}")
                                results += _backward_rows(layer, batch, layout, t, repeats, baselines, check,
                                                          np.random.default_rng(0), dtype)
    return results


#: The layers the fused-epilogue lines measure: the ResNet-50 stage-1 3x3 conv (compute-bound:
#: the epilogue is a few % of its time) and the depthwise 3x3 (memory-bound: it is not).
FUSED_LAYER = "3x3_64-64@56"
FUSED_LAYERS = (FUSED_LAYER, "dw3x3_256@28")


def fused_epilogue(batch: int = 8, layout: str = "NHWC", dtype: str = "f32", threads: int = 2,
                   repeats: int = 15, layer_name: str = FUSED_LAYER) -> List[Result]:
    """The ResNet block's tail, out = relu(conv(x) + bias + residual), three ways in this
    process, call after call (so all see the same load): fused (one ak.conv2d with
    residual= and activation=), unfused (ak.conv2d with bias, then NumPy's in-place add and
    relu: two more passes over the output) and the plain conv + bias + relu (no residual:
    what the epilogue itself costs). One Result (op "conv2d_fused", impl "aicc") whose extra
    holds the three medians and the ratios `vs_unfused` (unfused / fused time) and
    `vs_plain` (plain / fused); `wrong`: output elements where fused and unfused differ by more
    than the conv's float error bound. dtype: f32 (f16 / bf16: the unfused side rounds the conv
    before the add, so it may differ by one rounding more)."""
    layer = next(l for l in LAYERS if l.name == layer_name)
    dt = _dtypes.from_short_name(dtype)
    rng = np.random.default_rng(0)
    x, w, _, _ = _arrays(layer, batch, layout, dt, rng)
    kw = dict(stride=layer.stride, padding=layer.pad, groups=layer.groups, layout=layout)
    bias = rng.standard_normal(layer.k).astype(np.float32)
    out = ak.conv2d(x, w, bias, **kw)
    residual = rng.standard_normal(out.shape).astype(dt)

    def fused():
        ak.conv2d(x, w, bias, residual=residual, activation="relu", out=out, **kw)

    def unfused():
        ak.conv2d(x, w, bias, out=out, **kw)
        np.add(out, residual, out=out)
        np.maximum(out, 0, out=out)

    def plain():
        ak.conv2d(x, w, bias, activation="relu", out=out, **kw)

    calls = {"fused": fused, "unfused": unfused, "plain": plain}
    samples = {k: [] for k in calls}
    with bench_threads(threads):
        for f in calls.values():
            f()
        for _ in range(repeats):
            for k, f in calls.items():
                samples[k] += time_call(f, repeats=1, warmup=0)
    med = {k: float(np.median(v)) for k, v in samples.items()}
    # The two sides round differently only in the order of the sum (the depthwise kernel starts
    # its plain sum at the bias; the fused epilogue adds it after), so they agree within the
    # float error bound of the conv (+2 roundings): `wrong` counts the elements that do not.
    unfused()
    expected = out.astype(np.float64)
    fused()
    per_k = (1, -1, 1, 1) if layout == "NCHW" else (1, 1, 1, -1)
    mag = (ak.conv2d(np.abs(x), np.abs(w), **kw).astype(np.float64) + np.abs(bias).reshape(per_k)
           + np.abs(residual.astype(np.float64)))
    bound = float_bound(expected, mag, layer.c // layer.groups * layer.rs * layer.rs + 2, out.dtype, "relu")
    wrong = int(np.count_nonzero(np.abs(out.astype(np.float64) - expected) > bound))
    shape = f"{layer.name} N={batch} {layout} +bias+residual+relu"
    return [make_result("conv2d_fused", "aicc", dtype, shape, threads, samples["fused"], flops(layer, batch),
                        "GFLOPS", wrong, layer=layer.name, layout=layout, batch=batch,
                        unfused_seconds=med["unfused"], plain_seconds=med["plain"],
                        vs_unfused=med["unfused"] / med["fused"], vs_plain=med["plain"] / med["fused"],
                        output_bytes=int(out.nbytes))]


def fused_summary(rows: List[Result]) -> str:
    return "\n".join(
        f"fused epilogue {r.shape} {r.dtype} t={r.threads}: fused {r.seconds * 1e3:.2f} ms, conv then NumPy "
        f"add+relu {r.extra['unfused_seconds'] * 1e3:.2f} ms ({r.extra['vs_unfused']:.2f}x), plain conv+bias+relu "
        f"{r.extra['plain_seconds'] * 1e3:.2f} ms (fused/plain time {1 / r.extra['vs_plain']:.2f}); "
        f"{r.wrong} outputs outside the error bound of the unfused ones"
        for r in rows if r.op == "conv2d_fused")


def geomean(values) -> float:
    values = [v for v in values if v and v > 0]
    return float(np.exp(np.mean(np.log(values)))) if values else float("nan")


def summary(results: List[Result]) -> str:
    """The layer table: ours vs torch per row, and the geometric means the issue's targets use."""
    lines = [f"{'layer':<22}{'N':>3} {'layout':<6}{'dtype':<8}{'ours':>9}{'torch':>9}  {'ratio':>6}  "
             f"{'ws MiB':>7} {'out MiB':>7} {'wrong':>6}"]
    peers = {(r.op, r.shape, r.dtype): r for r in results if r.impl == "torch"}
    groups = {}
    for r in results:
        if r.impl != "aicc":
            continue
        peer = peers.get((r.op, r.shape, r.dtype))
        ratio = r.extra.get("vs_torch")
        dtype = {"conv2d_backward_data": "bwd_d", "conv2d_backward_weight": "bwd_w"}.get(r.op)
        dtype = r.dtype if dtype is None else f"{dtype}_{r.dtype}"
        key = (dtype, r.extra["batch"], r.extra["layout"], r.extra["layer"].startswith("dw"))
        if ratio:
            groups.setdefault(key, []).append(ratio)
        rel = r.extra.get("vs_aicc_f32")
        lines.append(f"{r.extra['layer']:<22}{r.extra['batch']:>3} {r.extra['layout']:<6}{dtype:<8}"
                     f"{r.throughput:>9.1f}{(peer.throughput if peer else float('nan')):>9.1f}  "
                     f"{(ratio if ratio else float('nan')):>6.2f}  "
                     f"{r.extra['workspace_bytes'] / 2**20:>7.2f} {r.extra['output_bytes'] / 2**20:>7.2f} "
                     f"{'-' if r.wrong is None else r.wrong:>6}"
                     + (f"  ({rel:.2f}x our f32)" if rel else ""))
    lines.append("geometric means of ours/torch (dense layers; depthwise separately):")
    for (dtype, batch, layout, dw), ratios in sorted(groups.items()):
        lines.append(f"  {dtype:<8} N={batch} {layout}{' depthwise' if dw else ''}: {geomean(ratios):.2f}x "
                     f"(min {min(ratios):.2f}x over {len(ratios)} layers)")
    return "\n".join(lines)
