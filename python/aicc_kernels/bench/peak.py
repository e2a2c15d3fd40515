"""`aicc-bench peak`: this machine's limits, measured by our own microbenchmarks.

* f32 FMA peak (GFLOPS): AVX2+FMA loop with 12 independent accumulators (portable C++
  loop on machines without AVX2, or with AICC_ISA=portable).
* INT8 multiply-add peak (GOPS): the exact route our INT8 GEMM takes here, counted like
  2*M*N*K (one multiply-add = 2 ops): AVX-512 VNNI vpdpbusd where the CPU has it (the
  u8s8_12x32_avx512vnni kernel), else AVX2 vpmaddwd (int16 pairs -> int32).
* Memory bandwidth (GB/s): STREAM copy and triad over arrays much larger than the caches.
* GPU: device properties through CuPy when it is importable and sees a device.

Each figure is measured per thread count (1..available cores) through aicc's thread pool,
and is the best of `repeats` runs (a peak is an upper bound: the best run is the least
disturbed one). Every "% of peak" column of aicc-bench divides by these, measured in the
same run.
"""

from __future__ import annotations

import os
from typing import Dict, Iterable, List, Optional

from .record import Result, make_result

#: Which peak a row's throughput is compared with, by op. f32 and f16 (converted to f32 while
#: packing) rows use the f32 FMA peak; bf16 rows the bf16 peak, which is the vdpbf16ps rate where
#: the bf16 GEMM runs on a bf16 dot-product kernel and the f32 FMA rate where it does not.
_FLOAT_OPS = {"gemm", "matmul", "conv2d", "conv2d_backward_data", "conv2d_backward_weight", "resnet50"}
_INT8_OPS = {"qgemm", "qconv2d"}
_BANDWIDTH_OPS = {"allreduce", "reduce_scatter", "all_gather", "broadcast"}

DEFAULT_MEMBW_MIB = 256


def _ext():
    try:
        from .. import _aicc_cpu
    except ImportError as e:  # pragma: no cover - only without a build
        raise RuntimeError(f"the C++ extension is not built ({e}); peak probes need it") from None
    if not hasattr(_aicc_cpu, "peak_probe_fp32_fma"):
        raise RuntimeError("this build of _aicc_cpu has no peak probes (rebuild the extension)")
    return _aicc_cpu


def default_threads() -> List[int]:
    from .. import _config

    ext = _config._ext
    cores = ext.available_cores() if ext is not None else (os.cpu_count() or 1)
    return list(range(1, max(1, cores) + 1))


def gpu_properties() -> Dict[str, object]:
    """Device properties through CuPy; {'present': False, 'reason': ...} when there is none."""
    try:
        import cupy  # noqa: F401
    except Exception as e:  # ImportError, or a CUDA runtime that fails to load
        reason = f"cupy not importable ({type(e).__name__}: {e})"
        if os.path.exists("/dev/nvidia0"):  # a GPU node without CuPy: ask torch, if it has CUDA
            props = _torch_gpu_properties()
            if props is not None:
                return props
        return {"present": False, "reason": reason}
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:
        return {"present": False, "reason": f"no CUDA device ({e})"}
    if count == 0:
        return {"present": False, "reason": "no CUDA device"}
    devices = []
    for i in range(count):
        p = cupy.cuda.runtime.getDeviceProperties(i)
        name = p.get("name", b"")
        name = name.decode() if isinstance(name, bytes) else str(name)
        clock_khz = p.get("clockRate", 0)
        sms = p.get("multiProcessorCount", 0)
        mem_clock_khz = p.get("memoryClockRate", 0)
        bus_bits = p.get("memoryBusWidth", 0)
        devices.append({
            "index": i,
            "name": name,
            "compute_capability": f"{p.get('major', 0)}.{p.get('minor', 0)}",
            "multiprocessors": sms,
            "clock_mhz": clock_khz / 1e3,
            "memory_gib": p.get("totalGlobalMem", 0) / 2**30,
            "memory_clock_mhz": mem_clock_khz / 1e3,
            "memory_bus_bits": bus_bits,
            # DDR: two transfers per clock. A datasheet-style figure, labelled as such.
            "memory_bandwidth_gbs_theoretical": 2 * mem_clock_khz * 1e3 * bus_bits / 8 / 1e9 if mem_clock_khz else None,
        })
    return {"present": True, "count": count, "devices": devices}


KINDS = ("fp32", "bf16", "int8", "membw")


def _torch_gpu_properties() -> Optional[Dict[str, object]]:
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        devices = []
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            devices.append({"index": i, "name": p.name, "compute_capability": f"{p.major}.{p.minor}",
                            "multiprocessors": p.multi_processor_count, "clock_mhz": None,
                            "memory_gib": p.total_memory / 2**30, "source": "torch.cuda"})
        return {"present": True, "count": len(devices), "devices": devices}
    except Exception:
        return None


def measure(threads: Optional[Iterable[int]] = None, seconds: float = 0.2, repeats: int = 3,
            membw_mib: int = DEFAULT_MEMBW_MIB, progress=None, kinds: Iterable[str] = KINDS) -> Dict[str, object]:
    """Measures every peak for each thread count; returns a dict (see `results()` for rows).

    Keys: 'threads' (list), 'fp32_gflops', 'bf16_gflops', 'int8_gops', 'copy_gbs', 'triad_gbs' (each
    {threads: best value}), 'path' / 'bf16_path' / 'int8_path' (code path of the f32 / bf16 / INT8
    probe), 'membw_mib', 'gpu',
    'rows' (list of Result, one per probe and thread count).
    `progress`, when given, is called with a description before each probe; `kinds` picks
    the probes ('fp32', 'int8', 'membw'; the tables of the others stay empty).
    """
    kinds = tuple(kinds)
    for k in kinds:
        if k not in KINDS:
            raise ValueError(f"kinds: expected names from {KINDS}, got {k!r}")
    ext = _ext()
    thread_list = sorted(set(int(t) for t in (threads if threads is not None else default_threads())))
    if not thread_list or thread_list[0] < 1:
        raise ValueError(f"threads: expected thread counts >= 1, got {thread_list}")
    if not seconds > 0:
        raise ValueError(f"seconds: expected a positive duration, got {seconds}")
    if membw_mib < 1:
        raise ValueError(f"membw_mib: expected >= 1, got {membw_mib}")
    from .. import _config

    previous = _config.get_num_threads()
    out: Dict[str, object] = {"threads": thread_list, "fp32_gflops": {}, "bf16_gflops": {}, "int8_gops": {},
                              "copy_gbs": {},
                              "triad_gbs": {}, "membw_mib": membw_mib, "rows": []}
    rows: List[Result] = out["rows"]  # type: ignore[assignment]
    try:
        for t in thread_list:
            # The pool must have at least t threads for the probe to use t.
            _config.set_num_threads(max(t, previous))
            for kind, name, key, fn, unit, label in (
                    ("fp32", "fp32_fma", "fp32_gflops", ext.peak_probe_fp32_fma, "GFLOPS", "f32"),
                    ("bf16", "bf16_dot", "bf16_gflops", ext.peak_probe_bf16_dot, "GFLOPS", "bf16"),
                    ("int8", "int8_madd", "int8_gops", ext.peak_probe_int8_madd, "GOPS", "s16s16s32")):
                if kind not in kinds:
                    continue
                if progress:
                    progress(f"peak {name} threads={t}")
                r = fn(t, seconds, repeats)
                best = min(r["seconds"])
                if kind == "int8" and r["path"] == "avx512vnni":
                    label = "u8s8s32"  # vpdpbusd multiplies u8 by s8 (s8 x s8 is shifted into it)
                row = make_result("peak", "aicc", label, name, t, [best], r["work"], unit,
                                  path=r["path"], threads_used=r["threads_used"], cpu_share=_cpu_share(r, t))
                row.samples = list(r["seconds"])
                _add_unshared(row, r, t)
                rows.append(row)
                out[key][t] = row.throughput
                out[{"fp32": "path", "bf16": "bf16_path", "int8": "int8_path"}[kind]] = r["path"]
            if "membw" not in kinds:
                continue
            if progress:
                progress(f"peak membw threads={t}")
            m = ext.peak_probe_membw(t, membw_mib * 2**20, repeats)
            for name, key in (("copy", "copy_gbs"), ("triad", "triad_gbs")):
                r = m[name]
                row = make_result("peak", "aicc", "f64", f"stream_{name} {membw_mib}MiB x3", t,
                                  [min(r["seconds"])], r["work"], "GB/s", threads_used=r["threads_used"],
                                  cpu_share=_cpu_share(r, t))
                row.samples = list(r["seconds"])
                _add_unshared(row, r, t)
                rows.append(row)
                out[key][t] = row.throughput
    finally:
        _config.set_num_threads(previous)
    out["gpu"] = gpu_properties()
    return out


def _cpu_share(r: dict, threads: int) -> Optional[float]:
    """CPU time the probe's threads got / (threads x wall time), for the best run: 1.0 on an
    idle machine; lower means other processes held the cores and the peak reads low."""
    i = min(range(len(r["seconds"])), key=lambda k: r["seconds"][k])
    cpu = r.get("cpu_seconds") or []
    if i >= len(cpu) or cpu[i] <= 0:
        return None
    return min(1.0, cpu[i] / (threads * r["seconds"][i]))


def _add_unshared(row: Result, r: dict, threads: int) -> None:
    """extra['throughput_unshared']: work / (CPU seconds per thread) of the best run, i.e. the
    rate while the threads actually ran; an estimate of the idle machine's peak (it ignores
    cache and frequency effects of the other processes). Never used for % of peak."""
    share = row.extra.get("cpu_share")
    if share:
        row.extra["throughput_unshared"] = row.throughput / share


def cpu_share(peak: Dict[str, object], threads: int) -> Optional[float]:
    """The lowest CPU share among the probes at `threads` (None where not measured)."""
    shares = [row.extra.get("cpu_share") for row in peak.get("rows", []) if row.threads == threads]
    shares = [s for s in shares if s is not None]
    return min(shares) if shares else None


def results(peak: Dict[str, object]) -> List[Result]:
    """The peak measurement as Result rows (op='peak')."""
    return list(peak.get("rows", []))


def _at(table: Dict[int, float], threads: int) -> Optional[float]:
    if not table:
        return None
    if threads in table:
        return table[threads]
    # More threads than measured (e.g. ranks > cores): the largest measured count is the ceiling.
    keys = sorted(table)
    below = [k for k in keys if k <= threads]
    return table[below[-1]] if below else table[keys[0]]


def peak_for(peak: Optional[Dict[str, object]], op: str, dtype: str, threads: int):
    """(peak throughput in the row's unit, what it is) for a row, or (None, reason).

    gemm/conv f32/f16 -> f32 FMA GFLOPS, bf16 -> the bf16 peak (where measured; else f32);
    qgemm/qconv2d -> INT8 GOPS; collectives ->
    STREAM copy GB/s (a shared-memory allreduce is a memory-bound copy+reduce)."""
    if not peak:
        return None, "peak not measured"
    if op in _INT8_OPS:
        return _at(peak["int8_gops"], threads), "int8_gops"
    if op in _FLOAT_OPS:
        if dtype == "bf16" and peak.get("bf16_gflops"):
            return _at(peak["bf16_gflops"], threads), "bf16_gflops"
        return _at(peak["fp32_gflops"], threads), "fp32_gflops"
    if op in _BANDWIDTH_OPS:
        return _at(peak["copy_gbs"], threads), "copy_gbs"
    return None, f"no peak for op {op!r}"
