"""Threads, ISA path and the configuration report."""

from __future__ import annotations

import platform
import sys

from . import backends

try:
    from . import _aicc_cpu as _ext
except ImportError:
    _ext = None

if _ext is not None:
    # Parses AICC_ISA / AICC_CPU_FEATURES now: a bad value is a ValueError naming the variable
    # at import, never a silent fallback or an error from the first kernel call.
    _ext.active_features()


def max_threads() -> int:
    """The largest thread count set_num_threads / AICC_NUM_THREADS accept: 4 per logical
    core of the machine (more only adds memory and context switches)."""
    return _ext.max_threads() if _ext is not None else 1


def set_num_threads(n: int) -> None:
    """Threads the CPU kernels use (1 to max_threads()); 0 restores the default
    (AICC_NUM_THREADS, else the cores this process may run on)."""
    import operator

    if isinstance(n, bool):
        raise TypeError("n: expected an integer thread count, got bool")
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"n: expected an integer thread count, got {type(n).__name__}") from None
    limit = max_threads()
    if n < 0 or n > limit:
        raise ValueError(f"n: expected a thread count from 1 to {limit} (or 0 for the default), got {n}")
    if _ext is not None:
        _ext.set_num_threads(n)


def get_num_threads() -> int:
    return _ext.get_num_threads() if _ext is not None else 1


def isa() -> str:
    """The highest ISA level all of whose features the kernels may use now ('amx', 'avx512',
    'avx2' or 'portable'); AICC_ISA / set_isa cap it. Kernels are chosen by feature, not by
    level: kernels() says which one each op family uses."""
    return _ext.active_isa() if _ext is not None else "none"


def set_isa(name: str) -> None:
    """Caps the CPU features at an ISA level ('portable', 'avx2', 'avx512', 'amx'), as AICC_ISA
    does; for tests and benchmarks."""
    if _ext is None:
        raise RuntimeError("the C++ extension is not built")
    _ext.set_isa(name)


def set_cpu_features(spec: str) -> None:
    """Masks CPU features in AICC_CPU_FEATURES syntax ('-avx512_bf16,-amx'; '' clears the mask),
    so the registry's next entry is used; for tests and benchmarks."""
    if _ext is None:
        raise RuntimeError("the C++ extension is not built")
    if not isinstance(spec, str):
        raise TypeError(f"spec: expected a string such as '-avx512_bf16', got {type(spec).__name__}")
    _ext.set_cpu_features(spec)


def kernels() -> dict:
    """The kernel registry's choice per op family under the active features:
    {family: entry name}, e.g. {'bf16_gemm': 'bf16_12x32_avx512bf16', ...}."""
    if _ext is None:
        return {}
    return {e["family"]: e["name"] for e in _ext.registry() if e["chosen"]}


def registry() -> list:
    """Every kernel registry entry: family, name, required features, whether this CPU can run
    it and whether it is chosen now (GEMM entries also give their tile and k per word)."""
    return list(_ext.registry()) if _ext is not None else []


def config() -> dict:
    """Everything show_config() prints, as a dict."""
    from . import __version__

    info = {
        "version": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "numpy": __import__("numpy").__version__,
        "threads": get_num_threads(),
        "backends": {},
    }
    if _ext is not None:
        info["build"] = _ext.build_info()
        info["cpu"] = _ext.cpu_info()
        info["isa"] = _ext.active_isa()
        info["isa_detected"] = _ext.detected_isa()
        info["features_active"] = _ext.active_features()
        info["features_masked"] = _ext.masked_features()
        info["kernels"] = kernels()
    for name in backends.list():
        b = backends.get(name)
        info["backends"][name] = {
            "device": b.device,
            "available": b.available,
            "reason": b.unavailable_reason,
            "ops": {op: ["/".join(c) for c in combos] for op, combos in b.capabilities().items()},
        }
    errors = backends.entry_point_errors()
    if errors:
        info["plugin_errors"] = errors
    return info


def show_config(file=None) -> None:
    """Prints version, build options, CPU and ISA path, threads and backends."""
    info = config()
    out = file or sys.stdout
    print(f"aicc_kernels {info['version']} (python {info['python']}, numpy {info['numpy']})", file=out)
    print(f"  platform: {info['platform']}", file=out)
    if "build" in info:
        build = ", ".join(f"{k}={v}" for k, v in info["build"].items())
        print(f"  build:    {build}", file=out)
        cpu = info["cpu"]
        flags = " ".join(k for k, v in cpu.items() if v is True)
        print(f"  cpu:      {cpu.get('brand') or cpu.get('vendor') or 'unknown'} [{flags}]", file=out)
        print(f"  isa:      {info['isa']} (detected {info['isa_detected']})", file=out)
        if info["features_masked"]:
            print(f"  masked:   {info['features_masked']} (AICC_CPU_FEATURES / set_cpu_features)", file=out)
        if cpu.get("amx_note"):
            print(f"  amx:      {cpu['amx_note']}", file=out)
        print("  kernels:  " + ", ".join(f"{fam}={name}" for fam, name in info["kernels"].items()), file=out)
    else:
        print("  build:    C++ extension not importable", file=out)
    print(f"  threads:  {info['threads']}", file=out)
    surface = backends.op_surface()
    print("  backends (ops: [implemented/combos in the op surface]):", file=out)
    for name, b in info["backends"].items():
        state = "available" if b["available"] else f"unavailable ({b['reason']})"
        ops = ", ".join(f"{op}[{len(c)}/{len(surface.get(op, c))}]" for op, c in b["ops"].items())
        print(f"    {name:<10} {b['device']:<5} {state}; ops: {ops}", file=out)
    for name, err in info.get("plugin_errors", {}).items():
        print(f"    plugin {name!r} (entry point group {backends.ENTRY_POINT_GROUP!r}) failed to load: {err}",
              file=out)
