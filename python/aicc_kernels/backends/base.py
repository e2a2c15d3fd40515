"""The backend interface (docs/PORTING.md).

A backend is a name, a device, and a table mapping (op, dtype combination) to a kernel
callable. The op layer (aicc_kernels.ops) validates and normalizes the user's call,
allocates the output through the backend (`empty`), and hands the kernel ready-to-use
arrays: a kernel never re-validates and never allocates its own result.

Three ways to build one (all give the same object):

    Backend("mychip", "cpu", {"gemm": {("f32", "f32", "f32"): my_gemm}})

    Backend.from_dict("mychip", "cpu", {"gemm": {"f32/f32/f32": my_gemm}})

    mychip = Backend("mychip", "cpu")
    @mychip.implements("gemm", ("f32", "f32", "f32"), ("f16", "f16", "f32"))
    def my_gemm(a, b, c, out, *, alpha, beta, bias, activation): ...

Dtype combinations are short names (aicc_kernels._dtypes): inputs, then the output,
e.g. ("u8", "s8", "s32") for a u8 x s8 qgemm with an int32 result.
"""

from __future__ import annotations

from typing import Callable, Dict, Iterable, Mapping, Optional, Tuple, Union

import numpy as np

DTypeCombo = Tuple[str, ...]
KernelTable = Mapping[str, Mapping[DTypeCombo, Callable]]

#: The element-type names a dtype combination may use.
DTYPE_NAMES = ("f32", "f64", "f16", "bf16", "s8", "u8", "s32", "s64")


class BackendUnavailable(RuntimeError):
    """The backend exists but cannot run here (no device, library not built)."""


class KernelNotFound(NotImplementedError):
    """The backend has no kernel for (op, dtypes) and no fallback was requested."""


class KernelUnsupported(KernelNotFound):
    """A kernel declined this particular call ("this epilogue is not supported": a C kernel's
    kUnsupported). Not a wrong result: fallback= reruns the call elsewhere, and the
    conformance runner reports the case as unsupported, not failed."""


def parse_combo(combo: Union[str, Iterable[str]], *, argument: str = "dtypes") -> DTypeCombo:
    """("f32", "f32", "f32") from that tuple or from "f32/f32/f32"; ValueError on unknown names."""
    if isinstance(combo, str):
        parts = tuple(p.strip() for p in combo.split("/"))
    else:
        try:
            parts = tuple(combo)
        except TypeError:
            raise TypeError(f"{argument}: expected a tuple of dtype names or 'a/b/out', "
                            f"got {type(combo).__name__}") from None
    if not parts or not all(isinstance(p, str) for p in parts):
        raise TypeError(f"{argument}: expected a non-empty tuple of dtype names, got {combo!r}")
    unknown = [p for p in parts if p not in DTYPE_NAMES]
    if unknown:
        raise ValueError(f"{argument}: expected dtype names from {DTYPE_NAMES}, got {unknown[0]!r} in {combo!r}")
    return parts


def combo_name(combo: Iterable[str]) -> str:
    return "/".join(combo)


class Backend:
    """A set of kernels for one device.

    name:     registry key ("cpu", "cuda", "mychip"): a non-empty identifier-like string.
    device:   "cpu" for backends that take and return host NumPy arrays; anything else for
              device memory (the backend then overrides `accepts`, `empty` and `asarray`).
    kernels:  {op: {dtype combo: callable}}; the combos are short names, inputs then output,
              e.g. {"gemm": {("f32", "f32", "f32"): fn}, "qgemm": {("u8", "s8", "s32"): fn}}.
              Combos may also be written "f32/f32/f32".
    unavailable_reason: None when the backend can run here; otherwise why not (no device,
              driver missing): the backend stays listed, and calls raise BackendUnavailable.
    tiles:    {op: (M, N, K)} (or a list of such triples, or one int for every dimension):
              the tile sizes the kernels split each dimension into. The conformance runner
              then adds cases at T-1, T, T+1, 2T+1 and a prime above 2T in every dimension
              (for the conv ops: output positions, output channels, input channels).
    dlpack_device: (device type, device id) of the DLPack device this backend owns, for
              backends whose device is not "cpu": arrays reporting it through
              __dlpack_device__ are dispatched here (see register_array_type).
    """

    def __init__(self, name: str, device: str, kernels: Optional[KernelTable] = None, *,
                 unavailable_reason: Optional[str] = None, description: str = "",
                 tiles: Optional[Mapping] = None, dlpack_device: Optional[Tuple[int, int]] = None):
        if not isinstance(name, str) or not name or any(ch.isspace() for ch in name):
            raise ValueError(f"name: expected a non-empty backend name without spaces, got {name!r}")
        if not isinstance(device, str) or not device:
            raise ValueError(f"device: expected a device name such as 'cpu', got {device!r}")
        self.name = name
        self.device = device
        self.description = description
        self.unavailable_reason = unavailable_reason
        from ..testing.tiles import check_tiles  # no hypothesis import: tiles.py is plain Python

        self.tiles = check_tiles(tiles)
        if dlpack_device is not None:
            try:
                dlpack_device = (int(dlpack_device[0]), int(dlpack_device[1]))
            except (TypeError, ValueError, IndexError):
                raise TypeError("dlpack_device: expected (device type, device id) ints, "
                                f"got {dlpack_device!r}") from None
        self.dlpack_device = dlpack_device
        self._kernels: Dict[str, Dict[DTypeCombo, Callable]] = {}
        for op, table in (kernels or {}).items():
            if not isinstance(table, Mapping):
                raise TypeError(f"kernels[{op!r}]: expected a mapping of dtype combo -> callable, "
                                f"got {type(table).__name__}")
            for combo, fn in table.items():
                self.add_kernel(op, combo, fn)

    @classmethod
    def from_dict(cls, name: str, device: str, kernels: KernelTable, **kwargs) -> "Backend":
        """The same as Backend(...), spelled for tables written as data (combos as "a/b/out")."""
        return cls(name, device, kernels, **kwargs)

    # -- what the backend can do -------------------------------------------------------
    @property
    def available(self) -> bool:
        return self.unavailable_reason is None

    def capabilities(self) -> Dict[str, Tuple[DTypeCombo, ...]]:
        """{op: (dtype combo, ...)}: everything this backend implements."""
        return {op: tuple(sorted(table)) for op, table in sorted(self._kernels.items()) if table}

    def capability_table(self, surface: Optional[Mapping[str, Iterable[DTypeCombo]]] = None
                         ) -> Dict[str, Dict[str, bool]]:
        """{op: {"a/b/out": implemented?}} over the whole op surface (by default: every op
        and combo the reference backend implements), so gaps show as False."""
        if surface is None:
            from . import op_surface
            surface = op_surface()
        table = {op: {combo_name(c): self.supports(op, c) for c in combos} for op, combos in surface.items()}
        for op, combos in self.capabilities().items():  # ops beyond the surface (extensions)
            for c in combos:
                table.setdefault(op, {})[combo_name(c)] = True
        return table

    def supports(self, op: str, dtypes: Union[str, DTypeCombo]) -> bool:
        """True when (op, dtypes) has a kernel; dtypes as ("f32", "f32", "f32") or "f32/f32/f32"."""
        try:
            combo = parse_combo(dtypes)
        except (TypeError, ValueError):
            return False
        return combo in self._kernels.get(op, {})

    def kernel(self, op: str, dtypes: Union[str, DTypeCombo]) -> Callable:
        """The kernel for (op, dtypes); KernelNotFound (a NotImplementedError) when absent."""
        dtypes = parse_combo(dtypes)
        if not self.available:
            raise BackendUnavailable(f"backend: {self.name!r} is unavailable here: {self.unavailable_reason}")
        try:
            return self._kernels[op][dtypes]
        except KeyError:
            have = ", ".join(combo_name(c) for c in sorted(self._kernels.get(op, {}))) or "none"
            raise KernelNotFound(
                f"backend: {self.name!r} does not implement {op} for {combo_name(dtypes)} "
                f"(it has: {have}); pass fallback='reference' (or another backend) to run it elsewhere"
            ) from None

    def add_kernel(self, op: str, dtypes: Union[str, Iterable[str]], fn: Callable) -> None:
        """Adds (or replaces) the kernel for (op, dtypes)."""
        if not isinstance(op, str) or not op:
            raise TypeError(f"op: expected an op name such as 'gemm', got {op!r}")
        combo = parse_combo(dtypes, argument=f"{op} dtypes")
        if not callable(fn):
            raise TypeError(f"{op} {combo_name(combo)}: expected a callable kernel, got {type(fn).__name__}")
        self._kernels.setdefault(op, {})[combo] = fn

    def implements(self, op: str, *combos: Union[str, Iterable[str]]) -> Callable[[Callable], Callable]:
        """Decorator: registers the decorated function as the kernel of `op` for each combo.

            @backend.implements("qgemm", ("s8", "s8", "s32"), "u8/s8/s32")
            def qgemm(a, b, out, *, a_zero_point, b_zero_point, scale, bias, out_zero_point, activation): ...
        """
        if not combos:
            raise ValueError(f"combos: expected at least one dtype combination for {op!r}, got none")
        parsed = [parse_combo(c, argument=f"{op} dtypes") for c in combos]

        def decorate(fn: Callable) -> Callable:
            for combo in parsed:
                self.add_kernel(op, combo, fn)
            return fn

        return decorate

    # -- memory --------------------------------------------------------------------------
    def accepts(self, array) -> bool:
        """True when `array` lives where this backend's kernels can read it: NumPy arrays for a
        "cpu" backend; otherwise device arrays this backend owns (backends/device.py)."""
        if self.device == "cpu":
            return isinstance(array, np.ndarray)
        from . import device

        try:
            return device.is_foreign(array) and device.owner(array) is self
        except TypeError:
            return False

    def view(self, array):
        """A DeviceArray describing one of this backend's arrays without copying (for arrays
        reaching the op layer through __dlpack_device__ = self.dlpack_device). The default
        reads the DLPack capsule; a backend may override it, or register its array type with
        ak.backends.register_array_type instead."""
        from .device import from_dlpack_capsule

        return from_dlpack_capsule(array)

    def empty(self, shape, dtype):
        """The output buffer of one call (the op layer allocates; kernels never do)."""
        return np.empty(shape, dtype=dtype)

    def asarray(self, array):
        """Moves/wraps an input (e.g. a bias vector) to where the kernels read it."""
        return np.asarray(array)

    def to_numpy(self, array) -> np.ndarray:
        """A host copy of one of this backend's arrays (the conformance runner compares on the
        host). The default handles NumPy arrays and CuPy-style arrays with a .get() method;
        other device backends override it."""
        if not isinstance(array, np.ndarray) and callable(getattr(array, "get", None)):
            return np.asarray(array.get())
        return np.asarray(array)

    def __repr__(self) -> str:
        state = "available" if self.available else f"unavailable: {self.unavailable_reason}"
        return f"<Backend {self.name!r} device={self.device!r} ({state})>"
