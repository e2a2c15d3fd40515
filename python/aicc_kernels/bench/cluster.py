"""`aicc-bench cluster`: what a data-parallel job gets out of N ranks.

Run under `mpirun -n N aicc-bench cluster` or `python -m aicc_kernels.launch -n N
aicc-bench cluster` (a single process is a 1-rank job). Phases, every rank in lockstep:

1. peaks: rank 0 alone probes the f32 FMA peak at its T threads (the one-rank peak), then
   every rank probes at once (the sum is the peak of all N x T threads: the host's peak
   at N*T threads when the ranks share a host, N x the per-rank peak across hosts);
2. solo: rank 0 alone runs the step's compute, `STEP_GEMMS` f32 GEMMs (the others wait)
   -> the one-rank figure;
3. concurrent GEMM: every rank at once -> per-rank and aggregate GFLOPS, and the GEMM
   scaling efficiency = aggregate / (N * solo);
4. simulated data-parallel step per compression (none/bf16/int8): compute (the GEMMs, the
   stand-in for forward+backward) then the gradient allreduce (`--params` elements,
   25.6 M = ResNet-50). Each rank times three parts of every step:

       barrier | compute | barrier (wait) | allreduce (comm) |
               t0        t1               t2                 t3

   The barrier after compute separates waiting for the slowest rank (load imbalance) from
   the collective itself, so busbw comes from the collective after every rank arrived.
   Per step, over ranks: step = max(t3 - t0); compute = max(t1 - t0); wait = max(t2 - t1)
   (the fastest rank's idle time: the imbalance); comm = step - max(t2 - t0) (the
   collective after the last rank left the barrier); sync = max(t2 - t0) - compute (the
   barrier's own latency). step = compute + sync + comm exactly; for the fastest rank,
   its compute + wait + comm is the step (the imbalance sits inside the slowest rank's
   compute, so compute + wait would count it twice).
5. with --overlap, the same step with DDP-style bucketing: the gradient is cut into
   `--buckets` buckets, and bucket k's allreduce starts on a communication thread of the
   rank as soon as the GEMM that produces it finished, while the later GEMMs run. Exposed
   communication = step - compute (what the overlap did not hide).

Weak-scaling efficiency (each rank the same work) = solo compute time / N-rank step time.
Allreduce bandwidth: bytes = params * 4 (the fp32 gradient the caller hands in, for the
compressed variants too), algbw = bytes / comm, busbw = algbw * 2(N-1)/N (nccl-tests).
A % of peak above 100 is a measurement bug: the run refuses to print it (PeakExceeded).
Only rank 0 prints and writes files.
"""

from __future__ import annotations

import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from .common import EXIT_ERROR, EXIT_OK, EXIT_UNAVAILABLE, UsageError, finish, report_error
from .record import Result, make_result, time_call

STEP_GEMMS = 4


class PeakExceeded(RuntimeError):
    """A throughput above the peak measured for the threads that produced it."""


# ---------------------------------------------------------------------------------------
# What the step timing needs from a communicator (tests supply a fake with injected delays)
# ---------------------------------------------------------------------------------------

class Group:
    """rank / size, barrier, a sum-allreduce into the caller's buffer, and a gather of a few
    floats to every rank, over an aicc_kernels communicator."""

    def __init__(self, ak, comm):
        self.ak, self.comm = ak, comm
        self.rank, self.size = comm.rank, comm.size

    def barrier(self) -> None:
        if hasattr(self.comm, "barrier"):
            self.comm.barrier()
        else:
            self.ak.allreduce(np.zeros(1, np.float32), op="sum", comm=self.comm)

    def allreduce(self, x: np.ndarray, out: np.ndarray, compression: Optional[str]) -> None:
        self.ak.allreduce(x, op="sum", comm=self.comm, compression=compression, out=out)

    def gather(self, values: Sequence[float]) -> np.ndarray:
        """(size, len(values)) array of every rank's values, summed into place (sent as f32:
        7 digits are plenty for seconds and GFLOPS, and every rank gets the same numbers)."""
        v = np.zeros((self.size, len(values)), np.float32)
        v[self.rank] = values
        return np.asarray(self.ak.allreduce(v, op="sum", comm=self.comm), dtype=np.float64)


def time_steps(group, compute: Callable[[], object], grads: np.ndarray, out: np.ndarray,
               compression: Optional[str], steps: int, clock=time.perf_counter) -> List[np.ndarray]:
    """Per step, a (size, 3) array of every rank's (compute, wait, comm) seconds."""
    parts = []
    for _ in range(steps):
        group.barrier()
        t0 = clock()
        compute()
        t1 = clock()
        group.barrier()  # returns once the last rank has arrived: t2 - t1 is waiting, not communicating
        t2 = clock()
        group.allreduce(grads, out, compression)
        t3 = clock()
        parts.append(group.gather([t1 - t0, t2 - t1, t3 - t2]))
    return parts


def breakdown(per_rank: np.ndarray) -> Dict[str, float]:
    """One step's figures from every rank's (compute, wait, comm); see the module docstring.
    step = compute + sync + comm exactly, each part >= 0."""
    c, w, m = (per_rank[:, i] for i in range(3))
    step = float(np.max(c + w + m))
    compute = float(np.max(c))
    arrived = float(np.max(c + w))
    return {"step": step, "compute": compute, "wait": float(np.max(w)), "sync": arrived - compute,
            "comm": step - arrived}


def bucket_ready_after(buckets: int, gemms: int) -> List[List[int]]:
    """For each GEMM, the gradient buckets complete once it has run: bucket b after GEMM
    ceil((b+1) * gemms / buckets) - 1, so the last bucket is always ready at the end."""
    ready: List[List[int]] = [[] for _ in range(gemms)]
    for b in range(buckets):
        ready[min(gemms - 1, -(-(b + 1) * gemms // buckets) - 1)].append(b)
    return ready


def split_buckets(grads: np.ndarray, out: np.ndarray, buckets: int):
    """`buckets` contiguous views of grads and out, sizes differing by at most one element."""
    edges = np.linspace(0, grads.size, buckets + 1).astype(np.int64)
    return [(grads[lo:hi], out[lo:hi]) for lo, hi in zip(edges[:-1], edges[1:]) if hi > lo]


def comm_thread() -> ThreadPoolExecutor:
    """The rank's communication thread (one: collectives are issued in the same order on
    every rank). Started before the timed steps, so no step pays for creating it."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aicc-bench-allreduce")
    pool.submit(lambda: None).result()
    return pool


def time_overlap_steps(group, gemms: Sequence[Callable[[], object]], buckets, compression: Optional[str],
                       steps: int, clock=time.perf_counter, pool: Optional[ThreadPoolExecutor] = None
                       ) -> List[np.ndarray]:
    """Per step, a (size, 2) array of every rank's (compute, exposed) seconds: buckets are
    allreduced on the rank's communication thread (`pool`, else one made for the call) while
    the later GEMMs run; exposed = compute end to last bucket done."""
    ready = bucket_ready_after(len(buckets), len(gemms))
    parts = []
    owned = pool is None
    pool = comm_thread() if owned else pool
    try:
        for _ in range(steps):
            group.barrier()
            t0 = clock()
            pending = []
            for k, gemm in enumerate(gemms):
                gemm()
                for b in ready[k]:
                    pending.append(pool.submit(group.allreduce, buckets[b][0], buckets[b][1], compression))
            t1 = clock()
            for f in pending:
                f.result()
            t2 = clock()
            # The communication thread is idle now, so the main thread may use the communicator.
            parts.append(group.gather([t1 - t0, t2 - t1]))
    finally:
        if owned:
            pool.shutdown()
    return parts


def overlap_breakdown(per_rank: np.ndarray) -> Dict[str, float]:
    c, x = per_rank[:, 0], per_rank[:, 1]
    step = float(np.max(c + x))
    compute = float(np.max(c))
    return {"step": step, "compute": compute, "exposed": step - compute}


def medians(steps: List[Dict[str, float]]) -> Dict[str, float]:
    return {k: statistics.median(s[k] for s in steps) for k in steps[0]}


def busbw(nbytes: float, seconds: float, ranks: int) -> float:
    return nbytes / seconds / 1e9 * 2 * (ranks - 1) / ranks if ranks > 1 and seconds > 0 else 0.0


# ---------------------------------------------------------------------------------------
# % of peak: each figure against the peak of the threads that produced it
# ---------------------------------------------------------------------------------------

def apply_peaks(rows, solo_peak: Optional[float], aggregate_peak: Optional[float], ranks: int,
                threads_per_rank: int) -> None:
    """Sets pct_of_peak of the GFLOPS rows: phase 'solo' (rank 0 alone) against rank 0's
    peak at its threads; every other row (the work of all ranks at once) against the peak
    all ranks measured at once. Raises PeakExceeded for a figure above 100 %."""
    for row in rows:
        r = row.r
        row.pct_of_peak, row.peak_kind = None, None
        if r.unit != "GFLOPS":
            continue
        solo = r.extra.get("phase") == "solo"
        value = solo_peak if solo else aggregate_peak
        if not value or value <= 0:
            continue
        row.pct_of_peak = 100.0 * r.throughput / value
        row.peak_kind = "fp32_gflops"
        if row.pct_of_peak > 100.0:
            who = (f"{threads_per_rank} thread(s) of rank 0 alone" if solo
                   else f"{ranks} rank(s) x {threads_per_rank} thread(s) at once")
            raise PeakExceeded(f"{r.op} {r.dtype} {r.shape}: {r.throughput:.1f} GFLOPS is {row.pct_of_peak:.0f}% of "
                               f"the f32 peak measured for {who} ({value:.1f} GFLOPS); a figure above the measured "
                               f"peak is a measurement error, not printed")


def _probe_fp32(tpr: int, seconds: float) -> float:
    """This rank's f32 FMA peak at tpr threads (0.0 when the probes are not in this build):
    the rate while the probe's threads ran (work / their CPU time, peak.py's
    `throughput_unshared`; the wall-clock rate on a quiet machine). A wall-clock probe taken
    while other processes held the cores reads low, and a GEMM timed in a quieter moment
    would then pass 100 %; no wall-clock GEMM figure can pass this one."""
    from . import peak as peak_mod

    try:
        (row,) = peak_mod.measure(threads=[tpr], seconds=seconds, repeats=3, kinds=("fp32",))["rows"]
    except RuntimeError:
        return 0.0
    return float(row.extra.get("throughput_unshared") or row.throughput)


# ---------------------------------------------------------------------------------------
# The subcommand
# ---------------------------------------------------------------------------------------

def _unavailable(ak) -> Optional[str]:
    coll = getattr(ak, "collective", None)
    if coll is None or not hasattr(coll, "init"):
        return "ak.collective.init is not in this build"
    if not hasattr(ak, "allreduce"):
        return "ak.allreduce is not in this build"
    return None


def _compressions(text: str) -> List[Optional[str]]:
    out = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        if part in ("none", "fp32", "f32"):
            out.append(None)
        elif part in ("fp16", "bf16", "int8"):
            out.append(part)
        else:
            raise UsageError(f"--compression: expected none, fp16, bf16 or int8, got {part!r}")
    return out or [None]


def _mpi_baseline(params: int, repeats: int) -> Optional[dict]:
    """MPI_Allreduce (mpi4py, Open MPI) of the same fp32 gradient, same ranks, same run."""
    if "OMPI_COMM_WORLD_SIZE" not in os.environ and "PMI_SIZE" not in os.environ:
        return None
    from mpi4py import MPI

    world = MPI.COMM_WORLD
    x = np.ones(params, np.float32)
    y = np.empty_like(x)
    world.Allreduce(x, y, op=MPI.SUM)
    samples = []
    for _ in range(repeats):
        world.Barrier()
        t0 = time.perf_counter()
        world.Allreduce(x, y, op=MPI.SUM)
        samples.append(time.perf_counter() - t0)
    # Each rank's view; the slowest rank defines the collective's time.
    return {"samples": [world.allreduce(s, op=MPI.MAX) for s in samples], "size": world.Get_size()}


def run_cluster(args, argv, con) -> int:
    import aicc_kernels as ak

    from . import baselines as baselines_mod
    from . import peak as peak_mod, report

    reason = _unavailable(ak)
    if reason:
        report.say(con, f"aicc-bench cluster: not available in this build: {reason}", "bold yellow")
        return EXIT_UNAVAILABLE
    compressions = _compressions(args.compression)
    params = int(args.params)
    if params < 1:
        raise UsageError(f"--params: expected a positive element count, got {args.params}")
    if args.steps < 1:
        raise UsageError(f"--steps: expected >= 1, got {args.steps}")
    nbuckets = args.buckets if args.buckets is not None else STEP_GEMMS
    if nbuckets < 1 or nbuckets > params:
        raise UsageError(f"--buckets: expected 1 to --params ({params}) buckets, got {nbuckets}")
    comm = ak.collective.init(kind=args.kind)
    group = Group(ak, comm)
    rank, size = comm.rank, comm.size
    if rank != 0:
        con = None
        say = lambda *a, **k: None  # noqa: E731  only rank 0 reports
    else:
        say = lambda text, style=None: report.say(con, text, style)  # noqa: E731
    cores = peak_mod.default_threads()[-1]
    # Ranks on one host share its cores: each rank gets cores/N threads unless --threads says
    # (under the launcher each rank is bound to one core, so this is 1).
    tpr = args.threads_list[0] if args.threads_list else max(1, cores // size)
    ak.set_num_threads(tpr)
    n = args.gemm_size or (512 if args.quick else 1024)
    repeats = 3 if args.quick else 5
    say(f"aicc-bench cluster: {size} rank(s), communicator kind={getattr(comm, 'kind', '?')}, "
        f"{tpr} thread(s)/rank, GEMM M=N=K={n}, gradient {params / 1e6:.2f} M elements")

    rng = np.random.default_rng(rank)
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    c = np.empty((n, n), np.float32)  # preallocated, like a framework's cached allocator
    flops = 2.0 * n ** 3

    # 1. peaks: rank 0 alone, then every rank at once (the threads of the concurrent figures).
    group.barrier()
    solo_peak = _probe_fp32(tpr, args.peak_seconds) if rank == 0 else 0.0
    solo_peak = float(group.gather([solo_peak])[0, 0])
    group.barrier()
    rank_peaks = [float(v) for v in group.gather([_probe_fp32(tpr, args.peak_seconds)])[:, 0]]
    aggregate_peak = sum(rank_peaks) if all(p > 0 for p in rank_peaks) else 0.0
    # Both probes ran rank 0's threads; as with repeats, the less disturbed one is the peak.
    solo_peak = max(solo_peak, rank_peaks[0]) if solo_peak > 0 else 0.0

    def gemm():
        ak.gemm(a, b, out=c)

    def compute_block():
        for _ in range(STEP_GEMMS):
            gemm()

    # 2. solo: rank 0 alone runs the step's compute, timed like the step.
    solo_block = 0.0
    if rank == 0:
        solo_block = statistics.median(time_call(compute_block, repeats=max(repeats, args.steps), warmup=1))
    solo_block = float(group.gather([solo_block])[0, 0])
    solo_s = solo_block / STEP_GEMMS

    # 3. every rank at once.
    group.barrier()
    mine = time_call(compute_block, repeats=max(repeats, args.steps), warmup=1)
    per_rank_gflops = [float(v) for v in group.gather([STEP_GEMMS * flops / statistics.median(mine) / 1e9])[:, 0]]
    aggregate = sum(per_rank_gflops)
    solo_gflops = flops / solo_s / 1e9
    gemm_eff = aggregate / (size * solo_gflops) if solo_gflops > 0 else None

    rows: List[Result] = [
        make_result("gemm", "aicc", "f32", f"M=N=K={n} rank 0 alone", tpr, [solo_s], flops, "GFLOPS", None,
                    size=n, phase="solo"),
        make_result("gemm", "aicc", "f32", f"M=N=K={n} x{size} ranks (aggregate)", tpr * size,
                    [flops * size / (aggregate * 1e9)], flops * size, "GFLOPS", None, size=n, phase="concurrent",
                    per_rank_gflops=per_rank_gflops, scaling_efficiency=gemm_eff),
    ]

    # 4./5. simulated data-parallel steps.
    grads = rng.integers(-4, 5, params).astype(np.float32)  # integer-valued: exact fp32 sums
    out = np.empty_like(grads)
    nbytes = params * 4
    buckets = split_buckets(grads, out, nbuckets)
    step_docs, overlap_docs = [], []
    pool = comm_thread() if args.overlap else None  # idle between steps; exits with shutdown() below
    for comp in compressions:
        label = "f32" if comp is None else f"f32+{comp}"
        group.allreduce(grads, out, comp)  # warm-up (buffers, pages)
        for bx, bo in buckets if args.overlap else ():
            group.allreduce(bx, bo, comp)
        # With --overlap the two kinds of step alternate, so both see the same machine load.
        raw, raw_o = [], []
        for _ in range(args.steps):
            raw += time_steps(group, compute_block, grads, out, comp, 1)
            if args.overlap:
                raw_o += time_overlap_steps(group, [gemm] * STEP_GEMMS, buckets, comp, 1, pool=pool)
        per_step = [breakdown(p) for p in raw]
        med = medians(per_step)
        bus = busbw(nbytes, med["comm"], size)
        eff = solo_block / med["step"]
        rows.append(make_result("allreduce", "aicc", label, f"{params / 1e6:.1f}M x{size} ranks", size,
                                [s["comm"] for s in per_step], float(nbytes), "GB/s", None, busbw_gbs=bus,
                                bytes=nbytes, compression=comp or "none", phase="step"))
        rows.append(make_result("dp_step", "aicc", label,
                                f"{STEP_GEMMS}xGEMM{n} + {params / 1e6:.1f}M allreduce x{size}", tpr * size,
                                [s["step"] for s in per_step], STEP_GEMMS * flops * size, "GFLOPS", None,
                                compression=comp or "none", overlap=False, scaling_efficiency=eff, busbw_gbs=bus,
                                **{f"{k}_s": v for k, v in med.items() if k != "step"}))
        step_docs.append({"compression": comp or "none", "dtype": label, "step_s": med["step"],
                          "compute_s": med["compute"], "wait_s": med["wait"], "comm_s": med["comm"],
                          "sync_s": med["sync"], "busbw_gbs": bus, "scaling_efficiency": eff,
                          "per_step": per_step,
                          # [step][rank] = (compute, wait, comm) seconds, as each rank timed them
                          "per_rank": [p.tolist() for p in raw]})
        if args.overlap:
            per_step_o = [overlap_breakdown(p) for p in raw_o]
            med_o = medians(per_step_o)
            eff_o = solo_block / med_o["step"]
            rows.append(make_result("dp_step", "aicc", label,
                                    f"{STEP_GEMMS}xGEMM{n} + {params / 1e6:.1f}M allreduce x{size} "
                                    f"overlap {len(buckets)} buckets", tpr * size,
                                    [s["step"] for s in per_step_o], STEP_GEMMS * flops * size, "GFLOPS", None,
                                    compression=comp or "none", overlap=True, buckets=len(buckets),
                                    compute_s=med_o["compute"], exposed_comm_s=med_o["exposed"],
                                    scaling_efficiency=eff_o))
            overlap_docs.append({"compression": comp or "none", "dtype": label, "buckets": len(buckets),
                                 "step_s": med_o["step"], "compute_s": med_o["compute"],
                                 "exposed_comm_s": med_o["exposed"], "comm_s_no_overlap": med["comm"],
                                 "scaling_efficiency": eff_o, "scaling_efficiency_no_overlap": eff,
                                 "per_step": per_step_o})
    if pool is not None:
        pool.shutdown()

    status = baselines_mod.status(args.baseline_list, "cluster")
    if "mpi" in args.baseline_list and status["mpi"]["available"]:
        try:
            mpi = _mpi_baseline(params, repeats)
        except Exception as e:  # an MPI that cannot start is reported, not fatal
            mpi = None
            status["mpi"] = dict(status["mpi"], available=False, reason=f"mpi4py failed: {e}")
        if mpi is None and status["mpi"]["available"]:
            status["mpi"] = dict(status["mpi"], available=False, reason="not launched by mpirun (no MPI world)")
        elif mpi is not None:
            algbw = nbytes / statistics.median(mpi["samples"]) / 1e9
            rows.append(make_result("allreduce", "mpi", "f32", f"{params / 1e6:.1f}M x{size} ranks", size,
                                    mpi["samples"], float(nbytes), "GB/s", None,
                                    busbw_gbs=algbw * 2 * (size - 1) / size if size > 1 else 0.0, bytes=nbytes))

    # Every rank holds the same gathered figures, so every rank refuses (or not) together.
    derived = report.derive(rows, None, args.baseline_list)
    try:
        apply_peaks(derived, solo_peak, aggregate_peak, size, tpr)
    except PeakExceeded as e:
        if rank == 0:
            report_error(con, "aicc-bench cluster: refused to print a % of peak:", e)
        group.barrier()
        return EXIT_ERROR
    if rank != 0:
        group.barrier()
        return EXIT_OK
    impls = {r.r.impl for r in derived}
    for name, s in status.items():
        s["measured"] = name in impls
    _print_tables(con, say, size, step_docs, overlap_docs)
    say(f"GEMM: rank 0 alone {solo_gflops:.1f} GFLOPS; {size} ranks at once {aggregate:.1f} GFLOPS aggregate "
        f"(per rank {', '.join(f'{g:.1f}' for g in per_rank_gflops)}), scaling efficiency "
        f"{100 * gemm_eff:.0f}%" if gemm_eff is not None else "GEMM: no solo figure")
    say(f"f32 FMA peak: rank 0 alone {solo_peak:.1f} GFLOPS at {tpr} thread(s); all ranks at once "
        f"{aggregate_peak:.1f} GFLOPS ({size} x {tpr} threads: {', '.join(f'{p:.1f}' for p in rank_peaks)})")
    extra = {"cluster": {"ranks": size, "threads_per_rank": tpr, "kind": getattr(comm, "kind", None),
                         "gemm_size": n, "params": params, "solo_gflops": solo_gflops,
                         "aggregate_gflops": aggregate, "per_rank_gflops": per_rank_gflops,
                         "gemm_scaling_efficiency": gemm_eff,
                         "peak": {"solo_fp32_gflops": solo_peak, "aggregate_fp32_gflops": aggregate_peak,
                                  "per_rank_fp32_gflops": rank_peaks, "threads_per_rank": tpr},
                         "steps": step_docs, "overlap": overlap_docs}}
    code = finish(con, "cluster", argv, derived, None, status, [], args, "aicc-bench cluster: rows", extra_doc=extra)
    group.barrier()
    return code


def _print_tables(con, say, size: int, step_docs, overlap_docs) -> None:
    from . import report

    t = report._time
    body = [[s["dtype"], t(s["step_s"]), t(s["compute_s"]), t(s["wait_s"]), t(s["comm_s"]),
             f"{100 * s['comm_s'] / s['step_s']:.0f}%", f"{s['busbw_gbs']:.2f}",
             f"{100 * s['scaling_efficiency']:.0f}%"] for s in step_docs]
    report._table(con, f"simulated data-parallel step, {size} rank(s) (compute, then allreduce), medians",
                  ["gradient", "step", "compute", "wait", "comm", "comm share", "busbw GB/s", "scaling eff"], body,
                  right_from=1)
    say("step = compute (slowest rank) + comm (the allreduce once every rank arrived) + barrier latency; "
        "wait = the fastest rank's idle time for the slowest (load imbalance, inside compute); busbw from comm")
    if overlap_docs:
        body = [[s["dtype"], str(s["buckets"]), t(s["step_s"]), t(s["compute_s"]), t(s["exposed_comm_s"]),
                 t(s["comm_s_no_overlap"]), f"{100 * s['scaling_efficiency_no_overlap']:.0f}%",
                 f"{100 * s['scaling_efficiency']:.0f}%"] for s in overlap_docs]
        report._table(con, f"with --overlap: bucketed allreduce on a thread per rank during the later GEMMs, {size} "
                           f"rank(s), medians",
                      ["gradient", "buckets", "step", "compute", "exposed comm", "comm (no overlap)",
                       "scaling eff (no overlap)", "scaling eff (overlap)"], body, right_from=1)
