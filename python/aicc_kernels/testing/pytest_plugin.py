"""The conformance runner as a pytest plugin, for a chip team's own test suite.

    pytest -p aicc_kernels.testing.pytest_plugin --aicc-backend mychip \\
           --pyargs aicc_kernels.testing.conformance_tests       # the suites, nothing to write

or, in the team's tests (with the plugin enabled by -p or `pytest_plugins = [...]` in conftest.py):

    def test_conformance(aicc_conformance):   # one test per backend x op x dtype combo
        aicc_conformance.check()               # skip when unsupported, fail with the first failing case

    def test_my_extra_thing(aicc_backend):     # the --aicc-backend name, for tests of your own
        ...

Options: --aicc-backend NAME (repeatable), --aicc-ops gemm,qgemm, --aicc-max-examples N,
--aicc-seed N. Unsupported combos are reported as skipped, with the reason.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("aicc", "aicc_kernels conformance")
    group.addoption("--aicc-backend", action="append", default=[], metavar="NAME",
                    help="backend to run the conformance suites against (repeatable)")
    group.addoption("--aicc-ops", default="", metavar="OPS", help="comma-separated ops (default: all suites)")
    group.addoption("--aicc-max-examples", type=int, default=50, metavar="N",
                    help="generated cases per (op, dtypes) (default 50)")
    group.addoption("--aicc-seed", type=int, default=None, metavar="N", help="random seed (default: reproducible)")


class ConformanceCase:
    """One (backend, op, dtype combo) of the conformance runner."""

    def __init__(self, backend: str, op: str, combo, config):
        self.backend, self.op, self.combo, self._config = backend, op, tuple(combo), config

    @property
    def id(self) -> str:
        return f"{self.backend}-{self.op}-{'/'.join(self.combo)}"

    def run(self):
        from .. import backends
        from .cases import get_suite
        from .conformance import run_combo

        backend = backends.get(self.backend)
        if not backend.available:
            pytest.skip(f"backend {self.backend!r} is unavailable here: {backend.unavailable_reason}")
        return run_combo(get_suite(self.op), backend, self.combo,
                         max_examples=self._config.getoption("aicc_max_examples"),
                         seed=self._config.getoption("aicc_seed"))

    def check(self):
        from .conformance import FAIL, UNSUPPORTED, format_case

        result = self.run()
        if result.status == UNSUPPORTED:
            pytest.skip(f"unsupported: backend {self.backend!r} has no {self.op} kernel for {result.dtypes}")
        if result.status == FAIL:
            f = result.failure
            pytest.fail(f"{self.op} {result.dtypes} on {self.backend!r}: case {f.example}: {f.message}\n"
                        f"case: {format_case(f.case)}", pytrace=False)
        return result


def _cases(config):
    from .cases import get_suite, suites

    names = config.getoption("aicc_backend")
    ops = [o.strip() for o in config.getoption("aicc_ops").split(",") if o.strip()]
    chosen = [get_suite(op) for op in ops] if ops else list(suites().values())
    return [ConformanceCase(name, suite.op, combo, config)
            for name in names for suite in chosen for combo in suite.dtype_combos()]


def pytest_generate_tests(metafunc):
    if "aicc_conformance" in metafunc.fixturenames:
        cases = _cases(metafunc.config)
        if cases:
            metafunc.parametrize("aicc_conformance", cases, ids=[c.id for c in cases])
        else:
            metafunc.parametrize("aicc_conformance", [pytest.param(None, marks=pytest.mark.skip(
                reason="no backend: pass --aicc-backend NAME to run the conformance suites"))])


@pytest.fixture
def aicc_backend(request):
    """The first --aicc-backend name (skips the test when none was given)."""
    names = request.config.getoption("aicc_backend")
    if not names:
        pytest.skip("no backend: pass --aicc-backend NAME")
    return names[0]
