"""aicc-bench: benchmarks and self-check of every kernel on this machine.

With no arguments: a quick self-check — each op and dtype once against the reference,
with its throughput — ending in one summary table.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import aicc_kernels as ak
from aicc_kernels import _dtypes
from aicc_kernels.testing.tolerance import check_gemm, compare_exact


def _median_seconds(fn, repeats=5, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def self_check(size: int = 512) -> int:
    rng = np.random.default_rng(0)
    rows = []
    failures = 0
    for dtype in (np.float32, np.float16, _dtypes.bfloat16):
        a = rng.standard_normal((size, size)).astype(dtype)
        b = rng.standard_normal((size, size)).astype(dtype)
        out = ak.gemm(a, b)
        ok = check_gemm(out, ak.reference.gemm(a, b), a, b) is None
        t = _median_seconds(lambda: ak.gemm(a, b))
        rows.append(("gemm", _dtypes.short_name(dtype), f"{size}^3", 2 * size**3 / t / 1e9, "GFLOPS", ok))
    for a_dtype in (np.uint8, np.int8):
        info = np.iinfo(a_dtype)
        a = rng.integers(info.min, int(info.max) + 1, (size, size)).astype(a_dtype)
        b = rng.integers(-128, 128, (size, size)).astype(np.int8)
        ok = compare_exact(ak.qgemm(a, b), ak.reference.qgemm(a, b)) is None
        t = _median_seconds(lambda: ak.qgemm(a, b))
        rows.append(("qgemm", f"{_dtypes.short_name(a_dtype)}s8s32", f"{size}^3", 2 * size**3 / t / 1e9, "GOPS", ok))
    print(f"aicc_kernels {ak.__version__}: isa={ak.config().get('isa')} threads={ak.get_num_threads()}")
    print(f"{'op':<8}{'dtype':<12}{'shape':<10}{'throughput':>12}  {'unit':<7}{'matches reference'}")
    for op, dt, shape, thr, unit, ok in rows:
        failures += not ok
        print(f"{op:<8}{dt:<12}{shape:<10}{thr:>12.1f}  {unit:<7}{'yes' if ok else 'NO'}")
    return 1 if failures else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="aicc-bench", description=__doc__)
    parser.add_argument("--size", type=int, default=512, help="matrix size of the self-check")
    args = parser.parse_args(argv)
    return self_check(args.size)


if __name__ == "__main__":
    sys.exit(main())
