"""Per-layer conv, ours vs PyTorch (oneDNN), 1 thread, timed by each call's CPU time.

For a shared or loaded machine, where 2-thread wall-clock ratios swing with the load and with
torch's OpenMP threads spinning on the cores our next call needs: each layer alternates one
call of ours and one of torch's in this process, both on 1 thread, and compares the medians of
time.thread_time() per call. NHWC / channels_last, batch 8, the ResNet-50 layer shapes plus
the strided ones.

    python benchmarks/conv_cputime.py                  # f32 forward
    python benchmarks/conv_cputime.py --dtype bf16     # bf16 vs torch bf16 (AVX512_BF16 CPUs)
    python benchmarks/conv_cputime.py --direction data,weight   # f32 backward vs
                                                       # aten.convolution_backward
"""
import argparse
import time

import numpy as np

import aicc_kernels as ak
from aicc_kernels import _dtypes

# (C, H=W, K, R=S, stride) of the ResNet-50 layers (padding R // 2)
LAYERS = [(64, 56, 64, 3, 1), (256, 56, 64, 1, 1), (64, 56, 256, 1, 1), (128, 28, 128, 3, 1),
          (256, 14, 256, 3, 1), (512, 7, 512, 3, 1), (128, 56, 128, 3, 2), (1024, 14, 256, 1, 1),
          (512, 28, 128, 1, 1), (256, 56, 512, 1, 2)]


def _time(ours, theirs, repeats):
    """Medians of alternating calls, CPU time of this thread."""
    t_ours, t_theirs = [], []
    for _ in range(repeats):
        t = time.thread_time(); ours(); t_ours.append(time.thread_time() - t)
        t = time.thread_time(); theirs(); t_theirs.append(time.thread_time() - t)
    return float(np.median(t_ours)), float(np.median(t_theirs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    ap.add_argument("--direction", default="forward",
                    help="comma-separated: forward, data (backward data), weight (backward weight); backward in f32")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=7)
    a = ap.parse_args()
    import torch

    ak.set_num_threads(1)
    torch.set_num_threads(1)
    directions = a.direction.split(",")
    if any(d not in ("forward", "data", "weight") for d in directions):
        ap.error("--direction: forward, data or weight")
    if a.dtype != "f32" and directions != ["forward"]:
        ap.error("--direction data/weight: f32 only")
    tdtype = torch.float32 if a.dtype == "f32" else torch.bfloat16
    ratios = {d: [] for d in directions}
    for c, h, k, r, st in LAYERS:
        xt = torch.randn(a.batch, c, h, h).to(tdtype).contiguous(memory_format=torch.channels_last)
        wt = (torch.randn(k, c, r, r) * 0.05).to(tdtype).contiguous(memory_format=torch.channels_last)
        as_np = (lambda t: t.permute(0, 2, 3, 1).contiguous().numpy()) if a.dtype == "f32" else \
            (lambda t: t.permute(0, 2, 3, 1).contiguous().view(torch.int16).numpy().view(_dtypes.bfloat16))
        x, w = as_np(xt), as_np(wt)
        kw = dict(stride=st, padding=r // 2, layout="NHWC")
        out = ak.conv2d(x, w, **kw)
        gt = torch.randn(out.shape[0], out.shape[3], out.shape[1], out.shape[2]).contiguous(
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
            t_ours, t_theirs = _time(ours, theirs, a.repeats)
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
