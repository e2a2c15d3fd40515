"""Op suites: one module per op, shared by the project's tests and the conformance runner.

A suite says, for one op, how to generate cases (a hypothesis strategy of keyword
arguments for the public op), how to call a backend with one, and how to judge the
result against the reference with the tolerance table (aicc_kernels.testing.tolerance).
Adding an op to the conformance runner is one module in this package that calls
`register_suite(Suite(...))` at import; every module here is imported by `suites()`.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ... import _dtypes
from ..tolerance import Mismatch

Combo = Tuple[str, ...]
Case = Dict[str, Any]
#: What a check returns: None (pass), a Mismatch (values out of tolerance) or a message.
Verdict = Union[None, Mismatch, str]


@dataclass
class Suite:
    """The conformance suite of one op.

    op:        the op's name, as in backend kernel tables ("gemm").
    strategy:  (combo, tiles=None) -> hypothesis strategy of cases (keyword arguments of the
               public op); tiles is a testing.tiles.TilePlan whose edge sizes the cases should
               reach (a one-argument callable is accepted too and gets no tiles).
    check:     (case, out, ref) -> Verdict, comparing a backend's result with the reference
               result `ref` (computed by `reference` when None).
    call:      (case, Backend) -> out; by default the public op `aicc_kernels.<op>(**case, backend=...)`.
    fixed:     (combo, tiles=None) -> deterministic edge cases run before the generated ones
               (with a TilePlan: one case per tile edge per dimension).
    combos:    the dtype combos to test; by default those of the reference backend.
    tensors:   the case keys holding device tensors (moved with backend.asarray for
               backends whose device is not "cpu").
    poison:    pass a preallocated `out=` filled with NaN / a bit pattern (host backends),
               so a kernel that leaves elements unwritten cannot pass by luck.
    """

    op: str
    strategy: Callable[[Combo], Any]
    check: Callable[[Case, Any], Verdict]
    call: Optional[Callable[[Case, Any], Any]] = None
    fixed: Callable[[Combo], List[Case]] = field(default=lambda combo: [])
    combos: Optional[Sequence[Combo]] = None
    tensors: Tuple[str, ...] = ("a", "b", "c")
    poison: bool = True

    def cases(self, combo: Combo, tiles=None):
        """The hypothesis strategy of this combo's cases, reaching `tiles`' edges when given."""
        return _with_tiles(self.strategy, combo, tiles)

    def fixed_cases(self, combo: Combo, tiles=None) -> List[Case]:
        return list(_with_tiles(self.fixed, combo, tiles))

    def reference(self, case: Case) -> Any:
        from ... import reference
        return getattr(reference, self.op)(**case)

    def dtype_combos(self) -> List[Combo]:
        if self.combos is not None:
            return [tuple(c) for c in self.combos]
        from ... import backends
        return list(backends.get("reference").capabilities().get(self.op, ()))

    def invoke(self, case: Case, backend, out: Any = None) -> Any:
        """Runs the case on `backend` (a Backend) and returns the result as a host array;
        `out`, when given, is passed as the op's out= argument."""
        if out is not None:
            case = dict(case, out=out)
        if backend.device != "cpu":
            case = {k: (backend.asarray(v) if k in self.tensors and isinstance(v, np.ndarray) else v)
                    for k, v in case.items()}
        if self.call is not None:
            out = self.call(case, backend)
        else:
            import aicc_kernels as ak
            out = getattr(ak, self.op)(**case, backend=backend)
        return backend.to_numpy(out)


def _with_tiles(fn, combo, tiles):
    """fn(combo, tiles=tiles) when fn takes a tiles argument (suites written before tile
    plans existed take only the combo)."""
    import inspect

    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    if "tiles" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return fn(combo, tiles=tiles)
    return fn(combo)


_suites: Dict[str, Suite] = {}
_discovered = False


def register_suite(suite: Suite) -> Suite:
    _suites[suite.op] = suite
    return suite


def suites() -> Dict[str, Suite]:
    """{op: Suite} for every module of this package (imported on first use)."""
    global _discovered
    if not _discovered:
        _discovered = True
        for info in pkgutil.iter_modules(__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{__name__}.{info.name}")
    return dict(sorted(_suites.items()))


def get_suite(op: str) -> Suite:
    all_suites = suites()
    try:
        return all_suites[op]
    except KeyError:
        raise ValueError(f"ops: expected names from {sorted(all_suites)}, got {op!r}") from None


# -- describing a case (for reports) ----------------------------------------------------

def _layout(x: np.ndarray) -> str:
    if x.flags.c_contiguous:
        return "C"
    if x.flags.f_contiguous:
        return "F"
    return "strided " + str(tuple(s // x.itemsize for s in x.strides))


def describe_value(v, limit: int = 16) -> Any:
    """A JSON-friendly summary: arrays by shape/dtype/layout (their values too when they
    have at most `limit` elements)."""
    if isinstance(v, np.ndarray):
        d = {"shape": list(v.shape), "dtype": _dtypes.short_name(v.dtype), "layout": _layout(v)}
        if v.size <= limit:
            d["values"] = v.astype(np.float64).tolist() if _dtypes.is_float(v.dtype) else v.tolist()
        elif v.size and _dtypes.is_float(v.dtype):
            with np.errstate(invalid="ignore"):
                f = v.astype(np.float64)
                d["nonfinite"] = int((~np.isfinite(f)).sum())
                fin = f[np.isfinite(f)]
                if fin.size:
                    d["range"] = [float(fin.min()), float(fin.max())]
        elif v.size:
            d["range"] = [int(v.min()), int(v.max())]
        return d
    if isinstance(v, (list, tuple)) and any(isinstance(x, np.ndarray) for x in v):
        return [describe_value(x, limit) for x in v]  # e.g. a collective's per-rank inputs
    if isinstance(v, (np.dtype, type)):
        return _dtypes.short_name(v)
    if isinstance(v, np.generic):
        return v.item()
    return v


def poisoned_like(ref: np.ndarray) -> np.ndarray:
    """An output buffer shaped like `ref`, filled with NaN (floats) or 0x5A bytes (integers)."""
    if _dtypes.is_float(ref.dtype):
        return np.full(ref.shape, np.nan, ref.dtype)
    return np.frombuffer(b"\x5a" * ref.nbytes, dtype=ref.dtype).reshape(ref.shape).copy()


def describe_case(case: Case) -> Dict[str, Any]:
    return {k: describe_value(v) for k, v in case.items()}
