"""`aicc-bench` with no arguments: every kernel and dtype in this build, once, against the
reference, timed, with its share of the peak measured in the same run.

Sizes are chosen so the whole run takes well under two minutes on a 2-core machine
(mostly spent in the float64/int64 reference). Ops that are not in this build (conv
before the convolution work lands, allreduce before the collectives) are listed as
"not in this build" with the reason; they do not fail the check. A mismatch does.
"""

from __future__ import annotations

from typing import Callable, List, Tuple

import numpy as np

from .. import _dtypes
from .record import Result, make_result, time_call

Case = Tuple[str, str, str, Callable[[], Result]]


def _count_float(out, ref, mag, k: int) -> int:
    from ..testing.tolerance import F32_MAX, compare_float, float_bound

    ref = np.asarray(ref)
    bound = float_bound(ref.astype(np.float64), mag, k, np.asarray(out).dtype)
    unchecked = ~np.isfinite(mag) | (mag > F32_MAX / 4)
    m = compare_float(out, ref, bound, unchecked)
    return 0 if m is None else m.count


def _count_exact(out, ref) -> int:
    from ..testing.tolerance import compare_exact

    m = compare_exact(out, ref)
    return 0 if m is None else m.count


def _abs64(x):
    return np.abs(np.asarray(x).astype(np.float64))


def _timed(fn, seconds_hint: float = 0.05):
    return time_call(fn, repeats=5, warmup=1, min_seconds=0.0 if seconds_hint > 0.01 else 0.01)


def gemm_cases(ak, rng, size: int, threads: int) -> List[Case]:
    cases: List[Case] = []
    for dtype in (_dtypes.float32, _dtypes.float16, _dtypes.bfloat16):
        def run(dtype=dtype):
            a = rng.standard_normal((size, size)).astype(dtype)
            b = rng.standard_normal((size, size)).astype(dtype)
            out = ak.gemm(a, b)
            wrong = _count_float(out, ak.reference.gemm(a, b), _abs64(a) @ _abs64(b), size)
            return make_result("gemm", "aicc", _dtypes.short_name(dtype), f"M=N=K={size}", threads,
                               _timed(lambda: ak.gemm(a, b)), 2.0 * size**3, "GFLOPS", wrong, size=size)
        cases.append(("gemm", _dtypes.short_name(dtype), f"M=N=K={size}", run))
    for a_dtype in (_dtypes.uint8, _dtypes.int8):
        name = f"{_dtypes.short_name(a_dtype)}s8s32"

        def run(a_dtype=a_dtype, name=name):
            info = np.iinfo(a_dtype)
            # Full range, extremes included: the exact route must get -128 and 255 right.
            a = rng.integers(info.min, int(info.max) + 1, (size, size)).astype(a_dtype)
            b = rng.integers(-128, 128, (size, size)).astype(np.int8)
            a[0, :] = info.min
            b[:, 0] = -128
            wrong = _count_exact(ak.qgemm(a, b), ak.reference.qgemm(a, b))
            return make_result("qgemm", "aicc", name, f"M=N=K={size}", threads,
                               _timed(lambda: ak.qgemm(a, b)), 2.0 * size**3, "GOPS", wrong, size=size)
        cases.append(("qgemm", name, f"M=N=K={size}", run))
    return cases


def conv_cases(ak, rng, threads: int) -> List[Case]:
    """ResNet-style 3x3 layer, small enough for the reference to be quick."""
    n, c, h, w, k, r, s = 2, 32, 28, 28, 32, 3, 3
    stride, pad = 1, 1
    p, q = (h + 2 * pad - r) // stride + 1, (w + 2 * pad - s) // stride + 1
    flops = 2.0 * n * k * c * r * s * p * q
    shape = f"N{n} C{c} {h}x{w} K{k} {r}x{s}"
    cases: List[Case] = []
    for dtype in (_dtypes.float32, _dtypes.float16, _dtypes.bfloat16):
        def run(dtype=dtype):
            x = rng.standard_normal((n, c, h, w)).astype(dtype)
            wt = rng.standard_normal((k, c, r, s)).astype(dtype)
            kw = dict(stride=stride, padding=pad)
            out = ak.conv2d(x, wt, **kw)
            mag = ak.reference.conv2d(_abs64(x).astype(np.float32), _abs64(wt).astype(np.float32), **kw).astype(np.float64)
            wrong = _count_float(out, ak.reference.conv2d(x, wt, **kw), mag, c * r * s)
            return make_result("conv2d", "aicc", _dtypes.short_name(dtype), shape, threads,
                               _timed(lambda: ak.conv2d(x, wt, **kw)), flops, "GFLOPS", wrong, size=flops)
        cases.append(("conv2d", _dtypes.short_name(dtype), shape, run))
    for x_dtype in (_dtypes.uint8, _dtypes.int8):
        name = f"{_dtypes.short_name(x_dtype)}s8s32"

        def run(x_dtype=x_dtype, name=name):
            info = np.iinfo(x_dtype)
            x = rng.integers(info.min, int(info.max) + 1, (n, c, h, w)).astype(x_dtype)
            wt = rng.integers(-128, 128, (k, c, r, s)).astype(np.int8)
            kw = dict(stride=stride, padding=pad)
            wrong = _count_exact(ak.qconv2d(x, wt, **kw), ak.reference.qconv2d(x, wt, **kw))
            return make_result("qconv2d", "aicc", name, shape, threads,
                               _timed(lambda: ak.qconv2d(x, wt, **kw)), flops, "GOPS", wrong, size=flops)
        cases.append(("qconv2d", name, shape, run))
    kw = dict(stride=stride, padding=pad, dilation=1, groups=1, layout="NCHW")
    def run():
        g = rng.standard_normal((n, k, p, q)).astype(np.float32)
        wt = rng.standard_normal((k, c, r, s)).astype(np.float32)
        out = ak.conv2d_backward_data(g, wt, (n, c, h, w), **kw)
        mag = ak.reference.conv2d_backward_data(_abs64(g).astype(np.float32), _abs64(wt).astype(np.float32),
                                                (n, c, h, w), **kw).astype(np.float64)
        ref = ak.reference.conv2d_backward_data(g, wt, (n, c, h, w), **kw)
        wrong = _count_float(out, ref, mag, k * r * s)
        return make_result("conv2d_backward_data", "aicc", "f32", shape, threads,
                           _timed(lambda: ak.conv2d_backward_data(g, wt, (n, c, h, w), **kw)), flops,
                           "GFLOPS", wrong, size=flops)
    cases.append(("conv2d_backward_data", "f32", shape, run))
    def run():
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
        g = rng.standard_normal((n, k, p, q)).astype(np.float32)
        out = ak.conv2d_backward_weight(x, g, (k, c, r, s), **kw)
        mag = ak.reference.conv2d_backward_weight(_abs64(x).astype(np.float32), _abs64(g).astype(np.float32),
                                                  (k, c, r, s), **kw).astype(np.float64)
        ref = ak.reference.conv2d_backward_weight(x, g, (k, c, r, s), **kw)
        wrong = _count_float(out, ref, mag, n * p * q)
        return make_result("conv2d_backward_weight", "aicc", "f32", shape, threads,
                           _timed(lambda: ak.conv2d_backward_weight(x, g, (k, c, r, s), **kw)), flops,
                           "GFLOPS", wrong, size=flops)
    cases.append(("conv2d_backward_weight", "f32", shape, run))
    return cases


def allreduce_cases(ak, ranks: int = 2, elements: int = 1 << 20) -> List[Case]:
    """Sum-allreduce over an in-process thread communicator; integer-valued floats make the
    exact sum order-independent (nccl-tests' trick), so f32 must match exactly."""
    from .allreduce_support import _fmt_bytes, thread_allreduce

    cases: List[Case] = []
    for dtype, compression in (("f32", None), ("bf16", None), ("f32", "int8")):
        label = dtype if compression is None else f"{dtype}+{compression}"

        def run(dtype=dtype, compression=compression, label=label):
            r = thread_allreduce(ak, ranks, elements, dtype, compression)
            return make_result("allreduce", "aicc", label, f"{_fmt_bytes(elements * r['itemsize'])} x{ranks} ranks",
                               ranks, r["samples"], float(elements * r["itemsize"]), "GB/s", r["wrong"],
                               busbw_gbs=r["busbw_gbs"], bytes=elements * r["itemsize"], transport="thread",
                               tolerance=r["tolerance"])
        cases.append(("allreduce", label, f"{ranks} ranks", run))
    return cases


def available_cases(ak, rng, size: int, threads: int):
    """(cases to run, [(op, reason)] for ops not in this build). Every op is in every build
    now; the list stays for callers that report it (always empty)."""
    cases = gemm_cases(ak, rng, size, threads) + conv_cases(ak, rng, threads) + allreduce_cases(ak)
    return cases, []
