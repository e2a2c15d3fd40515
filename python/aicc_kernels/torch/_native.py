"""The C++ half of torch.ops.aicc: native/aicc_torch_ops.cc, built against the installed torch.

Why a build at first use and not at `pip install`: torch is an optional dependency, absent
from the isolated environment pip builds our wheel in, and a kernel library for torch must
be compiled against the torch it is loaded into (its C++ ABI changes between releases).
So the first `import aicc_kernels.torch` compiles one small file (~10-30 s, with the
compiler that built the package and the `ninja` of the [torch] extra) into torch's
extension cache (TORCH_EXTENSIONS_DIR, default ~/.cache/torch_extensions), keyed by the
source, our C API header and the torch version; later imports load the cached library.
Concurrent first imports (ranks of one job) wait on torch's build lock.

With it, our kernels' parallel loops also run on torch's intra-op (OpenMP) threads rather
than on a second pool of our own (`AICC_TORCH_THREADS=0` keeps our pool): in a model that
mixes our kernels with torch's, the two pools would take turns spinning on the same cores.

Without it everything still works: the operators stay the pure-Python registration of
ops.py (~12 us more per call). `status()` says which is in use and why, and
`AICC_TORCH_NATIVE=0` turns the native path off.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import pathlib
import sys

_SOURCE = pathlib.Path(__file__).resolve().parent / "native" / "aicc_torch_ops.cc"
_STATE = {"loaded": False, "reason": "not loaded yet", "path": None}


def _include_dir() -> pathlib.Path:
    """Where aicc/c_api.h is installed (with the other headers of the C++ package)."""
    from .._cmake import get_include

    return pathlib.Path(get_include())


def _build_name(torch_version: str) -> str:
    digest = hashlib.sha256()
    for path in (_SOURCE, _include_dir() / "aicc" / "c_api.h"):
        digest.update(path.read_bytes())
    digest.update(torch_version.encode())
    return "aicc_torch_ops_" + digest.hexdigest()[:16]


def _with_ninja_on_path():
    """torch's builder runs `ninja`; the pip package puts it in the environment's bin, which
    is not on PATH when the interpreter is run without activating its environment."""
    try:
        import ninja

        bin_dir = getattr(ninja, "BIN_DIR", None)
    except ImportError:
        bin_dir = None
    dirs = [d for d in (bin_dir, os.path.dirname(sys.executable)) if d]
    os.environ["PATH"] = os.pathsep.join(dirs + [os.environ.get("PATH", "")])


def _capsule_pointer(capsule) -> int:
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype = ctypes.c_void_p
    get.argtypes = [ctypes.py_object, ctypes.c_char_p]
    return get(capsule, b"aicc_kernels._aicc_cpu._C_API")


def load() -> bool:
    """Build (once) and load the native kernels; True when they are in use. Must run after
    ops.py defined the schemas. Never raises: a failure leaves the Python kernels in place
    and its reason in status()."""
    if _STATE["loaded"]:
        return True
    if os.environ.get("AICC_TORCH_NATIVE", "1").strip() == "0":
        _STATE["reason"] = "turned off by AICC_TORCH_NATIVE=0"
        return False
    try:
        import torch
        from torch.utils import cpp_extension

        from .. import _aicc_cpu

        if not hasattr(_aicc_cpu, "_C_API"):
            _STATE["reason"] = "this _aicc_cpu build has no C API (rebuild aicc_kernels)"
            return False
        _with_ninja_on_path()
        path = cpp_extension.load(name=_build_name(torch.__version__), sources=[str(_SOURCE)],
                                  extra_include_paths=[str(_include_dir())], extra_cflags=["-O2", "-fopenmp"],
                                  extra_ldflags=["-fopenmp"],
                                  is_python_module=False, verbose=os.environ.get("AICC_TORCH_NATIVE_VERBOSE") == "1")
        lib = ctypes.CDLL(path)
        bind = lib.aicc_torch_bind_c_api
        bind.restype = ctypes.c_int
        bind.argtypes = [ctypes.c_void_p]
        rc = bind(_capsule_pointer(_aicc_cpu._C_API))
        if rc != 0:
            _STATE["reason"] = f"_aicc_cpu's C API is version {rc}, older than the torch operators need"
            return False
    except Exception as e:  # a missing compiler or ninja, a torch without headers: keep Python
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        _STATE["reason"] = f"build or load failed ({type(e).__name__}: {first[:300]})"
        return False
    counter = lib.aicc_torch_fast_calls
    counter.restype = ctypes.c_uint64
    counter.argtypes = []
    team_runs = lib.aicc_torch_team_runs
    team_runs.restype = ctypes.c_uint64
    team_runs.argtypes = []
    use_torch_threads = lib.aicc_torch_use_torch_threads
    use_torch_threads.restype = None
    use_torch_threads.argtypes = [ctypes.c_int]
    # Our parallel loops on torch's threads (see native/aicc_torch_ops.cc, torch_team), unless
    # AICC_TORCH_THREADS=0 keeps our own pool.
    team = os.environ.get("AICC_TORCH_THREADS", "1").strip() != "0"
    use_torch_threads(1 if team else 0)
    _STATE.update(loaded=True, reason="compiled against torch " + torch.__version__, path=path, counter=counter,
                  team_runs=team_runs, use_torch_threads=use_torch_threads, torch_threads=team)
    return True


def fast_calls() -> int:
    """How many calls the native fast path has served in this process (0 without it)."""
    return int(_STATE["counter"]()) if _STATE.get("counter") else 0


def team_runs() -> int:
    """How many of our parallel loops have run on torch's threads in this process."""
    return int(_STATE["team_runs"]()) if _STATE.get("team_runs") else 0


def use_torch_threads(on: bool) -> None:
    """Run our kernels' parallel loops on torch's intra-op threads (True, the default with
    the native library; AICC_TORCH_THREADS=0 starts with False) or on our own pool."""
    if not _STATE.get("use_torch_threads"):
        raise RuntimeError(f"use_torch_threads: needs the native torch library, which is not loaded "
                           f"({_STATE['reason']})")
    _STATE["use_torch_threads"](1 if on else 0)
    _STATE["torch_threads"] = bool(on)


def status() -> dict:
    """{"native": bool, "reason": str, "path": library path or None, "torch_threads": bool
    (our parallel loops run on torch's threads)}."""
    return {"native": _STATE["loaded"], "reason": _STATE["reason"], "path": _STATE["path"],
            "torch_threads": bool(_STATE.get("torch_threads"))}


__all__ = ["load", "status", "fast_calls", "team_runs", "use_torch_threads"]
