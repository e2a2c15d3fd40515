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
    t_ours, t_theirs = [], []
    for _ in range(repeats):
        t = clock(); ours(); t_ours.append(clock() - t)
        t = clock(); theirs(); t_theirs.append(clock() - t)
    return float(np.median(t_ours)), float(np.median(t_theirs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    ap.add_argument("--direction", default="forward",
                    help="comma-separated: forward, data (backward data), weight (backward weight)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1,
                    help="threads for both libraries; above 1 the calls are timed by wall clock")
    ap.add_argument("--layers", default=None,
                    help="comma-separated indices into LAYERS (default: all)")
    a = ap.parse_args()
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
