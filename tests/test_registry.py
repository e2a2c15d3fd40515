"""The CPU kernel registry: every entry this CPU can run is tested directly (edge cases derived
from its tile, k-per-word and blocking, through a test-only binding that runs one entry
whatever the registry would choose), the test settings of conftest.py reach every entry, and
the AICC_ISA / AICC_CPU_FEATURES controls fail loudly on bad values."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest

import aicc_kernels as ak
from aicc_kernels.testing.tolerance import check_gemm, compare_exact

from conftest import CPU_SETTINGS, use_cpu_setting

_ext = pytest.importorskip("aicc_kernels._aicc_cpu", reason="the C++ extension is not built")
BF16 = np.dtype(ml_dtypes.bfloat16)
FLOAT_FAMILIES = {"f32_gemm": np.float32, "bf16_gemm": BF16, "f16_gemm": np.float16}


def entries(family=None, runnable=True):
    return [e for e in _ext.registry()
            if (family is None or e["family"] == family) and (not runnable or e["runnable"])]


def entry_params(families):
    params = []
    for e in _ext.registry():
        if e["family"] not in families:
            continue
        marks = [] if e["runnable"] else [pytest.mark.skip(
            reason=f"this CPU lacks the features of {e['name']} ({e['required']})")]
        params.append(pytest.param(e["family"], e["name"], id=f"{e['family']}-{e['name']}", marks=marks))
    return params


# ------------------------------------------------------------------------- registry shape

def test_every_family_ends_in_a_portable_entry_and_chooses_one_entry():
    fams = {e["family"] for e in _ext.registry()}
    assert {"f32_gemm", "bf16_gemm", "f16_gemm", "int8_gemm", "depthwise", "depthwise_int8", "smallc", "reduce",
            "peak_f32", "peak_bf16", "peak_int8"} <= fams
    for fam in fams:
        rows = [e for e in _ext.registry() if e["family"] == fam]
        assert rows[-1]["required"] == "", f"{fam}: the last entry must need no CPU feature"
        assert sum(e["chosen"] for e in rows) == 1
        chosen = next(e for e in rows if e["chosen"])
        # The choice is the first entry whose features are all active.
        active = set(_ext.active_features().split())
        first = next(e for e in rows if set(e["required"].split()) <= active)
        assert chosen["name"] == first["name"]


def test_test_settings_reach_every_runnable_entry():
    """conftest's CPU settings (the `backend` fixture of every op test) select every entry this
    CPU can run in every family, so every hypothesis test runs on every such entry."""
    reached = set()
    for _, level, mask in CPU_SETTINGS:
        with use_cpu_setting(level, mask):
            reached |= {(e["family"], e["name"]) for e in _ext.registry() if e["chosen"]}
    runnable = {(e["family"], e["name"]) for e in entries()}
    assert runnable <= reached, f"entries no test setting selects: {sorted(runnable - reached)}"


def test_bf16_without_a_bf16_dot_product_runs_the_f32_kernel():
    """Masking the bf16 dot product moves bf16 GEMM to the f32 entries (inputs widened exactly)."""
    x86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "i386")
    with use_cpu_setting(_ext.active_isa(), "-avx512_bf16,-amx" if x86 else "-arm_bf16"):
        chosen = ak._config.kernels()["bf16_gemm"]
        assert chosen == ak._config.kernels()["f32_gemm"]
    assert ak._config.kernels()["f16_gemm"] == ak._config.kernels()["f32_gemm"]  # f16 never becomes bf16


def test_show_config_names_the_chosen_kernels(capsys):
    ak.show_config()
    out = capsys.readouterr().out
    kernels = ak._config.kernels()
    assert f"bf16_gemm={kernels['bf16_gemm']}" in out and f"int8_gemm={kernels['int8_gemm']}" in out


# ------------------------------------------------------------------------- float GEMM entries

def _float_dims(e):
    """m, n, k around the entry's tile and blocking: 1, tile-1, tile, tile+1, 2*tile+1; k also
    around k-per-word and one and two kc blocks (the kc block boundary and its word rounding)."""
    b = _ext.registry_entry_blocking(e["family"], e["name"])
    mr, nr, kpw, kc = b["mr"], b["nr"], b["k_per_word"], b["kc"]
    ms = sorted({1, mr - 1, mr, mr + 1, 2 * mr + 1} - {0})
    ns = sorted({1, nr - 1, nr, nr + 1, 2 * nr + 1} - {0})
    ks = sorted({1, kpw, kpw + 1, 2 * kpw + 1, kc - 1, kc, kc + 1, 2 * kc + 1} - {0})
    return ms, ns, ks, b


@pytest.mark.parametrize("family, name", entry_params(FLOAT_FAMILIES))
def test_float_entry_edges(family, name, rng):
    e = next(x for x in _ext.registry() if x["family"] == family and x["name"] == name)
    dtype = FLOAT_FAMILIES[family]
    ms, ns, ks, _ = _float_dims(e)
    cases = [(m, n, ks[len(ks) // 2]) for m in ms for n in ns] + [(ms[-1], ns[-1], k) for k in ks]
    for m, n, k in cases:
        a = rng.standard_normal((m, k)).astype(dtype)
        b = rng.standard_normal((k, n)).astype(dtype)
        # Strided out: a view into a wider buffer whose other columns must stay untouched.
        buf = np.full((m, n + 5), 7.0, np.float32)
        out = buf[:, 2:2 + n]
        _ext._gemm_entry(family, name, a, b, out)
        ref = ak.reference.matmul(a, b, out_dtype=np.float32)
        bad = check_gemm(out, ref, a, b)
        assert bad is None, f"{name} m={m} n={n} k={k}: {bad}"
        assert (buf[:, :2] == 7.0).all() and (buf[:, 2 + n:] == 7.0).all(), f"{name}: wrote outside out"


@pytest.mark.parametrize("family, name", entry_params(FLOAT_FAMILIES))
def test_float_entry_transposed_operands_bias_and_gelu(family, name, rng):
    """Column-major A and B (the packers' other vectorized layouts) and the fused epilogue."""
    e = next(x for x in _ext.registry() if x["family"] == family and x["name"] == name)
    dtype = FLOAT_FAMILIES[family]
    ms, ns, ks, _ = _float_dims(e)
    m, n, k = ms[-1], ns[-1], ks[-1]
    a = np.asfortranarray(rng.standard_normal((m, k)).astype(dtype))
    b = np.asfortranarray(rng.standard_normal((k, n)).astype(dtype))
    bias = rng.standard_normal(n).astype(np.float32)
    out = np.empty((m, n), np.float32)
    _ext._gemm_entry(family, name, a, b, out, bias, 2)
    ref = ak.reference.gemm(a, b, bias=bias, activation="gelu", out_dtype=np.float32)
    bad = check_gemm(out, ref, a, b, bias=bias, activation="gelu")
    assert bad is None, f"{name}: {bad}"


@pytest.mark.parametrize("family, name", entry_params({"bf16_gemm"}))
def test_bf16_entry_nonfinite_and_extremes(family, name):
    """NaN and inf propagate as in the reference; the largest bf16 values do not overflow where
    the f32 sum does not."""
    big = float(ml_dtypes.finfo(ml_dtypes.bfloat16).max)
    a = np.array([[1.0, np.nan, 2.0], [np.inf, 1.0, 0.0], [big, 1.0, -1.0]], dtype=BF16)
    b = np.array([[1.0, 0.0], [2.0, 1.0], [0.0, -1.0]], dtype=BF16)
    out = np.empty((3, 2), np.float32)
    _ext._gemm_entry(family, name, a, b, out)
    ref = ak.reference.matmul(a, b, out_dtype=np.float32)
    assert check_gemm(out, ref, a, b) is None
    assert np.isnan(out[0]).all() and out[1, 0] == np.inf


def test_bf16_dot_product_reads_subnormal_inputs_as_zero():
    """The documented difference (docs/SEMANTICS.md): vdpbf16ps treats bf16 subnormal inputs as
    zero. The f32 entries keep them. The tolerance adds exactly the dropped products."""
    name = "bf16_12x32_avx512bf16"
    e = next((x for x in _ext.registry() if x["name"] == name), None)
    if e is None or not e["runnable"]:
        pytest.skip("this CPU has no AVX512_BF16 (vdpbf16ps)")
    tiny = np.array([[2.0 ** -130]], dtype=BF16)  # a bf16 subnormal
    b = np.array([[2.0 ** 100]], dtype=BF16)
    out = np.empty((1, 1), np.float32)
    _ext._gemm_entry("bf16_gemm", name, tiny, b, out)
    assert out[0, 0] == 0.0
    _ext._gemm_entry("bf16_gemm", "f32_12x32_avx512" if e["runnable"] else "f32_4x8_portable", tiny, b, out)
    assert out[0, 0] == np.float32(2.0 ** -30)
    ref = ak.reference.matmul(tiny, b, out_dtype=np.float32)
    assert check_gemm(np.zeros((1, 1), np.float32), ref, tiny, b) is None  # within the stated rule


def test_bf16_pair_entry_refuses_other_dtypes():
    rows = [e for e in entries("bf16_gemm") if e["k_per_word"] == 2]
    if not rows:
        pytest.skip("no bf16-pair entry runs on this CPU")
    a = np.ones((2, 2), np.float32)
    with pytest.raises(ValueError, match="a:"):
        _ext._gemm_entry("bf16_gemm", rows[0]["name"], a, a, np.empty((2, 2), np.float32))


# ------------------------------------------------------------------------- INT8 entries

@pytest.mark.parametrize("family, name", entry_params({"int8_gemm"}))
def test_int8_entry_edges_bit_exact(family, name, rng):
    e = next(x for x in _ext.registry() if x["family"] == family and x["name"] == name)
    mr, nr, kpw = e["mr"], e["nr"], e["k_per_word"]
    ms = sorted({1, mr - 1, mr, mr + 1, 2 * mr + 1})
    ns = sorted({1, nr - 1, nr, nr + 1, 2 * nr + 1})
    ks = sorted({1, kpw - 1, kpw, kpw + 1, 257, 1024 + 3} - {0})
    for a_dtype, za, zb in [(np.uint8, 128, 0), (np.int8, 0, 0), (np.uint8, 255, -128), (np.int8, -128, 127)]:
        for m, n, k in [(m, n, 37) for m in ms for n in ns] + [(ms[-1], ns[-1], k) for k in ks]:
            info = np.iinfo(a_dtype)
            a = rng.integers(info.min, info.max + 1, (m, k)).astype(a_dtype)
            b = rng.integers(-128, 128, (k, n)).astype(np.int8)
            a[0, 0], b[0, 0] = info.min, -128  # the extremes, every time
            out = np.empty((m, n), np.int32)
            _ext._qgemm_entry(name, a, b, out, za, zb)
            ref = ak.reference.qgemm(a, b, a_zero_point=za, b_zero_point=zb)
            bad = compare_exact(out, ref)
            assert bad is None, f"{name} {np.dtype(a_dtype).name} za={za} zb={zb} m={m} n={n} k={k}: {bad}"


def test_entry_the_cpu_cannot_run_is_refused():
    rows = [e for e in _ext.registry() if not e["runnable"]]
    if not rows:
        pytest.skip("this CPU runs every registry entry")
    e = rows[0]
    a = np.ones((2, 2), np.float32)
    with pytest.raises(TypeError, match="lacks"):
        if e["family"] == "int8_gemm":
            _ext._qgemm_entry(e["name"], a.astype(np.uint8), a.astype(np.int8), np.empty((2, 2), np.int32))
        else:
            _ext._gemm_entry(e["family"], e["name"], a, a, np.empty((2, 2), np.float32))


def test_unknown_entry_name_names_the_argument():
    a = np.ones((2, 2), np.float32)
    with pytest.raises(ValueError, match="name"):
        _ext._gemm_entry("f32_gemm", "f32_99x99_nonsense", a, a, np.empty((2, 2), np.float32))
    with pytest.raises(ValueError, match="family"):
        _ext._gemm_entry("f64_gemm", "f32_4x8_portable", a, a, np.empty((2, 2), np.float32))


# ------------------------------------------------------------------------- controls

def _import_with(env: dict) -> subprocess.CompletedProcess:
    code = "import aicc_kernels as ak; print(ak._config.kernels()['bf16_gemm'], ak._config.kernels()['f32_gemm'])"
    return subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("var, value, needle", [
    ("AICC_ISA", "bogus", "AICC_ISA"),
    ("AICC_ISA", "AVX2", "AICC_ISA"),
    ("AICC_CPU_FEATURES", "-avx512bf17", "AICC_CPU_FEATURES"),
    ("AICC_CPU_FEATURES", "-avx2,turbo", "AICC_CPU_FEATURES"),
])
def test_bad_control_values_fail_at_import_naming_the_variable(var, value, needle):
    r = _import_with({var: value})
    assert r.returncode != 0
    assert needle in r.stderr and "ValueError" in r.stderr
    assert "expected" in r.stderr  # the accepted values are listed


def test_requiring_a_feature_the_cpu_lacks_is_an_error():
    info = _ext.cpu_info()
    missing = [f for f in ("amx_int8", "avx512_fp16", "avx512_bf16", "avx2", "neon") if not info.get(f)]
    if not missing:
        pytest.skip("this CPU has every feature tried")
    r = _import_with({"AICC_CPU_FEATURES": f"+{missing[0]}"})
    assert r.returncode != 0 and "AICC_CPU_FEATURES" in r.stderr and "lacks" in r.stderr


def test_a_feature_of_another_architecture_is_an_error():
    """An aarch64 feature on x86-64 (or the reverse), even as a mask: a clear error, not a no-op."""
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        spec, needle = "-dotprod", "an aarch64 feature"
    elif machine in ("aarch64", "arm64"):
        spec, needle = "-avx2", "an x86-64 feature"
    else:
        pytest.skip(f"no kernels for another architecture than {machine}")
    r = _import_with({"AICC_CPU_FEATURES": spec})
    assert r.returncode != 0 and "AICC_CPU_FEATURES" in r.stderr and needle in r.stderr, r.stderr


def test_isa_cap_above_the_cpu_is_an_error():
    order = ["portable", "avx2", "avx512", "amx"]
    detected = _ext.detected_isa()
    if detected == "amx":
        pytest.skip("nothing above amx")
    r = _import_with({"AICC_ISA": order[order.index(detected) + 1]})
    assert r.returncode != 0 and "AICC_ISA" in r.stderr


def test_masks_move_the_choice_in_a_fresh_process():
    r = _import_with({"AICC_CPU_FEATURES": "-avx512_bf16", "AICC_ISA": "portable"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["f32_4x8_portable", "f32_4x8_portable"]


def test_set_cpu_features_rejects_garbage_and_keeps_the_previous_mask():
    before = _ext.masked_features()
    with pytest.raises(ValueError, match="features"):
        _ext.set_cpu_features("-not_a_feature")
    assert _ext.masked_features() == before
    with pytest.raises(TypeError, match="spec"):
        ak._config.set_cpu_features(3)
