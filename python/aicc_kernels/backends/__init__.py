"""Backend registry: `list()`, `get(name)`, `register(backend)`, and the choice of a
backend for a call (`select`).

Built in: "reference" (NumPy, always available), "cpu" (the C++ kernels) and "cuda"
(when built and a GPU is present). Out-of-tree backends register through the entry-point
group ``aicc_kernels.backends`` (the entry point names a Backend instance or a
zero-argument callable returning one) or by calling `register` at run time.
"""

from __future__ import annotations

import threading
from typing import Dict, List, Optional, Sequence

from .base import Backend, BackendUnavailable, DTypeCombo

__all__ = ["Backend", "BackendUnavailable", "list", "get", "register", "unregister", "select"]

ENTRY_POINT_GROUP = "aicc_kernels.backends"

_lock = threading.RLock()
_registry: Dict[str, Backend] = {}
_builtins_loaded = False
_entry_points_loaded = False
_entry_point_errors: Dict[str, str] = {}


def _load_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    from . import cpu, reference  # noqa: F401  (each registers itself)
    try:
        from . import cuda  # noqa: F401
    except ImportError:
        pass


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    from importlib import metadata

    try:
        eps = metadata.entry_points(group=ENTRY_POINT_GROUP)
    except TypeError:  # Python < 3.10
        eps = metadata.entry_points().get(ENTRY_POINT_GROUP, [])
    for ep in eps:
        try:
            obj = ep.load()
            backend = obj() if callable(obj) and not isinstance(obj, Backend) else obj
            if not isinstance(backend, Backend):
                raise TypeError(f"entry point {ep.value} gave {type(backend).__name__}, not a Backend")
            if backend.name not in _registry:
                _registry[backend.name] = backend
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the library
            _entry_point_errors[ep.name] = f"{type(exc).__name__}: {exc}"


def _ensure_loaded() -> None:
    with _lock:
        _load_builtins()
        _load_entry_points()


def register(backend: Backend, *, replace: bool = False) -> Backend:
    """Adds a backend under backend.name; refuses to shadow one unless replace=True."""
    if not isinstance(backend, Backend):
        raise TypeError(f"backend: expected an aicc_kernels.backends.Backend, got {type(backend).__name__}")
    with _lock:
        _load_builtins()
        if backend.name in _registry and not replace:
            raise ValueError(f"backend: expected a new name, got {backend.name!r}, which is already registered "
                             "(pass replace=True to replace it)")
        _registry[backend.name] = backend
    return backend


def unregister(name: str) -> None:
    with _lock:
        _registry.pop(name, None)


def list() -> List[str]:  # noqa: A001 - the public name is part of the API (DESIGN.md)
    """Names of all registered backends, available or not."""
    _ensure_loaded()
    return sorted(_registry)


def entry_point_errors() -> Dict[str, str]:
    """Plugins that failed to load, with the reason (shown by ak.show_config())."""
    _ensure_loaded()
    return dict(_entry_point_errors)


def get(name: str) -> Backend:
    _ensure_loaded()
    try:
        return _registry[name]
    except KeyError:
        raise ValueError(f"backend: expected one of {sorted(_registry)}, got {name!r}") from None


def default_for(arrays: Sequence) -> Backend:
    """The backend a call without backend= uses: the device the inputs live on."""
    _ensure_loaded()
    if any(hasattr(a, "__cuda_array_interface__") or _is_dlpack_cuda(a) for a in arrays if a is not None):
        return get("cuda")
    cpu = _registry.get("cpu")
    if cpu is not None and cpu.available:
        return cpu
    return get("reference")


def _is_dlpack_cuda(a) -> bool:
    device = getattr(a, "__dlpack_device__", None)
    if device is None or type(a).__module__.startswith("numpy"):
        return False
    try:
        return device()[0] in (2, 13)  # kDLCUDA, kDLCUDAManaged
    except Exception:  # noqa: BLE001
        return False


def select(backend, op: str, dtypes: DTypeCombo, arrays: Sequence, fallback=None):
    """(Backend, kernel) for one call.

    backend:  None (by where the arrays live), a name, or a Backend.
    fallback: None (never fall back: a missing kernel is an error) or a backend name /
              Backend to use when the chosen one lacks (op, dtypes).
    """
    if backend is None:
        chosen = default_for(arrays)
    elif isinstance(backend, Backend):
        chosen = backend
    elif isinstance(backend, str):
        chosen = get(backend)
    else:
        raise TypeError(f"backend: expected None, a backend name or a Backend, got {type(backend).__name__}")
    if not chosen.supports(op, dtypes) and fallback is not None:
        chosen = fallback if isinstance(fallback, Backend) else get(fallback)
    kernel = chosen.kernel(op, dtypes)
    for a in arrays:
        if a is not None and not chosen.accepts(a):
            raise TypeError(f"backend: {chosen.name!r} cannot read a {type(a).__module__}.{type(a).__name__} "
                            f"(its device is {chosen.device!r}); move the array or pick another backend")
    return chosen, kernel
