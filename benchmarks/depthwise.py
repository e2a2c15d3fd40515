"""Depthwise conv (groups = C = K), ours vs PyTorch, 1 thread, timed by each call's CPU time.

The peers are what a PyTorch user has: F.conv2d with groups=C (oneDNN; channels_last for
NHWC) for f32 / bf16 forward, aten.convolution_backward for the backward data / weight, and
torch's quantized conv (x86 engine, u8 activations with zero point 128, s8 per-channel
weights, u8 output with a zero point) for INT8. Each layer alternates one call of ours and
one of torch's in this process, both on 1 thread, and compares the medians of
time.thread_time() per call (on a shared machine wall-clock ratios swing with the load).
MobileNet / ResNeXt-like layers, batch 8.

    python benchmarks/depthwise.py                                   # f32,bf16,int8 forward, NHWC
    python benchmarks/depthwise.py --dtypes f32,bf16 --directions data,weight --layouts NHWC,NCHW
"""
import argparse
import time
import warnings

import numpy as np

import aicc_kernels as ak
from aicc_kernels import _dtypes

# (C, H=W, R=S, stride), padding R // 2
LAYERS = [(256, 28, 3, 1), (128, 56, 3, 1), (512, 14, 3, 1), (32, 112, 3, 2), (240, 14, 5, 1)]


def _time(ours, theirs, repeats):
    """Medians of alternating calls, CPU time of this thread (one warm-up call each first)."""
    ours(), theirs()
    t_ours, t_theirs = [], []
    for _ in range(repeats):
        t = time.thread_time(); ours(); t_ours.append(time.thread_time() - t)
        t = time.thread_time(); theirs(); t_theirs.append(time.thread_time() - t)
    return float(np.median(t_ours)), float(np.median(t_theirs))


def _np(t, layout, bf16):
    """A torch NCHW tensor as our array in `layout` (bf16 through its bits)."""
    if layout == "NHWC":
        t = t.permute(0, 2, 3, 1)
    t = t.contiguous()
    if bf16:
        import torch
        return t.view(torch.int16).numpy().view(_dtypes.bfloat16)
    return t.numpy()


def _float_case(torch, dtype, direction, layout, c, h, r, st, batch):
    tdt = torch.float32 if dtype == "f32" else torch.bfloat16
    fmt = torch.channels_last if layout == "NHWC" else torch.contiguous_format
    xt = torch.randn(batch, c, h, h).to(tdt).contiguous(memory_format=fmt)
    wt = (torch.randn(c, 1, r, r) * 0.3).to(tdt).contiguous(memory_format=fmt)
    x, w = _np(xt, layout, dtype == "bf16"), _np(wt, layout, dtype == "bf16")
    kw = dict(stride=st, padding=r // 2, groups=c, layout=layout)
    out = ak.conv2d(x, w, **kw)
    if direction == "forward":
        def ours():
            return ak.conv2d(x, w, out=out, **kw)

        def theirs():
            return torch.nn.functional.conv2d(xt, wt, None, stride=st, padding=r // 2, groups=c)
        pick = lambda v: v  # noqa: E731
    else:
        oshape = out.shape if layout == "NCHW" else (out.shape[0], out.shape[3], out.shape[1], out.shape[2])
        gt = torch.randn(*oshape).to(tdt).contiguous(memory_format=fmt)
        g = _np(gt, layout, dtype == "bf16")
        mask = [direction == "data", direction == "weight", False]
        if direction == "data":
            def ours():
                return ak.conv2d_backward_data(g, w, x.shape, **kw)
        else:
            def ours():
                return ak.conv2d_backward_weight(x, g, w.shape, **kw)

        def theirs():
            return torch.ops.aten.convolution_backward(gt, xt, wt, None, [st, st], [r // 2, r // 2], [1, 1], False,
                                                       [0, 0], c, mask)
        pick = lambda v: v[0 if direction == "data" else 1]  # noqa: E731
    got = np.asarray(ours(), dtype=np.float32)
    want = pick(theirs()).float()
    want = (want.permute(0, 2, 3, 1) if layout == "NHWC" else want).contiguous().numpy()
    err = float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), 1e-30))
    return ours, theirs, f"max rel diff {err:.1e}"


def _int8_case(torch, layout, c, h, r, st, batch, rng):
    import torch.ao.nn.quantized.functional as qF
    from aicc_kernels.reference.gemm_kernels import requantize

    torch.backends.quantized.engine = "x86"
    warnings.filterwarnings("ignore", message=".*quantize_per_.*deprecated", category=UserWarning)
    x = rng.integers(0, 256, (batch, c, h, h)).astype(np.uint8)
    w = rng.integers(-127, 128, (c, 1, r, r)).astype(np.int8)
    zx, zout, scale_x, scale_out = 128, 3, 0.02, 0.5
    scale_w = (0.5 + rng.random(c)) * 1e-2
    scale = (scale_x * scale_w / scale_out).astype(np.float32)
    xo = x if layout == "NCHW" else np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    wo = w if layout == "NCHW" else np.ascontiguousarray(w.transpose(0, 2, 3, 1))
    kw = dict(stride=st, padding=r // 2, groups=c, layout=layout, x_zero_point=zx, scale=scale,
              out_zero_point=zout, out_dtype=np.uint8)
    out = ak.qconv2d(xo, wo, **kw)
    # Exact accumulator through a float64 conv (integers below 2^53), then our requantize.
    acc = torch.nn.functional.conv2d(torch.from_numpy(x.astype(np.float64) - zx), torch.from_numpy(w.astype(np.float64)),
                                     stride=st, padding=r // 2, groups=c).numpy()
    ref = requantize(np.rint(acc).astype(np.int64).transpose(0, 2, 3, 1), np.uint8, scale=scale, out_zero_point=zout)
    wrong = int(((out if layout == "NHWC" else out.transpose(0, 2, 3, 1)) != ref).sum())
    xq = torch.quantize_per_tensor(torch.from_numpy(x.astype(np.float32) - zx) * scale_x, scale_x, zx, torch.quint8)
    wq = torch.quantize_per_channel(torch.from_numpy((w * scale_w[:, None, None, None]).astype(np.float32)),
                                    torch.from_numpy(scale_w), torch.zeros(c, dtype=torch.long), 0, torch.qint8)
    if layout == "NHWC":
        xq = xq.contiguous(memory_format=torch.channels_last)

    def ours():
        return ak.qconv2d(xo, wo, out=out, **kw)

    def theirs():
        return qF.conv2d(xq, wq, None, stride=st, padding=r // 2, groups=c, scale=scale_out, zero_point=zout)
    return ours, theirs, f"wrong {wrong}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dtypes", default="f32,bf16,int8")
    ap.add_argument("--directions", default="forward", help="comma-separated: forward, data, weight (int8: forward)")
    ap.add_argument("--layouts", default="NHWC")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=11)
    ap.add_argument("--layers", default=None, help="comma-separated indices into LAYERS (default: all)")
    a = ap.parse_args()
    import torch

    ak.set_num_threads(1)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    layers = LAYERS if a.layers is None else [LAYERS[int(i)] for i in a.layers.split(",")]
    ratios = {}
    for dtype in a.dtypes.split(","):
        for direction in a.directions.split(","):
            if dtype == "int8" and direction != "forward":
                continue
            for layout in a.layouts.split(","):
                key = (dtype, direction, layout)
                for c, h, r, st in layers:
                    if dtype == "int8":
                        ours, theirs, check = _int8_case(torch, layout, c, h, r, st, a.batch, rng)
                    else:
                        ours, theirs, check = _float_case(torch, dtype, direction, layout, c, h, r, st, a.batch)
                    t_ours, t_theirs = _time(ours, theirs, a.repeats)
                    ratios.setdefault(key, []).append(t_theirs / t_ours)
                    print(f"{dtype:4s} {direction:7s} {layout} dw{r}x{r}/{st} {c}@{h}: ours {t_ours * 1e3:6.2f} ms  "
                          f"torch {t_theirs * 1e3:6.2f} ms  ours/torch speed {t_theirs / t_ours:.2f}x  {check}",
                          flush=True)
    for (dtype, direction, layout), rs in ratios.items():
        print(f"{dtype} {direction} {layout}: geomean ours/torch speed {float(np.exp(np.mean(np.log(rs)))):.2f}x "
              f"(min {min(rs):.2f}x) over {len(rs)} layers")


if __name__ == "__main__":
    main()
