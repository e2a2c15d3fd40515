"""The porting kit: backend interface, conformance runner, example out-of-tree backend.

The example backend (examples/aicc_example_backend) is imported from its source tree;
entry-point discovery is simulated by patching importlib.metadata, and one slow test
installs it for real into a temporary directory.
"""

import importlib
import json
import os
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

import aicc_kernels as ak
from aicc_kernels.backends import Backend, KernelNotFound
from aicc_kernels.testing import conformance

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_SRC = ROOT / "examples" / "aicc_example_backend" / "src"
SUPPORTED = {("gemm", "f32/f32/f32"), ("qgemm", "u8/s8/s32"), ("qgemm", "s8/s8/s32")}


@pytest.fixture
def example(monkeypatch):
    """The example backend's module (from its source tree)."""
    monkeypatch.syspath_prepend(str(EXAMPLE_SRC))
    return importlib.import_module("aicc_example_backend")


@pytest.fixture
def registered():
    """Registers backends for one test and removes them afterwards."""
    names = []

    def add(backend):
        ak.backends.register(backend, replace=True)
        names.append(backend.name)
        return backend

    yield add
    for name in names:
        ak.backends.unregister(name)


def _surface_size():
    """(op, combo) pairs the runner covers: every combo of every op suite."""
    from aicc_kernels.testing.cases import suites

    return sum(len(suite.dtype_combos()) for suite in suites().values())


# -- planted bugs: copies of the example with one mistake each ---------------------------

def edge_off_by_one(example):
    class EdgeOffByOne(example.BlockedGemm):
        """The partial last tile of every dimension stops one element short."""

        def tiles(self, size, tile):
            spans = super().tiles(size, tile)
            if len(spans) > 1 and spans[-1][1] - spans[-1][0] < tile:
                spans[-1] = (spans[-1][0], spans[-1][1] - 1)
            return spans

    return EdgeOffByOne()


def saturating_pairs(example):
    class SaturatingPairs(example.WideningQGemm):
        """vpmaddubsw: adjacent products summed into a saturating int16 before widening."""

        def dot(self, a32, b32):
            acc = np.zeros((a32.shape[0], b32.shape[1]), np.int32)
            for p in range(0, a32.shape[1], 2):
                pair = a32[:, p:p + 2] @ b32[p:p + 2, :]
                acc += np.clip(pair, -32768, 32767)
            return acc

    return SaturatingPairs()


# -- the runner on good backends -----------------------------------------------------------

def test_example_backend_passes_and_reports_the_rest_unsupported(example, registered):
    registered(example.make_backend("example-test"))
    report = conformance.run("example-test", max_examples=25)
    seen = {(r.op, r.dtypes): r.status for r in report.results}
    assert {k for k, v in seen.items() if v == "pass"} == SUPPORTED
    assert all(v == "unsupported" for k, v in seen.items() if k not in SUPPORTED)
    assert set(seen) >= {(op, "/".join(c)) for op, combos in ak.backends.op_surface().items() for c in combos}
    assert not report.failed
    table = conformance.format_table(report)
    assert "f32/f32/f32" in table and "unsupported" in table and "FAIL" not in table


def test_cpu_backend_passes(registered):
    cpu = ak.backends.get("cpu")
    if not cpu.available:
        pytest.skip(f"cpu backend unavailable: {cpu.unavailable_reason}")
    report = conformance.run("cpu", max_examples=15)
    assert not report.failed, conformance.format_table(report)
    surface = ak.backends.op_surface()
    assert all(r.status == "pass" for r in report.results if r.op in surface)
    # The CPU collectives run over communicators (ak.allreduce), not through a kernel table.
    assert all(r.status == "unsupported" for r in report.results if r.op in ak.backends.COLLECTIVE_OPS)
    assert all(0 < r.reached_kernel <= r.cases for r in report.results if r.status == "pass")


# -- the runner catches planted bugs -------------------------------------------------------

@pytest.mark.parametrize("fixed", [True, False], ids=["fixed-cases", "generated-only"])
def test_edge_tile_off_by_one_is_caught_with_the_case(example, registered, fixed):
    registered(example.make_backend("buggy-edge", gemm=edge_off_by_one(example)))
    report = conformance.run("buggy-edge", ["gemm"], max_examples=60, fixed=fixed)
    (bad,) = [r for r in report.results if r.status == "fail"]
    assert (bad.op, bad.dtypes) == ("gemm", "f32/f32/f32")
    f = bad.failure
    assert f.index is not None and f.got != f.expected and f.wrong_elements >= 1
    assert f.case["a"]["dtype"] == "f32" and len(f.case["a"]["shape"]) == 2
    # The bug drops the last row/column of an edge tile, or the last k of a partial K block.
    m, k = f.case["a"]["shape"][::-1] if f.case["trans_a"] else f.case["a"]["shape"]
    n = f.case["b"]["shape"][0 if f.case["trans_b"] else 1]
    assert f.index[0] == m - 1 or f.index[1] == n - 1 or (k > 64 and k % 64)
    text = conformance.format_table(report)
    assert "FAIL gemm f32/f32/f32" in text and f"first at {tuple(f.index)}" in text


@pytest.mark.parametrize("fixed", [True, False], ids=["fixed-cases", "generated-only"])
def test_saturating_int8_sum_is_caught_with_the_case(example, registered, fixed):
    registered(example.make_backend("buggy-int8", qgemm=saturating_pairs(example)))
    report = conformance.run("buggy-int8", ["qgemm"], max_examples=60, fixed=fixed)
    failed = {r.dtypes: r.failure for r in report.results if r.status == "fail"}
    assert set(failed) == {"u8/s8/s32", "s8/s8/s32"}
    for f in failed.values():
        assert f.allowed == 0.0 and f.got != f.expected
        assert f.case["out_dtype"] == "s32" and f.case["a"]["shape"][1] >= 2  # needs a pair to saturate


def test_cli_exit_status_table_and_json_report(example, registered, tmp_path, capsys):
    registered(example.make_backend("example-cli"))
    registered(example.make_backend("buggy-cli", qgemm=saturating_pairs(example)))
    good = tmp_path / "good.json"
    assert conformance.main(["--backend", "example-cli", "--max-examples", "5", "--report", str(good)]) == 0
    bad = tmp_path / "bad.json"
    assert conformance.main(["--backend", "buggy-cli", "--ops", "qgemm", "--max-examples", "5",
                             "--report", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "FAIL qgemm u8/s8/s32" in out and "case:" in out
    saved = tmp_path / "failures"
    assert conformance.main(["--backend", "buggy-cli", "--ops", "qgemm", "--max-examples", "5", "--no-fixed",
                             "--save-failures", str(saved)]) == 1
    replay = np.load(saved / "qgemm-u8_s8_s32.npz")
    options = json.loads(str(replay["__options__"]))
    a, b = replay["a"], replay["b"]
    b_eff = b.T if options["trans_b"] else b
    assert (ak.qgemm(a, b, trans_b=options["trans_b"], backend="buggy-cli")
            != a.astype(np.int64) @ b_eff.astype(np.int64)).any()  # the saved case reproduces the bug
    data = json.loads(bad.read_text())
    assert data["backend"] == "buggy-cli" and data["summary"]["fail"] == 2
    failure = next(r for r in data["results"] if r["status"] == "fail")["failure"]
    assert {"example", "case", "message", "index", "got", "expected"} <= set(failure)
    assert json.loads(good.read_text())["summary"]["fail"] == 0
    assert conformance.main(["--backend", "no-such-backend"]) == 2
    assert conformance.main(["--backend", "example-cli", "--ops", "no-such-op"]) == 2


def test_collective_suites_pass_a_correct_backend_and_catch_a_planted_bug():
    def allreduce(inputs, outputs, *, op):
        full = ak.reference.allreduce(inputs, op)
        for o in outputs:
            o[...] = full

    def reduce_scatter(inputs, outputs, *, op):
        for o, part in zip(outputs, ak.reference.reduce_scatter(inputs, op)):
            o[...] = part

    def all_gather(inputs, outputs):
        for o in outputs:
            o[...] = np.concatenate(inputs)

    def broadcast(inputs, outputs, *, root):
        for o in outputs:
            o[...] = inputs[root]

    def allreduce_drops_last_rank(inputs, outputs, *, op):
        allreduce(inputs[:4] if len(inputs) > 4 else inputs, outputs, op=op)

    good = Backend("coll-good", "cpu", {k: {c: f for c in ("f32/f32", "f16/f16", "bf16/bf16")} for k, f in
                                         (("allreduce", allreduce), ("reduce_scatter", reduce_scatter),
                                          ("all_gather", all_gather), ("broadcast", broadcast))})
    report = conformance.run(good, ["allreduce", "reduce_scatter", "all_gather", "broadcast"], max_examples=20)
    assert [r.status for r in report.results] == ["pass"] * 12, conformance.format_table(report)
    bad = Backend("coll-bad", "cpu", {"allreduce": {"f32/f32": allreduce_drops_last_rank}})
    (failed,) = [r for r in conformance.run(bad, ["allreduce"], max_examples=40).results if r.status == "fail"]
    assert len(failed.failure.case["inputs"]) >= 5  # the ranks the bug drops


def test_an_unregistered_backend_object_can_be_checked():
    def exact(a, b, c, out, **kw):
        out[...] = ak.reference.gemm(a, b, c, **kw)

    report = conformance.run(Backend("not-registered", "cpu", {"gemm": {"f32/f32/f32": exact}}), ["gemm"],
                             max_examples=5)
    assert [r.status for r in report.results if r.dtypes == "f32/f32/f32"] == ["pass"]
    assert "not-registered" not in ak.backends.list()


def test_a_kernel_that_raises_is_a_failure_not_a_crash(registered):
    def broken(a, b, c, out, **kw):
        raise RuntimeError("device lost")

    registered(Backend("raises", "cpu", {"gemm": {"f32/f32/f32": broken}}))
    report = conformance.run("raises", ["gemm"], max_examples=3)
    (bad,) = [r for r in report.results if r.status == "fail"]
    assert "RuntimeError: device lost" in bad.failure.message


# -- fallback only when asked ---------------------------------------------------------------

def test_fallback_is_used_only_when_requested(example, registered):
    registered(example.make_backend("example-fb"))
    a = np.ones((3, 4), np.float16)
    b = np.ones((4, 5), np.float16)
    with pytest.raises(KernelNotFound, match=r"'example-fb' does not implement gemm for f16/f16/f16.*fallback="):
        ak.gemm(a, b, backend="example-fb")
    with pytest.raises(NotImplementedError):  # KernelNotFound is a NotImplementedError
        ak.qgemm(np.ones((2, 2), np.uint8), np.ones((2, 2), np.int8), scale=0.5, out_dtype=np.int8,
                 backend="example-fb")
    out = ak.gemm(a, b, backend="example-fb", fallback="reference")
    np.testing.assert_array_equal(out, np.full((3, 5), 4, np.float16))


def test_fallback_is_not_taken_when_the_backend_has_the_kernel(registered):
    calls = []

    def mine(a, b, c, out, **kw):
        calls.append(1)
        out[...] = (a.astype(np.float64) @ b).astype(out.dtype)

    registered(Backend("spy", "cpu", {"gemm": {("f32", "f32", "f32"): mine}}))
    a = np.eye(3, dtype=np.float32)
    ak.gemm(a, a, backend="spy", fallback="reference")
    assert calls == [1]


def test_fallback_errors_name_both_backends(registered):
    registered(Backend("empty-a", "cpu"))
    registered(Backend("empty-b", "cpu"))
    a = np.eye(2, dtype=np.float32)
    with pytest.raises(KernelNotFound, match=r"'empty-b', which does not \(nor does 'empty-a'\)"):
        ak.gemm(a, a, backend="empty-a", fallback="empty-b")
    with pytest.raises(ValueError, match="fallback: expected one of .*got 'no-such-backend'"):
        ak.gemm(a, a, backend="empty-a", fallback="no-such-backend")
    with pytest.raises(ValueError, match="backend: expected one of .*got 'no-such-backend'"):
        ak.gemm(a, a, backend="no-such-backend")
    with pytest.raises(TypeError, match="fallback: expected None, a backend name or a Backend"):
        ak.gemm(a, a, backend="empty-a", fallback=3)


def test_unavailable_backend_falls_back_only_when_asked(registered):
    registered(Backend("offline", "cpu", {"gemm": {"f32/f32/f32": lambda *a, **k: None}},
                       unavailable_reason="no device found"))
    a = np.eye(2, dtype=np.float32)
    with pytest.raises(ak.backends.BackendUnavailable, match="no device found"):
        ak.gemm(a, a, backend="offline")
    np.testing.assert_array_equal(ak.gemm(a, a, backend="offline", fallback="reference"), a)


# -- building a backend ---------------------------------------------------------------------

def test_three_spellings_build_the_same_table():
    def k(*args, **kwargs):
        pass

    by_init = Backend("x", "cpu", {"gemm": {("f32", "f32", "f32"): k}, "qgemm": {("u8", "s8", "s32"): k}})
    by_dict = Backend.from_dict("x", "cpu", {"gemm": {"f32/f32/f32": k}, "qgemm": {"u8/s8/s32": k}})
    by_decorator = Backend("x", "cpu")
    by_decorator.implements("gemm", "f32/f32/f32")(k)
    by_decorator.implements("qgemm", ("u8", "s8", "s32"))(k)
    assert by_init.capabilities() == by_dict.capabilities() == by_decorator.capabilities()
    table = by_init.capability_table()
    assert table["gemm"]["f32/f32/f32"] is True and table["gemm"]["f16/f16/f16"] is False
    assert table["qgemm"]["s8/s8/s8"] is False


def test_bad_kernel_tables_are_refused_with_clear_errors():
    with pytest.raises(ValueError, match=r"gemm dtypes: expected dtype names from .*got 'float32'"):
        Backend("x", "cpu", {"gemm": {("float32", "float32", "float32"): print}})
    with pytest.raises(TypeError, match="gemm f32/f32/f32: expected a callable kernel, got int"):
        Backend("x", "cpu", {"gemm": {"f32/f32/f32": 3}})
    with pytest.raises(ValueError, match="name: expected a non-empty backend name"):
        Backend("my chip", "cpu")
    with pytest.raises(ValueError, match="combos: expected at least one dtype combination"):
        Backend("x", "cpu").implements("gemm")
    with pytest.raises(TypeError, match="backend: expected an aicc_kernels.backends.Backend"):
        ak.backends.register("cpu")
    with pytest.raises(ValueError, match="already registered"):
        ak.backends.register(Backend("cpu", "cpu"))
    with pytest.raises(ValueError, match="name: expected a backend other than 'reference'"):
        ak.backends.unregister("reference")


def test_registering_an_op_outside_the_surface_is_an_error(registered):
    with pytest.raises(ValueError, match=r"backend: expected ops from .*got \['gemmm'\] in 'typo'"):
        registered(Backend("typo", "cpu", {"gemmm": {"f32/f32/f32": print}}))
    assert "typo" not in ak.backends.list()
    registered(Backend("collectives-ok", "cpu", {"allreduce": {"f32/f32": print}}))  # collectives are ops too


def test_combination_strings_are_parsed_wherever_a_combination_is_accepted():
    def k(*args, **kwargs):
        pass

    b = Backend("strings", "cpu", {"gemm": {"bf16/bf16/f32": k, ("f16", "f16", "f16"): k}})
    assert b.supports("gemm", "bf16/bf16/f32") and b.supports("gemm", ("bf16", "bf16", "f32"))
    assert b.supports("gemm", " f16 / f16 / f16 ") and not b.supports("gemm", "f32/f32/f32")
    assert not b.supports("gemm", "nonsense")
    assert b.kernel("gemm", "f16/f16/f16") is k
    with pytest.raises(KernelNotFound, match=r"does not implement gemm for f32/f32/f32 \(it has: bf16/bf16/f32, "
                                             r"f16/f16/f16\)"):
        b.kernel("gemm", "f32/f32/f32")
    from aicc_kernels.testing.conformance import run_combo
    from aicc_kernels.testing.cases import get_suite
    assert run_combo(get_suite("gemm"), b, "f32/f32/f32").status == "unsupported"


# -- entry-point discovery --------------------------------------------------------------------

@pytest.fixture
def fake_entry_points(monkeypatch, example):
    """Replaces the installed entry points with the given (name, value) pairs."""
    def install(*pairs):
        eps = [metadata.EntryPoint(name=n, value=v, group=ak.backends.ENTRY_POINT_GROUP) for n, v in pairs]

        def entry_points(**kwargs):
            if kwargs.get("group") == ak.backends.ENTRY_POINT_GROUP:
                return metadata.EntryPoints(eps) if hasattr(metadata, "EntryPoints") else eps
            return real(**kwargs)

        real = metadata.entry_points
        monkeypatch.setattr(metadata, "entry_points", entry_points)
        return ak.backends.reload_entry_points()

    yield install
    monkeypatch.undo()
    ak.backends.reload_entry_points()


def test_entry_point_registers_the_example(fake_entry_points):
    errors = fake_entry_points(("example", "aicc_example_backend:make_backend"))
    assert errors == {}
    assert "example" in ak.backends.list()
    backend = ak.backends.get("example")
    assert backend.supports("gemm", ("f32", "f32", "f32")) and not backend.supports("gemm", ("f16", "f16", "f16"))
    assert not conformance.run("example", ["qgemm"], max_examples=5).failed


def test_broken_plugins_are_reported_not_fatal(fake_entry_points):
    errors = fake_entry_points(("missing", "no_such_module_xyz:make"),
                               ("notabackend", "aicc_example_backend:__version__"),
                               ("shadow", "aicc_example_backend:make_backend_shadowing_cpu"),
                               ("example", "aicc_example_backend:make_backend"))
    assert set(errors) == {"missing", "notabackend", "shadow"}
    assert "ModuleNotFoundError" in errors["missing"] and "no_such_module_xyz" in errors["missing"]
    assert "gave a str, expected an aicc_kernels.backends.Backend" in errors["notabackend"]
    assert "example" in ak.backends.list()  # one broken plugin does not stop the others
    with pytest.raises(ValueError, match="the plugin 'missing' failed to load: ModuleNotFoundError"):
        ak.backends.get("missing")
    import io

    buf = io.StringIO()
    ak.show_config(file=buf)
    assert "plugin 'missing' (entry point group 'aicc_kernels.backends') failed to load" in buf.getvalue()
    assert "example" in buf.getvalue()


def test_entry_point_reusing_a_taken_name_is_refused(fake_entry_points, example, monkeypatch):
    monkeypatch.setattr(example, "as_cpu", lambda: example.make_backend("cpu"), raising=False)
    errors = fake_entry_points(("fake-cpu", "aicc_example_backend:as_cpu"))
    assert "named 'cpu', which is already registered" in errors["fake-cpu"]
    assert ak.backends.get("cpu").description.startswith("C++")


# -- the pytest plugin ------------------------------------------------------------------------

def _run_pytest(tmp_path, *args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(EXAMPLE_SRC), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "aicc_kernels.testing.pytest_plugin", *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_pytest_plugin_runs_the_suites_and_fails_on_a_planted_bug(tmp_path):
    (tmp_path / "conftest.py").write_text(textwrap.dedent("""
        import numpy as np
        import aicc_kernels as ak
        import aicc_example_backend as ex

        class Saturating(ex.WideningQGemm):
            def dot(self, a32, b32):
                acc = np.zeros((a32.shape[0], b32.shape[1]), np.int32)
                for p in range(0, a32.shape[1], 2):
                    acc += np.clip(a32[:, p:p + 2] @ b32[p:p + 2, :], -32768, 32767)
                return acc

        ak.backends.register(ex.make_backend("chip"))
        ak.backends.register(ex.make_backend("chip-buggy", qgemm=Saturating()))
    """))
    (tmp_path / "test_chip.py").write_text(textwrap.dedent("""
        def test_conformance(aicc_conformance):
            aicc_conformance.check()

        def test_own(aicc_backend):
            assert aicc_backend.startswith("chip")
    """))
    good = _run_pytest(tmp_path, "--aicc-backend", "chip", "--aicc-max-examples", "5", "-rs")
    assert good.returncode == 0, good.stdout + good.stderr
    assert f"4 passed, {_surface_size() - 3} skipped" in good.stdout and "unsupported: backend 'chip' has no gemm kernel" in good.stdout
    bad = _run_pytest(tmp_path, "--aicc-backend", "chip-buggy", "--aicc-ops", "qgemm", "--aicc-max-examples", "5")
    assert bad.returncode == 1
    assert "2 failed" in bad.stdout and "elements out of tolerance" in bad.stdout
    none = _run_pytest(tmp_path, "-rs")
    assert none.returncode == 0 and "pass --aicc-backend NAME" in none.stdout


# -- a real install ------------------------------------------------------------------------------

@pytest.mark.slow
def test_installed_example_is_discovered_through_its_entry_point(tmp_path):
    target = tmp_path / "site"

    def pip_install(*extra):
        return subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *extra,
                               "--target", str(target), str(EXAMPLE_SRC.parent)],
                              capture_output=True, text=True, timeout=600)

    # Offline first (needs setuptools + wheel here); else the normal isolated build, which
    # fetches setuptools from the package index.
    pip = pip_install("--no-build-isolation")
    if pip.returncode != 0:
        pip = pip_install()
    if pip.returncode != 0:
        pytest.skip(f"could not build the example package here (no build backend offline, no index?): "
                    f"{pip.stderr.strip().splitlines()[-1] if pip.stderr.strip() else pip.returncode}")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run([sys.executable, "-m", "aicc_kernels.testing", "--backend", "example",
                          "--max-examples", "5", "--report", str(tmp_path / "r.json")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"3 pass, 0 fail, {_surface_size() - 3} unsupported" in run.stdout


def test_unwritten_output_elements_are_caught_by_the_poisoned_out(example, registered):
    """A kernel that returns early for K == 0 leaves out as allocated; the runner hands
    cases a NaN-filled out= so this cannot pass on zero-filled fresh memory."""
    blocked = example.BlockedGemm()

    def skips_empty_k(a, b, c, out, **kw):
        if a.shape[1] == 0:
            return
        blocked(a, b, c, out, **kw)

    registered(Backend("skips-k0", "cpu", {"gemm": {"f32/f32/f32": skips_empty_k}}))
    report = conformance.run("skips-k0", ["gemm"], max_examples=80, fixed=False)
    (bad,) = [r for r in report.results if r.status == "fail"]
    k = bad.failure.case["a"]["shape"][0 if bad.failure.case["trans_a"] else 1]
    assert k == 0


def test_native_loader_refuses_a_library_without_the_descriptor():
    import ctypes.util

    libc = ctypes.util.find_library("c")
    if libc is None:
        pytest.skip("no C library found by ctypes.util.find_library to stand in for a non-backend library")
    with pytest.raises(ValueError, match="path: expected a library exporting aicc_backend_v1"):
        ak.backends.native.load(libc)


def test_qconv2d_padding_with_raw_zero_instead_of_the_zero_point_is_caught(registered):
    """The classic quantized-padding bug: padded taps must hold x_zero_point (so they add
    nothing), not a raw 0. Runs when this build has the conv ops."""
    conv_kernels = pytest.importorskip("aicc_kernels.reference.conv_kernels")
    pytest.importorskip("aicc_kernels.ops.conv")

    def pads_with_raw_zero(x, w, bias, out, *, stride, padding, dilation, groups, layout, **q):
        (top, bottom), (left, right) = padding
        spatial = ((0, 0), (0, 0), (top, bottom), (left, right)) if layout == "NCHW" else \
            ((0, 0), (top, bottom), (left, right), (0, 0))
        conv_kernels.qconv2d_kernel(np.pad(x, spatial), w, bias, out, stride=stride, padding=((0, 0), (0, 0)),
                                    dilation=dilation, groups=groups, layout=layout, **q)

    registered(Backend("buggy-qpad", "cpu", {"qconv2d": {"u8/s8/s32": pads_with_raw_zero}}))
    report = conformance.run("buggy-qpad", ["qconv2d"], max_examples=100)
    (bad,) = [r for r in report.results if r.status == "fail"]
    case = bad.failure.case
    assert bad.dtypes == "u8/s8/s32" and case["x_zero_point"] != 0 and case["padding"] not in (0, "valid")
