"""INT8 conv forward, ours vs PyTorch's quantized conv (fbgemm), 1 thread, each call timed by
its thread CPU time (so time spent descheduled on a shared machine is not counted): NHWC /
channels_last, u8 activations with zero point 128, s8 weights with per-channel scales, u8
output with zero point 3; ours and torch's calls alternate in this process, medians compared.

    python benchmarks/qconv_cputime.py [--batch 8] [--repeats 9]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its OpenMP pool

import numpy as np  # noqa: E402

import aicc_kernels as ak  # noqa: E402

# name, C, K, H=W, R=S, stride, padding: the dense ResNet-50 layers plus two strided ones.
LAYERS = [("3x3_64-64@56", 64, 64, 56, 3, 1, 1), ("1x1_256-64@56", 256, 64, 56, 1, 1, 0),
          ("3x3_128-128@28", 128, 128, 28, 3, 1, 1), ("3x3_256-256@14", 256, 256, 14, 3, 1, 1),
          ("1x1_1024-256@14", 1024, 256, 14, 1, 1, 0), ("3x3_512-512@7", 512, 512, 7, 3, 1, 1),
          ("3x3s2_128-128@56", 128, 128, 56, 3, 2, 1), ("1x1s2_512-1024@28", 512, 1024, 28, 1, 2, 0)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args(argv)
    import torch
    import torch.ao.nn.quantized.functional as qF

    torch.set_num_threads(1)
    ak.set_num_threads(1)
    torch.backends.quantized.engine = "fbgemm"
    warnings.filterwarnings("ignore", message=".*quantize_per_.*deprecated", category=UserWarning)
    rng = np.random.default_rng(0)
    ratios = []
    n = args.batch
    for name, c, k, hw, r, st, pad in LAYERS:
        x = rng.integers(0, 256, (n, c, hw, hw)).astype(np.uint8)
        w = rng.integers(-127, 128, (k, c, r, r)).astype(np.int8)
        zx, sx, sw, so, zo = 128, 0.02, (0.5 + rng.random(k)) * 1e-2, 0.5, 3
        xo = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        wo = np.ascontiguousarray(w.transpose(0, 2, 3, 1))
        kw = dict(stride=st, padding=pad, layout="NHWC", x_zero_point=zx, scale=(sx * sw / so).astype(np.float32),
                  out_zero_point=zo, out_dtype=np.uint8)
        out = ak.qconv2d(xo, wo, **kw)
        xq = torch.quantize_per_tensor(torch.from_numpy(x.astype(np.float32) - zx) * sx, sx, zx, torch.quint8)
        xq = xq.contiguous(memory_format=torch.channels_last)
        wq = torch.quantize_per_channel(torch.from_numpy((w * sw[:, None, None, None]).astype(np.float32)),
                                        torch.from_numpy(sw), torch.zeros(k, dtype=torch.long), 0, torch.qint8)

        def ours():
            ak.qconv2d(xo, wo, out=out, **kw)

        def peer():
            qF.conv2d(xq, wq, None, stride=st, padding=pad, scale=so, zero_point=zo)

        ours(), peer()
        t_ours, t_peer = [], []
        for _ in range(args.repeats):
            t0 = time.thread_time()
            ours()
            t_ours.append(time.thread_time() - t0)
            t0 = time.thread_time()
            peer()
            t_peer.append(time.thread_time() - t0)
        p = (hw + 2 * pad - r) // st + 1
        ops = 2 * n * p * p * k * c * r * r
        ratio = float(np.median(t_peer) / np.median(t_ours))
        ratios.append(ratio)
        print(f"{name:20s} ours {ops / np.median(t_ours) / 1e9:6.1f} GOPS  torch {ops / np.median(t_peer) / 1e9:6.1f}"
              f"  ours/torch {ratio:.2f}", flush=True)
    print(f"geomean ours/torch {np.exp(np.mean(np.log(ratios))):.3f} (min {min(ratios):.2f})")


if __name__ == "__main__":
    main()
