"""Per-layer conv, ours vs PyTorch (oneDNN), 1 thread, timed by each call's CPU time (or, with
--threads N > 1, by wall clock on N threads).

For a shared or loaded machine, where 2-thread wall-clock ratios swing with the load and with
torch's OpenMP threads spinning on the cores our next call needs: each layer alternates one
call of ours and one of torch's in this process, both on 1 thread, and compares the medians of
time.thread_time() per call. NHWC / channels_last, batch 8, the ResNet-50 layer shapes plus
the strided ones.

    python benchmarks/conv_cputime.py                  # f32 forward
    python benchmarks/conv_cputime.py --dtype bf16     # bf16 vs torch bf16 (AVX512_BF16 CPUs)
    python benchmarks/conv_cputime.py --direction data,weight   # f32 backward vs
                                                       # aten.convolution_backward
    python benchmarks/conv_cputime.py --dtype bf16 --direction forward,data,weight
    python benchmarks/conv_cputime.py --threads 2 --direction data,weight
                                                       # 2 threads, wall clock (medians)
    python benchmarks/conv_cputime.py --dtype f32,bf16 --layout nhwc,nchw
                                                       # ours NCHW vs ours NHWC per layer
                                                       # (torch contiguous NCHW as 2nd peer)
    python benchmarks/conv_cputime.py --dtype f32,bf16 --layout nhwc,nchw --direction data,weight

With several --layout values each layer alternates one call of ours per layout
and one of torch's in its NCHW (contiguous) memory format, and reports every layout's time,
ours NCHW over ours NHWC as a speed ratio (NHWC time / NCHW time: 1.0 = as fast, lower =
NCHW slower; the issue-11 target is >= 0.9) and ours NCHW against torch NCHW.

With --threads N > 1 a call's CPU time no longer measures it (N threads burn it), so each call
is timed by time.perf_counter(), alternating ours and torch's as above. torch's OpenMP workers
spin for a while after each of its calls and would steal the cores our next call needs, so
this script sets OMP_WAIT_POLICY=PASSIVE before torch is imported (unless already set): torch
then pays its own thread wake-up, as ours does.
"""
import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch's OpenMP runtime starts

import numpy as np

import aicc_kernels as ak
from aicc_kernels import _dtypes

# (C, H=W, K, R=S, stride) of the ResNet-50 layers (padding R // 2)
LAYERS = [(64, 56, 64, 3, 1), (256, 56, 64, 1, 1), (64, 56, 256, 1, 1), (128, 28, 128, 3, 1),
          (256, 14, 256, 3, 1), (512, 7, 512, 3, 1), (128, 56, 128, 3, 2), (1024, 14, 256, 1, 1),
          (512, 28, 128, 1, 1), (256, 56, 512, 1, 2), (256, 28, 256, 3, 2), (512, 14, 512, 3, 2)]


def _time(ours, theirs, repeats, clock=time.thread_time):
    """Medians of alternating calls, by `clock` (CPU time of this thread by default)."""
    return tuple(_time_all([ours, theirs], repeats, clock))


def _time_all(fns, repeats, clock=time.thread_time):
    """Medians of the calls of fns, one of each in turn per repeat, by `clock`."""
    times = [[] for _ in fns]
    for _ in range(repeats):
        for f, ts in zip(fns, times):
            t = clock(); f(); ts.append(clock() - t)
    return [float(np.median(ts)) for ts in times]


def _geomean(xs):
    return float(np.exp(np.mean(np.log(xs))))


def _torch_dtype(torch, dtype):
    return torch.float32 if dtype == "f32" else torch.bfloat16


def _to_np(t, dtype, nhwc):
    """A torch tensor (NCHW logical shape) as a NumPy array in our layout (bf16 via ml_dtypes)."""
    import torch
    t = (t.permute(0, 2, 3, 1) if nhwc else t).contiguous()
    return t.numpy() if dtype == "f32" else t.view(torch.int16).numpy().view(_dtypes.bfloat16)


def _layouts(a, layers, clock, directions):
    """Per layer, dtype and direction: ours in every layout of a.layout, torch NCHW (contiguous;
    backward: aten.convolution_backward on contiguous tensors)."""
    import torch
    layouts = a.layout
    summary = {}
    for dtype in a.dtype:
        tdtype = _torch_dtype(torch, dtype)
        for d in directions:
            res = {lo: [] for lo in layouts}
            res["torch_nchw"] = []
            for c, h, k, r, st in layers:
                xt = torch.randn(a.batch, c, h, h).to(tdtype).contiguous()
                wt = (torch.randn(k, c, r, r) * 0.05).to(tdtype).contiguous()
                p_ = (h + 2 * (r // 2) - r) // st + 1
                gt = torch.randn(a.batch, k, p_, p_).to(tdtype).contiguous()
                mask = [d == "data", d == "weight", False]
                fns, outs = [], {}
                for lo in layouts:
                    nhwc = lo == "nhwc"
                    x, w, g = _to_np(xt, dtype, nhwc), _to_np(wt, dtype, nhwc), _to_np(gt, dtype, nhwc)
                    kw = dict(stride=st, padding=r // 2, layout=lo.upper())
                    if d == "forward":
                        out = ak.conv2d(x, w, **kw)
                        fn = (lambda x=x, w=w, out=out, kw=kw: ak.conv2d(x, w, out=out, **kw))
                    elif d == "data":
                        fn = (lambda g=g, w=w, shape=x.shape, kw=kw: ak.conv2d_backward_data(g, w, shape, **kw))
                        out = fn()
                    else:
                        fn = (lambda x=x, g=g, shape=w.shape, kw=kw: ak.conv2d_backward_weight(x, g, shape, **kw))
                        out = fn()
                    outs[lo] = np.asarray(out, dtype=np.float32)
                    if nhwc:
                        outs[lo] = outs[lo].transpose(0, 3, 1, 2)
                    fns.append(fn)
                if d == "forward":
                    fns.append(lambda: torch.nn.functional.conv2d(xt, wt, None, stride=st, padding=r // 2))
                    want = fns[-1]().float().numpy()
                else:
                    fns.append(lambda: torch.ops.aten.convolution_backward(
                        gt, xt, wt, None, [st, st], [r // 2, r // 2], [1, 1], False, [0, 0], 1, mask))
                    want = fns[-1]()[0 if d == "data" else 1].float().numpy()
                scale = max(float(np.max(np.abs(want))), 1e-30)
                errs = {lo: float(np.max(np.abs(outs[lo] - want))) / scale for lo in layouts}
                times = _time_all(fns, a.repeats, clock)
                for lo, t in zip(layouts, times):
                    res[lo].append(t)
                res["torch_nchw"].append(times[-1])
                flops = 2.0 * a.batch * p_ * p_ * k * c * r * r
                line = f"{dtype:4s} {d:7s} {c:4d}->{k:<4d} {r}x{r}/{st} @{h:<3d}:"
                for lo, t in zip(layouts, times):
                    line += f" ours {lo.upper()} {t * 1e3:6.1f} ms ({flops / t / 1e9:5.1f} GFLOPS)"
                line += f"  torch NCHW {times[-1] * 1e3:6.1f} ms"
                if "nhwc" in layouts and "nchw" in layouts:
                    line += f"  NCHW/NHWC speed {res['nhwc'][-1] / res['nchw'][-1]:.2f}x"
                if "nchw" in layouts:
                    line += f"  ours/torch NCHW {times[-1] / res['nchw'][-1]:.2f}x"
                line += "  max rel diff " + ", ".join(f"{errs[lo]:.1e}" for lo in layouts)
                print(line, flush=True)
            summary[(dtype, d)] = res
    for (dtype, d), res in summary.items():
        if "nhwc" in layouts and "nchw" in layouts:
            ratios = [a_ / b_ for a_, b_ in zip(res["nhwc"], res["nchw"])]
            print(f"{dtype} {d}: NCHW/NHWC speed (ours) geomean {_geomean(ratios):.2f}x, "
                  f"min {min(ratios):.2f}x over {len(ratios)} layers")
        for lo in layouts:
            ratios = [a_ / b_ for a_, b_ in zip(res["torch_nchw"], res[lo])]
            print(f"{dtype} {d}: ours {lo.upper()} / torch NCHW speed geomean {_geomean(ratios):.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dtype", default="f32", help="f32, bf16 or both (comma-separated)")
    ap.add_argument("--layout", default="nhwc",
                    help="nhwc (default: ours NHWC vs torch channels_last), nchw (ours NCHW vs torch "
                         "contiguous NCHW), or both, comma-separated (ours in each layout and torch "
                         "NCHW, alternating; every --direction)")
    ap.add_argument("--direction", default="forward",
                    help="comma-separated: forward, data (backward data), weight (backward weight)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1,
                    help="threads for both libraries; above 1 the calls are timed by wall clock")
    ap.add_argument("--layers", default=None,
                    help="comma-separated indices into LAYERS (default: all)")
    a = ap.parse_args()
    a.dtype = a.dtype.split(",")
    a.layout = a.layout.lower().split(",")
    if any(d not in ("f32", "bf16") for d in a.dtype):
        ap.error("--dtype: f32 or bf16")
    if any(lo not in ("nhwc", "nchw") for lo in a.layout) or len(set(a.layout)) != len(a.layout):
        ap.error("--layout: nhwc and/or nchw")
    import torch

    if a.threads < 1:
        ap.error("--threads: at least 1")
    ak.set_num_threads(a.threads)
    torch.set_num_threads(a.threads)
    clock = time.thread_time if a.threads == 1 else time.perf_counter
    layers = LAYERS if a.layers is None else [LAYERS[int(i)] for i in a.layers.split(",")]
    print(f"{a.threads} thread(s), timed by {'CPU time' if a.threads == 1 else 'wall clock'}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, batch {a.batch}, median of {a.repeats}")
    directions = a.direction.split(",")
    if any(d not in ("forward", "data", "weight") for d in directions):
        ap.error("--direction: forward, data or weight")
    if len(a.layout) > 1 or a.layout == ["nchw"]:
        _layouts(a, layers, clock, directions)
        return
    if len(a.dtype) > 1:
        ap.error("--dtype: one dtype unless --layout lists nchw")
    a.dtype = a.dtype[0]
    tdtype = torch.float32 if a.dtype == "f32" else torch.bfloat16
    ratios = {d: [] for d in directions}
    for c, h, k, r, st in layers:
        xt = torch.randn(a.batch, c, h, h).to(tdtype).contiguous(memory_format=torch.channels_last)
        wt = (torch.randn(k, c, r, r) * 0.05).to(tdtype).contiguous(memory_format=torch.channels_last)
        as_np = (lambda t: t.permute(0, 2, 3, 1).contiguous().numpy()) if a.dtype == "f32" else \
            (lambda t: t.permute(0, 2, 3, 1).contiguous().view(torch.int16).numpy().view(_dtypes.bfloat16))
        x, w = as_np(xt), as_np(wt)
        kw = dict(stride=st, padding=r // 2, layout="NHWC")
        out = ak.conv2d(x, w, **kw)
        gt = torch.randn(out.shape[0], out.shape[3], out.shape[1], out.shape[2]).to(tdtype).contiguous(
            memory_format=torch.channels_last)
        g = as_np(gt) if "data" in directions or "weight" in directions else None
        for d in directions:
            if d == "forward":
                ours = lambda: ak.conv2d(x, w, out=out, **kw)  # noqa: E731
                theirs = lambda: torch.nn.functional.conv2d(xt, wt, None, stride=st, padding=r // 2)  # noqa: E731
            else:
                mask = [d == "data", d == "weight", False]
                if d == "data":
                    ours = lambda: ak.conv2d_backward_data(g, w, x.shape, **kw)  # noqa: E731
                else:
                    ours = lambda: ak.conv2d_backward_weight(x, g, w.shape, **kw)  # noqa: E731
                theirs = lambda: torch.ops.aten.convolution_backward(  # noqa: E731
                    gt, xt, wt, None, [st, st], [r // 2, r // 2], [1, 1], False, [0, 0], 1, mask)
            got = np.asarray(ours(), dtype=np.float32)
            want = theirs()
            want = (want if d == "forward" else want[0 if d == "data" else 1]).permute(0, 2, 3, 1).float().numpy()
            err = float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), 1e-30))
            t_ours, t_theirs = _time(ours, theirs, a.repeats, clock)
            ratio = t_theirs / t_ours
            ratios[d].append(ratio)
            flops = 2.0 * a.batch * out.shape[1] * out.shape[2] * k * c * r * r
            print(f"{a.dtype} {d:7s} {c}->{k} {r}x{r}/{st} @{h}: ours {t_ours * 1e3:6.1f} ms "
                  f"({flops / t_ours / 1e9:5.1f} GFLOPS)  torch {t_theirs * 1e3:6.1f} ms  "
                  f"ours/torch speed {ratio:.2f}x  max rel diff {err:.1e}", flush=True)
    for d in directions:
        print(f"{d}: geomean ours/torch speed {float(np.exp(np.mean(np.log(ratios[d])))):.2f}x "
              f"over {len(ratios[d])} layers")


if __name__ == "__main__":
    main()
