"""The backend interface (see docs/PORTING.md).

A backend is a name, a device, and a table mapping (op, dtype combination) to a kernel
callable. The op layer (aicc_kernels.ops) validates and normalizes the user's call,
allocates the output through the backend, and hands the kernel ready-to-use arrays: a
kernel never re-validates and never allocates its own result.
"""

from __future__ import annotations

from typing import Callable, Dict, Iterable, Mapping, Optional, Tuple

import numpy as np

DTypeCombo = Tuple[str, ...]
KernelTable = Mapping[str, Mapping[DTypeCombo, Callable]]


class BackendUnavailable(RuntimeError):
    """The backend exists but cannot run here (no device, library not built)."""


class Backend:
    """A set of kernels for one device.

    name:     registry key ("cpu", "cuda", "mychip").
    device:   "cpu" for backends that take and return host NumPy arrays; anything else for
              device memory (the backend then overrides `accepts`, `empty` and `asarray`).
    kernels:  {op: {dtype combo: callable}}; the combos are short names, inputs then output,
              e.g. {"gemm": {("f32", "f32", "f32"): fn}, "qgemm": {("u8", "s8", "s32"): fn}}.
    """

    def __init__(self, name: str, device: str, kernels: KernelTable, *,
                 unavailable_reason: Optional[str] = None, description: str = ""):
        self.name = name
        self.device = device
        self.description = description
        self._kernels: Dict[str, Dict[DTypeCombo, Callable]] = {
            op: dict(table) for op, table in kernels.items()}
        self.unavailable_reason = unavailable_reason

    # -- what the backend can do -------------------------------------------------------
    @property
    def available(self) -> bool:
        return self.unavailable_reason is None

    def capabilities(self) -> Dict[str, Tuple[DTypeCombo, ...]]:
        """{op: (dtype combo, ...)}: everything this backend implements."""
        return {op: tuple(sorted(table)) for op, table in sorted(self._kernels.items())}

    def supports(self, op: str, dtypes: DTypeCombo) -> bool:
        return tuple(dtypes) in self._kernels.get(op, {})

    def kernel(self, op: str, dtypes: DTypeCombo) -> Callable:
        if not self.available:
            raise BackendUnavailable(f"backend: {self.name!r} is unavailable here: {self.unavailable_reason}")
        try:
            return self._kernels[op][tuple(dtypes)]
        except KeyError:
            have = ", ".join("/".join(c) for c in sorted(self._kernels.get(op, {}))) or "none"
            raise NotImplementedError(
                f"backend: {self.name!r} does not implement {op} for {'/'.join(dtypes)} "
                f"(it has: {have}); pass fallback='reference' (or another backend) to run it elsewhere"
            ) from None

    def add_kernel(self, op: str, dtypes: Iterable[str], fn: Callable) -> None:
        self._kernels.setdefault(op, {})[tuple(dtypes)] = fn

    # -- memory --------------------------------------------------------------------------
    def accepts(self, array) -> bool:
        """True when `array` lives where this backend's kernels can read it."""
        return isinstance(array, np.ndarray)

    def empty(self, shape, dtype):
        return np.empty(shape, dtype=dtype)

    def asarray(self, array):
        """Moves/wraps an input (e.g. a bias vector) to where the kernels read it."""
        return np.asarray(array)

    def __repr__(self) -> str:
        state = "available" if self.available else f"unavailable: {self.unavailable_reason}"
        return f"<Backend {self.name!r} device={self.device!r} ({state})>"
