"""One benchmark measurement, as every benchmark module reports it.

The gemm / conv / allreduce / resnet50 benchmark modules return lists of Result; the
aicc-bench CLI and the benchmarks/ scripts turn them into tables, JSON, CSV and plots,
and compute the ratio columns (ours / each peer, same shape and dtype, same run) and the
% of peak (against `aicc-bench peak`, measured in the same run).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional


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
