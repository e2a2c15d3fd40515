"""aicc-bench's contract: argument handling, output formats (JSON schema, CSV columns, PNG),
the --min-efficiency and mismatch exit codes, absent baselines reported, unavailable
benchmarks explained, and a 2-rank cluster run where the collectives exist. Sizes are
tiny and no number is asserted (timings on a shared 2-core machine are noise)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import types

import pytest

import aicc_kernels as ak
from aicc_kernels.bench import baselines, cli, report
from aicc_kernels.bench.record import make_result

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FAST = ["--peak-seconds", "0.02"]
RESULT_KEYS = {"op", "impl", "dtype", "shape", "threads", "seconds", "work", "unit", "throughput", "wrong",
               "samples", "extra", "pct_of_peak", "peak_kind", "ratios"}
DOC_KEYS = {"schema", "schema_version", "command", "argv", "created_utc", "machine", "peak", "baselines",
            "results", "unavailable", "min_efficiency", "exit_code"}

needs_ext = pytest.mark.skipif(not hasattr(ak._config._ext, "peak_probe_fp32_fma") if ak._config._ext else True,
                               reason="the C++ extension (with the peak probes) is not built")


HAVE_MATPLOTLIB = cli._have_matplotlib()


def _plot_args(path):
    """--plot where matplotlib (the [bench] extra) is installed; the README's test command
    installs only [test], and the plots' absence is tested on its own below."""
    return ["--plot", str(path)] if HAVE_MATPLOTLIB else []


def _png(path):
    with open(path, "rb") as f:
        head = f.read(8)
    return head == PNG_MAGIC and os.path.getsize(path) > 1000


# ------------------------------------------------------------------------- arguments

@pytest.mark.parametrize("text, expected", [
    ("256", [256]), ("1,7,13", [1, 7, 13]), ("64:512", [64, 128, 256, 512]),
    ("3x5x7,16", [(3, 5, 7), 16]), ("5:5", [5]),
])
def test_parse_sizes(text, expected):
    assert cli.parse_sizes(text) == expected


@pytest.mark.parametrize("text", ["0", "-4", "abc", "512:64", "3x0x2", ",", "1.5"])
def test_parse_sizes_rejects(text):
    with pytest.raises(cli.UsageError, match="--sizes"):
        cli.parse_sizes(text)


@pytest.mark.parametrize("argv, needle", [
    (["gemm", "--sizes", "0"], "--sizes"),
    (["gemm", "--threads", "0"], "--threads"),
    (["gemm", "--threads", "two"], "--threads"),
    (["gemm", "--baselines", "numpy,blas9000"], "--baselines"),
    (["gemm", "--plot", "out.svg"], "--plot"),
    (["gemm", "--min-efficiency", "-5"], "--min-efficiency"),
    (["gemm", "--dtype", ","], "--dtype"),
])
def test_usage_errors_exit_2_with_message(argv, needle, capsys):
    assert cli.main(argv) == cli.EXIT_USAGE
    assert needle in capsys.readouterr().err


def test_help_and_unknown_command(capsys):
    assert cli.main(["--help"]) == 0
    assert "aicc-bench" in capsys.readouterr().out
    assert cli.main(["frobnicate"]) == 2


def test_options_before_subcommand_are_kept():
    args = cli._finish_args(cli.build_parser().parse_args(["--json", "x.json", "gemm", "--sizes", "8"]))
    assert args.json == "x.json" and args.sizes_list == [8] and args.command == "gemm"


def test_baseline_parse():
    assert baselines.parse("numpy, torch,numpy") == ["numpy", "torch"]
    assert baselines.parse("none") == []
    assert baselines.parse(None) == list(baselines.DEFAULT)
    assert baselines.status(["gloo"], "gemm")["gloo"]["available"] is False


# ------------------------------------------------------------------------- a fake sweep module

def _fake_module(monkeypatch, rows_fn, name="aicc_kernels.bench._test_fake_gemm"):
    mod = types.ModuleType(name)
    seen = {}

    def run(sizes=None, dtypes=None, threads=(1, 2), baselines=(), check=True, quick=False):
        seen.update(sizes=sizes, dtypes=dtypes, threads=threads, baselines=baselines, check=check, quick=quick)
        return rows_fn(baselines)

    mod.run = run
    monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setitem(cli.MODULES, "gemm", (name, "the fake GEMM benchmark"))
    return seen


def _rows(throughput=1.0, wrong=0):
    def fn(peers):
        out = [make_result("gemm", "aicc", "f32", "M=N=K=8", 1, [1e-3], 2 * 8 ** 3, "GFLOPS", wrong, size=8)]
        out[0].throughput = throughput
        for p in peers:
            r = make_result("gemm", p, "f32", "M=N=K=8", 1, [2e-3], 2 * 8 ** 3, "GFLOPS", 0, size=8)
            r.throughput = throughput / 2
            out.append(r)
        return out
    return fn


def _absent_onnxruntime(monkeypatch):
    real = baselines.probe

    def probe(name):
        if name == "onnxruntime":
            return {"available": False, "version": None, "reason": "onnxruntime is not installed"}
        return real(name)
    monkeypatch.setattr(baselines, "probe", probe)


@needs_ext
def test_sweep_outputs_json_csv_plot_and_absent_baselines(monkeypatch, tmp_path, capsys):
    seen = _fake_module(monkeypatch, _rows())
    _absent_onnxruntime(monkeypatch)
    j, c, p = tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "r.png"
    rc = cli.main(["gemm", "--sizes", "8", "--dtype", "f32", "--threads", "1", "--baselines",
                   "numpy,onnxruntime,gloo", "--json", str(j), "--csv", str(c)] + _plot_args(p) + FAST)
    out = capsys.readouterr().out
    assert rc == cli.EXIT_OK
    assert seen["sizes"] == [8] and seen["dtypes"] == ["f32"] and seen["threads"] == (1,)
    assert seen["baselines"] == ("numpy",)  # only installed, applicable peers are measured
    assert "baseline onnxruntime: absent (onnxruntime is not installed)" in out
    assert "baseline gloo: absent (not applicable to gemm)" in out
    doc = json.loads(j.read_text())
    assert DOC_KEYS <= set(doc) and doc["schema"] == "aicc-bench/1" and doc["schema_version"] == 1
    assert doc["baselines"]["onnxruntime"] == {"available": False, "version": None, "measured": False,
                                               "reason": "onnxruntime is not installed"}
    assert doc["baselines"]["numpy"]["measured"] is True
    ours = [r for r in doc["results"] if r["impl"] == "aicc"]
    assert len(ours) == 1 and RESULT_KEYS <= set(ours[0])
    assert ours[0]["ratios"]["numpy"] == pytest.approx(2.0)
    assert ours[0]["ratios"]["onnxruntime"] is None
    assert ours[0]["pct_of_peak"] is not None and ours[0]["peak_kind"] == "fp32_gflops"
    assert set(doc["peak"]["fp32_gflops"]) == {"1"}
    with open(c) as f:
        table = list(csv.reader(f))
    assert table[0] == report.CSV_COLUMNS + ["ratio_numpy", "ratio_onnxruntime", "ratio_gloo"]
    assert len(table) == 3 and {row[1] for row in table[1:]} == {"aicc", "numpy"}
    assert _png(p) if HAVE_MATPLOTLIB else not p.exists()


@needs_ext
@needs_ext
def test_installed_baseline_without_rows_is_reported(monkeypatch, capsys):
    _fake_module(monkeypatch, lambda peers: _rows()(()))  # the module ignores its peers
    assert cli.main(["gemm", "--threads", "1", "--baselines", "numpy"] + FAST) == cli.EXIT_OK
    assert "baseline numpy: absent (installed, but gemm measured no numpy rows" in capsys.readouterr().out


@needs_ext
def test_min_efficiency_gate(monkeypatch, tmp_path):
    _fake_module(monkeypatch, _rows(throughput=1e-9))
    j = tmp_path / "g.json"
    base = ["gemm", "--threads", "1", "--baselines", "none", "--json", str(j)] + FAST
    assert cli.main(base + ["--min-efficiency", "1"]) == cli.EXIT_BELOW_MIN
    doc = json.loads(j.read_text())
    assert doc["exit_code"] == cli.EXIT_BELOW_MIN and len(doc["min_efficiency"]["failed"]) == 1
    assert cli.main(base + ["--min-efficiency", "0"]) == cli.EXIT_OK
    assert cli.main(base) == cli.EXIT_OK


@needs_ext
def test_mismatch_exits_1(monkeypatch, capsys):
    _fake_module(monkeypatch, _rows(wrong=3))
    assert cli.main(["gemm", "--threads", "1", "--baselines", "none"] + FAST) == cli.EXIT_MISMATCH
    assert "MISMATCH gemm f32" in capsys.readouterr().out


def test_module_not_in_build_is_explained(monkeypatch, capsys):
    monkeypatch.setitem(cli.MODULES, "conv", ("aicc_kernels.bench._no_such_module", "the convolution benchmark"))
    assert cli.main(["conv", "--baselines", "none"]) == cli.EXIT_UNAVAILABLE
    assert "is not available in this build" in capsys.readouterr().out


def test_module_with_broken_import_is_explained(monkeypatch, tmp_path, capsys):
    name = "_aicc_test_broken_bench"
    (tmp_path / f"{name}.py").write_text("from aicc_kernels import no_such_op\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli.MODULES, "conv", (name, "the convolution benchmark"))
    assert cli.main(["conv", "--baselines", "none"]) == cli.EXIT_UNAVAILABLE
    assert "cannot be imported" in capsys.readouterr().out


@needs_ext
def test_gemm_sizes_mxnxk_reach_the_module_as_m_k_n(monkeypatch):
    """aicc-bench gemm --sizes 128x3072x768 is M=128, N=3072, K=768 (the BERT shape), and
    bench/gemm.run takes (M, K, N)."""
    seen = _fake_module(monkeypatch, _rows())
    assert cli.main(["gemm", "--sizes", "128x3072x768,16", "--threads", "1", "--baselines", "none"] + FAST) == 0
    assert seen["sizes"] == [(128, 768, 3072), 16]


def test_plot_without_matplotlib_is_a_usage_error_naming_the_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    rc = cli.main(["gemm", "--sizes", "8", "--plot", str(tmp_path / "x.png")] + FAST)
    err = capsys.readouterr().err
    assert rc == cli.EXIT_USAGE
    assert "--plot" in err and "[bench]" in err and "Traceback" not in err
    assert not (tmp_path / "x.png").exists()


# ------------------------------------------------------------------------- real commands

@needs_ext
def test_peak_command(tmp_path):
    j, c, p = tmp_path / "p.json", tmp_path / "p.csv", tmp_path / "p.png"
    rc = cli.main(["peak", "--threads", "1", "--seconds", "0.02", "--membw-mib", "4", "--json", str(j),
                   "--csv", str(c)] + _plot_args(p))
    assert rc == cli.EXIT_OK
    doc = json.loads(j.read_text())
    assert doc["command"] == "peak" and doc["peak"]["path"] in ("avx512", "avx2", "portable")
    assert {r["shape"] for r in doc["results"]} == {"fp32_fma", "bf16_dot", "int8_madd", "stream_copy 4MiB x3",
                                                    "stream_triad 4MiB x3"}
    assert all(r["throughput"] > 0 and r["extra"]["threads_used"] == 1 for r in doc["results"])
    assert doc["peak"]["gpu"]["present"] in (True, False)
    assert _png(p) if HAVE_MATPLOTLIB else not p.exists()


@needs_ext
def test_peak_probe_arguments_are_checked():
    from aicc_kernels import _aicc_cpu

    with pytest.raises(ValueError, match="threads: expected"):
        _aicc_cpu.peak_probe_fp32_fma(0, 0.01, 1)
    with pytest.raises(ValueError, match="seconds: expected"):
        _aicc_cpu.peak_probe_int8_madd(1, 0.0, 1)
    with pytest.raises(ValueError, match="bytes_per_array: expected"):
        _aicc_cpu.peak_probe_membw(1, 1000, 1)


@needs_ext
@pytest.mark.parametrize("isa", ["avx512", "avx2", "portable"])
def test_peak_probe_follows_the_isa_path(isa):
    """Each probe runs the route the kernels take on that ISA path (f32: 512-bit FMA on avx512,
    256-bit on avx2; INT8: vpdpbusd with AVX-512 VNNI, vpmaddwd on avx2; plain C++ on portable)."""
    from aicc_kernels import _aicc_cpu

    order = ["portable", "avx2", "avx512"]
    if order.index(isa) > order.index(_aicc_cpu.detected_isa()):
        pytest.skip(f"this CPU/build has no {isa} path (detected {_aicc_cpu.detected_isa()})")
    prev = _aicc_cpu.active_isa()
    _aicc_cpu.set_isa(isa)
    try:
        r = _aicc_cpu.peak_probe_fp32_fma(1, 0.01, 1)
        q = _aicc_cpu.peak_probe_int8_madd(1, 0.01, 1)
    finally:
        _aicc_cpu.set_isa(prev)
    expect_f32 = isa
    expect_int8 = {"portable": "portable", "avx2": "avx2",
                   "avx512": "avx512vnni" if _aicc_cpu.cpu_info()["avx512_vnni"] else "avx2"}[isa]
    assert (r["path"], q["path"]) == (expect_f32, expect_int8)
    assert r["work"] > 0 and q["work"] > 0 and len(r["seconds"]) == len(r["cpu_seconds"]) == 1


@needs_ext
def test_selfcheck_tiny(tmp_path, capsys):
    j, c, p = tmp_path / "s.json", tmp_path / "s.csv", tmp_path / "s.png"
    rc = cli.main(["--size", "24", "--json", str(j), "--csv", str(c)] + _plot_args(p) + FAST)
    out = capsys.readouterr().out
    assert rc == cli.EXIT_OK, out
    assert "self-check passed" in out
    doc = json.loads(j.read_text())
    assert doc["command"] == "selfcheck"
    combos = {(r["op"], r["dtype"]) for r in doc["results"]}
    assert {("gemm", "f32"), ("gemm", "f16"), ("gemm", "bf16"), ("qgemm", "u8s8s32"), ("qgemm", "s8s8s32")} <= combos
    assert all(r["wrong"] == 0 for r in doc["results"])
    with open(c) as f:
        assert next(csv.reader(f)) == report.CSV_COLUMNS
    assert _png(p) if HAVE_MATPLOTLIB else not p.exists()
    # Every op of the build is self-checked (none listed as unavailable).
    ops = {op for op, _ in combos}
    assert {"conv2d", "qconv2d", "allreduce"} <= ops and not doc["unavailable"]


def test_console_script_entry_point():
    r = subprocess.run([sys.executable, "-m", "aicc_kernels.bench", "--help"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and "cluster" in r.stdout


# ------------------------------------------------------------------------- cluster

def test_cluster_two_ranks(tmp_path):
    j = tmp_path / "c.json"
    cmd = [sys.executable, "-m", "aicc_kernels.launch", "-n", "2", "-m", "aicc_kernels.bench", "cluster",
           "--quick", "--params", "20000", "--gemm-size", "48", "--steps", "2", "--compression", "none,bf16,int8",
           "--baselines", "none", "--peak-seconds", "0.02", "--overlap", "--json", str(j)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(j.read_text())
    cl = doc["cluster"]
    assert cl["ranks"] == 2 and len(cl["per_rank_gflops"]) == 2
    assert [s["compression"] for s in cl["steps"]] == ["none", "bf16", "int8"]
    assert all(s["compute_s"] > 0 and s["comm_s"] > 0 and s["wait_s"] >= 0 for s in cl["steps"])
    for s in cl["steps"]:
        assert len(s["per_rank"]) == 2 and all(len(ranks) == 2 for ranks in s["per_rank"])
        for one in s["per_step"]:  # the parts of every step add up to it
            assert one["step"] == pytest.approx(one["compute"] + one["sync"] + one["comm"], rel=1e-9)
    assert [o["buckets"] for o in cl["overlap"]] == [4, 4, 4]
    assert all(o["step_s"] >= o["compute_s"] > 0 and o["exposed_comm_s"] >= 0 for o in cl["overlap"])
    # % of peak: the aggregate against the peak of both ranks probed at once, never above 100.
    agg = next(x for x in doc["results"] if x["extra"].get("phase") == "concurrent")
    assert agg["pct_of_peak"] == pytest.approx(100 * agg["throughput"] / cl["peak"]["aggregate_fp32_gflops"])
    assert all(x["pct_of_peak"] is None or x["pct_of_peak"] <= 100 for x in doc["results"])


def test_gpu_properties_through_cupy(monkeypatch):
    """The CuPy route, with a stand-in runtime (this machine has no GPU): fields are read and
    the theoretical bandwidth is derived from the memory clock and bus width."""
    from aicc_kernels.bench import peak

    props = {"name": b"Fake H100", "major": 9, "minor": 0, "multiProcessorCount": 132, "clockRate": 1980000,
             "totalGlobalMem": 80 * 2**30, "memoryClockRate": 2619000, "memoryBusWidth": 5120}
    runtime = types.SimpleNamespace(getDeviceCount=lambda: 1, getDeviceProperties=lambda i: props)
    monkeypatch.setitem(sys.modules, "cupy", types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=runtime)))
    g = peak.gpu_properties()
    assert g["present"] and g["count"] == 1
    d = g["devices"][0]
    assert d["name"] == "Fake H100" and d["compute_capability"] == "9.0" and d["multiprocessors"] == 132
    assert d["memory_bandwidth_gbs_theoretical"] == pytest.approx(2 * 2619e6 * 5120 / 8 / 1e9)


def test_gpu_absent_is_reported(monkeypatch):
    from aicc_kernels.bench import peak

    monkeypatch.setitem(sys.modules, "cupy", None)
    monkeypatch.setattr(peak.os.path, "exists", lambda p: False)
    g = peak.gpu_properties()
    assert g["present"] is False and "cupy" in g["reason"]


@needs_ext
def test_module_that_raises_is_reported(monkeypatch, capsys):
    def boom(peers):
        raise RuntimeError("kernel exploded")
    _fake_module(monkeypatch, boom)
    assert cli.main(["gemm", "--threads", "1", "--baselines", "none"] + FAST) == cli.EXIT_ERROR
    assert "run() raised RuntimeError: kernel exploded" in capsys.readouterr().out


def test_dtype_aliases():
    assert cli.map_dtypes("gemm", ["int8", "fp32", "u8s8"]) == ["u8s8", "s8s8", "f32"]
    assert cli.map_dtypes("conv", ["u8s8", "s8s8", "bfloat16"]) == ["int8", "bf16"]
    assert cli.map_dtypes("gemm", None) is None


def _mpi_reason():
    import shutil

    if shutil.which("mpirun") is None:
        return "no mpirun on PATH"
    if baselines.probe("mpi")["available"] is False:
        return baselines.probe("mpi")["reason"]
    return None


@pytest.mark.mpi
@pytest.mark.skipif(_mpi_reason() is not None, reason=str(_mpi_reason()))
def test_cluster_two_ranks_under_mpirun(tmp_path):
    j = tmp_path / "m.json"
    cmd = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-n", "2", sys.executable, "-m", "aicc_kernels.bench",
           "cluster", "--quick", "--params", "20000", "--gemm-size", "48", "--steps", "2", "--compression", "none,int8",
           "--baselines", "mpi", "--peak-seconds", "0.02", "--json", str(j)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(j.read_text())
    assert doc["cluster"]["ranks"] == 2 and doc["cluster"]["kind"] == "mpi"
    assert doc["baselines"]["mpi"]["measured"] is True
    assert any(r["impl"] == "mpi" and r["op"] == "allreduce" for r in doc["results"])


@needs_ext
def test_resnet50_falls_back_to_the_conv_layer_set(monkeypatch, capsys):
    seen = {}
    conv = types.ModuleType("aicc_kernels.bench._test_fake_conv")
    conv.LAYERS = (types.SimpleNamespace(name="3x3_64-64@56"), types.SimpleNamespace(name="dw3x3_256@28"))

    def run(dtypes=None, threads=None, baselines=(), check=True, quick=False, layers=None):
        seen["layers"] = layers
        return []
    conv.run = run
    monkeypatch.setitem(sys.modules, conv.__name__, conv)
    monkeypatch.setitem(cli.MODULES, "conv", (conv.__name__, "the fake conv benchmark"))
    monkeypatch.setitem(cli.MODULES, "resnet50", ("aicc_kernels.bench._no_resnet50", "the ResNet-50 benchmark"))
    assert cli.main(["resnet50", "--threads", "1", "--baselines", "none"] + FAST) == cli.EXIT_OK
    assert seen["layers"] == ["3x3_64-64@56"]
    assert "the ResNet-50 layers of" in capsys.readouterr().out


def test_pct_of_peak_only_for_matching_units():
    peak = {"fp32_gflops": {1: 100.0}, "int8_gops": {1: 200.0}, "copy_gbs": {1: 10.0}}
    rows = [make_result("gemm", "aicc", "f32", "M=N=K=8", 1, [1.0], 50e9, "GFLOPS"),
            make_result("resnet50", "aicc", "f32", "N=1", 1, [1.0], 3.0, "img/s"),
            make_result("qgemm", "aicc", "u8s8s32", "M=N=K=8", 1, [1.0], 100e9, "GOPS"),
            make_result("allreduce", "aicc", "f32", "4MiB x2 ranks", 2, [1.0], 5e9, "GB/s")]
    pct = [r.pct_of_peak for r in report.derive(rows, peak, [])]
    assert pct == [pytest.approx(50.0), None, pytest.approx(50.0), pytest.approx(50.0)]


def test_bf16_rows_divide_by_the_bf16_peak():
    """A vdpbf16ps GEMM does twice the f32 FMA rate: its % is of the bf16 peak, never > 100 %
    of the f32 one by construction."""
    peak = {"fp32_gflops": {1: 100.0}, "bf16_gflops": {1: 200.0}, "int8_gops": {1: 400.0}, "copy_gbs": {1: 10.0}}
    rows = [make_result("gemm", "aicc", "bf16", "M=N=K=8", 1, [1.0], 150e9, "GFLOPS"),
            make_result("gemm", "aicc", "f16", "M=N=K=8", 1, [1.0], 50e9, "GFLOPS")]
    derived = report.derive(rows, peak, [])
    assert [r.pct_of_peak for r in derived] == [pytest.approx(75.0), pytest.approx(50.0)]
    assert [r.peak_kind for r in derived] == ["bf16_gflops", "fp32_gflops"]


def test_bf16_peak_probe_follows_the_bf16_kernel():
    from aicc_kernels import _aicc_cpu

    r = _aicc_cpu.peak_probe_bf16_dot(1, 0.01, 1)
    chosen = ak._config.kernels()["peak_bf16"]
    assert r["work"] > 0
    assert r["path"] == ("avx512bf16" if chosen == "bf16_dot_avx512bf16" else _aicc_cpu.peak_probe_fp32_fma(1, 0.01, 1)["path"])
