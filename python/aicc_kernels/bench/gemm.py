"""GEMM throughput: ours against the incumbents, measured in the same run.

`run()` returns Result rows (aicc_kernels.bench.record); benchmarks/gemm.py and the
aicc-bench CLI print and store them. Per (shape, dtype, threads):

    aicc         ak.gemm (f32, f16, bf16; output in the input dtype) and ak.qgemm (u8s8, s8s8 -> s32)
    numpy        NumPy's BLAS (OpenBLAS) f32 matmul, its threads limited to the same count; on a
                 CPU with AVX-512 where NumPy's OpenBLAS picked a kernel without it (it does on
                 AMD Zen 4/5), also OpenBLAS with OPENBLAS_CORETYPE=SkylakeX, timed in a child
                 process of this run (the core type is fixed when OpenBLAS loads)
    torch        torch.mm f32 (MKL), F.linear f16/bf16 (oneDNN: vdpbf16ps / AMX where the CPU
                 has them), dynamically quantized INT8 nn.Linear (fbgemm; quantize_dynamic, its
                 time includes quantizing the activations)
    onnxruntime  MatMulInteger u8 x s8 -> s32 (a model built in memory, no onnx package needed)

Inputs: standard normal floats; full-range integers (u8 0..255, s8 -128..127), the inputs on
which int16-saturating kernels go wrong. `wrong` counts output elements (over a sample of up
to 64 rows) outside the tolerance of aicc_kernels.testing.tolerance (floats) or not equal to
the exact result (INT8). A peer that is not installed is reported once, as absent, in
`absent_peers()`; its rows are simply missing.

FLOPs are 2*M*N*K for every dtype (INT8 as GOPS). `extra["pct_peak"]` is the float
throughput as a % of the f32 FMA peak measured in the same run with the same threads.
"""

from __future__ import annotations

import statistics
import subprocess
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

import aicc_kernels as ak
from aicc_kernels import _dtypes
from aicc_kernels.bench import plugin
from aicc_kernels.bench.record import Result, openblas_setter, bench_threads, make_result, time_call
from aicc_kernels.testing.tolerance import check_gemm

SQUARE = (128, 256, 512, 1024, 2048, 4096)
RECTANGULAR = ((128, 4096, 4096), (4096, 4096, 1024))  # (M, K, N)
FLOAT_DTYPES = ("f32", "f16", "bf16")
INT_DTYPES = ("u8s8", "s8s8")
ALL_DTYPES = FLOAT_DTYPES + INT_DTYPES
CHECK_ROWS = 64

_absent: Dict[str, str] = {}


def absent_peers() -> Dict[str, str]:
    """Peers that could not be measured in the last run, with the reason."""
    return dict(_absent)


def default_shapes(quick: bool = False) -> List[Tuple[int, int, int]]:
    if quick:
        return [(128, 128, 128), (512, 512, 512)]
    return [(n, n, n) for n in SQUARE] + list(RECTANGULAR)


def _shape_name(m, k, n) -> str:
    return f"M=N=K={m}" if m == n == k else f"M={m},K={k},N={n}"


# ---------------------------------------------------------------------------------------
# Thread control of the peers
# ---------------------------------------------------------------------------------------

def _threads(n: int):
    return bench_threads(n, _torch())


def _torch():
    try:
        import torch
        return torch
    except ImportError as exc:
        _absent["torch"] = f"not installed ({exc})"
        return None


# ---------------------------------------------------------------------------------------
# onnxruntime MatMulInteger, from a model serialized here (protobuf wire format)
# ---------------------------------------------------------------------------------------

def _varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _field(num: int, value) -> bytes:
    if isinstance(value, int):
        return _varint(num << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint((num << 3) | 2) + _varint(len(data)) + data


def _value_info(name: str, elem_type: int, shape: Sequence[int]) -> bytes:
    dims = b"".join(_field(1, _field(1, d)) for d in shape)
    tensor = _field(1, elem_type) + _field(2, dims)
    return _field(1, name) + _field(2, _field(1, tensor))


def matmul_integer_model(m: int, k: int, n: int, a_dtype: str = "u8") -> bytes:
    """An ONNX model: Y[s32 m x n] = MatMulInteger(A[u8|s8 m x k], B[s8 k x n])."""
    elem = {"u8": 2, "s8": 3}[a_dtype]
    node = _field(1, "A") + _field(1, "B") + _field(2, "Y") + _field(3, "mm") + _field(4, "MatMulInteger")
    graph = (_field(1, node) + _field(2, "g") + _field(11, _value_info("A", elem, (m, k)))
             + _field(11, _value_info("B", 3, (k, n))) + _field(12, _value_info("Y", 6, (m, n))))
    opset = _field(1, "") + _field(2, 13)
    return _field(1, 8) + _field(8, opset) + _field(7, graph)


def _ort_session(model: bytes, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


# ---------------------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------------------

_CLOCK = {"name": "wall"}


# Long enough for libgomp's and OpenBLAS's spin-waits to give up their cores.
QUIESCE_SECONDS = 0.3


def _time_call(fn, **timing):
    """record.time_call, or with clock="cpu" the same loop timed with process CPU time: on a
    shared machine (other jobs holding the cores) the CPU time of a single-threaded call is
    what the call costs, while wall time also counts the time it waited for a core. Only
    meaningful with one thread (CPU time adds up every thread, spinning ones included).

    Each block starts after a short pause: the previous implementation's worker threads
    (OpenBLAS, torch's OpenMP) keep spinning for a while after their last call, and on a
    2-core machine they would hold the cores of the implementation timed next (measured:
    our 2-thread f16 GEMM at 512^3 read 72 GFLOPS right after torch's F.linear, 269 alone)."""
    import time as _time

    _time.sleep(QUIESCE_SECONDS)
    if _CLOCK["name"] == "wall":
        return time_call(fn, **timing)
    import time

    repeats, warmup, min_seconds = timing.get("repeats", 7), timing.get("warmup", 2), timing.get("min_seconds", 0.0)
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        calls = 0
        t0 = time.process_time()
        while True:
            fn()
            calls += 1
            elapsed = time.process_time() - t0
            if elapsed >= min_seconds:
                break
        samples.append(elapsed / calls)
    return samples


def _timing(work: float, quick: bool) -> dict:
    if work >= 2e10:
        return dict(repeats=3, warmup=1)
    if work >= 1e9:
        return dict(repeats=5 if not quick else 3, warmup=1)
    return dict(repeats=7 if not quick else 5, warmup=2, min_seconds=0.02)


_CHILD_TIMING = r"""
import json, os, sys, time
import numpy as np
m, k, n, repeats, warmup, min_seconds = (float(x) for x in sys.argv[1:7])
m, k, n, repeats, warmup = int(m), int(k), int(n), int(repeats), int(warmup)
rng = np.random.default_rng(0)
a = rng.standard_normal((m, k), dtype=np.float32)
b = rng.standard_normal((k, n), dtype=np.float32)
o = np.empty((m, n), np.float32)
for _ in range(warmup):
    np.matmul(a, b, out=o)
samples = []
for _ in range(repeats):
    calls, t0 = 0, time.perf_counter()
    while True:
        np.matmul(a, b, out=o)
        calls += 1
        if time.perf_counter() - t0 >= min_seconds:
            break
    samples.append((time.perf_counter() - t0) / calls)
core = None
try:
    from threadpoolctl import threadpool_info
    core = next((i.get("architecture") for i in threadpool_info() if i.get("internal_api") == "openblas"), None)
except Exception:
    pass
print(json.dumps({"samples": samples, "core": core}))
"""


def openblas_core() -> Optional[str]:
    """The kernel family NumPy's OpenBLAS picked in this process (threadpoolctl), or None."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    return next((i.get("architecture") for i in threadpool_info() if i.get("internal_api") == "openblas"), None)


def _needs_skylakex_peer() -> bool:
    """AVX-512 CPU, but NumPy's OpenBLAS runs a kernel family without it (Haswell/Zen)."""
    core = openblas_core()
    if core is None or "skylake" in core.lower() or "cooperlake" in core.lower() or "sapphire" in core.lower():
        return False
    cpu = (ak.config().get("cpu") or {})
    return bool(cpu.get("avx512f"))


def _openblas_skylakex_samples(m, k, n, threads, timing):
    """np.matmul f32 timed in a child process whose OpenBLAS uses its AVX-512 (SkylakeX) kernels."""
    import json
    import os
    import sys

    env = {key: v for key, v in os.environ.items() if key not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env.update(OPENBLAS_CORETYPE="SkylakeX", OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    args = [str(m), str(k), str(n), str(timing.get("repeats", 7)), str(timing.get("warmup", 2)),
            str(timing.get("min_seconds", 0.0))]
    import time as _time

    _time.sleep(QUIESCE_SECONDS)
    proc = subprocess.run([sys.executable, "-c", _CHILD_TIMING] + args, env=env, capture_output=True, text=True,
                          timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "child failed")
    doc = json.loads(proc.stdout)
    return doc["samples"], doc["core"]


def _kernel(family: str) -> Optional[str]:
    return ak._config.kernels().get(family)


def _float_inputs(rng, m, k, n, dtype):
    a = rng.standard_normal((m, k), dtype=np.float32).astype(dtype)
    b = rng.standard_normal((k, n), dtype=np.float32).astype(dtype)
    return a, b


def _wrong_float(out, a, b, rows) -> int:
    out = np.asarray(out)[:rows]
    ref = ak.reference.gemm(a[:rows], b, out_dtype=out.dtype)
    mismatch = check_gemm(out, ref, a[:rows], b)
    return 0 if mismatch is None else mismatch.count


def _exact_int(a, b, rows) -> np.ndarray:
    # Products are at most 255 * 128 and K <= 2^17 here, so float64 sums are exact.
    return (a[:rows].astype(np.float64) @ b.astype(np.float64)).astype(np.int64)


def _wrong_int(out, exact, rows) -> int:
    return int(np.count_nonzero(np.asarray(out)[:rows].astype(np.int64) != exact))


def _row(op, impl, dtype, shape, threads, samples, work, unit, wrong, peak, **extra) -> Result:
    r = make_result(op, impl, dtype, shape, threads, samples, work, unit, wrong, **extra)
    if peak and unit == "GFLOPS":
        r.extra["pct_peak"] = round(100.0 * r.throughput / peak, 1)
        r.extra["peak_gflops"] = round(peak, 1)
    return r


def peak_gflops(threads: int, seconds: float = 0.3) -> Optional[float]:
    """The f32 FMA peak at `threads` threads, from the aicc-bench peak probes (same run)."""
    from . import peak

    try:
        table = peak.measure(threads=[threads], seconds=seconds, kinds=("fp32",))["fp32_gflops"]
    except ImportError:  # the C++ extension is not built
        return None
    return float(table[threads])


def _bench_float(rng, m, k, n, dtype_name, t, baselines, check, quick, peak, plugin_backend=None) -> List[Result]:
    dtype = {"f32": np.float32, "f16": np.float16, "bf16": _dtypes.bfloat16}[dtype_name]
    a, b = _float_inputs(rng, m, k, n, dtype)
    work = 2.0 * m * n * k
    shape = _shape_name(m, k, n)
    rows = min(m, CHECK_ROWS)
    timing = _timing(work, quick)
    results = []

    out = np.empty((m, n), dtype)
    samples = _time_call(lambda: ak.gemm(a, b, out=out), **timing)
    wrong = _wrong_float(out, a, b, rows) if check else None
    results.append(_row("gemm", "aicc", dtype_name, shape, t, samples, work, "GFLOPS", wrong, peak,
                        isa=ak.config().get("isa"), kernel=_kernel(f"{dtype_name}_gemm")))
    if plugin_backend is not None:
        results += plugin.row(plugin_backend, "gemm", (dtype_name,) * 3, ak.gemm, {"a": a, "b": b}, (m, n), dtype,
                              dtype_label=dtype_name, shape=shape, threads=t, work=work, unit="GFLOPS",
                              ours=results[0], timing=timing)

    if "numpy" in baselines and dtype_name == "f32":
        o = np.empty((m, n), np.float32)
        samples = _time_call(lambda: np.matmul(a, b, out=o), **timing)
        wrong = _wrong_float(o, a, b, rows) if check else None
        results.append(_row("gemm", "numpy", dtype_name, shape, t, samples, work, "GFLOPS", wrong, peak,
                            call=f"np.matmul OpenBLAS {openblas_core() or '?'}"))
        if _needs_skylakex_peer() and _CLOCK["name"] == "wall":
            try:
                samples, core = _openblas_skylakex_samples(m, k, n, t, timing)
                results.append(_row("gemm", "openblas-skx", dtype_name, shape, t, samples, work, "GFLOPS", None,
                                    peak, call=f"np.matmul OpenBLAS {core or 'SkylakeX'} (OPENBLAS_CORETYPE)"))
            except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as exc:
                _absent["openblas-skx"] = f"{type(exc).__name__}: {exc}"

    torch = _torch() if "torch" in baselines else None
    if torch is not None:
        if dtype_name == "f32":
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            to = torch.empty((m, n), dtype=torch.float32)
            samples = _time_call(lambda: torch.mm(ta, tb, out=to), **timing)
            wrong = _wrong_float(to.numpy(), a, b, rows) if check else None
            results.append(_row("gemm", "torch", dtype_name, shape, t, samples, work, "GFLOPS", wrong, peak,
                                call="MKL torch.mm"))
        else:
            tdt = torch.float16 if dtype_name == "f16" else torch.bfloat16
            ta = torch.from_numpy(a.astype(np.float32)).to(tdt)
            w = torch.from_numpy(np.ascontiguousarray(b.T).astype(np.float32)).to(tdt)  # [N, K] weights
            f = torch.nn.functional.linear
            samples = _time_call(lambda: f(ta, w), **timing)
            wrong = None
            if check:
                got = f(ta[:rows], w).float().numpy().astype(dtype)
                wrong = _wrong_float(got, a, b, rows)
            results.append(_row("gemm", "torch", dtype_name, shape, t, samples, work, "GFLOPS", wrong, peak,
                                call="oneDNN F.linear"))
    return results


def _bench_int(rng, m, k, n, dtype_name, t, baselines, check, quick, plugin_backend=None) -> List[Result]:
    a_dtype = np.uint8 if dtype_name == "u8s8" else np.int8
    info = np.iinfo(a_dtype)
    a = rng.integers(info.min, int(info.max) + 1, (m, k)).astype(a_dtype)
    b = rng.integers(-128, 128, (k, n)).astype(np.int8)
    work = 2.0 * m * n * k
    shape = _shape_name(m, k, n)
    rows = min(m, CHECK_ROWS)
    timing = _timing(work, quick)
    label = dtype_name + "s32"
    exact = _exact_int(a, b, rows) if check else None
    results = []

    out = np.empty((m, n), np.int32)
    samples = _time_call(lambda: ak.qgemm(a, b, out=out), **timing)
    results.append(_row("qgemm", "aicc", label, shape, t, samples, work, "GOPS",
                        _wrong_int(out, exact, rows) if check else None, None, isa=ak.config().get("isa"),
                        kernel=_kernel("int8_gemm")))
    if plugin_backend is not None:
        combo = ("u8" if a_dtype == np.uint8 else "s8", "s8", "s32")
        results += plugin.row(plugin_backend, "qgemm", combo, ak.qgemm, {"a": a, "b": b}, (m, n), np.int32,
                              dtype_label=label, shape=shape, threads=t, work=work, unit="GOPS", ours=results[0],
                              timing=timing)

    if "onnxruntime" in baselines:
        try:
            sess = _ort_session(matmul_integer_model(m, k, n, "u8" if a_dtype == np.uint8 else "s8"), t)
        except ImportError as exc:
            _absent["onnxruntime"] = f"not installed ({exc})"
            sess = None
        except Exception as exc:  # this onnxruntime build has no kernel for the type pair
            _absent[f"onnxruntime {label}"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
            sess = None
        if sess is not None:
            feeds = {"A": a, "B": b}
            samples = _time_call(lambda: sess.run(None, feeds), **timing)
            wrong = None
            if check:
                got = sess.run(None, feeds)[0]
                wrong = _wrong_int(got, exact, rows)
            results.append(_row("qgemm", "onnxruntime", label, shape, t, samples, work, "GOPS", wrong, None,
                                call="MLAS MatMulInteger"))

    torch = _torch() if "torch" in baselines else None
    if torch is not None and dtype_name == "u8s8":
        # Dynamic quantization: f32 activations quantized to u8 per call, s8 weights, f32 out;
        # the nearest PyTorch path to a u8 x s8 GEMM (its results are not comparable bit-wise).
        lin = torch.nn.Linear(k, n, bias=False)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(b.T.astype(np.float32)))
        qlin = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(lin), {torch.nn.Linear},
                                                      dtype=torch.qint8)
        x = torch.from_numpy(a.astype(np.float32))
        with torch.no_grad():
            samples = _time_call(lambda: qlin(x), **timing)
        results.append(_row("qgemm", "torch", label, shape, t, samples, work, "GOPS", None, None,
                            call="fbgemm quantize_dynamic Linear (f32 in/out)"))
    return results


def _normalize_shapes(sizes) -> List[Tuple[int, int, int]]:
    shapes = []
    for s in sizes:
        if isinstance(s, int):
            shapes.append((s, s, s))
        else:
            m, k, n = s
            shapes.append((int(m), int(k), int(n)))
    return shapes


def run(sizes=None, dtypes=None, threads=(1, 2), baselines=("numpy", "torch", "onnxruntime"),
        check=True, quick=False, clock="wall", backend=None) -> List[Result]:
    """Measures every (shape, dtype, thread count). sizes: ints (square) or (M, K, N) tuples.
    clock: "wall" (default) or "cpu" (process CPU time; single-threaded runs only).
    backend: a plugin backend's name: its rows (impl = the name) are measured beside the
    built-in kernels' ("aicc"), with the ratio in extra["vs_cpu"] (bench/plugin.py)."""
    plugin_backend = plugin.resolve(backend)
    plugin.notes.clear()
    if clock not in ("wall", "cpu"):
        raise ValueError(f"clock: expected 'wall' or 'cpu', got {clock!r}")
    if clock == "cpu" and any(t != 1 for t in threads):
        raise ValueError(f"clock: 'cpu' needs threads=(1,), got threads={tuple(threads)}")
    _CLOCK["name"] = clock
    _absent.clear()
    shapes = default_shapes(quick) if sizes is None else _normalize_shapes(sizes)
    dtypes = tuple(dtypes) if dtypes else ALL_DTYPES
    for d in dtypes:
        if d not in ALL_DTYPES:
            raise ValueError(f"dtypes: expected names from {ALL_DTYPES}, got {d!r}")
    baselines = tuple(baselines or ())
    if "onnxruntime" in baselines:
        try:
            import onnxruntime  # noqa: F401
        except ImportError as exc:
            _absent["onnxruntime"] = f"not installed ({exc})"
    if "torch" in baselines:
        _torch()
    if "numpy" in baselines and openblas_setter() is None:
        _absent["numpy thread limit"] = "no threadpoolctl and no OpenBLAS setter found: NumPy uses its own thread count"

    rng = np.random.default_rng(0)
    results: List[Result] = []
    for t in threads:
        with _threads(t):
            peak = peak_gflops(t)
            if peak:
                results.append(make_result("peak", "aicc", "f32", "fma", t, [1.0], peak * 1e9, "GFLOPS",
                                           isa=ak.config().get("isa")))
            for (m, k, n) in shapes:
                for d in dtypes:
                    if d in FLOAT_DTYPES:
                        results += _bench_float(rng, m, k, n, d, t, baselines, check, quick, peak, plugin_backend)
                    else:
                        results += _bench_int(rng, m, k, n, d, t, baselines, check, quick, plugin_backend)
    _absent.update(plugin.notes)
    return results


def format_table(results: Iterable[Result]) -> str:
    """One line per (threads, shape, dtype): ours and each peer, with ours/peer ratios."""
    results = list(results)
    lines = []
    peaks = {r.threads: r.throughput for r in results if r.op == "peak"}
    for t, p in sorted(peaks.items()):
        lines.append(f"f32 FMA peak, {t} thread(s): {p:.1f} GFLOPS")
    groups: Dict[tuple, List[Result]] = {}
    for r in results:
        if r.op != "peak":
            groups.setdefault((r.threads, r.shape, r.dtype), []).append(r)
    header = f"{'thr':>3} {'shape':<22}{'dtype':<9}{'aicc':>9}{'%peak':>7}  peers (throughput, aicc/peer, wrong)"
    lines.append(header)
    lines.append("-" * len(header))
    for (t, shape, dtype), rows in groups.items():
        ours = next((r for r in rows if r.impl == "aicc"), None)
        if ours is None:
            continue
        pct = ours.extra.get("pct_peak")
        peers = []
        for r in rows:
            if r.impl == "aicc":
                continue
            call = r.extra.get("call")
            name = r.impl + (f"[{call.split()[0]}]" if call else "")
            peers.append(f"{name} {r.throughput:.1f} ({ours.throughput / r.throughput:.2f}x"
                         f"{'' if r.wrong is None else f', wrong {r.wrong}'})")
        wrong = "" if not ours.wrong else f" WRONG {ours.wrong}"
        lines.append(f"{t:>3} {shape:<22}{dtype:<9}{ours.throughput:>9.1f}{'' if pct is None else f'{pct:>6.0f}%':>7}  "
                     + "; ".join(peers) + wrong)
    for name, why in absent_peers().items():
        lines.append(f"absent: {name}: {why}")
    units = sorted({r.unit for r in results})
    lines.append(f"units: {', '.join(units)} (GFLOPS for floats, GOPS for INT8; 2*M*N*K per call; median times)")
    return "\n".join(lines)


def summary(results: Iterable[Result]) -> Dict[str, float]:
    """Median ratio ours/peer per (dtype, peer), over all shapes and threads."""
    ratios: Dict[str, List[float]] = {}
    results = list(results)
    index = {(r.threads, r.shape, r.dtype, r.impl): r for r in results}
    for r in results:
        if r.impl == "aicc" or r.op == "peak":
            continue
        ours = index.get((r.threads, r.shape, r.dtype, "aicc"))
        if ours:
            ratios.setdefault(f"{r.dtype} vs {r.impl}", []).append(ours.throughput / r.throughput)
    return {k: statistics.median(v) for k, v in ratios.items()}
