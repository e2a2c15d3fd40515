"""Allreduce measurement over an in-process thread communicator (self-check and the
`allreduce` subcommand's in-process transport).

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

    itemsize = np.dtype(np_dtype).itemsize
    # Small messages loop the call so one sample is not thread wake-up noise.
    iters = int(min(200, max(1, (32 << 20) // max(elements * itemsize, 1))))

    def worker(r: int) -> None:
        try:
            for _ in range(repeats + 1):
                start.wait()
                for _ in range(iters):
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
            if i > 0:  # the first sample is the warm-up
                samples.append((time.perf_counter() - t0) / iters)
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
    t = statistics.median(samples)
    algbw = elements * itemsize / t / 1e9
    return {"samples": samples, "wrong": wrong, "itemsize": itemsize, "busbw_gbs": busbw(algbw, ranks),
            "tolerance": tolerance}


def sweep(ak, ranks_list: Sequence[int], sizes=None, dtypes=None, quick: bool = False,
          check: bool = True, progress=None) -> List[Result]:
    """nccl-tests-style sweep: sizes in bytes per rank (default 4 KiB .. 64 MiB, x4 steps;
    quick: 4 KiB .. 4 MiB), dtypes f32/bf16 (and 'f32+int8' style names for compression)."""
    sizes = [s if isinstance(s, int) else int(np.prod(s)) for s in (sizes or _default_sizes(quick))]
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
                if progress:
                    progress(f"allreduce {label} {_fmt_bytes(elements * itemsize)} x{ranks}")
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


# ---------------------------------------------------------------------------------------
# Multi-process jobs (python -m aicc_kernels.launch -> shm, mpirun -> mpi)
# ---------------------------------------------------------------------------------------

def _default_sizes(quick: bool) -> List[int]:
    hi = 4 << 20 if quick else 64 << 20
    out, s = [], 4 << 10
    while s <= hi:
        out.append(s)
        s *= 4
    return out


def _inputs(rank: int, ranks: int, elements: int, np_dtype):
    """Rank r holds ((i + r) mod 9) - 4: small integers, so every order of summation is exact."""
    base = np.arange(elements, dtype=np.int64)
    x = (((base + rank) % 9) - 4).astype(np_dtype)
    exact = np.zeros(elements, np.float64)
    for r in range(ranks):
        exact += ((base + r) % 9) - 4
    return x, exact


def _timed(barrier, call, nbytes: int, repeats: int) -> List[float]:
    """Per-call seconds on this rank's clock, ranks aligned by a barrier before each sample;
    small messages loop the call (up to 200 times) so a sample is not timer noise."""
    iters = int(min(200, max(1, (32 << 20) // max(nbytes, 1))))
    samples = []
    for rep in range(repeats + 1):
        barrier()
        t0 = time.perf_counter()
        for _ in range(iters):
            call()
        if rep:  # the first repetition warms up
            samples.append((time.perf_counter() - t0) / iters)
    return samples


def process_sweep(ak, comm, sizes=None, dtypes=None, quick: bool = False, check: bool = True,
                  peers: Sequence[str] = ()) -> tuple:
    """Every rank runs this; returns (rows, peer_status) on rank 0 ((rows of rank 0, ...) elsewhere).
    Time = rank 0's median; #wrong = summed over ranks. Peers, same sizes, f32 sum:
    'mpi' (mpi4py Allreduce, under mpirun) and 'gloo' (torch.distributed, under our launcher)."""
    from .. import _dtypes

    rank, size = comm.rank, comm.size
    sizes = [s if isinstance(s, int) else int(np.prod(s)) for s in (sizes or _default_sizes(quick))]
    labels = dtypes or ["f32", "bf16", "f32+int8"]
    repeats = 3 if quick else 7
    rows: List[Result] = []
    kind = getattr(comm, "kind", "?")

    def total(v: float) -> float:
        return float(np.asarray(ak.allreduce(np.array([v], np.float32), op="sum",
                                             comm=comm))[0])

    for label in labels:
        dtype, _, compression = label.partition("+")
        compression = compression or None
        if compression not in COMPRESSIONS:
            raise ValueError(f"dtype: expected DTYPE or DTYPE+COMPRESSION with compression in fp16/bf16/int8, "
                             f"got {label!r}")
        np_dtype = _dtypes.from_short_name(dtype)
        itemsize = np.dtype(np_dtype).itemsize
        for nbytes in sizes:
            elements = max(1, nbytes // itemsize)
            x, exact = _inputs(rank, size, elements, np_dtype)
            out = np.empty_like(x)
            call = lambda: ak.allreduce(x, op="sum", comm=comm, compression=compression, out=out)  # noqa: E731
            samples = _timed(comm.barrier, call, elements * itemsize, repeats)
            wrong = None
            tolerance = "exact"
            if check:
                bound = int8_bound(size, 4.0) if compression == "int8" else 0.0
                if compression == "int8":
                    tolerance = f"int8 bound {bound:.3g}"
                wrong = int(total(float(np.count_nonzero(np.abs(out.astype(np.float64) - exact) > bound))))
            t = statistics.median(samples)
            algbw = elements * itemsize / t / 1e9
            rows.append(make_result("allreduce", "aicc", label, f"{_fmt_bytes(elements * itemsize)} x{size} ranks",
                                    size, samples, float(elements * itemsize), "GB/s", wrong,
                                    busbw_gbs=busbw(algbw, size), bytes=elements * itemsize, transport=kind,
                                    tolerance=tolerance))
    status = {}
    for peer in peers:
        fn = {"mpi": _mpi_peer, "gloo": _gloo_peer}.get(peer)
        if fn is None:
            continue
        peer_rows, reason = fn(rank, size, sizes, repeats, comm)
        rows += peer_rows
        if reason:
            status[peer] = reason
    return rows, status


def _mpi_peer(rank, size, sizes, repeats, comm):
    import os

    if not any(os.environ.get(v) for v in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK")):
        return [], "needs an mpirun job (this one was not started by mpirun)"
    from mpi4py import MPI

    world = MPI.COMM_WORLD
    rows = []
    for nbytes in sizes:
        elements = max(1, nbytes // 4)
        x, exact = _inputs(rank, size, elements, np.float32)
        out = np.empty_like(x)
        samples = _timed(world.Barrier, lambda: world.Allreduce(x, out, op=MPI.SUM), nbytes, repeats)
        wrong = world.allreduce(int(np.count_nonzero(out.astype(np.float64) != exact)), op=MPI.SUM)
        algbw = elements * 4 / statistics.median(samples) / 1e9
        rows.append(make_result("allreduce", "mpi", "f32", f"{_fmt_bytes(elements * 4)} x{size} ranks", size,
                                samples, float(elements * 4), "GB/s", wrong, busbw_gbs=busbw(algbw, size),
                                bytes=elements * 4, transport="mpi4py"))
    return rows, None


def _gloo_peer(rank, size, sizes, repeats, comm):
    import os

    if not os.environ.get("MASTER_ADDR") or not os.environ.get("WORLD_SIZE"):
        return [], "needs MASTER_ADDR/WORLD_SIZE (run under python -m aicc_kernels.launch)"
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo", rank=rank, world_size=size)
    rows = []
    try:
        for nbytes in sizes:
            elements = max(1, nbytes // 4)
            x, exact = _inputs(rank, size, elements, np.float32)
            buf = np.empty_like(x)
            t = torch.from_numpy(buf)

            def call():
                buf[...] = x  # all_reduce is in place: every call reduces the same input
                dist.all_reduce(t)

            samples = _timed(dist.barrier, call, nbytes, repeats)
            bad = torch.tensor([float(np.count_nonzero(buf.astype(np.float64) != exact))])
            dist.all_reduce(bad)
            algbw = elements * 4 / statistics.median(samples) / 1e9
            rows.append(make_result("allreduce", "gloo", "f32", f"{_fmt_bytes(elements * 4)} x{size} ranks", size,
                                    samples, float(elements * 4), "GB/s", int(bad.item()),
                                    busbw_gbs=busbw(algbw, size), bytes=elements * 4, transport="gloo"))
    finally:
        dist.destroy_process_group()
    return rows, None
