"""Backend registry: `list()`, `get(name)`, `register(backend)`, and the choice of a
backend for a call (`select`).

Built in: "reference" (NumPy, always available), "cpu" (the C++ kernels) and "cuda"
(when built and a GPU is present). Out-of-tree backends register through the entry-point
group ``aicc_kernels.backends`` (the entry point names a Backend instance or a
zero-argument callable returning one) or by calling `register` at run time.

Entry points are loaded once, lazily, on the first `list()` / `get()` / dispatch. A plugin
that fails to import, returns something other than a Backend, or reuses a taken name is
not fatal: it is recorded with the reason (`entry_point_errors()`, shown by
`ak.show_config()`), and `get(name)` for it names the reason.

Fallback is never implicit: a backend that lacks (op, dtypes) raises KernelNotFound
unless the call passed `fallback=`.
"""

from __future__ import annotations

import builtins
import threading
from typing import Dict, List, Sequence

from .base import (Backend, BackendUnavailable, DTypeCombo, KernelNotFound, KernelUnsupported,  # noqa: F401
                   combo_name, parse_combo)

__all__ = ["Backend", "BackendUnavailable", "KernelNotFound", "KernelUnsupported", "list", "get", "register", "unregister",
           "select", "op_surface", "DeviceArray", "register_array_type", "unregister_array_type", "entry_point_errors", "reload_entry_points", "parse_combo"]

ENTRY_POINT_GROUP = "aicc_kernels.backends"

_lock = threading.RLock()
_registry: Dict[str, Backend] = {}
_builtins_loaded = False
_entry_points_loaded = False
_entry_point_errors: Dict[str, str] = {}
_entry_point_names: Dict[str, str] = {}  # backend name -> entry point value, for reloads


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


def _entry_points():
    from importlib import metadata

    try:
        return builtins.list(metadata.entry_points(group=ENTRY_POINT_GROUP))
    except TypeError:  # Python < 3.10
        return builtins.list(metadata.entry_points().get(ENTRY_POINT_GROUP, []))


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    try:
        eps = _entry_points()
    except Exception as exc:  # noqa: BLE001 - broken metadata must not break the library
        _entry_point_errors["<entry points>"] = f"{type(exc).__name__}: {exc}"
        return
    for ep in eps:
        try:
            obj = ep.load()
            backend = obj() if callable(obj) and not isinstance(obj, Backend) else obj
            if not isinstance(backend, Backend):
                raise TypeError(f"entry point {ep.value!r} gave a {type(backend).__name__}, "
                                "expected an aicc_kernels.backends.Backend (or a callable returning one)")
            if backend.name in _registry and _registry[backend.name] is not backend:
                raise ValueError(f"entry point {ep.value!r} gave a backend named {backend.name!r}, "
                                 "which is already registered; it was not loaded")
            _registry[backend.name] = backend
            _entry_point_names[backend.name] = ep.value
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the library
            _entry_point_errors[ep.name] = f"{type(exc).__name__}: {exc}"


def reload_entry_points() -> Dict[str, str]:
    """Loads the `aicc_kernels.backends` entry points again (after installing a plugin in a
    running process, or in tests); returns the errors, as entry_point_errors() does."""
    global _entry_points_loaded
    with _lock:
        _load_builtins()
        _entry_points_loaded = False
        _entry_point_errors.clear()
        for name in _entry_point_names:
            _registry.pop(name, None)
        _entry_point_names.clear()
        _load_entry_points()
        return dict(_entry_point_errors)


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
        reference = _registry.get("reference")
    if reference is not None and backend is not reference:
        known = known_ops()
        unknown = sorted(set(backend.capabilities()) - set(known))
        if unknown:
            with _lock:
                if _registry.get(backend.name) is backend:
                    del _registry[backend.name]
            raise ValueError(f"backend: expected ops from {sorted(known)}, got {unknown} in {backend.name!r}'s "
                             "kernel table (nothing would ever call them: a typo?); it was not registered")
    return backend


#: Ops dispatched through communicators rather than kernel tables, which a backend (the C ABI
#: v2, docs/PORTING.md) may still implement; the conformance runner tests them.
COLLECTIVE_OPS = ("allreduce", "reduce_scatter", "all_gather", "broadcast")


def known_ops() -> List[str]:
    """Op names a kernel table may use: the op surface and the collectives."""
    return sorted(set(op_surface()) | set(COLLECTIVE_OPS))


def unregister(name: str) -> None:
    """Removes a backend (a no-op when absent); the built-in "reference" cannot be removed."""
    if name == "reference":
        raise ValueError("name: expected a backend other than 'reference' (the specification), got 'reference'")
    with _lock:
        _registry.pop(name, None)
        _entry_point_names.pop(name, None)


def list() -> List[str]:  # noqa: A001 - the public name is part of the API (docs/PORTING.md)
    """Names of all registered backends, available or not."""
    _ensure_loaded()
    return sorted(_registry)


def entry_point_errors() -> Dict[str, str]:
    """{entry point name: reason} for plugins that failed to load (shown by ak.show_config())."""
    _ensure_loaded()
    return dict(_entry_point_errors)


def get(name: str, *, argument: str = "backend") -> Backend:
    _ensure_loaded()
    try:
        return _registry[name]
    except KeyError:
        hint = ""
        if name in _entry_point_errors:
            hint = f" (the plugin {name!r} failed to load: {_entry_point_errors[name]})"
        raise ValueError(f"{argument}: expected one of {sorted(_registry)}, got {name!r}{hint}") from None


def op_surface() -> Dict[str, tuple]:
    """{op: (dtype combo, ...)}: the whole op surface a backend may implement, which is
    what the reference backend (the specification) implements."""
    return get("reference").capabilities()


def default_for(arrays: Sequence) -> Backend:
    """The backend a call without backend= uses: the device the inputs live on."""
    _ensure_loaded()
    for a in arrays:
        if device.is_foreign(a):
            return device.owner(a)  # a non-CUDA device array: the backend that owns its device
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


def _resolve(backend, argument: str) -> Backend:
    if isinstance(backend, Backend):
        return backend
    if isinstance(backend, str):
        return get(backend, argument=argument)
    raise TypeError(f"{argument}: expected None, a backend name or a Backend, got {type(backend).__name__}")


def select(backend, op: str, dtypes: DTypeCombo, arrays: Sequence, fallback=None, names: Sequence[str] = ()):
    """(Backend, kernel) for one call.

    backend:  None (by where the arrays live), a name, or a Backend.
    fallback: None (never fall back: a missing kernel is an error) or a backend name /
              Backend to use when the chosen one lacks (op, dtypes) or is unavailable here.
              Only used when the user passes it; the op layer never picks one itself.
    names:    the arguments `arrays` came from, for the error when the backend cannot read one.
    """
    dtypes = parse_combo(dtypes)
    chosen = default_for(arrays) if backend is None else _resolve(backend, "backend")
    if fallback is not None:
        second = _resolve(fallback, "fallback")
        if not (chosen.available and chosen.supports(op, dtypes)):
            if not second.supports(op, dtypes):
                raise KernelNotFound(
                    f"fallback: expected a backend implementing {op} for {combo_name(dtypes)}, got "
                    f"{second.name!r}, which does not (nor does {chosen.name!r})")
            chosen = second
    kernel = chosen.kernel(op, dtypes)
    if fallback is not None and chosen is not second and second.supports(op, dtypes):
        kernel = _falling_back(kernel, chosen, second, op, dtypes)
    for i, a in enumerate(arrays):
        if a is not None and not chosen.accepts(a):
            name = names[i] if i < len(names) else "backend"
            if not hasattr(a, "shape") or not hasattr(a, "dtype"):
                raise TypeError(f"{name}: expected a numpy.ndarray or a device array, got {type(a).__name__}")
            raise TypeError(f"{name}: {chosen.name!r} cannot read a {type(a).__module__}.{type(a).__name__} "
                            f"(its device is {chosen.device!r}); expected an array on that device: move the "
                            f"array or pick another backend")
    return chosen, kernel


def _falling_back(kernel, chosen: Backend, second: Backend, op: str, dtypes):
    """`kernel`, rerun on `second` when it declares this call unsupported (KernelUnsupported,
    e.g. a C kernel's kUnsupported for an epilogue it lacks): the user asked for fallback=,
    and both backends read the same (host) arrays."""
    def call(*args, **kwargs):
        try:
            return kernel(*args, **kwargs)
        except KernelUnsupported:
            if chosen.device != second.device:
                raise
            return second.kernel(op, dtypes)(*args, **kwargs)

    return call


from . import device  # noqa: E402  (DeviceArray, register_array_type: non-CUDA device memory)
from .device import DeviceArray, register_array_type, unregister_array_type  # noqa: E402,F401
from . import native  # noqa: E402,F401  (ak.backends.native.load: C++ backends, aicc/backend.h)
