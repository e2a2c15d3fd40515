"""bf16 on pair words (docs/CONV.md, "bf16"): the vectorized A-panel packer of the
AVX512_BF16 GEMM entry (12-row panels transposed 8 words at a time, the rest word by word),
the NCHW stem on pair words, and the bf16 tile epilogue — each against the reference on every
registry entry the backend fixture forces (the f32 entries when AVX512_BF16 is masked), with
strided and oddly aligned operands, NaN/Inf and zero-size shapes."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import aicc_kernels as ak
from aicc_kernels import _dtypes
from aicc_kernels.testing.tolerance import check_gemm

BF16 = _dtypes.bfloat16


def _host_only(backend):
    if backend != "cpu" and not str(backend).startswith("cpu"):
        pytest.skip("these paths are CPU kernels; other backends run the generic tests")


@settings(deadline=None, max_examples=40)
@given(m=st.sampled_from([0, 1, 11, 12, 13, 24, 25, 37, 150]),
       k=st.sampled_from([0, 1, 2, 15, 16, 17, 31, 33, 64, 511, 512, 513, 1030]),
       n=st.sampled_from([1, 31, 32, 33, 64]),
       col0=st.integers(0, 3), pad=st.integers(0, 5), seed=st.integers(0, 2**16))
def test_bf16_matmul_row_major_a_any_offset_and_row_stride(backend, m, k, n, col0, pad, seed):
    """A is a view into a wider bf16 buffer: rows `k + pad + col0` apart, starting `col0`
    elements in (odd offsets split the 32-bit pair words across loads); k around the 8-word
    transpose blocks, odd k (the last pair's high half is +0), several kc blocks (512)."""
    _host_only(backend)
    rng = np.random.default_rng(seed)
    buf = rng.standard_normal((m, k + pad + col0)).astype(BF16)
    a = buf[:, col0:col0 + k]
    b = rng.standard_normal((k, n)).astype(BF16)
    out = ak.matmul(a, b, out_dtype=np.float32, backend=backend)
    ref = ak.reference.matmul(a, b, out_dtype=np.float32)
    bad = check_gemm(out, ref, a, b)
    assert bad is None, str(bad)
    y = ak.matmul(a, b, backend=backend)  # bf16 out: the rounding epilogue
    assert y.dtype == BF16
    ref16 = ak.reference.matmul(a, b)
    bad = check_gemm(y, ref16, a, b)
    assert bad is None, str(bad)


def test_bf16_matmul_nonfinite_rows_stay_in_their_rows(backend, rng):
    """NaN / Inf placed at chosen (row, k) of A land only in that output row (a transposed word
    in the wrong lane would move them)."""
    _host_only(backend)
    m, k, n = 25, 40, 33
    a = rng.standard_normal((m, k)).astype(BF16)
    a[3, 17] = np.inf
    a[12, 0] = np.nan
    a[24, 39] = -np.inf
    b = (np.abs(rng.standard_normal((k, n))) + 0.5).astype(BF16)
    y = ak.matmul(a, b, out_dtype=np.float32, backend=backend)
    ref = ak.reference.matmul(a, b, out_dtype=np.float32)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    np.testing.assert_array_equal(np.isposinf(y), np.isposinf(ref))
    np.testing.assert_array_equal(np.isneginf(y), np.isneginf(ref))


def test_resnet50_bf16_inference_within_its_tolerance_of_the_f32_network():
    """bench/resnet50.py in bf16 (both layouts): logits within BF16_TOLERANCE of torch's f32
    network, as torch's own bf16 network is; and a wrong network is caught by that tolerance."""
    pytest.importorskip("torch", reason="the peer and the f32 logits come from PyTorch")
    from aicc_kernels.bench import resnet50

    rows = resnet50.run(threads=[2], batches=[1], repeats=1, jit=False, dtypes=("bf16",), layouts=("NHWC", "NCHW"))
    ours = [r for r in rows if r.impl == "aicc"]
    assert len(ours) == 2 and all(r.dtype == "bf16" and r.wrong == 0 for r in ours)
    assert all(r.extra["max_rel_err"] < resnet50.BF16_TOLERANCE for r in ours)
    peer = next(r for r in rows if r.impl == "torch")
    assert peer.extra["max_rel_err"] < resnet50.BF16_TOLERANCE
    assert all("vs_torch" in r.extra for r in ours)
    # The tolerance fails a wrong conv: the taps of one 3x3 conv (block 8) flipped.
    params = resnet50.build_params()
    x = np.random.default_rng(1).standard_normal((1, 224, 224, 3)).astype(np.float32)
    good = resnet50.AiccResNet50(params, "NHWC", dtype="bf16")(x)
    conv = params["blocks"][7]["b"]
    conv["w"] = np.ascontiguousarray(conv["w"][:, :, ::-1, ::-1])
    bad = resnet50.AiccResNet50(params, "NHWC", dtype="bf16")(x)
    assert np.abs(bad - good).max() / np.abs(good).max() > resnet50.BF16_TOLERANCE


def test_resnet50_dtype_argument_is_checked():
    from aicc_kernels.bench import resnet50

    with pytest.raises(ValueError, match="dtype"):
        resnet50.run(dtypes=("int4",), baselines=())


@settings(deadline=None, max_examples=30)
@given(k=st.sampled_from([1, 5, 15, 16, 17, 31, 32, 33, 47, 64, 65]), res_dtype=st.sampled_from([None, "bf16", "f32"]),
       out_dtype=st.sampled_from(["bf16", "f32"]), use_scale=st.booleans(), relu=st.booleans(),
       seed=st.integers(0, 2**16))
def test_bf16_epilogue_bit_for_bit_any_width(backend, k, res_dtype, out_dtype, use_scale, relu, seed):
    """The bf16 entry's 16-wide tile epilogue (the row's last columns under a mask): the fused
    conv is bit for bit the plain conv's f32 sums, then * scale, + bias, + residual, relu, one
    rounding (round half to even, NaN kept), for output-channel counts around 16 and 32; NaN
    and Inf in the residual included."""
    _host_only(backend)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 5, 7, 24)).astype(BF16)
    w = rng.standard_normal((k, 1, 1, 24)).astype(BF16)
    kw = dict(layout="NHWC", backend=backend)
    acc = ak.conv2d(x, w, out_dtype=np.float32, **kw)
    scale = rng.standard_normal(k).astype(np.float32) if use_scale else None
    bias = rng.standard_normal(k).astype(np.float32)
    residual = None
    expected = acc * (scale if use_scale else np.float32(1)) + bias
    if res_dtype is not None:
        residual = rng.standard_normal(acc.shape).astype(BF16 if res_dtype == "bf16" else np.float32)
        residual.flat[::7] = np.inf
        residual.flat[3::11] = np.nan
        expected = expected + residual.astype(np.float32)
    if relu:
        expected = np.where(np.isnan(expected), expected, np.maximum(expected, np.float32(0)))
    odt = BF16 if out_dtype == "bf16" else np.float32
    y = ak.conv2d(x, w, bias, scale=scale, residual=residual, activation="relu" if relu else None, out_dtype=odt, **kw)
    want = expected.astype(odt)
    assert y.dtype == want.dtype
    same = (y.view(np.uint16 if odt is BF16 else np.uint32) == want.view(np.uint16 if odt is BF16 else np.uint32))
    # relu of -0.0 may be either zero; NaN payloads: both quiet, same sign and top payload.
    zeros = (y.astype(np.float32) == 0) & (want.astype(np.float32) == 0)
    assert (same | zeros).all(), np.argwhere(~(same | zeros))[:5]


def test_bf16_gemm_zero_size_and_gelu_fallback(backend, rng):
    """Zero-size operands give empty / zero results; gelu and f16 outputs (the AVX2 epilogue
    behind the 16-wide one) still match the reference."""
    _host_only(backend)
    a = np.zeros((0, 7), BF16)
    assert ak.matmul(a, np.ones((7, 5), BF16), backend=backend).shape == (0, 5)
    y = ak.matmul(np.ones((3, 0), BF16), np.ones((0, 4), BF16), out_dtype=np.float32, backend=backend)
    assert y.shape == (3, 4) and (y == 0).all()
    a = rng.standard_normal((13, 40)).astype(BF16)
    b = rng.standard_normal((40, 37)).astype(BF16)
    bias = rng.standard_normal(37).astype(np.float32)
    y = ak.gemm(a, b, bias=bias, activation="gelu", backend=backend)
    ref = ak.reference.gemm(a, b, bias=bias, activation="gelu")
    bad = check_gemm(y, ref, a, b, bias=bias, activation="gelu")
    assert bad is None, str(bad)
