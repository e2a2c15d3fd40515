"""aicc-bench: the benchmark tool of aicc_kernels.

  aicc-bench                       quick self-check + summary of every kernel and dtype in this build
  aicc-bench peak                  this machine's f32 FMA / INT8 multiply-add / memory bandwidth peaks
  aicc-bench gemm|conv|resnet50    throughput sweeps against the reference and the baselines
  aicc-bench allreduce             algbw / busbw of the allreduce (nccl-tests style)
  aicc-bench cluster               under mpirun or `python -m aicc_kernels.launch`: per-rank GEMM and a
                                   simulated data-parallel step (ResNet-50-sized gradient allreduce):
                                   step = compute + comm, load-imbalance wait apart; --overlap buckets it

Exit status: 0 ok; 1 a kernel disagrees with the reference; 2 usage error; 3 a row is below
--min-efficiency; 4 the requested benchmark is not available in this build; 5 the benchmark
raised an error (AICC_BENCH_TRACEBACK=1 prints the traceback).
docs/BENCHMARKS.md: how each figure is counted and the JSON schema.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from typing import List, Optional, Sequence

# The exit codes, errors and the common tail live in bench/common.py (cluster.py uses them
# too, and must not import this module back); re-exported because callers use cli.EXIT_*.
from .common import (EXIT_BELOW_MIN, EXIT_ERROR, EXIT_MISMATCH, EXIT_OK, EXIT_UNAVAILABLE,  # noqa: F401
                     EXIT_USAGE, Unavailable, UsageError, finish, measure_peak, report_error)

#: Subcommand -> (module to import lazily, what it is). The module provides run(...) -> list[Result].
MODULES = {
    "gemm": ("aicc_kernels.bench.gemm", "the GEMM benchmark"),
    "conv": ("aicc_kernels.bench.conv", "the convolution benchmark"),
    "resnet50": ("aicc_kernels.bench.resnet50", "the ResNet-50 layer benchmark"),
}
# `allreduce` has no measurement module: cmd_allreduce drives bench/allreduce_support.py.

#: Which peak probes each subcommand needs (measured in the same run for its % of peak).
PEAK_KINDS = {"gemm": ("fp32", "bf16", "int8"), "conv": ("fp32", "bf16", "int8"), "resnet50": ("fp32", "bf16", "int8"),
              "allreduce": ("membw",)}

#: --dtype spellings mapped to each module's names (docs/BENCHMARKS.md: `aicc-bench gemm --dtype int8`).
_COMMON_DTYPES = {"fp32": "f32", "float32": "f32", "fp16": "f16", "float16": "f16", "half": "f16",
                  "bfloat16": "bf16"}
DTYPE_ALIASES = {
    "gemm": {"int8": ["u8s8", "s8s8"], "u8": ["u8s8"], "s8": ["s8s8"]},
    "conv": {"u8s8": ["int8"], "s8s8": ["int8"]},
    "resnet50": {"u8s8": ["int8"], "s8s8": ["int8"]},
}


def map_dtypes(command: str, names: Optional[List[str]]) -> Optional[List[str]]:
    if names is None:
        return None
    out: List[str] = []
    for name in names:
        name = _COMMON_DTYPES.get(name.lower(), name)
        for mapped in DTYPE_ALIASES.get(command, {}).get(name, [name]):
            if mapped not in out:
                out.append(mapped)
    return out


_COMMON_DEFAULTS = {"dtype": None, "sizes": None, "threads": None, "backend": None, "baselines": None,
                    "json": None, "csv": None, "plot": None, "min_efficiency": None, "quick": False,
                    "no_check": False, "peak_seconds": 0.15}


# ---------------------------------------------------------------------------------------
# Argument parsing
# ---------------------------------------------------------------------------------------

def _int_list(text: str, what: str) -> List[int]:
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            v = int(part)
        except ValueError:
            raise UsageError(f"{what}: expected comma-separated integers, got {text!r}") from None
        if v < 1:
            raise UsageError(f"{what}: expected integers >= 1, got {v}")
        out.append(v)
    if not out:
        raise UsageError(f"{what}: expected at least one integer, got {text!r}")
    return out


def parse_sizes(text: Optional[str]):
    """'256,512' -> [256, 512]; '64:1024' -> [64, 128, ..., 1024] (doubling, like nccl-tests
    -b/-e/-f 2); 'MxNxK' items -> (M, N, K) tuples. None -> None (the module's default)."""
    if text is None:
        return None
    sizes = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        try:
            if ":" in part:
                lo, hi = (int(x) for x in part.split(":"))
                if lo < 1 or hi < lo:
                    raise ValueError
                v = lo
                while v <= hi:
                    sizes.append(v)
                    v *= 2
            elif "x" in part:
                dims = tuple(int(x) for x in part.split("x"))
                if any(d < 1 for d in dims):
                    raise ValueError
                sizes.append(dims)
            else:
                v = int(part)
                if v < 1:
                    raise ValueError
                sizes.append(v)
        except ValueError:
            raise UsageError(f"--sizes: expected N, MxNxK or LO:HI items (positive), got {part!r}") from None
    if not sizes:
        raise UsageError(f"--sizes: expected at least one size, got {text!r}")
    return sizes


def _common(sub: bool) -> argparse.ArgumentParser:
    # Sub-parsers default to SUPPRESS so an option given before the subcommand is kept.
    d = argparse.SUPPRESS if sub else None
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("sweep")
    g.add_argument("--dtype", default=d, help="comma-separated dtypes, e.g. f32,f16,bf16,int8 (module default: all)")
    g.add_argument("--sizes", default=d, help="N,N,... | LO:HI (doubling) | MxNxK items")
    g.add_argument("--threads", default=d, help="comma-separated thread counts (default: 1..cores)")
    g.add_argument("--backend", default=d, help="backend to measure (default: cpu)")
    g.add_argument("--baselines", default=d,
                   help="comma-separated peers: numpy,torch,onnxruntime,gloo,mpi (default: numpy,torch,onnxruntime;"
                        " 'none' for none). Missing ones are reported as absent")
    g.add_argument("--quick", action="store_true", default=d, help="smaller sweep (CI)")
    g.add_argument("--no-check", action="store_true", default=d, help="skip the correctness column")
    g.add_argument("--peak-seconds", type=float, default=d, help="seconds per peak probe run (default 0.15)")
    o = p.add_argument_group("output")
    o.add_argument("--json", default=d, metavar="FILE", help="write the schema-versioned JSON document")
    o.add_argument("--csv", default=d, metavar="FILE", help="write one CSV row per measurement")
    o.add_argument("--plot", default=d, metavar="FILE.png", help="throughput vs size, one panel per op, peak as roofline")
    o.add_argument("--min-efficiency", type=float, default=d, metavar="PCT",
                   help="exit 3 when any of our rows is below PCT %% of the measured peak")
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aicc-bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     parents=[_common(sub=False)])
    parser.add_argument("--size", type=int, default=None, help="matrix size of the no-argument self-check (default 384)")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_ in (("gemm", "GEMM / QGEMM throughput sweep"), ("conv", "conv2d / qconv2d sweep"),
                        ("resnet50", "ResNet-50 conv layers"), ("allreduce", "allreduce algbw/busbw"),
                        ("peak", "measure this machine's peaks"),
                        ("cluster", "per-rank GEMM + simulated data-parallel step (run under mpirun/launcher)")):
        sp = subs.add_parser(name, help=help_, parents=[_common(sub=True)])
        if name == "peak":
            sp.add_argument("--seconds", type=float, default=0.25, help="seconds per probe run (default 0.25)")
            sp.add_argument("--repeats", type=int, default=3, help="timed runs per probe; the best is kept")
            sp.add_argument("--membw-mib", type=int, default=None, help="MiB per STREAM array (default 256)")
        if name == "resnet50":
            sp.add_argument("--train", action="store_true",
                            help="the training step (forward + backward of every conv and the FC through our "
                                 "kernels, via aicc_kernels.torch) against PyTorch eager; needs torch")
            sp.add_argument("--batches", default=None, help="comma-separated batch sizes (default 1,8; --train: 8,32)")
        if name == "allreduce":
            sp.add_argument("--ranks", default=None, help="comma-separated rank counts for the thread transport")
        if name == "cluster":
            sp.add_argument("--params", type=float, default=25.6e6, help="gradient elements (default 25.6e6, ResNet-50)")
            sp.add_argument("--compression", default="none,bf16,int8",
                            help="comma-separated allreduce compressions: none (fp32), fp16, bf16, int8")
            sp.add_argument("--gemm-size", type=int, default=None, help="per-rank GEMM size (default 1024, 512 with --quick)")
            sp.add_argument("--steps", type=int, default=5, help="timed simulated steps per compression")
            sp.add_argument("--kind", default="auto", help="communicator kind for ak.collective.init")
            sp.add_argument("--overlap", action="store_true",
                            help="also run the step with the gradient allreduce in buckets on a thread per rank, "
                                 "overlapped with the later GEMMs (DDP-style); reports the exposed communication")
            sp.add_argument("--buckets", type=int, default=None,
                            help="gradient buckets with --overlap (default 4: one per GEMM of the step)")
    return parser


def _finish_args(args) -> argparse.Namespace:
    for k, v in _COMMON_DEFAULTS.items():
        if not hasattr(args, k) or getattr(args, k) is None and v is not None:
            setattr(args, k, v)
    if args.min_efficiency is not None and not (0 <= args.min_efficiency <= 1000):
        raise UsageError(f"--min-efficiency: expected a percentage >= 0, got {args.min_efficiency}")
    if args.peak_seconds <= 0:
        raise UsageError(f"--peak-seconds: expected a positive duration, got {args.peak_seconds}")
    args.threads_list = _int_list(args.threads, "--threads") if args.threads else None
    args.sizes_list = parse_sizes(args.sizes)
    args.dtype_list = [d.strip() for d in args.dtype.split(",") if d.strip()] if args.dtype else None
    if args.dtype is not None and not args.dtype_list:
        raise UsageError(f"--dtype: expected comma-separated dtype names, got {args.dtype!r}")
    from . import baselines

    default_peers = {"allreduce": "gloo,mpi", "cluster": "mpi"}.get(args.command)
    args.baseline_list = baselines.parse(args.baselines if args.baselines is not None else default_peers)
    unknown = [b for b in args.baseline_list if b not in baselines.KNOWN]
    if unknown:
        raise UsageError(f"--baselines: expected names from {', '.join(sorted(baselines.KNOWN))}, got {', '.join(unknown)}")
    if args.plot is not None and not args.plot.lower().endswith(".png"):
        raise UsageError(f"--plot: expected a .png file name, got {args.plot!r}")
    if args.plot is not None and not _have_matplotlib():
        raise UsageError("--plot: needs matplotlib, which comes with the [bench] extra "
                         "(pip install 'aicc-kernels[bench]')")
    return args


def _have_matplotlib() -> bool:
    """Checked before any measurement, so a missing plotting library costs no benchmark run."""
    import importlib.util

    try:
        return importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):  # a None entry in sys.modules (how tests hide it) raises
        return False


# ---------------------------------------------------------------------------------------
# Running a measurement module
# ---------------------------------------------------------------------------------------

def load_module(command: str):
    """Imports the subcommand's module; Unavailable with a readable reason when it cannot be
    imported (e.g. its op missing from a partial build of the extension)."""
    modname, what = MODULES[command]
    try:
        return importlib.import_module(modname)
    except ModuleNotFoundError as e:
        if e.name == modname:
            raise Unavailable(f"{what} ({modname}) is not available in this build yet") from None
        raise Unavailable(f"{what} ({modname}) cannot be imported: {e}") from None
    except ImportError as e:
        raise Unavailable(f"{what} ({modname}) cannot be imported: {e}") from None


def _resnet50_train_module():
    """bench/resnet50_train.py, which runs the step through aicc_kernels.torch: Unavailable
    (with the extra to install) where torch is not installed."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise Unavailable("resnet50 --train runs the model in PyTorch: torch is not installed "
                          "(pip install 'aicc-kernels[torch]')")
    return importlib.import_module("aicc_kernels.bench.resnet50_train")


def _resnet50_from_conv(con):
    """Without a bench/resnet50.py, `resnet50` runs the ResNet-50 layers of bench/conv.py's
    layer set (its dense layers: depthwise is not in ResNet-50)."""
    from . import report

    try:
        conv = load_module("conv")
    except Unavailable:
        return None, {}
    layers = [l.name for l in getattr(conv, "LAYERS", ()) if not l.name.startswith("dw")]
    if not layers or "layers" not in inspect.signature(conv.run).parameters:
        return None, {}
    report.say(con, f"resnet50: the ResNet-50 layers of {conv.__name__} ({len(layers)} layers)")
    return conv, {"layers": layers}


def call_run(module, args, con, available_baselines: Sequence[str], extra_kwargs=None):
    """module.run(...) with the options its signature accepts; the others are reported."""
    run = getattr(module, "run", None)
    if run is None:
        raise Unavailable(f"{module.__name__} has no run() function")
    sizes = args.sizes_list
    if args.command == "gemm" and sizes:
        # --sizes says MxNxK; bench/gemm.run takes (M, K, N) tuples (benchmarks/gemm.py's order).
        sizes = [s if isinstance(s, int) else (s[0], s[2], s[1]) for s in sizes]
    wanted = {
        "sizes": sizes, "dtypes": map_dtypes(args.command, args.dtype_list),
        "threads": tuple(args.threads_list) if args.threads_list else None,
        "baselines": tuple(available_baselines), "check": not args.no_check, "quick": args.quick,
        "backend": args.backend,
    }
    params = inspect.signature(run).parameters
    takes_all = any(p.kind == p.VAR_KEYWORD for p in params.values())
    kwargs, ignored = dict(extra_kwargs or {}), []
    for k, v in wanted.items():
        if v is None:
            continue
        if takes_all or k in params:
            kwargs[k] = v
        elif k in ("sizes", "dtypes", "threads", "backend") or (k == "quick" and v):
            ignored.append(k)
    from . import report

    for k in ignored:
        report.say(con, f"note: {module.__name__}.run() takes no {k!r}; --{k.rstrip('s') if k == 'dtypes' else k} ignored",
                   "yellow")
    if takes_all or "progress" in params:
        with report.Progress(con, None, f"{args.command} sweep") as bar:
            kwargs["progress"] = lambda desc=None, *a, **kw: bar.step(str(desc) if desc else None)
            return list(run(**kwargs))
    if con is not None and con.is_terminal:
        with con.status(f"running {args.command} sweep ..."):
            return list(run(**kwargs))
    return list(run(**kwargs))


# ---------------------------------------------------------------------------------------
# Subcommands
# ---------------------------------------------------------------------------------------

def cmd_sweep(args, argv, con) -> int:
    from . import baselines, report

    op_for_baselines = {"conv": "conv2d"}.get(args.command, args.command)
    status = baselines.status(args.baseline_list, op_for_baselines)
    if args.command == "allreduce":
        return cmd_allreduce(args, argv, con, status)
    unavailable: List[dict] = []
    extra_kwargs = {}
    try:
        module = load_module(args.command)
        if args.command == "resnet50":
            if getattr(args, "batches", None):
                extra_kwargs["batches"] = _int_list(args.batches, "--batches")
            if getattr(args, "train", False):
                module = _resnet50_train_module()
    except Unavailable as e:
        module = None
        unavailable.append({"op": args.command, "reason": str(e)})
    if module is None and args.command == "resnet50":
        module, extra_kwargs = _resnet50_from_conv(con)
        if module is not None:
            unavailable.clear()
    if module is None:
        finish(con, args.command, argv, [], None, status, unavailable, args, f"aicc-bench {args.command}")
        return EXIT_UNAVAILABLE
    peak = measure_peak(con, PEAK_KINDS[args.command], args.threads_list, args.peak_seconds)
    available = [b for b in args.baseline_list if status[b]["available"]]
    try:
        results = call_run(module, args, con, available, extra_kwargs)
    except Exception as e:  # a failing module is reported with its message, not a traceback
        report_error(con, f"aicc-bench {args.command}: {module.__name__}.run() raised", e)
        return EXIT_ERROR
    rows = report.derive(results, peak, args.baseline_list)
    impls = {r.r.impl for r in rows}
    # A module may say why it skipped a peer (e.g. bench/gemm.py's `_absent`): keep its reason.
    said = getattr(module, "absent", None) or getattr(module, "_absent", None) or {}
    for b, s in status.items():
        if b in said and b not in impls:
            s["available"] = False
            s["reason"] = f"{module.__name__}: {said[b]}"
        # An installed peer the module did not measure is said so, not left as empty columns.
        s["measured"] = b in impls
        if s["available"] and b not in impls:
            s["available"] = False
            s["reason"] = f"installed, but {args.command} measured no {b} rows (the module does not compare with it)"
    return finish(con, args.command, argv, rows, peak, status, unavailable, args, f"aicc-bench {args.command}")


def cmd_allreduce(args, argv, con, status) -> int:
    """The allreduce sweep of this package: over the job's communicator when started by
    `python -m aicc_kernels.launch` (shm) or mpirun (mpi), else over in-process thread
    ranks (--ranks, default 2). Only rank 0 prints and writes files."""
    import aicc_kernels as ak

    from . import allreduce_support as ars
    from . import report

    kind = ak.collective.detect_kind()
    peers = [b for b in args.baseline_list if status[b]["available"] and b in ("mpi", "gloo")]
    for b in args.baseline_list:
        if status[b]["available"] and b not in ("mpi", "gloo"):
            status[b] = dict(status[b], available=False, reason="this allreduce sweep compares with gloo and mpi only")
    if kind in ("shm", "mpi"):
        comm = ak.collective.init(kind)
        rank = comm.rank
        peak = None
        comm.barrier()
        if rank == 0:
            peak = measure_peak(con, ("membw",), [min(comm.size, max(peak_default_threads()))], args.peak_seconds,
                                membw_mib=64)
        comm.barrier()
        rows, peer_status = ars.process_sweep(ak, comm, args.sizes_list, args.dtype_list, quick=args.quick,
                                              check=not args.no_check, peers=peers)
        if rank != 0:
            return EXIT_OK
    else:
        ranks = _int_list(args.ranks, "--ranks") if getattr(args, "ranks", None) else [2]
        peer_status = {p: "needs a multi-process job (python -m aicc_kernels.launch -n N or mpirun -n N)"
                       for p in peers}
        peak = measure_peak(con, ("membw",), sorted({min(r, max(peak_default_threads())) for r in ranks}),
                            args.peak_seconds, membw_mib=64)
        with report.Progress(con, None, "allreduce sweep") as bar:
            rows = ars.sweep(ak, ranks, args.sizes_list, args.dtype_list, quick=args.quick,
                             check=not args.no_check, progress=bar.step)
    for p, why in peer_status.items():
        status[p] = dict(status[p], available=False, reason=why)
    derived = report.derive(rows, peak, args.baseline_list)
    impls = {r.r.impl for r in derived}
    for b, s in status.items():
        s["measured"] = b in impls
    return finish(con, "allreduce", argv, derived, peak, status, [], args,
                  f"aicc-bench allreduce ({kind if kind in ('shm', 'mpi') else 'thread'} transport)")


def peak_default_threads():
    from . import peak as peak_mod

    return peak_mod.default_threads()


def cmd_peak(args, argv, con) -> int:
    from . import peak as peak_mod
    from . import report

    peak = measure_peak(con, ("fp32", "bf16", "int8", "membw"), args.threads_list, args.seconds, args.membw_mib)
    if peak is None:
        return EXIT_UNAVAILABLE
    body = []
    for t in peak["threads"]:
        share = peak_mod.cpu_share(peak, t)
        body.append([str(t), f"{peak['fp32_gflops'].get(t, 0):.1f}", f"{peak['bf16_gflops'].get(t, 0):.1f}",
                     f"{peak['int8_gops'].get(t, 0):.1f}",
                     f"{peak['copy_gbs'].get(t, 0):.1f}", f"{peak['triad_gbs'].get(t, 0):.1f}",
                     "-" if share is None else f"{100 * share:.0f}%"])
    int8_label = {"avx512vnni": "INT8 vpdpbusd GOPS", "avx2": "INT8 vpmaddwd GOPS"}.get(peak.get("int8_path"),
                                                                                      "INT8 GOPS")
    report._table(con, f"aicc-bench peak (f32 path {peak.get('path')}, bf16 path {peak.get('bf16_path')}, "
                       f"INT8 path {peak.get('int8_path')}, STREAM arrays {peak['membw_mib']} MiB x3, best of 3)",
                  ["threads", "f32 FMA GFLOPS", "bf16 GFLOPS", int8_label, "copy GB/s", "triad GB/s", "CPU share"],
                  body,
                  right_from=0)
    report.say(con, "CPU share: CPU time the probe threads got / (threads x wall time), lowest probe; below ~95% "
                    "other processes held the cores and the peaks read low")
    gpu = peak["gpu"]
    if gpu.get("present"):
        for d in gpu["devices"]:
            clock = f"{d['clock_mhz']:.0f} MHz, " if d.get("clock_mhz") else ""
            report.say(con, f"GPU {d['index']}: {d['name']} sm_{d['compute_capability']} {d['multiprocessors']} SMs "
                            f"{clock}{d['memory_gib']:.1f} GiB")
    else:
        report.say(con, f"GPU: absent ({gpu.get('reason')})")
    rows = report.derive(peak["rows"], peak, [])
    args.baseline_list = []
    code = EXIT_OK
    if args.json:
        report.write_json(args.json, report.document("peak", argv, rows, peak, {}, [], None, code))
        report.say(con, f"wrote {args.json}")
    if args.csv:
        report.write_csv(args.csv, rows, [])
        report.say(con, f"wrote {args.csv}")
    if args.plot:
        _plot_peak(args.plot, peak)
        report.say(con, f"wrote {args.plot}")
    return code


def _plot_peak(path: str, peak: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .report import _ensure_dir

    t = peak["threads"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    axes[0].plot(t, [peak["fp32_gflops"][x] for x in t], "-o", label="f32 FMA GFLOPS")
    axes[0].plot(t, [peak["int8_gops"][x] for x in t], "-s", label=f"INT8 GOPS ({peak.get('int8_path')})")
    axes[0].set_title("compute peak")
    axes[1].plot(t, [peak["copy_gbs"][x] for x in t], "-o", label="copy GB/s")
    axes[1].plot(t, [peak["triad_gbs"][x] for x in t], "-s", label="triad GB/s")
    axes[1].set_title("memory bandwidth")
    for ax in axes:
        ax.set_xlabel("threads")
        ax.set_xticks(t)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    _ensure_dir(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def cmd_selfcheck(args, argv, con) -> int:
    import numpy as np

    import aicc_kernels as ak

    from . import report
    from .selfcheck import available_cases

    threads = ak.get_num_threads()
    size = args.size or (256 if args.quick else 384)
    if size < 1:
        raise UsageError(f"--size: expected a positive integer, got {size}")
    report.say(con, f"aicc_kernels {ak.__version__}: isa={ak.config().get('isa')} threads={threads} "
                    f"cpu={ak.config().get('cpu', {}).get('brand', '?')}")
    peak = measure_peak(con, ("fp32", "bf16", "int8", "membw"), [threads], args.peak_seconds, membw_mib=64)
    rng = np.random.default_rng(0)
    cases, missing = available_cases(ak, rng, size, threads)
    results, errors = [], []
    with report.Progress(con, len(cases), "self-check") as bar:
        for op, dtype, shape, run in cases:
            bar.describe(f"{op} {dtype}")
            try:
                results.append(run())
            except Exception as e:  # a kernel that raises is a failure of the self-check, reported, not a crash
                errors.append({"op": op, "dtype": dtype, "shape": shape, "error": f"{type(e).__name__}: {e}"})
            bar.step()
    rows = report.derive(results, peak, [])
    unavailable = [{"op": op, "reason": reason} for op, reason in missing]
    args.baseline_list = []
    _summary_table(con, rows, errors, unavailable, peak, threads)
    code = finish_files_only(con, "selfcheck", argv, rows, peak, unavailable, args,
                             extra={"errors": errors})
    bad = [r for r in rows if r.r.wrong]
    if bad or errors:
        report.say(con, f"self-check FAILED: {len(bad)} kernel(s) disagree with the reference, {len(errors)} raised",
                   "bold red")
        return EXIT_MISMATCH
    report.say(con, f"self-check passed: {len(rows)} kernel/dtype combinations match the reference", "bold green")
    return code


def _summary_table(con, rows, errors, unavailable, peak, threads) -> None:
    from . import report

    body = []
    for row in rows:
        r = row.r
        value, unit = report.display_throughput(r)
        body.append([r.op, r.dtype, r.shape, str(r.threads), report._time(r.seconds), f"{value:.4g} {unit}",
                     report._fmt(row.pct_of_peak, ".1f"), str(r.wrong), "ok" if not r.wrong else "MISMATCH"])
    for e in errors:
        body.append([e["op"], e["dtype"], e["shape"], "-", "-", "-", "-", "-", f"ERROR {e['error'][:60]}"])
    for u in unavailable:
        body.append([u["op"], "-", "-", "-", "-", "-", "-", "-", "not in this build"])
    title = "aicc-bench self-check"
    if peak:
        title += (f" (peak at {threads} thr: f32 {peak['fp32_gflops'].get(threads, 0):.0f} GFLOPS, "
                  f"INT8 {peak['int8_gops'].get(threads, 0):.0f} GOPS, copy {peak['copy_gbs'].get(threads, 0):.1f} GB/s)")
    report._table(con, title, ["op", "dtype", "shape", "thr", "time", "throughput", "%peak", "#wrong", "status"], body,
                  right_from=3)
    for u in unavailable:
        report.say(con, f"{u['op']}: {u['reason']}", "yellow")


def finish_files_only(con, command, argv, rows, peak, unavailable, args, extra=None) -> int:
    from . import report

    gate = report.check_min_efficiency(rows, args.min_efficiency)
    code = EXIT_OK
    if gate is not None and gate["failed"]:
        for f in gate["failed"]:
            report.say(con, f"below --min-efficiency {gate['threshold_pct']:g}%: {f['op']} {f['dtype']} {f['shape']} "
                            f"at {f['pct_of_peak']:.1f}% of peak", "bold red")
        code = EXIT_BELOW_MIN
    if any(r.r.wrong for r in rows):
        code = EXIT_MISMATCH
    if args.json:
        report.write_json(args.json, report.document(command, argv, rows, peak, {}, unavailable, gate, code, extra))
        report.say(con, f"wrote {args.json}")
    if args.csv:
        report.write_csv(args.csv, rows, [])
        report.say(con, f"wrote {args.csv}")
    if args.plot:
        report.write_plot(args.plot, rows, peak)
        report.say(con, f"wrote {args.plot}")
    return code


def cmd_cluster(args, argv, con) -> int:
    from .cluster import run_cluster

    return run_cluster(args, argv, con)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: --help (0) or a usage error (2)
        return int(e.code or 0)
    from . import report

    con = report.console()
    try:
        args = _finish_args(args)
        if args.command is None:
            args.command = "selfcheck"
            return cmd_selfcheck(args, argv, con)
        if args.command == "peak":
            return cmd_peak(args, argv, con)
        if args.command == "cluster":
            return cmd_cluster(args, argv, con)
        return cmd_sweep(args, argv, con)
    except UsageError as e:
        print(f"aicc-bench: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except Unavailable as e:
        report.say(con, f"aicc-bench {args.command}: {e}", "bold yellow")
        return EXIT_UNAVAILABLE


if __name__ == "__main__":
    sys.exit(main())
