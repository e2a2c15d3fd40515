"""The INT8 stem layers, ours against torch's quantized conv, one thread each, alternating calls
in one process and timing each call's CPU time (time.thread_time: on a shared machine the
wall clock measures the neighbours). Prints the median per call and ours/torch as a speed
ratio (> 1: ours faster). Also checks ours against the reference requantization bit for bit.

    python benchmarks/int8_stem.py                      # both stems, NHWC and NCHW, batch 2, x86 engine
    python benchmarks/int8_stem.py --batch 8 --repeats 21 --engine fbgemm
    AICC_CPU_FEATURES=-avx512_vnni python benchmarks/int8_stem.py   # the im2col + qgemm path
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np

import aicc_kernels as ak

LAYERS = {"conv1_7x7s2_3-64@224": (3, 64, 7, 2, 3, 224), "conv1_3x3s2_3-32@224": (3, 32, 3, 2, 1, 224)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--layouts", default="NHWC,NCHW")
    ap.add_argument("--layers", default=",".join(LAYERS))
    ap.add_argument("--engine", default="x86", help="torch.backends.quantized.engine (x86 or fbgemm)")
    args = ap.parse_args()

    import torch
    import torch.ao.nn.quantized.functional as qF

    torch.set_num_threads(1)
    ak.set_num_threads(1)
    torch.backends.quantized.engine = args.engine
    warnings.filterwarnings("ignore", category=UserWarning)
    rng = np.random.default_rng(0)
    print(f"batch {args.batch}, 1 thread, CPU time medians of {args.repeats}, torch engine {args.engine}, "
          f"kernels: {ak._config.kernels().get('smallc_int8')}")
    for name in args.layers.split(","):
        c, k, rs, stride, pad, hw = LAYERS[name]
        x = rng.integers(0, 256, (args.batch, c, hw, hw)).astype(np.uint8)
        w = rng.integers(-127, 128, (k, c, rs, rs)).astype(np.int8)
        zx, scale_x, scale_w, scale_out, zout = 128, 0.02, (0.5 + rng.random(k)) * 1e-2, 0.5, 3
        scale = (scale_x * scale_w / scale_out).astype(np.float32)
        xq = torch.quantize_per_tensor(torch.from_numpy(x.astype(np.float32) - zx) * scale_x, scale_x, zx, torch.quint8)
        wq = torch.quantize_per_channel(torch.from_numpy((w * scale_w[:, None, None, None]).astype(np.float32)),
                                        torch.from_numpy(scale_w), torch.zeros(k, dtype=torch.long), 0, torch.qint8)
        for layout in args.layouts.split(","):
            xo = x if layout == "NCHW" else np.ascontiguousarray(x.transpose(0, 2, 3, 1))
            wo = w if layout == "NCHW" else np.ascontiguousarray(w.transpose(0, 2, 3, 1))
            xt = xq.contiguous(memory_format=torch.channels_last) if layout == "NHWC" else xq.contiguous()
            kw = dict(stride=stride, padding=pad, layout=layout, x_zero_point=zx, scale=scale, out_zero_point=zout,
                      out_dtype=np.uint8)
            out = ak.qconv2d(xo, wo, **kw)
            ref = ak.reference.qconv2d(xo, wo, **kw)
            wrong = int((out != ref).sum())

            def ours():
                ak.qconv2d(xo, wo, out=out, **kw)

            def theirs():
                qF.conv2d(xt, wq, None, stride=stride, padding=pad, scale=scale_out, zero_point=zout)

            ts = {ours: [], theirs: []}
            for f in (ours, theirs):
                f()
            for _ in range(args.repeats):
                for f in (ours, theirs):
                    t0 = time.thread_time()
                    f()
                    ts[f].append(time.thread_time() - t0)
            mo, mt = statistics.median(ts[ours]), statistics.median(ts[theirs])
            ops = 2 * args.batch * k * c * rs * rs * out.size // (args.batch * k)
            print(f"{name:22s} {layout}: ours {mo * 1e3:7.2f} ms ({ops / mo / 1e9:5.0f} GOPS)  torch {mt * 1e3:7.2f} ms "
                  f"({ops / mt / 1e9:5.0f} GOPS)  ours/torch speed {mt / mo:.2f}x  wrong={wrong}")


if __name__ == "__main__":
    main()
