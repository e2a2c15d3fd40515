#!/usr/bin/env python3
"""GEMM benchmark: aicc_kernels against NumPy/OpenBLAS, PyTorch and onnxruntime, same run.

    python benchmarks/gemm.py                      # full sweep (square 128..4096, two rectangular shapes, 1 and 2 threads)
    python benchmarks/gemm.py --quick              # a short run
    python benchmarks/gemm.py --sizes 512 128x4096x4096 --dtypes f32 f16 --threads 1
    python benchmarks/gemm.py --blas-coretype Haswell   # NumPy's OpenBLAS on its AVX2 kernels

--blas-coretype sets OPENBLAS_CORETYPE before NumPy loads OpenBLAS (DYNAMIC_ARCH builds pick
their kernels from it): on an AVX-512 development machine, Haswell gives the peer that an
AVX2-only machine (the EPYC target class) runs, for a like-for-like ratio with our AVX2 path.

Writes benchmarks/results/gemm-<host>.json (a list of Result rows, aicc_kernels.bench.record)
and prints a table (ours, % of the FMA peak measured in the same run, each peer with ours/peer
and its wrong-element count against the reference). The measurement logic lives in
aicc_kernels.bench.gemm; this script only fixes the environment and writes the files.
"""

from __future__ import annotations

import os

# Before numpy / torch load their thread pools: peers' idle threads must sleep, not spin,
# or on a small machine they steal the cores from whoever is measured next (OpenMP's
# default spin time is 200 ms). Thread counts themselves are set per measurement.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(os.cpu_count() or 1))

import sys  # noqa: E402

for _i, _arg in enumerate(sys.argv):  # must happen before numpy is imported
    if _arg == "--blas-coretype" and _i + 1 < len(sys.argv):
        os.environ["OPENBLAS_CORETYPE"] = sys.argv[_i + 1]
    elif _arg.startswith("--blas-coretype="):
        os.environ["OPENBLAS_CORETYPE"] = _arg.split("=", 1)[1]

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402


def _size(text: str):
    parts = [int(p) for p in text.lower().split("x")]
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 3:
        return tuple(parts)
    raise argparse.ArgumentTypeError(f"size: expected N or MxKxN, got {text!r}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=_size, help="N (square) or MxKxN; default: the full sweep")
    parser.add_argument("--dtypes", nargs="+", choices=["f32", "f16", "bf16", "u8s8", "s8s8"])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--baselines", nargs="*", default=["numpy", "torch", "onnxruntime"])
    parser.add_argument("--no-check", action="store_true", help="skip the wrong-element counts")
    parser.add_argument("--quick", action="store_true", help="two small shapes, fewer repeats")
    parser.add_argument("--isa", help="force the CPU path (portable, avx2, ...) like AICC_ISA")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: time with process CPU time (a shared machine; needs --threads 1)")
    parser.add_argument("--blas-coretype", help="OPENBLAS_CORETYPE for NumPy's OpenBLAS (e.g. Haswell)")
    parser.add_argument("--output", type=Path, help="JSON path (default benchmarks/results/gemm-<host>.json)")
    args = parser.parse_args(argv)

    import aicc_kernels as ak
    from aicc_kernels.bench import gemm

    if args.isa:
        from aicc_kernels._config import set_isa  # not part of the public API
        set_isa(args.isa)
    start = time.time()
    results = gemm.run(sizes=args.sizes, dtypes=args.dtypes, threads=tuple(args.threads),
                       baselines=tuple(args.baselines), check=not args.no_check, quick=args.quick,
                       clock=args.clock)
    print(gemm.format_table(results))
    print("median ratios (ours / peer):", {k: round(v, 2) for k, v in gemm.summary(results).items()})

    host = platform.node() or "host"
    suffix = f"-openblas-{args.blas_coretype.lower()}" if args.blas_coretype else ""
    suffix += "-cputime" if args.clock == "cpu" else ""
    out = args.output or Path(__file__).resolve().parent / "results" / f"gemm-{host}{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    cfg = ak.config()
    payload = {
        "benchmark": "gemm",
        "command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])),
        "host": host,
        "cpu": cfg.get("cpu", platform.processor()),
        "isa": cfg.get("isa"),
        "version": ak.__version__,
        "seconds": round(time.time() - start, 1),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
        "clock": args.clock,
        "absent_peers": gemm.absent_peers(),
        "results": [r.to_dict() for r in results],
    }
    out.write_text(json.dumps(payload, indent=1, default=str))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
