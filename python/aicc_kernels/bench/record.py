"""One benchmark measurement, as every benchmark module reports it.

The gemm / conv / allreduce / resnet50 benchmark modules return lists of Result; the
aicc-bench CLI and the benchmarks/ scripts turn them into tables, JSON, CSV and plots,
and compute the ratio columns (ours / each peer, same shape and dtype, same run) and the
% of peak (against `aicc-bench peak`, measured in the same run).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import pathlib
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, Iterable, List, Optional


@dataclass
class Result:
    op: str                    # "gemm", "qgemm", "conv2d", "allreduce", "resnet50", "peak", ...
    impl: str                  # "aicc" for ours; the peer's name otherwise ("numpy", "torch", "onnxruntime", ...)
    dtype: str                 # short dtype name, e.g. "f32", "bf16", "u8s8s32"
    shape: str                 # human-readable problem, e.g. "M=N=K=512" or "16MiB x4 ranks"
    threads: int               # CPU threads (or ranks for collectives)
    seconds: float             # median wall time of one call
    work: float                # FLOPs / integer ops / bytes per call, as docs/BENCHMARKS.md counts them
    unit: str                  # "GFLOPS", "GOPS", "GB/s", "img/s"
    throughput: float          # work / seconds in `unit`
    wrong: Optional[int] = None    # elements differing from the reference beyond tolerance (None: not checked)
    samples: List[float] = field(default_factory=list)  # every timed repetition, seconds
    extra: Dict[str, object] = field(default_factory=dict)  # op-specific columns (busbw, workspace, ...)

    def to_dict(self) -> dict:
        return asdict(self)


_UNIT_SCALE = {"GFLOPS": 1e9, "GOPS": 1e9, "TFLOPS": 1e12, "TOPS": 1e12, "GB/s": 1e9, "img/s": 1.0}


def time_call(fn: Callable[[], object], *, repeats: int = 7, warmup: int = 2,
              min_seconds: float = 0.0) -> List[float]:
    """Wall times of `repeats` calls after `warmup` untimed ones. With min_seconds, each sample
    loops the call until that long has passed and reports the per-call average (for calls
    too short to time one at a time)."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        calls = 0
        t0 = time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - t0
            if elapsed >= min_seconds:
                break
        samples.append(elapsed / calls)
    return samples


def make_result(op: str, impl: str, dtype: str, shape: str, threads: int, samples: List[float],
                work: float, unit: str, wrong: Optional[int] = None, **extra) -> Result:
    median = statistics.median(samples)
    return Result(op=op, impl=impl, dtype=dtype, shape=shape, threads=threads, seconds=median,
                  work=work, unit=unit, throughput=work / median / _UNIT_SCALE[unit], wrong=wrong,
                  samples=list(samples), extra=dict(extra))


def openblas_setter():
    """The OpenBLAS thread-count setter of the library NumPy loaded (threadpoolctl if present)."""
    try:
        import threadpoolctl

        def set_with_threadpoolctl(n):
            threadpoolctl.threadpool_limits(n, user_api="blas")
        return set_with_threadpoolctl
    except ImportError:
        pass
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower() and line.split()[-1].startswith("/")}
    except OSError:
        return None
    for path in sorted(paths):
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                     "openblas_set_num_threads64_", "openblas_set_num_threads"):
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.argtypes = [ctypes.c_int]
                return lambda n, fn=fn: fn(int(n))
    return None


@contextlib.contextmanager
def bench_threads(n: int, torch=None):
    """Ours, NumPy's OpenBLAS and (when given) torch all on `n` threads for the block, so every
    implementation in a row gets the same cores; the previous settings come back after."""
    import aicc_kernels as ak

    previous = ak.get_num_threads()
    ak.set_num_threads(n)
    torch_prev = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(n)
    blas = openblas_setter()
    if blas:
        blas(n)
    try:
        yield
    finally:
        ak.set_num_threads(previous)
        if torch is not None:
            torch.set_num_threads(torch_prev)
        if blas:
            blas(os.cpu_count() or 1)


def write_json(path, results: Iterable[Result], **meta) -> pathlib.Path:
    """Writes {"command": the command line, **meta, "results": [...]} to `path` (parents created)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"command": " ".join(["python"] + sys.argv), **meta, "results": [r.to_dict() for r in results]}
    path.write_text(json.dumps(payload, indent=1, default=str))
    return path
