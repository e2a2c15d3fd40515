"""Which peer libraries (baselines) are installed, without importing the heavy ones.

A baseline that is requested but missing is reported as absent (name + reason) in the
table, the JSON and the CSV; it is never silently dropped.
"""

from __future__ import annotations

import importlib.util
import shutil
from importlib import metadata
from typing import Dict, Iterable, List

#: Every baseline name the CLI knows, with the ops it can be measured on.
KNOWN = {
    "numpy": {"ops": {"gemm", "qgemm", "conv2d", "resnet50"}, "what": "NumPy (its BLAS, e.g. OpenBLAS)"},
    "torch": {"ops": {"gemm", "qgemm", "conv2d", "qconv2d", "resnet50", "allreduce"}, "what": "PyTorch CPU (MKL/oneDNN)"},
    "onnxruntime": {"ops": {"gemm", "qgemm", "conv2d", "qconv2d", "resnet50"}, "what": "onnxruntime CPU (MLAS)"},
    "gloo": {"ops": {"allreduce"}, "what": "torch.distributed gloo backend"},
    "mpi": {"ops": {"allreduce", "cluster"}, "what": "Open MPI through mpi4py"},
}

DEFAULT = ("numpy", "torch", "onnxruntime")


def _version(dist: str):
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def probe(name: str) -> Dict[str, object]:
    """{'available': bool, 'version': str|None, 'reason': str|None} for one baseline name."""
    if name not in KNOWN:
        return {"available": False, "version": None,
                "reason": f"unknown baseline (known: {', '.join(sorted(KNOWN))})"}
    if name in ("numpy", "torch", "onnxruntime"):
        if importlib.util.find_spec(name) is None:
            return {"available": False, "version": None, "reason": f"{name} is not installed"}
        return {"available": True, "version": _version(name), "reason": None}
    if name == "gloo":
        if importlib.util.find_spec("torch") is None:
            return {"available": False, "version": None, "reason": "torch is not installed (gloo comes with it)"}
        try:
            import torch.distributed as dist
        except Exception as e:  # a torch without distributed support
            return {"available": False, "version": None, "reason": f"torch.distributed not importable ({e})"}
        if not (dist.is_available() and dist.is_gloo_available()):
            return {"available": False, "version": None, "reason": "this torch build has no gloo backend"}
        return {"available": True, "version": _version("torch"), "reason": None}
    # mpi
    if importlib.util.find_spec("mpi4py") is None:
        return {"available": False, "version": None, "reason": "mpi4py is not installed"}
    if shutil.which("mpirun") is None and shutil.which("mpiexec") is None:
        return {"available": False, "version": _version("mpi4py"), "reason": "no mpirun/mpiexec on PATH"}
    return {"available": True, "version": _version("mpi4py"), "reason": None}


def parse(text: str | None) -> List[str]:
    """'numpy,torch' -> ['numpy', 'torch'] (order kept, duplicates dropped); '' or 'none' -> []."""
    if text is None:
        return list(DEFAULT)
    names: List[str] = []
    for part in text.split(","):
        part = part.strip().lower()
        if part and part != "none" and part not in names:
            names.append(part)
    return names


def status(names: Iterable[str], op: str | None = None) -> Dict[str, Dict[str, object]]:
    """Availability of each requested baseline; for `op`, marks those that do not apply to it."""
    out = {}
    for name in names:
        s = probe(name)
        # "not applicable" wins over "not installed": installing the peer would not help.
        if op is not None and op not in KNOWN[name]["ops"]:
            s = dict(s, available=False, reason=f"not applicable to {op}")
        out[name] = s
    return out
