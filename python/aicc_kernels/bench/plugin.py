"""`aicc-bench gemm|qgemm|conv --backend NAME`: the same calls timed on a plugin backend.

A chip team's backend is measured through the public op with backend=NAME, its inputs
moved to its device once beforehand (backend.asarray) and its output allocated once
(backend.empty), so the timed call is the op's dispatch plus the kernel: what a user of
the plugin pays. The built-in cpu row of the same shape is measured in the same run and
the ratio cpu_seconds / plugin_seconds is stored as extra["vs_cpu"] (on a shared machine
only the ratio means something). A backend without the kernel gives no row and a note.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional

from .record import Result, make_result, time_call

#: Why a plugin row is missing, for the run's notes: {"<backend> <op> <dtypes>": reason}.
notes: Dict[str, str] = {}


def resolve(name: Optional[str]):
    """The Backend to measure, or None for the built-in cpu kernels (the default)."""
    if name in (None, "", "cpu"):
        return None
    import aicc_kernels as ak

    backend = ak.backends.get(name)
    if not backend.available:
        raise ValueError(f"backend: {name!r} is unavailable here: {backend.unavailable_reason}")
    return backend


def row(backend, op: str, combo, call: Callable, tensors: dict, out_shape, out_dtype, *, dtype_label: str,
        shape: str, threads: int, work: float, unit: str, ours: Optional[Result], timing: dict,
        **extra) -> List[Result]:
    """[the plugin's Result] for one shape, or [] (with a note) when it lacks the kernel.

    call(out=..., backend=..., **device_tensors) runs the op once."""
    if not backend.supports(op, combo):
        notes[f"{backend.name} {op} {'/'.join(combo)}"] = "not implemented by the backend"
        return []
    moved = {k: backend.asarray(v) for k, v in tensors.items()}
    out = backend.empty(out_shape, out_dtype)
    samples = time_call(lambda: call(out=out, backend=backend, **moved), **timing)
    result = make_result(op, backend.name, dtype_label, shape, threads, samples, work, unit, None,
                         backend=backend.name, **extra)
    if ours is not None:
        result.extra["vs_cpu"] = ours.seconds / result.seconds
    return [result]
