"""The conformance runner: the project's own op suites, run against any backend.

    python -m aicc_kernels.testing --backend NAME [--ops gemm,qgemm] [--report report.json]

For each op suite (aicc_kernels.testing.cases) and each dtype combination of the op
surface, the backend's kernel is either absent ("unsupported"), or run on the suite's
fixed edge cases and then on hypothesis-generated cases, each judged against the
reference with the tolerance table ("pass" / "fail"). A failure keeps the first failing
case (after hypothesis shrinks it to a small one): its shapes and options, the element
index, got and expected. Any failure makes the exit status non-zero.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .. import backends
from ..backends.base import combo_name
from .cases import Case, Suite, describe_case, describe_value, get_suite, poisoned_like, suites
from .tiles import TilePlan, parse_tile
from .tiles import plan as tile_plan
from .tolerance import Mismatch

#: Results and arrays up to this many elements are printed in full in failure reports.
SMALL = 64

PASS, FAIL, UNSUPPORTED, UNTESTED = "pass", "fail", "unsupported", "untested"


@dataclass
class Failure:
    """The first failing case of one (op, combo)."""

    example: int                      # 1-based number of the case in this run ("fixed-N" for edge cases)
    case: Dict[str, Any]              # shapes, dtypes, layouts and options (describe_case)
    message: str                      # one line
    index: Optional[List[int]] = None  # first wrong element, with got / expected / allowed error
    got: Any = None
    expected: Any = None
    allowed: Optional[float] = None
    wrong_elements: Optional[int] = None
    total_elements: Optional[int] = None
    shrink_steps: int = 0              # hypothesis calls spent shrinking it from the case first found
    unwritten: Optional[int] = None    # wrong elements still holding the out= fill (never written)
    got_array: Any = None              # the whole result and reference when they are small (<= SMALL)
    expected_array: Any = None
    also: str = ""                     # e.g. the fixed case that failed before the generated search

    def save(self, path) -> None:
        """The failing case's arrays and options as an .npz (options under '__options__', JSON)."""
        raw = getattr(self, "raw_case", None) or {}
        arrays = {k: v for k, v in raw.items() if isinstance(v, np.ndarray)}
        options = {k: describe_value(v) for k, v in raw.items() if not isinstance(v, np.ndarray)}
        np.savez(path, __options__=np.array(json.dumps(options, default=_json_default)), **arrays)


@dataclass
class Result:
    op: str
    dtypes: str
    status: str
    cases: int = 0                     # cases run (fixed + generated until the first failure)
    seconds: float = 0.0
    failure: Optional[Failure] = None
    note: str = ""
    reached_kernel: int = 0            # of those, how many called the backend's kernel (empty
    #                                    outputs never do: SEMANTICS.md)
    unsupported_cases: int = 0         # calls the kernel declined (KernelUnsupported / kUnsupported)


@dataclass
class Report:
    backend: str
    device: str
    results: List[Result] = field(default_factory=list)
    settings: Dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return any(r.status == FAIL for r in self.results)

    def counts(self) -> Dict[str, int]:
        out = {PASS: 0, FAIL: 0, UNSUPPORTED: 0, UNTESTED: 0}
        for r in self.results:
            out[r.status] += 1
        return out

    def to_dict(self) -> Dict[str, Any]:
        return {"backend": self.backend, "device": self.device, "settings": self.settings,
                "summary": self.counts(), "results": [asdict(r) for r in self.results]}

    def to_json(self, path) -> None:
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=2, default=_json_default)
            f.write("\n")


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


class _CaseFailed(AssertionError):
    pass


class _Unsupported(Exception):
    """The kernel declined the case (KernelUnsupported): not a failure."""


def _judge(suite: Suite, backend, case: Case, example, poison: bool = False) -> Optional[Failure]:
    failure = _judge_inner(suite, backend, case, example, poison)
    if failure is not None:
        failure.raw_case = case
    return failure


def _fill_note(out: np.ndarray, ref: np.ndarray, filled: bool, mismatch: Mismatch):
    """(message suffix, count) naming wrong elements that still hold the out= fill."""
    if not filled or not isinstance(out, np.ndarray) or out.shape != ref.shape or out.dtype != ref.dtype:
        return "", None
    fill = poisoned_like(ref)
    as_bytes = (lambda x: np.ascontiguousarray(x).view(np.uint8).reshape(x.shape + (x.itemsize,)))
    with np.errstate(invalid="ignore"):
        if fill.dtype.kind == "f" or fill.dtype == backends_bf16():
            same = np.isnan(out.astype(np.float64)) & ~np.isnan(ref.astype(np.float64))
            what = "NaN, the fill of the output buffer"
        else:
            same = (as_bytes(out) == as_bytes(fill)).all(axis=-1) & (out != ref)
            what = f"{fill.reshape(-1)[0].item()} = 0x{'5A' * fill.itemsize}, the fill of the output buffer"
    count = int(same.sum())
    if not count:
        return "", 0
    first = tuple(int(i) for i in np.argwhere(same)[0])
    at = " (the first wrong one)" if first == tuple(mismatch.index) else f"; first at {first}"
    return f"; {count} of them never written: still {what}{at}", count


def backends_bf16():
    from .. import _dtypes
    return _dtypes.bfloat16


def _judge_inner(suite: Suite, backend, case: Case, example, poison: bool) -> Optional[Failure]:
    from ..backends import KernelUnsupported

    ref = suite.reference(case)
    buffer = None
    try:
        if poison and suite.poison and backend.device == "cpu":
            buffer = poisoned_like(ref)
        out = suite.invoke(case, backend, out=buffer)
        verdict = suite.check(case, out, ref)
    except KernelUnsupported as exc:
        raise _Unsupported(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - any exception from a kernel is a failure to report
        tb = traceback.extract_tb(exc.__traceback__)
        where = f" (at {tb[-1].filename}:{tb[-1].lineno})" if tb else ""
        return Failure(example, describe_case(case), f"raised {type(exc).__name__}: {exc}{where}")
    if verdict is None:
        return None
    described = describe_case(case)
    if buffer is not None:
        described["out"] = "preallocated, NaN/0x5A-filled"
    small = isinstance(out, np.ndarray) and isinstance(ref, np.ndarray) and ref.size <= SMALL
    arrays = dict(got_array=describe_value(out, limit=SMALL).get("values") if small else None,
                  expected_array=describe_value(ref, limit=SMALL).get("values") if small else None)
    if isinstance(verdict, Mismatch):
        # Host outputs are always filled: a given out= here, backend.empty() by _KernelCounter.
        note, unwritten = _fill_note(out, ref, buffer is not None or (suite.poison and backend.device == "cpu"),
                                     verdict)
        return Failure(example, described, str(verdict) + note, index=list(verdict.index), got=verdict.got,
                       expected=verdict.expected, allowed=verdict.allowed, wrong_elements=verdict.count,
                       total_elements=verdict.total, unwritten=unwritten, **arrays)
    return Failure(example, described, str(verdict), **arrays)


class _KernelCounter:
    """Counts the calls that reach the backend's kernels (by wrapping Backend.kernel on the
    instance for the duration of one combo): a case whose output is empty never does.

    Also fills the host arrays the backend's `empty` returns with the out= fill (NaN /
    0x5A bytes), so an unwritten element cannot pass on memory that happens to hold the
    right value (np.empty often returns the block the reference result just freed)."""

    def __init__(self, backend):
        self.backend, self.calls = backend, 0

    def __enter__(self):
        original = self.backend.kernel
        original_empty = self.backend.empty

        def empty(shape, dtype):
            out = original_empty(shape, dtype)
            if isinstance(out, np.ndarray) and out.size:
                out[...] = poisoned_like(np.empty(out.shape, out.dtype))
            return out

        self.backend.empty = empty

        def kernel(op, dtypes):
            fn = original(op, dtypes)

            def counted(*args, **kwargs):
                self.calls += 1
                return fn(*args, **kwargs)

            return counted

        self.backend.kernel = kernel
        return self

    def __exit__(self, *exc):
        del self.backend.kernel  # back to the class's methods
        del self.backend.empty


def plan_for(suite: Suite, backend, tile=None, max_dim: Optional[int] = None) -> TilePlan:
    """The tile edges the cases of `suite` reach on `backend`: its declared tiles, the
    runner's --tile (a list of (M, N, K)) and the defaults (testing/tiles.py)."""
    extra = [parse_tile(t) for t in (tile or [])]
    return tile_plan(suite.op, getattr(backend, "tiles", None), extra, max_dim)


def run_combo(suite: Suite, backend, combo, *, max_examples: int = 50, seed: Optional[int] = None,
              shrink: bool = True, fixed: bool = True, cases: Optional[Sequence[Case]] = None,
              tile=None, max_dim: Optional[int] = None) -> Result:
    """Runs one (op, combo) of `backend`: the suite's fixed edge cases (unless fixed=False),
    then max_examples generated ones; or only `cases` when given.

    A failing fixed case does not end the run: the generated search continues (its cases
    reach the same tile edges), and when it finds a failure too that one is reported,
    shrunk, with the fixed case named in `failure.also`."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st

    from ..backends import parse_combo

    combo = parse_combo(combo)
    op, name = suite.op, combo_name(combo)
    if not backend.supports(op, combo):
        return Result(op, name, UNSUPPORTED)
    tiles = plan_for(suite, backend, tile, max_dim)
    start = time.perf_counter()
    count = 0
    declined: List[str] = []
    fixed_failure: Optional[Failure] = None
    counter = _KernelCounter(backend)
    with counter:
        explicit = cases if cases is not None else (suite.fixed_cases(combo, tiles) if fixed else [])
        for i, case in enumerate(explicit):
            count += 1
            try:
                failure = _judge(suite, backend, case, f"fixed-{i + 1}", poison=True)
            except _Unsupported as exc:
                declined.append(str(exc))
                continue
            if failure is not None:
                fixed_failure = failure
                break
        state: Dict[str, Any] = {"n": 0, "failure": None}
        if max_examples > 0 and cases is None:
            phases = [Phase.explicit, Phase.reuse, Phase.generate] + ([Phase.shrink] if shrink else [])

            @settings(max_examples=max_examples, deadline=None, database=None, derandomize=seed is None,
                      phases=phases, suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet,
                      print_blob=False)
            # A drawn flag: the case writes into a poisoned out= buffer, or into backend.empty().
            @given(case=suite.cases(combo, tiles), poison=st.booleans())
            def prop(case, poison):
                state["n"] += 1
                try:
                    failure = _judge(suite, backend, case, state["n"], poison=poison)
                except _Unsupported as exc:
                    if "first" not in state:
                        declined.append(str(exc))
                    return
                if failure is not None:
                    state.setdefault("first", state["n"])
                    state.setdefault("reached", counter.calls)
                    failure.example = state["first"]
                    failure.shrink_steps = state["n"] - state["first"]
                    state["failure"] = failure  # the last one raised is the shrunk (smallest) case
                    raise _CaseFailed(failure.message)

            if seed is not None:
                prop = hypothesis_seed(seed)(prop)
            try:
                prop()
            except _CaseFailed:
                pass
            except Exception as exc:  # noqa: BLE001 - e.g. hypothesis flakiness: report, do not crash
                if state["failure"] is None:
                    state["failure"] = Failure(state["n"], {}, f"runner error: {type(exc).__name__}: {exc}")
        count += state.get("first", state["n"])  # cases run until the first failure (not the shrinking)
    reached = state.get("reached", counter.calls)
    seconds = time.perf_counter() - start
    note = ""
    if declined:
        note = f"{len(declined)} case(s) declared unsupported by the kernel, e.g. {declined[0]}"
    failure = state["failure"]
    if failure is not None and fixed_failure is not None:
        failure.also = f"fixed case {fixed_failure.example} failed too: {fixed_failure.message}"
    failure = failure or fixed_failure
    result = Result(op, name, PASS, count, seconds, None, note, reached, len(declined))
    if failure is not None:
        result.status, result.failure = FAIL, failure
    elif declined and reached == len(declined):
        result.status = UNSUPPORTED  # every call the kernel saw, it declined
    return result


def run(backend, ops: Optional[Sequence[str]] = None, *, max_examples: int = 50, seed: Optional[int] = None,
        shrink: bool = True, fixed: bool = True, progress=None, tile=None, max_dim: Optional[int] = None) -> Report:
    """Conformance of `backend` (a name or a Backend) over `ops` (default: every suite).

    tile: extra tile sizes ("MxNxK" strings or (M, N, K) tuples) whose edges every op's
    cases reach, beside the backend's declared tiles and the defaults (testing/tiles.py);
    max_dim: the largest size any generated or tile case uses."""
    b = backend if isinstance(backend, backends.Backend) else backends.get(backend)
    tile = [tile] if isinstance(tile, (str, int)) else list(tile or [])
    for t in tile:
        parse_tile(t)
    report = Report(b.name, b.device, settings={"max_examples": max_examples, "seed": seed, "shrink": shrink,
                                                "fixed_cases": fixed, "tile": [str(t) for t in tile],
                                                "max_dim": max_dim})
    if not b.available:
        raise backends.BackendUnavailable(f"backend: {b.name!r} is unavailable here: {b.unavailable_reason}")
    all_suites = suites()
    chosen = list(all_suites) if not ops else [get_suite(op).op for op in ops]
    for op in chosen:
        suite = all_suites[op]
        combos = suite.dtype_combos()
        for combo in combos:
            result = run_combo(suite, b, combo, max_examples=max_examples, seed=seed, shrink=shrink, fixed=fixed,
                               tile=tile, max_dim=max_dim)
            report.results.append(result)
            if progress is not None:
                progress(result)
        # Kernels the backend has that the reference does not: nothing to compare with.
        for extra in b.capabilities().get(op, ()):
            if tuple(extra) not in combos:
                report.results.append(Result(op, combo_name(extra), UNTESTED,
                                             note="the reference has no kernel for this combo"))
    if not ops:
        for op, combos in b.capabilities().items():
            if op not in all_suites:
                for combo in combos:
                    report.results.append(Result(op, combo_name(combo), UNTESTED,
                                                 note="no conformance suite for this op"))
    return report


# -- printing -----------------------------------------------------------------------------

def _short(v) -> str:
    if isinstance(v, list) and v and all(isinstance(x, dict) and "shape" in x for x in v):
        return f"[{len(v)} x {_short(v[0])}]"
    if isinstance(v, dict) and "shape" in v:
        s = f"{v['dtype']}{list(v['shape'])}"
        if v.get("layout", "C") != "C":
            s += f" {v['layout']}"
        return s
    if isinstance(v, float):
        return f"{v:.6g}"
    return repr(v)


def format_case(case: Dict[str, Any]) -> str:
    return ", ".join(f"{k}={_short(v)}" for k, v in case.items() if v is not None)


def _values_lines(name: str, values) -> List[str]:
    text = np.array2string(np.asarray(values), separator=", ", max_line_width=100, threshold=SMALL)
    lines = text.splitlines()
    pad = " " * (len(name) + 8)
    return [f"     {name} = {lines[0]}"] + [pad + line for line in lines[1:]]


def format_table(report: Report) -> str:
    """The op x dtype table (its labels are the JSON report's `status` values), then the
    first failing case of each failure, with small arrays printed in full."""
    lines = [f"conformance of backend {report.backend!r} (device {report.device!r}); "
             f"{report.settings.get('max_examples')} generated cases per combo"
             + (" + fixed edge cases" if report.settings.get("fixed_cases", True) else "")]
    ops = list(dict.fromkeys(r.op for r in report.results))
    width = max([len(r.dtypes) for r in report.results] + [6])
    opw = max([len(r.op) for r in report.results] + [8])
    lines.append(f"  {'op':<{opw}} {'dtypes':<{width}}  {'status':<12} {'cases':>6} {'kernel':>6} {'time':>7}")
    for op in ops:
        for r in (r for r in report.results if r.op == op):
            ran = r.cases > 0
            t = f"{r.seconds:.2f}s" if ran else ""
            n = str(r.cases) if ran else ""
            k = str(r.reached_kernel) if ran else ""
            extra = f"  ({r.note})" if r.note else ""
            lines.append(f"  {r.op:<{opw}} {r.dtypes:<{width}}  {r.status:<12} {n:>6} {k:>6} {t:>7}{extra}")
    c = report.counts()
    lines.append(f"  {c[PASS]} pass, {c[FAIL]} fail, {c[UNSUPPORTED]} unsupported"
                 + (f", {c[UNTESTED]} untested" if c[UNTESTED] else "")
                 + "  (cases: run per combo; kernel: how many of them reached the backend's kernel)")
    for r in report.results:
        if r.status == FAIL and r.failure is not None:
            f = r.failure
            shrunk = f" (shrunk in {f.shrink_steps} steps)" if f.shrink_steps else ""
            lines.append(f"FAIL {r.op} {r.dtypes}: case {f.example}{shrunk}: {f.message}")
            lines.append(f"     case: {format_case(f.case)}")
            for key, v in f.case.items():
                if isinstance(v, dict) and v.get("values") and min(v["shape"], default=1) > 0:
                    lines += _values_lines(key, v["values"])
            if f.got_array is not None:
                lines += _values_lines("got", f.got_array)
                lines += _values_lines("expected", f.expected_array)
            if f.also:
                lines.append(f"     ({f.also})")
    return "\n".join(line.rstrip() for line in lines)


def _progress(r: Result) -> None:
    if r.status != UNSUPPORTED:
        print(f"  ... {r.op} {r.dtypes}: {r.status} ({r.cases} cases, {r.seconds:.2f}s)", file=sys.stderr, flush=True)


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m aicc_kernels.testing",
        description="Conformance of a backend against the reference: op x dtype pass / fail / unsupported.")
    parser.add_argument("--backend", help="registered backend name (see --list)")
    parser.add_argument("--ops", default="", help="comma-separated ops (default: every op suite)")
    parser.add_argument("--report", help="write the JSON report here")
    parser.add_argument("--max-examples", type=int, default=50,
                        help="generated cases per (op, dtypes), after the fixed edge cases (default 50)")
    parser.add_argument("--seed", type=int, default=None,
                        help="random seed for the generated cases (default: a fixed, reproducible sequence)")
    parser.add_argument("--no-shrink", action="store_true", help="report the first failing case as found, unshrunk")
    parser.add_argument("--no-fixed", action="store_true",
                        help="skip the fixed edge cases (generated cases only); a failing fixed case does not "
                             "stop the generated search, which reports its own shrunk case")
    parser.add_argument("--tile", action="append", default=[], metavar="MxNxK",
                        help="a tile size of your kernels (repeatable; one number for every dimension): "
                             "cases at T-1, T, T+1, 2T+1 and a prime above 2T in every dimension of every op, "
                             "beside the backend's declared tiles and the defaults 128 and 256")
    parser.add_argument("--max-dim", type=int, default=None, metavar="N",
                        help="the largest size a generated or tile case uses (default: the largest tile edge)")
    parser.add_argument("--save-failures", metavar="DIR",
                        help="save each failing case's arrays as DIR/<op>-<dtypes>.npz (np.load to replay it)")
    parser.add_argument("--list", action="store_true", help="list backends, op suites and entry-point errors")
    args = parser.parse_args(argv)

    if args.list or not args.backend:
        names = []
        for n in backends.list():
            b = backends.get(n)
            names.append(n if b.available else f"{n} (unavailable: {b.unavailable_reason})")
        print("backends:", ", ".join(names))
        print("op suites:", ", ".join(suites()))
        for name, err in backends.entry_point_errors().items():
            print(f"plugin {name!r} failed to load: {err}")
        if not args.backend:
            if not args.list:
                parser.error("--backend: expected a backend name, got none")
            return 0
    ops = [o.strip() for o in args.ops.split(",") if o.strip()]
    if args.max_dim is not None and args.max_dim < 1:
        print(f"error: --max-dim: expected a positive size, got {args.max_dim}", file=sys.stderr)
        return 2
    try:
        report = run(args.backend, ops or None, max_examples=args.max_examples, seed=args.seed,
                     shrink=not args.no_shrink, fixed=not args.no_fixed, tile=args.tile, max_dim=args.max_dim,
                     progress=_progress if sys.stderr.isatty() else None)
    except (ValueError, backends.BackendUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(report))
    if args.report:
        report.to_json(args.report)
        print(f"report written to {args.report}")
    if args.save_failures:
        import os

        os.makedirs(args.save_failures, exist_ok=True)
        for r in report.results:
            if r.status == FAIL and r.failure is not None:
                path = os.path.join(args.save_failures, f"{r.op}-{r.dtypes.replace('/', '_')}.npz")
                r.failure.save(path)
                print(f"failing case saved to {path}")
    return 1 if report.failed else 0
