"""One rank of a multi-process collective test (not collected by pytest).

    python -m aicc_kernels.launch -n N tests/collective_worker.py SCENARIO
    mpirun -n N python tests/collective_worker.py SCENARIO

Prints one line per finding; exits 0 when the scenario behaved as the contract says.
"""

import os
import signal
import sys
import time
import zlib

import numpy as np

import aicc_kernels as ak
from aicc_kernels.collective import CollectiveError

DTYPES = {"f32": np.float32, "f64": np.float64, "f16": np.float16, "bf16": ak.bfloat16, "s32": np.int32,
          "s64": np.int64, "s8": np.int8}


def say(line):
    """One write per line, so lines of ranks sharing a pipe do not interleave."""
    os.write(1, (line + "\n").encode())


def inputs(seed, size, n, dtype, op):
    """Every rank's integer-valued input (each rank can rebuild all of them)."""
    limit = {"f16": 2048, "bf16": 256, "s8": 127}.get(dtype, 10**6)
    per = max(1, limit // size) if op in ("sum", "avg") and dtype != "s8" else limit
    return [np.random.default_rng([seed, r]).integers(-per, per, n, endpoint=True).astype(DTYPES[dtype])
            for r in range(size)]


def same_on_every_rank(comm, y):
    """All ranks hold the same bytes (compared through an all_gather of the bytes)."""
    b = np.frombuffer(np.ascontiguousarray(y).tobytes(), dtype=np.int8)
    g = ak.all_gather(b, comm=comm).reshape(comm.size, -1)
    return all(np.array_equal(g[0], g[r]) for r in range(comm.size))


def battery(comm):
    size, checks = comm.size, 0
    for dtype in DTYPES:
        for op in ("sum", "max", "min"):
            for n in (0, 1, 13, 4099, 300007 if dtype in ("f32", "bf16") else 1031):
                xs = inputs(zlib.crc32(f"{dtype}{op}{n}".encode()), size, n, dtype, op)
                y = ak.allreduce(xs[comm.rank], op, comm=comm)
                ref = ak.reference.allreduce(xs, op).astype(DTYPES[dtype])
                assert y.tobytes() == ref.tobytes(), (dtype, op, n)
                assert same_on_every_rank(comm, y), (dtype, op, n)
                checks += 1
    rng = np.random.default_rng([5, comm.rank])
    for comp in ("fp16", "bf16", "int8"):
        for n in (1, 257, 200003):
            xs = [(np.random.default_rng([n, r]).standard_normal(n) * 100).astype(np.float32) for r in range(size)]
            y = ak.allreduce(xs[comm.rank], "sum", compression=comp, comm=comm)
            err = np.abs(y - ak.reference.allreduce(xs))
            assert np.all(err <= ak.reference.allreduce_error_bound(xs, compression=comp)), (comp, n)
            assert same_on_every_rank(comm, y)
            checks += 1
    for rows in (0, 1, 7, 1031):
        xs = inputs(rows, size, rows * 2, "f32", "sum")
        xs = [x.reshape(rows, 2) for x in xs]
        rs = ak.reduce_scatter(xs[comm.rank], comm=comm)
        assert np.array_equal(rs, ak.reference.reduce_scatter(xs)[comm.rank])
        ag = ak.all_gather(xs[comm.rank], comm=comm)
        assert np.array_equal(ag, ak.reference.all_gather(xs))
        b = xs[comm.rank].copy()
        ak.broadcast(b, root=size - 1, comm=comm)
        assert np.array_equal(b, xs[size - 1])
        checks += 3
    x = rng.integers(-9, 9, 1000).astype(np.float32)
    a = x.copy()
    ak.allreduce(a, out=a, comm=comm)  # in place
    ak.barrier(comm=comm)
    say(f"rank {comm.rank}/{size} {comm.kind}: {checks} checks OK")


def shape_mismatch_calls(comm):
    """(name, call) per collective; rank 0 passes shape (a, b), the others (b, a)."""
    def shaped(a, b):
        return np.ones((a, b) if comm.rank == 0 else (b, a), np.float32)
    return [
        ("allreduce", lambda: ak.allreduce(shaped(2, 3), comm=comm)),
        ("reduce_scatter", lambda: ak.reduce_scatter(shaped(3, 4), comm=comm)),
        ("all_gather", lambda: ak.all_gather(shaped(2, 3), comm=comm)),
        ("broadcast", lambda: ak.broadcast(shaped(2, 3), 0, comm=comm)),
    ]


def main():
    scenario = sys.argv[1]
    timeout = float(sys.argv[2]) if len(sys.argv) > 2 else None
    comm = ak.collective.init(timeout=timeout)
    x = np.ones(1 << 14, np.float32)
    if scenario == "battery":
        battery(comm)
    elif scenario == "kill":
        try:
            for i in range(1000):
                if comm.rank == 1 and i == 3:
                    os.kill(os.getpid(), signal.SIGKILL)
                ak.allreduce(x, comm=comm)
        except CollectiveError as exc:
            say(f"SURVIVOR rank {comm.rank}: {exc}")
    elif scenario == "raise":
        if comm.rank == 1:
            raise RuntimeError("deliberate failure in rank 1")
        for _ in range(100000):
            ak.allreduce(x, comm=comm)
    elif scenario == "mismatch":
        try:
            ak.allreduce(np.ones(10 + comm.rank, np.float32), comm=comm)
        except CollectiveError as exc:
            say(f"MISMATCH rank {comm.rank}: {exc}")
        y = ak.allreduce(np.ones(4, np.float32), comm=comm)
        assert np.all(y == comm.size)
        say(f"USABLE rank {comm.rank}")
    elif scenario == "shape_mismatch":
        # Same element count, transposed shape on rank 1: every collective must refuse it
        # (D5), and the communicator stays in step for the next call.
        for name, call in shape_mismatch_calls(comm):
            try:
                call()
                say(f"ACCEPTED rank {comm.rank} {name}")
            except CollectiveError as exc:
                say(f"SHAPE rank {comm.rank} {name}: {exc}")
        y = ak.allreduce(np.ones(4, np.float32), comm=comm)
        assert np.all(y == comm.size)
        say(f"USABLE rank {comm.rank}")
    elif scenario == "timeout":
        if comm.rank == 1:
            time.sleep(3 * comm.timeout)
        t0 = time.monotonic()
        try:
            ak.allreduce(x, comm=comm)
        except CollectiveError as exc:
            say(f"TIMEOUT rank {comm.rank} after {time.monotonic() - t0:.2f}s: {exc}")
    elif scenario == "hold":
        say(f"READY rank {comm.rank} pid {os.getpid()}")
        time.sleep(120)
    else:
        raise SystemExit(f"unknown scenario {scenario!r}")


if __name__ == "__main__":
    main()
