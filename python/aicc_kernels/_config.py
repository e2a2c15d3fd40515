"""Threads, ISA path and the configuration report."""

from __future__ import annotations

import platform
import sys

from . import backends

try:
    from . import _aicc_cpu as _ext
except ImportError:
    _ext = None


def set_num_threads(n: int) -> None:
    """Threads the CPU kernels use (>= 1); 0 restores the default (AICC_NUM_THREADS, else
    the cores this process may run on)."""
    import operator

    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"n: expected an integer, got {type(n).__name__}") from None
    if n < 0:
        raise ValueError(f"n: expected a thread count >= 1 (or 0 for the default), got {n}")
    if _ext is not None:
        _ext.set_num_threads(n)


def get_num_threads() -> int:
    return _ext.get_num_threads() if _ext is not None else 1


def isa() -> str:
    """The CPU kernel path in use: 'avx512' (AVX-512 with VNNI), 'avx2' or 'portable'
    (AICC_ISA forces a lower one)."""
    return _ext.active_isa() if _ext is not None else "none"


def set_isa(name: str) -> None:
    """Forces the CPU kernel path ('portable', 'avx2', 'avx512'); for tests and benchmarks."""
    if _ext is None:
        raise RuntimeError("the C++ extension is not built")
    _ext.set_isa(name)


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
    else:
        print("  build:    C++ extension not importable", file=out)
    print(f"  threads:  {info['threads']}", file=out)
    print("  backends:", file=out)
    for name, b in info["backends"].items():
        state = "available" if b["available"] else f"unavailable ({b['reason']})"
        ops = ", ".join(f"{op}[{len(c)}]" for op, c in b["ops"].items())
        print(f"    {name:<10} {b['device']:<5} {state}; ops: {ops}", file=out)
    for name, err in info.get("plugin_errors", {}).items():
        print(f"    plugin {name!r} failed to load: {err}", file=out)
