"""Per-layer conv forward, ours vs PyTorch (oneDNN), 1 thread, timed by each call's CPU time.

For a shared or loaded machine, where 2-thread wall-clock ratios swing with the load and with
torch's OpenMP threads spinning on the cores our next call needs: each layer alternates one
call of ours and one of torch's in this process, both on 1 thread, and compares the medians of
time.thread_time() per call. NHWC / channels_last, batch 8, the ResNet-50 layer shapes plus
the strided ones.

    python benchmarks/conv_cputime.py                  # f32
    python benchmarks/conv_cputime.py --dtype bf16     # bf16 vs torch bf16 (AVX512_BF16 CPUs)
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=7)
    a = ap.parse_args()
    import torch

    ak.set_num_threads(1)
    torch.set_num_threads(1)
    tdtype = torch.float32 if a.dtype == "f32" else torch.bfloat16
    ratios = []
    for c, h, k, r, st in LAYERS:
        xt = torch.randn(a.batch, c, h, h).to(tdtype).contiguous(memory_format=torch.channels_last)
        wt = (torch.randn(k, c, r, r) * 0.05).to(tdtype).contiguous(memory_format=torch.channels_last)
        as_np = (lambda t: t.permute(0, 2, 3, 1).contiguous().numpy()) if a.dtype == "f32" else \
            (lambda t: t.permute(0, 2, 3, 1).contiguous().view(torch.int16).numpy().view(_dtypes.bfloat16))
        x, w = as_np(xt), as_np(wt)
        kw = dict(stride=st, padding=r // 2, layout="NHWC")
        out = ak.conv2d(x, w, **kw)
        ours = lambda: ak.conv2d(x, w, out=out, **kw)  # noqa: E731
        theirs = lambda: torch.nn.functional.conv2d(xt, wt, None, stride=st, padding=r // 2)  # noqa: E731
        ref = theirs().permute(0, 2, 3, 1).float().numpy()
        err = float(np.max(np.abs(out.astype(np.float32) - ref)) / max(float(np.max(np.abs(ref))), 1e-30))
        t_ours, t_theirs = [], []
        for _ in range(a.repeats):
            t = time.thread_time(); ours(); t_ours.append(time.thread_time() - t)
            t = time.thread_time(); theirs(); t_theirs.append(time.thread_time() - t)
        ratio = float(np.median(t_theirs) / np.median(t_ours))
        ratios.append(ratio)
        flops = 2.0 * a.batch * out.shape[1] * out.shape[2] * k * c * r * r
        print(f"{a.dtype} {c}->{k} {r}x{r}/{st} @{h}: ours {np.median(t_ours) * 1e3:6.1f} ms "
              f"({flops / np.median(t_ours) / 1e9:5.1f} GFLOPS)  torch {np.median(t_theirs) * 1e3:6.1f} ms  "
              f"ours/torch speed {ratio:.2f}x  max rel diff {err:.1e}", flush=True)
    print(f"geomean ours/torch speed: {float(np.exp(np.mean(np.log(ratios)))):.2f}x over {len(ratios)} layers")


if __name__ == "__main__":
    main()
