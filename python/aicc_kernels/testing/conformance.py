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
from .tolerance import Mismatch

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
    examples: int = 0
    seconds: float = 0.0
    failure: Optional[Failure] = None
    note: str = ""


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


def _judge(suite: Suite, backend, case: Case, example, poison: bool = False) -> Optional[Failure]:
    failure = _judge_inner(suite, backend, case, example, poison)
    if failure is not None:
        failure.raw_case = case
    return failure


def _judge_inner(suite: Suite, backend, case: Case, example, poison: bool) -> Optional[Failure]:
    ref = suite.reference(case)
    buffer = None
    try:
        if poison and suite.poison and backend.device == "cpu":
            buffer = poisoned_like(ref)
        out = suite.invoke(case, backend, out=buffer)
        verdict = suite.check(case, out, ref)
    except Exception as exc:  # noqa: BLE001 - any exception from a kernel is a failure to report
        tb = traceback.extract_tb(exc.__traceback__)
        where = f" (at {tb[-1].filename}:{tb[-1].lineno})" if tb else ""
        return Failure(example, describe_case(case), f"raised {type(exc).__name__}: {exc}{where}")
    if verdict is None:
        return None
    described = describe_case(case)
    if buffer is not None:
        described["out"] = "preallocated, NaN/0x5A-filled"
    if isinstance(verdict, Mismatch):
        return Failure(example, described, str(verdict), index=list(verdict.index), got=verdict.got,
                       expected=verdict.expected, allowed=verdict.allowed, wrong_elements=verdict.count,
                       total_elements=verdict.total)
    return Failure(example, described, str(verdict))


def run_combo(suite: Suite, backend, combo, *, max_examples: int = 50, seed: Optional[int] = None,
              shrink: bool = True, fixed: bool = True, cases: Optional[Sequence[Case]] = None) -> Result:
    """Runs one (op, combo) of `backend`: the suite's fixed edge cases (unless fixed=False),
    then max_examples generated ones; or only `cases` when given."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st

    op, name = suite.op, combo_name(combo)
    if not backend.supports(op, combo):
        return Result(op, name, UNSUPPORTED)
    start = time.perf_counter()
    count = 0
    explicit = cases if cases is not None else (suite.fixed(combo) if fixed else [])
    for i, case in enumerate(explicit):
        count += 1
        failure = _judge(suite, backend, case, f"fixed-{i + 1}")
        if failure is not None:
            return Result(op, name, FAIL, count, time.perf_counter() - start, failure)
    state: Dict[str, Any] = {"n": 0, "failure": None}
    if max_examples > 0 and cases is None:
        phases = [Phase.explicit, Phase.reuse, Phase.generate] + ([Phase.shrink] if shrink else [])

        @settings(max_examples=max_examples, deadline=None, database=None, derandomize=seed is None,
                  phases=phases, suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet,
                  print_blob=False)
        # A drawn flag: the case writes into a poisoned out= buffer, or into backend.empty().
        @given(case=suite.strategy(combo), poison=st.booleans())
        def prop(case, poison):
            state["n"] += 1
            failure = _judge(suite, backend, case, state["n"], poison=poison)
            if failure is not None:
                state.setdefault("first", state["n"])
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
    seconds = time.perf_counter() - start
    if state["failure"] is not None:
        return Result(op, name, FAIL, count, seconds, state["failure"])
    return Result(op, name, PASS, count, seconds)


def run(backend, ops: Optional[Sequence[str]] = None, *, max_examples: int = 50, seed: Optional[int] = None,
        shrink: bool = True, fixed: bool = True, progress=None) -> Report:
    """Conformance of `backend` (a name or a Backend) over `ops` (default: every suite)."""
    b = backend if isinstance(backend, backends.Backend) else backends.get(backend)
    report = Report(b.name, b.device, settings={"max_examples": max_examples, "seed": seed, "shrink": shrink,
                                                "fixed_cases": fixed})
    if not b.available:
        raise backends.BackendUnavailable(f"backend: {b.name!r} is unavailable here: {b.unavailable_reason}")
    all_suites = suites()
    chosen = list(all_suites) if not ops else [get_suite(op).op for op in ops]
    for op in chosen:
        suite = all_suites[op]
        combos = suite.dtype_combos()
        for combo in combos:
            result = run_combo(suite, b, combo, max_examples=max_examples, seed=seed, shrink=shrink, fixed=fixed)
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

_MARK = {PASS: "pass", FAIL: "FAIL", UNSUPPORTED: "unsupported", UNTESTED: "untested"}


def _short(v) -> str:
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


def format_table(report: Report) -> str:
    """The op x dtype table, then the first failing case of each failure."""
    lines = [f"conformance of backend {report.backend!r} (device {report.device!r}); "
             f"{report.settings.get('max_examples')} generated cases per combo"
             + (" + fixed edge cases" if report.settings.get("fixed_cases", True) else "")]
    ops = list(dict.fromkeys(r.op for r in report.results))
    width = max([len(r.dtypes) for r in report.results] + [6])
    opw = max([len(r.op) for r in report.results] + [8])
    lines.append(f"  {'op':<{opw}} {'dtypes':<{width}}  {'result':<12} {'cases':>6} {'time':>7}")
    for op in ops:
        for r in (r for r in report.results if r.op == op):
            t = f"{r.seconds:.2f}s" if r.status in (PASS, FAIL) else ""
            n = str(r.examples) if r.status in (PASS, FAIL) else ""
            extra = f"  ({r.note})" if r.note else ""
            lines.append(f"  {r.op:<{opw}} {r.dtypes:<{width}}  {_MARK[r.status]:<12} {n:>6} {t:>7}{extra}")
    c = report.counts()
    lines.append(f"  {c[PASS]} pass, {c[FAIL]} fail, {c[UNSUPPORTED]} unsupported"
                 + (f", {c[UNTESTED]} untested" if c[UNTESTED] else ""))
    for r in report.results:
        if r.status == FAIL and r.failure is not None:
            f = r.failure
            shrunk = f" (shrunk in {f.shrink_steps} steps)" if f.shrink_steps else ""
            lines.append(f"FAIL {r.op} {r.dtypes}: case {f.example}{shrunk}: {f.message}")
            lines.append(f"     case: {format_case(f.case)}")
    return "\n".join(line.rstrip() for line in lines)


def _progress(r: Result) -> None:
    if r.status != UNSUPPORTED:
        print(f"  ... {r.op} {r.dtypes}: {r.status} ({r.examples} cases, {r.seconds:.2f}s)", file=sys.stderr, flush=True)


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
    parser.add_argument("--no-fixed", action="store_true", help="skip the fixed edge cases (generated cases only)")
    parser.add_argument("--save-failures", metavar="DIR",
                        help="save each failing case's arrays as DIR/<op>-<dtypes>.npz (np.load to replay it)")
    parser.add_argument("--list", action="store_true", help="list backends, op suites and entry-point errors")
    args = parser.parse_args(argv)

    if args.list or not args.backend:
        print("backends:", ", ".join(backends.list()))
        print("op suites:", ", ".join(suites()))
        for name, err in backends.entry_point_errors().items():
            print(f"plugin {name!r} failed to load: {err}")
        if not args.backend:
            if not args.list:
                parser.error("--backend: expected a backend name, got none")
            return 0
    ops = [o.strip() for o in args.ops.split(",") if o.strip()]
    try:
        report = run(args.backend, ops or None, max_examples=args.max_examples, seed=args.seed,
                     shrink=not args.no_shrink, fixed=not args.no_fixed,
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
