"""Allreduce measurement over an in-process thread communicator (self-check and the
`allreduce` subcommand's fallback when the collectives' own benchmark module is absent).

algbw = bytes / time, busbw = algbw * 2(n-1)/n, as nccl-tests counts an allreduce; bytes
are the logical input bytes of one rank (for a compressed allreduce too: the figure is the
effective bandwidth the caller sees, not the wire bytes).
"""

from __future__ import annotations

import statistics
import threading
import time
from typing import List, Optional, Sequence

import numpy as np

from .record import Result, make_result

COMPRESSIONS = (None, "fp16", "bf16", "int8")


def thread_allreduce_unavailable(ak) -> Optional[str]:
    """None when this build has ak.allreduce and a thread communicator; the reason otherwise."""
    if not hasattr(ak, "allreduce"):
        return "ak.allreduce is not in this build (the collectives have not landed)"
    coll = getattr(ak, "collective", None)
    if coll is None or not hasattr(coll, "init"):
        return "ak.collective.init is not in this build"
    if not hasattr(coll, "thread_group"):
        return "ak.collective.thread_group (in-process communicator) is not in this build"
    return None


def busbw(algbw: float, ranks: int) -> float:
    return algbw * 2.0 * (ranks - 1) / ranks if ranks > 1 else 0.0


def int8_bound(ranks: int, max_abs: float) -> float:
    """Allowed |error| per element of an INT8-compressed sum of `ranks` inputs bounded by
    max_abs: each quantization (inputs and partial sums, at most `ranks` of them on the
    path of one element) rounds to half a step of a scale <= (ranks * max_abs) / 127."""
    return ranks * 0.5 * ranks * max_abs / 127.0 + 1e-6


def thread_allreduce(ak, ranks: int, elements: int, dtype: str = "f32", compression: Optional[str] = None,
                     repeats: int = 5, check: bool = True) -> dict:
    """Times a sum-allreduce of `elements` per rank over `ranks` threads. Inputs are small
    integers (nccl-tests' trick), so the exact sum is order-independent and f32/f16/bf16
    must match it exactly; an INT8-compressed sum is checked against int8_bound()."""
    from .. import _dtypes

    np_dtype = _dtypes.from_short_name(dtype)
    comms = ak.collective.thread_group(ranks)
    rng = np.random.default_rng(1)
    inputs = [rng.integers(-4, 5, elements).astype(np_dtype) for _ in range(ranks)]
    exact = np.sum([x.astype(np.float64) for x in inputs], axis=0)
    outs: List[Optional[np.ndarray]] = [None] * ranks
    errors: List[BaseException] = []
    start = threading.Barrier(ranks + 1)
    done = threading.Barrier(ranks + 1)

    def worker(r: int) -> None:
        try:
            for _ in range(repeats + 1):
                start.wait()
                outs[r] = ak.allreduce(inputs[r], op="sum", comm=comms[r], compression=compression)
                done.wait()
        except BaseException as e:  # reported by the caller; the barriers are broken so nobody hangs
            errors.append(e)
            start.abort()
            done.abort()

    threads = [threading.Thread(target=worker, args=(r,), daemon=True) for r in range(ranks)]
    for t in threads:
        t.start()
    samples = []
    try:
        for i in range(repeats + 1):
            start.wait()
            t0 = time.perf_counter()
            done.wait()
            if i > 0:  # the first call is the warm-up
                samples.append(time.perf_counter() - t0)
    except threading.BrokenBarrierError:
        pass
    for t in threads:
        t.join(timeout=60)
    if errors:
        raise errors[0]
    wrong = None
    tolerance = "exact"
    if check:
        bound = 0.0
        if compression == "int8":
            bound = int8_bound(ranks, float(max(np.abs(x.astype(np.float64)).max() for x in inputs)))
            tolerance = f"int8 bound {bound:.3g}"
        wrong = int(sum(int((np.abs(np.asarray(o).astype(np.float64) - exact) > bound).sum()) for o in outs))
    itemsize = np.dtype(np_dtype).itemsize
    t = statistics.median(samples)
    algbw = elements * itemsize / t / 1e9
    return {"samples": samples, "wrong": wrong, "itemsize": itemsize, "busbw_gbs": busbw(algbw, ranks),
            "tolerance": tolerance}


def sweep(ak, ranks_list: Sequence[int], sizes=None, dtypes=None, quick: bool = False,
          check: bool = True) -> List[Result]:
    """nccl-tests-style sweep: sizes in bytes per rank (default 4 KiB .. 64 MiB, x4 steps;
    quick: 4 KiB .. 4 MiB), dtypes f32/bf16 (and 'f32+int8' style names for compression)."""
    if sizes is None:
        hi = 4 << 20 if quick else 64 << 20
        sizes, s = [], 4 << 10
        while s <= hi:
            sizes.append(s)
            s *= 4
    sizes = [s if isinstance(s, int) else int(np.prod(s)) for s in sizes]
    labels = dtypes or ["f32", "bf16", "f32+int8"]
    rows: List[Result] = []
    for ranks in ranks_list:
        for label in labels:
            dtype, _, compression = label.partition("+")
            compression = compression or None
            if compression not in COMPRESSIONS:
                raise ValueError(f"dtype: expected DTYPE or DTYPE+COMPRESSION with compression in "
                                 f"fp16/bf16/int8, got {label!r}")
            for nbytes in sizes:
                itemsize = 2 if dtype in ("f16", "bf16") else 4
                elements = max(1, nbytes // itemsize)
                r = thread_allreduce(ak, ranks, elements, dtype, compression, repeats=3 if quick else 7, check=check)
                rows.append(make_result("allreduce", "aicc", label, f"{_fmt_bytes(elements * itemsize)} x{ranks} ranks",
                                        ranks, r["samples"], float(elements * itemsize), "GB/s", r["wrong"],
                                        busbw_gbs=r["busbw_gbs"], bytes=elements * itemsize, transport="thread",
                                        tolerance=r["tolerance"]))
    return rows


def _fmt_bytes(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale}{unit}"
    return f"{n}B"
