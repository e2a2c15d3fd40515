"""Allreduce bus bandwidth, nccl-tests style: ours (shm, MPI communicators) against
torch.distributed Gloo and Open MPI's own Allreduce (mpi4py), measured in the same run.

    python benchmarks/allreduce.py                       # 2 and 4 ranks, 4 KiB .. 256 MiB
    python benchmarks/allreduce.py --ranks 2 --max-bytes 16M --repeats 3

Columns as nccl-tests prints them: size (B), count (elements), type, redop, time (us,
median), algbw = size / time, busbw = algbw * 2 (n - 1) / n (GB/s), #wrong (elements that
differ from the exact sum of integer-valued inputs). Extra MPI rows: f16 / bf16 through
our MPI communicator against MPI's f32 Allreduce of the same byte count. Every
implementation runs in its own launch (our launcher for shm and Gloo, mpirun for MPI) one
after the other, within this one invocation. JSON (bench.record.Result rows) goes to
benchmarks/results/allreduce.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_bytes(text: str) -> int:
    text = text.strip().upper().rstrip("B").rstrip("I")
    return int(float(text[:-1]) * UNITS[text[-1]]) if text[-1] in UNITS else int(text)


def sizes(lo: int, hi: int, factor: int):
    s = lo
    while s <= hi:
        yield s
        s *= factor


def human(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n} B"


# ----------------------------------------------------------------------------------------
# Worker side: one rank of one implementation.
# ----------------------------------------------------------------------------------------

def measure(rank, size, call, barrier, x, expected, repeats):
    """Median seconds per call (rank 0's clock, ranks aligned by a barrier per sample) and
    the number of wrong elements of the first result."""
    nbytes = max(x.nbytes, 1)
    iters = int(min(200, max(1, (32 << 20) // nbytes)))
    y = call(x)
    wrong = int(np.count_nonzero(np.asarray(y, dtype=np.float64) != expected))
    samples = []
    for rep in range(repeats + 1):
        barrier()
        t0 = time.perf_counter()
        for _ in range(iters):
            call(x)
        dt = (time.perf_counter() - t0) / iters
        if rep:  # the first repetition warms up
            samples.append(dt)
    return samples, wrong


def worker(args) -> None:
    impls = args.worker.split(",")
    rows = []
    if impls[0] == "shm":
        import aicc_kernels as ak

        comm = ak.collective.init("shm")
        rank, size, barrier = comm.rank, comm.size, comm.barrier
        out_cache = {}

        def call_for(dtype):
            def call(x):
                out = out_cache.get(x.nbytes)
                if out is None:
                    out = out_cache[x.nbytes] = np.empty_like(x)
                return ak.allreduce(x, comm=comm, out=out)
            return call
        plan = [("aicc-shm", np.float32, call_for(np.float32))]
    elif impls[0] == "gloo":
        import torch
        import torch.distributed as dist

        dist.init_process_group("gloo")
        rank, size = dist.get_rank(), dist.get_world_size()

        def barrier():
            dist.barrier()

        def call(x):
            t = torch.from_numpy(x)
            dist.all_reduce(t)
            return t.numpy()

        # all_reduce is in place: feed it a copy so every call reduces the same input
        plan = [("gloo", np.float32, None)]
        torch.set_num_threads(1)
    else:  # mpi
        from mpi4py import MPI

        import aicc_kernels as ak

        comm = ak.collective.init("mpi")
        mcomm = MPI.COMM_WORLD
        rank, size = comm.rank, comm.size
        barrier = mcomm.Barrier
        outs = {}

        def ours(x):
            out = outs.setdefault((x.nbytes, x.dtype.str), np.empty_like(x))
            return ak.allreduce(x, comm=comm, out=out)

        def raw(x):
            out = outs.setdefault((x.nbytes, "raw"), np.empty_like(x))
            mcomm.Allreduce(x, out, op=MPI.SUM)
            return out

        plan = [("aicc-mpi", np.float32, ours), ("mpi4py", np.float32, raw),
                ("aicc-mpi", np.float16, ours), ("aicc-mpi", ak.bfloat16, ours)]
    for impl, dtype, call in plan:
        dtype = np.dtype(dtype)
        for nbytes in sizes(args.min_bytes, args.max_bytes, args.factor):
            count = nbytes // dtype.itemsize
            # integer-valued inputs: the sum is exact in any order (nccl-tests' check)
            x = np.full(count, rank + 1, dtype=dtype)
            expected = size * (size + 1) / 2
            if impl == "gloo":
                def call(a, _buf=np.empty_like(x)):
                    _buf[...] = a
                    t = torch.from_numpy(_buf)
                    dist.all_reduce(t)
                    return _buf
            samples, wrong = measure(rank, size, call, barrier, x, expected, args.repeats)
            if rank == 0:
                rows.append(dict(impl=impl, dtype=dtype.name if dtype.name != "bfloat16" else "bf16",
                                 nbytes=nbytes, count=count, ranks=size, samples=samples, wrong=wrong))
    if rank == 0:
        Path(args.out).write_text(json.dumps(rows))
    if impls[0] == "gloo":
        dist.destroy_process_group()


# ----------------------------------------------------------------------------------------
# Driver side.
# ----------------------------------------------------------------------------------------

def run_launch(kind, n, args, env_extra=None):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    worker_args = [str(Path(__file__).resolve()), "--worker", kind, "--out", out,
                   "--min-bytes", str(args.min_bytes), "--max-bytes", str(args.max_bytes),
                   "--factor", str(args.factor), "--repeats", str(args.repeats)]
    if kind == "mpi":
        mpirun = shutil.which("mpirun")
        if mpirun is None:
            print("# mpi: skipped (no mpirun on PATH)", file=sys.stderr)
            return []
        cmd = [mpirun, "--allow-run-as-root", "--oversubscribe", "-n", str(n), sys.executable] + worker_args
    else:
        cmd = [sys.executable, "-m", "aicc_kernels.launch", "-n", str(n)] + worker_args
    env = dict(os.environ, **(env_extra or {}))
    t0 = time.monotonic()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        print(f"# {kind} x{n} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}", file=sys.stderr)
        return []
    print(f"# {kind} x{n}: {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)
    rows = json.loads(Path(out).read_text())
    os.unlink(out)
    return rows


def to_results(rows):
    from aicc_kernels.bench.record import make_result

    results = []
    for r in rows:
        n = r["ranks"]
        res = make_result("allreduce", r["impl"], {"float32": "f32", "float16": "f16"}.get(r["dtype"], r["dtype"]),
                          f"{human(r['nbytes'])} x{n} ranks", n, r["samples"], r["nbytes"], "GB/s",
                          wrong=r["wrong"], count=r["count"], redop="sum", ranks=n)
        res.extra["algbw"] = r["nbytes"] / res.seconds / 1e9
        res.extra["busbw"] = res.extra["algbw"] * 2 * (n - 1) / n
        results.append(res)
    return results


def print_table(results, ranks):
    impls = []
    for r in results:
        if r.threads == ranks and (r.impl, r.dtype) not in impls:
            impls.append((r.impl, r.dtype))
    for impl, dtype in impls:
        print(f"\n# {impl}  {dtype}  {ranks} ranks")
        print(f"#{'size':>12} {'count':>11} {'type':>6} {'redop':>6} {'time(us)':>11} {'algbw':>8} {'busbw':>8} {'#wrong':>7}")
        for r in results:
            if r.threads == ranks and r.impl == impl and r.dtype == dtype:
                print(f" {r.work:>12.0f} {r.extra['count']:>11} {r.dtype:>6} {'sum':>6} {r.seconds * 1e6:>11.2f} "
                      f"{r.extra['algbw']:>8.3f} {r.extra['busbw']:>8.3f} {r.wrong:>7}")


def print_ratios(results, ranks):
    by = {(r.impl, r.dtype, int(r.work)): r for r in results if r.threads == ranks}
    print(f"\n# ratios, {ranks} ranks, same run (busbw ours / peer; f16/bf16: time vs MPI f32 of the same bytes)")
    print(f"#{'size':>10} {'shm/mpi4py':>11} {'shm/gloo':>9} {'aicc-mpi/mpi4py':>16} {'f16 t/f32 t':>12} {'bf16 t/f32 t':>13}")
    for nbytes in sorted({k[2] for k in by}):
        def get(impl, dt="f32"):
            return by.get((impl, dt, nbytes))

        def ratio(a, b, key="busbw"):
            return f"{a.extra[key] / b.extra[key]:.2f}" if a and b else "-"

        def tratio(a, b):
            return f"{a.seconds / b.seconds:.2f}" if a and b else "-"
        print(f" {human(nbytes):>10} {ratio(get('aicc-shm'), get('mpi4py')):>11} {ratio(get('aicc-shm'), get('gloo')):>9} "
              f"{ratio(get('aicc-mpi'), get('mpi4py')):>16} {tratio(get('aicc-mpi', 'f16'), get('mpi4py')):>12} "
              f"{tratio(get('aicc-mpi', 'bf16'), get('mpi4py')):>13}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ranks", default="2,4", help="comma-separated rank counts (default 2,4)")
    p.add_argument("--impls", default="shm,mpi,gloo", help="which launches to run (default shm,mpi,gloo)")
    p.add_argument("--min-bytes", type=parse_bytes, default=4 << 10)
    p.add_argument("--max-bytes", type=parse_bytes, default=256 << 20)
    p.add_argument("--factor", type=int, default=4, help="size step (nccl-tests -f; default 4)")
    p.add_argument("--repeats", type=int, default=5, help="timed repetitions per size (median reported)")
    p.add_argument("--json", default=str(ROOT / "results" / "allreduce.json"))
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args)
        return
    rows = []
    for n in (int(v) for v in args.ranks.split(",")):
        for kind in args.impls.split(","):
            rows += run_launch(kind, n, args)
    results = to_results(rows)
    for n in (int(v) for v in args.ranks.split(",")):
        print_table(results, n)
        print_ratios(results, n)
    cores = os.cpu_count()
    meta = dict(command=" ".join([Path(sys.executable).name] + sys.argv), cores=cores, machine=platform.machine(),
                note=f"{cores} cores; runs with more ranks than cores are oversubscribed", time=time.time())
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(dict(meta=meta, results=[r.to_dict() for r in results]), indent=1))
    print(f"\n# wrote {args.json} ({meta['note']})")


if __name__ == "__main__":
    main()
