"""`aicc-bench cluster`: what a data-parallel job gets out of N ranks.

Run under `mpirun -n N aicc-bench cluster` or `python -m aicc_kernels.launch -n N
aicc-bench cluster` (a single process is a 1-rank job). Phases, every rank in lockstep:

1. solo: rank 0 alone runs the step's compute, `STEP_GEMMS` f32 GEMMs (the others wait)
   -> the one-rank figure;
2. concurrent GEMM: every rank at once -> per-rank and aggregate GFLOPS, and the GEMM
   scaling efficiency = aggregate / (N * solo);
3. simulated data-parallel step per compression (none/bf16/int8): compute (`--step-gemms`
   GEMMs, the stand-in for forward+backward) then the gradient allreduce (`--params`
   elements, 25.6 M = ResNet-50), no overlap. Step scaling efficiency (weak scaling, each
   rank the same work) = solo compute time / (N-rank compute time + allreduce time), the
   solo time measured the same way (median of the same GEMM block).

Allreduce bandwidth: bytes = params * 4 (the fp32 gradient the caller hands in, for the
compressed variants too), algbw = bytes / time, busbw = algbw * 2(N-1)/N (nccl-tests).
Only rank 0 prints and writes files.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import List, Optional

import numpy as np

from .common import EXIT_OK, EXIT_UNAVAILABLE, UsageError, finish, measure_peak
from .record import Result, make_result, time_call

STEP_GEMMS = 4


def _unavailable(ak) -> Optional[str]:
    coll = getattr(ak, "collective", None)
    if coll is None or not hasattr(coll, "init"):
        return "ak.collective.init is not in this build (the collectives have not landed)"
    if not hasattr(ak, "allreduce"):
        return "ak.allreduce is not in this build (the collectives have not landed)"
    return None


def _barrier(ak, comm) -> None:
    if hasattr(comm, "barrier"):
        comm.barrier()
    else:
        ak.allreduce(np.zeros(1, np.float32), op="sum", comm=comm)


def _sum(ak, comm, values) -> np.ndarray:
    """Element-wise sum over ranks of a few figures (sent as f32: 7 digits are plenty here)."""
    x = np.asarray(values, dtype=np.float32)
    return np.asarray(ak.allreduce(x, op="sum", comm=comm), dtype=np.float64)


def _gather(ak, comm, value: float) -> List[float]:
    v = np.zeros(comm.size, np.float32)
    v[comm.rank] = value
    return [float(x) for x in _sum(ak, comm, v)]


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
            raise ValueError(f"--compression: expected none, fp16, bf16 or int8, got {part!r}")
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
    comm = ak.collective.init(kind=args.kind)
    rank, size = comm.rank, comm.size
    if rank != 0:
        con = None
        say = lambda *a, **k: None  # noqa: E731  only rank 0 reports
    else:
        say = lambda text, style=None: report.say(con, text, style)  # noqa: E731
    cores = peak_mod.default_threads()[-1]
    # Ranks on one host share its cores: each rank gets cores/N threads unless --threads says.
    tpr = args.threads_list[0] if args.threads_list else max(1, cores // size)
    ak.set_num_threads(tpr)
    n = args.gemm_size or (512 if args.quick else 1024)
    repeats = 3 if args.quick else 5
    say(f"aicc-bench cluster: {size} rank(s), communicator kind={getattr(comm, 'kind', '?')}, "
        f"{tpr} thread(s)/rank, GEMM M=N=K={n}, gradient {params / 1e6:.2f} M elements")

    rng = np.random.default_rng(rank)
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    flops = 2.0 * n ** 3

    # Peak on rank 0 while the others wait (same run; the gate compares against it).
    peak = None
    _barrier(ak, comm)
    if rank == 0:
        threads_needed = sorted({tpr, min(cores, tpr * size)})
        peak = measure_peak(con, ("fp32",), threads_needed, args.peak_seconds)
    _barrier(ak, comm)

    # 1. solo: rank 0 alone runs the step's compute (STEP_GEMMS GEMMs), timed like the step.
    def compute_block():
        for _ in range(STEP_GEMMS):
            ak.gemm(a, b)

    solo_block = 0.0
    if rank == 0:
        solo_block = statistics.median(time_call(compute_block, repeats=max(repeats, args.steps), warmup=1))
    solo_block = float(_sum(ak, comm, [solo_block])[0])
    solo_s = solo_block / STEP_GEMMS

    # 2. every rank at once.
    _barrier(ak, comm)
    mine = time_call(compute_block, repeats=max(repeats, args.steps), warmup=1)
    per_rank_gflops = _gather(ak, comm, STEP_GEMMS * flops / statistics.median(mine) / 1e9)
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

    # 3. simulated data-parallel steps.
    grads = rng.integers(-4, 5, params).astype(np.float32)  # integer-valued: exact fp32 sums
    nbytes = params * 4
    step_rows = []
    for comp in compressions:
        label = "f32" if comp is None else f"f32+{comp}"
        ak.allreduce(grads, op="sum", comm=comm, compression=comp)  # warm-up (buffers, pages)
        compute, comm_t = [], []
        for _ in range(args.steps):
            _barrier(ak, comm)
            t0 = time.perf_counter()
            compute_block()
            t1 = time.perf_counter()
            ak.allreduce(grads, op="sum", comm=comm, compression=comp)
            t2 = time.perf_counter()
            # The slowest rank sets the step: take the max over ranks of each phase.
            c_max, r_max = (float(v) for v in _max(ak, comm, [t1 - t0, t2 - t1]))
            compute.append(c_max)
            comm_t.append(r_max)
        c_med, r_med = statistics.median(compute), statistics.median(comm_t)
        algbw = nbytes / r_med / 1e9
        bus = algbw * 2 * (size - 1) / size if size > 1 else 0.0
        eff = solo_block / (c_med + r_med)
        rows.append(make_result("allreduce", "aicc", label, f"{params / 1e6:.1f}M x{size} ranks", size, comm_t,
                                float(nbytes), "GB/s", None, busbw_gbs=bus, bytes=nbytes, compression=comp or "none"))
        step = make_result("dp_step", "aicc", label, f"{STEP_GEMMS}xGEMM{n} + {params / 1e6:.1f}M allreduce x{size}",
                           tpr * size, [c + r for c, r in zip(compute, comm_t)], STEP_GEMMS * flops * size, "GFLOPS",
                           None, compression=comp or "none", compute_s=c_med, comm_s=r_med, comm_fraction=r_med / (c_med + r_med),
                           scaling_efficiency=eff, busbw_gbs=bus)
        rows.append(step)
        step_rows.append(step)

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
    if rank != 0:
        _barrier(ak, comm)
        return EXIT_OK
    impls = {r.impl for r in rows}
    for b, s in status.items():
        s["measured"] = b in impls
    derived = report.derive(rows, peak, args.baseline_list)
    body = []
    for s in step_rows:
        e = s.extra
        body.append([s.dtype, report._time(s.seconds), report._time(e["compute_s"]), report._time(e["comm_s"]),
                     f"{100 * e['comm_fraction']:.0f}%", f"{e['busbw_gbs']:.2f}",
                     f"{100 * e['scaling_efficiency']:.0f}%"])
    report._table(con, f"simulated data-parallel step, {size} rank(s) (compute then allreduce, no overlap)",
                  ["gradient", "step", "compute", "allreduce", "comm share", "busbw GB/s", "scaling eff"], body,
                  right_from=1)
    say(f"GEMM: rank 0 alone {solo_gflops:.1f} GFLOPS; {size} ranks at once {aggregate:.1f} GFLOPS aggregate "
        f"(per rank {', '.join(f'{g:.1f}' for g in per_rank_gflops)}), scaling efficiency "
        f"{100 * gemm_eff:.0f}%" if gemm_eff is not None else "GEMM: no solo figure")
    extra = {"cluster": {"ranks": size, "threads_per_rank": tpr, "kind": getattr(comm, "kind", None),
                         "gemm_size": n, "params": params, "solo_gflops": solo_gflops,
                         "aggregate_gflops": aggregate, "per_rank_gflops": per_rank_gflops,
                         "gemm_scaling_efficiency": gemm_eff,
                         "steps": [{"compression": s.extra.get("compression", s.dtype), "dtype": s.dtype,
                                    "step_s": s.seconds, "compute_s": s.extra["compute_s"],
                                    "comm_s": s.extra["comm_s"], "busbw_gbs": s.extra["busbw_gbs"],
                                    "scaling_efficiency": s.extra["scaling_efficiency"]} for s in step_rows]}}
    code = finish(con, "cluster", argv, derived, peak, status, [], args, "aicc-bench cluster: rows",
                      extra_doc=extra)
    _barrier(ak, comm)
    return code


def _max(ak, comm, values) -> np.ndarray:
    x = np.asarray(values, dtype=np.float32)
    return np.asarray(ak.allreduce(x, op="max", comm=comm), dtype=np.float64)
