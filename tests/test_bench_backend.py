"""aicc-bench gemm / conv --backend NAME measures the plugin beside the built-in kernels."""

import json

import numpy as np
import pytest

import aicc_kernels as ak
from aicc_kernels.backends import Backend


@pytest.fixture
def plugin():
    calls = {"gemm": 0, "qgemm": 0, "conv2d": 0}

    def gemm(a, b, c, out, **kw):
        calls["gemm"] += 1
        out[...] = ak.reference.gemm(a, b, c, **kw, out_dtype=out.dtype)

    def qgemm(a, b, out, **kw):
        calls["qgemm"] += 1
        out[...] = ak.reference.qgemm(a, b, **kw, out_dtype=out.dtype)

    def conv2d(x, w, bias, out, **kw):
        calls["conv2d"] += 1
        out[...] = ak.reference.conv2d(x, w, bias, **kw, out_dtype=out.dtype)

    ak.backends.register(Backend("bench-plugin", "cpu", {"gemm": {"f32/f32/f32": gemm},
                                                         "qgemm": {"u8/s8/s32": qgemm},
                                                         "conv2d": {"f32/f32/f32": conv2d}}), replace=True)
    yield calls
    ak.backends.unregister("bench-plugin")


def test_gemm_bench_measures_the_plugin(plugin):
    from aicc_kernels.bench import gemm

    results = gemm.run(sizes=[(24, 16, 8)], dtypes=("f32", "f16", "u8s8"), threads=(1,), baselines=(), quick=True,
                       backend="bench-plugin")
    mine = [r for r in results if r.impl == "bench-plugin"]
    assert {r.dtype for r in mine} == {"f32", "u8s8s32"} and plugin["gemm"] > 0 and plugin["qgemm"] > 0
    assert all(r.extra["vs_cpu"] > 0 and r.throughput > 0 for r in mine)
    assert "bench-plugin gemm f16/f16/f16" in gemm.absent_peers()  # no f16 kernel: a note, not a crash
    with pytest.raises(ValueError, match="backend: expected one of"):
        gemm.run(sizes=[8], dtypes=("f32",), threads=(1,), baselines=(), quick=True, backend="no-such")


def test_cli_passes_backend_to_gemm_and_conv(plugin, tmp_path, capsys):
    from aicc_kernels.bench import cli

    out = tmp_path / "g.json"
    assert cli.main(["gemm", "--backend", "bench-plugin", "--sizes", "16", "--dtype", "f32", "--threads", "1",
                     "--baselines", "none", "--quick", "--json", str(out)]) == 0
    text = capsys.readouterr()
    assert "--backend ignored" not in text.out + text.err
    rows = json.loads(out.read_text())["results"]
    assert any(r["impl"] == "bench-plugin" for r in rows)
    from aicc_kernels.bench import conv

    results = conv.run(dtypes=("f32",), threads=(1,), baselines=(), quick=True, layers=[conv.LAYERS[0].name],
                       layouts=("NCHW",), repeats=1, backend="bench-plugin")
    assert any(r.impl == "bench-plugin" and r.extra["vs_cpu"] > 0 for r in results) and plugin["conv2d"] > 0


def test_fused_epilogue_line_times_three_variants_of_one_block(tmp_path):
    """benchmarks/conv.py --fused: one row per layer with the fused, unfused (NumPy add+relu)
    and plain times; fused and unfused agree within the conv's error bound (`wrong` == 0)."""
    import importlib.util
    import pathlib

    from aicc_kernels.bench import conv

    rows = conv.fused_epilogue(batch=1, threads=1, repeats=1, layer_name="dw3x3_256@28")
    (row,) = rows
    assert row.op == "conv2d_fused" and row.seconds > 0 and row.wrong == 0
    assert row.extra["unfused_seconds"] > 0 and row.extra["plain_seconds"] > 0
    assert row.extra["vs_unfused"] == row.extra["unfused_seconds"] / row.seconds
    assert "fused epilogue dw3x3_256@28 N=1 NHWC" in conv.fused_summary(rows)
    script = pathlib.Path(__file__).parent.parent / "benchmarks" / "conv.py"
    spec = importlib.util.spec_from_file_location("bench_conv_script", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "conv.json"
    assert mod.main(["--fused", "--batches", "1", "--threads", "1", "--repeats", "1", "--layers", "dw3x3_256@28",
                     "--json", str(out)]) == 0
    assert (tmp_path / "conv_fused.json").exists()
