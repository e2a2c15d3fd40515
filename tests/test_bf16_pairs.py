"""bf16 on pair words (docs/CONV.md, "bf16"): the vectorized A-panel packer of the
AVX512_BF16 GEMM entry (12-row panels transposed 8 words at a time, the rest word by word),
the NCHW stem on pair words, and the bf16 tile epilogue — each against the reference on every
registry entry the backend fixture forces (the f32 entries when AVX512_BF16 is masked), with
strided and oddly aligned operands, NaN/Inf and zero-size shapes."""

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import aicc_kernels as ak
from aicc_kernels import _dtypes
from aicc_kernels.testing.tolerance import check_gemm

BF16 = _dtypes.bfloat16


def _host_only(backend):
    if backend != "cpu" and not str(backend).startswith("cpu"):
        pytest.skip("these paths are CPU kernels; other backends run the generic tests")


@settings(deadline=None, max_examples=40)
@given(m=st.sampled_from([0, 1, 11, 12, 13, 24, 25, 37, 150]),
       k=st.sampled_from([0, 1, 2, 15, 16, 17, 31, 33, 64, 511, 512, 513, 1023, 1025, 1153, 2050, 2305]),
       n=st.sampled_from([1, 31, 32, 33, 64]),
       col0=st.integers(0, 3), pad=st.integers(0, 5), seed=st.integers(0, 2**16))
def test_bf16_matmul_row_major_a_any_offset_and_row_stride(backend, m, k, n, col0, pad, seed):
    """A is a view into a wider bf16 buffer: rows `k + pad + col0` apart, starting `col0`
    elements in (odd offsets split the 32-bit pair words across loads); k around the 8-word
    transpose blocks, odd k (the last pair's high half is +0), several kc blocks (past 1152
    elements on the AVX512_BF16 entry, past 576 on the f32 one)."""
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


# -- the NCHW stem on pair words (smallc, C <= 4): two 16-pixel vectors per tile where a row
#    has 32 more pixels, one otherwise; 12 or 8 output channels per tile ---------------------

@settings(deadline=None, max_examples=40)
@given(c=st.integers(1, 4), k=st.sampled_from([1, 8, 12, 13, 24, 32, 64, 65]), r=st.integers(1, 7),
       s=st.integers(1, 7), wd=st.sampled_from([31, 32, 33, 47, 48, 64, 66, 79]), h=st.integers(1, 9),
       stride=st.sampled_from([1, 2, (2, 1), (1, 3)]), dilation=st.sampled_from([1, 2, (2, 1)]),
       pad=st.sampled_from([0, 1, 3, ((2, 0), (0, 3))]), epilogue=st.sampled_from(["none", "bias_relu", "scale_residual"]),
       nonfinite=st.booleans(), seed=st.integers(0, 2**16))
def test_nchw_bf16_stem_on_pairs_matches_reference(backend, c, k, r, s, wd, h, stride, dilation, pad, epilogue,
                                                   nonfinite, seed):
    """Rows of 32+ output pixels (the two-vector tiles) and their remainders, odd and even R (the
    odd last filter row pairs with a +0 high half, so an Inf input never meets a 0 weight),
    dilation (a word pairs rows hp and hp + dilation_h), every epilogue; NaN/Inf inputs reach
    exactly the outputs the reference puts them in."""
    _host_only(backend)
    from aicc_kernels.ops.conv_geometry import ConvGeometry

    rng = np.random.default_rng(seed)
    kw = dict(stride=stride, padding=pad, dilation=dilation, layout="NCHW")
    try:
        geo = ConvGeometry((1, c, h, wd), (k, c, r, s), groups=1, **kw)
    except ValueError:
        assume(False)  # kernel larger than the padded input: refused (test_conv_errors.py)
    x = rng.standard_normal((2, c, h, wd)).astype(BF16)
    if nonfinite:
        x.flat[rng.integers(0, x.size, 3)] = [np.inf, -np.inf, np.nan]
    w = rng.standard_normal((k, c, r, s)).astype(BF16)
    bias = scale = residual = None
    act = None
    if epilogue == "bias_relu":
        bias, act = rng.standard_normal(k).astype(np.float32), "relu"
    elif epilogue == "scale_residual":
        scale = rng.standard_normal(k).astype(np.float32)
        residual = rng.standard_normal((2,) + geo.out_shape[1:]).astype(BF16)
    y = ak.conv2d(x, w, bias, scale=scale, residual=residual, activation=act, backend=backend, **kw)
    ref = ak.reference.conv2d(x, w, bias, scale=scale, residual=residual, activation=act, **kw)
    assert y.shape == ref.shape and y.dtype == ref.dtype
    yf, rf = y.astype(np.float64), ref.astype(np.float64)
    np.testing.assert_array_equal(np.isnan(yf), np.isnan(rf))
    np.testing.assert_array_equal(np.isinf(yf), np.isinf(rf))
    fin = np.isfinite(rf)
    absx = np.where(np.isfinite(x.astype(np.float32)), np.abs(x.astype(np.float32)), 0)
    mag = ak.reference.conv2d(absx, np.abs(w.astype(np.float32)), **kw).astype(np.float64)
    if scale is not None:
        mag = mag * np.abs(scale).reshape(1, -1, 1, 1) + np.abs(residual.astype(np.float64))
    if bias is not None:
        mag = mag + np.abs(bias).reshape(1, -1, 1, 1)
    # f32 sums of c*r*s products (order differs from the reference) and up to 3 f32 epilogue
    # roundings, then the bf16 rounding: near a rounding boundary that may land one bf16 ulp
    # (2^-7 relative, at most) from the reference's single rounding of the exact value.
    bound = (c * r * s + 3) * 2.0 ** -23 * mag + 2.0 ** -7 * np.abs(rf) + 1e-30
    assert (np.abs(yf[fin] - rf[fin]) <= bound[fin]).all()


def test_nchw_bf16_stem_equals_nhwc_bit_for_bit(backend, rng):
    """With one input channel the NCHW and NHWC stems pair the same filter rows and sum the same
    words in the same order (u, s from zero; each word's two products as vdpbf16ps adds them),
    so the two layouts' kernels, written apart, agree bit for bit (on the f32 kernels too, where
    AVX512_BF16 is masked)."""
    _host_only(backend)
    x = rng.standard_normal((2, 1, 45, 70)).astype(BF16)
    w = rng.standard_normal((64, 1, 7, 7)).astype(BF16)
    bias = rng.standard_normal(64).astype(np.float32)
    a = ak.conv2d(x, w, bias, stride=2, padding=3, activation="relu", out_dtype=np.float32, backend=backend)
    b = ak.conv2d(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), np.ascontiguousarray(w.transpose(0, 2, 3, 1)), bias,
                  stride=2, padding=3, activation="relu", out_dtype=np.float32, layout="NHWC", backend=backend)
    np.testing.assert_array_equal(a, b.transpose(0, 3, 1, 2))


# -- the NCHW implicit-GEMM B packer: each tap row's run along an output row is copied once,
#    clipped at the left/right padding (f32, f16 and bf16 share it) ------------------------

@settings(deadline=None, max_examples=40)
@given(dtype=st.sampled_from(["f32", "f16", "bf16"]), c=st.integers(5, 9), k=st.sampled_from([1, 13, 33]),
       r=st.integers(1, 5), s=st.integers(1, 7), h=st.integers(1, 9), wd=st.integers(1, 40),
       pad=st.sampled_from([0, 1, 3, ((0, 0), (5, 0)), ((1, 2), (0, 6)), ((0, 1), (7, 7))]),
       dilation=st.sampled_from([1, (1, 2)]), edge=st.sampled_from(["none", "inf_left", "nan_right"]),
       seed=st.integers(0, 2**16))
def test_nchw_implicit_gemm_runs_clipped_at_the_padding(backend, dtype, c, k, r, s, h, wd, pad, dilation, edge, seed):
    """Stride-1 NCHW convs whose taps reach past both sides of the row (padding wider than the
    input included): every output column that reads padding gets +0 there, never a neighbour;
    an Inf in the first column or a NaN in the last reaches exactly the outputs the reference
    puts it in."""
    _host_only(backend)
    from aicc_kernels.ops.conv_geometry import ConvGeometry

    dt = {"f32": np.float32, "f16": np.float16, "bf16": BF16}[dtype]
    kw = dict(stride=1, padding=pad, dilation=dilation, layout="NCHW")
    try:
        ConvGeometry((2, c, h, wd), (k, c, r, s), groups=1, **kw)
    except ValueError:
        assume(False)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, c, h, wd)).astype(dt)
    if edge == "inf_left":
        x[1, 2, h // 2, 0] = np.inf
    elif edge == "nan_right":
        x[0, 4, h - 1, wd - 1] = np.nan
    w = (np.abs(rng.standard_normal((k, c, r, s))) + 0.25).astype(dt)  # no 0 * Inf
    y = ak.conv2d(x, w, out_dtype=np.float32, backend=backend, **kw)
    ref = ak.reference.conv2d(x, w, out_dtype=np.float32, **kw)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    np.testing.assert_array_equal(np.isinf(y), np.isinf(ref))
    fin = np.isfinite(ref)
    x32 = x.astype(np.float32)
    mag = ak.reference.conv2d(np.where(np.isfinite(x32), np.abs(x32), 0), w.astype(np.float32), out_dtype=np.float32,
                              **kw).astype(np.float64)
    bound = (c * r * s + 2) * 2.0 ** -23 * mag + 1e-30
    assert (np.abs(y[fin].astype(np.float64) - ref[fin].astype(np.float64)) <= bound[fin]).all()


# -- NCHW small images: several images per GEMM (pixels side by side), then each image's
#    slice through the epilogue --------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["f32", "bf16"])
@pytest.mark.parametrize("shape", ["3x3", "1x1", "3x3/2", "grouped"])
def test_nchw_small_images_batched_equal_one_image_at_a_time(backend, rng, dtype, shape):
    """Images of at most 256 output pixels share one GEMM (columns of several images); each
    output element is the same sum in the same order as the one-image GEMM, so image i of a
    batch of 5 equals that image convolved alone, bit for bit, with every epilogue term
    (scale, bias, residual, relu); and both match the reference."""
    _host_only(backend)
    dt = BF16 if dtype == "bf16" else np.float32
    c, k, r, stride, groups, hw = {"3x3": (40, 44, 3, 1, 1, 7), "1x1": (64, 37, 1, 1, 1, 9),
                                   "3x3/2": (24, 40, 3, 2, 1, 15), "grouped": (24, 36, 3, 1, 3, 11)}[shape]
    kw = dict(stride=stride, padding=r // 2, groups=groups, layout="NCHW", backend=backend)
    x = rng.standard_normal((5, c, hw, hw)).astype(dt)
    x[3, 1, 2, 3] = np.inf
    w = rng.standard_normal((k, c // groups, r, r)).astype(dt)
    bias = rng.standard_normal(k).astype(np.float32)
    scale = rng.standard_normal(k).astype(np.float32)
    y0 = ak.conv2d(x, w, out_dtype=np.float32, **kw)
    residual = rng.standard_normal(y0.shape).astype(dt)
    fused = dict(scale=scale, residual=residual, activation="relu")
    y = ak.conv2d(x, w, bias, **fused, **kw)
    for i in range(5):
        one = ak.conv2d(x[i:i + 1], w, bias, scale=scale, residual=residual[i:i + 1], activation="relu", **kw)
        np.testing.assert_array_equal(y[i:i + 1].view(np.uint8), one.view(np.uint8))
    ref = ak.reference.conv2d(x, w, bias, **fused, stride=stride, padding=r // 2, groups=groups, layout="NCHW")
    np.testing.assert_array_equal(np.isnan(y.astype(np.float32)), np.isnan(ref.astype(np.float32)))
    fin = np.isfinite(ref.astype(np.float32))
    tol = 2.0 ** -7 if dtype == "bf16" else 1e-5
    assert np.allclose(y.astype(np.float32)[fin], ref.astype(np.float32)[fin], rtol=tol, atol=tol * 8)


def test_nchw_small_image_workspace_stays_within_the_output():
    from aicc_kernels import _aicc_cpu

    for dtype, esize in (("f32", 4), ("bf16", 2)):
        sizes, geo = (8, 512, 7, 7, 512, 3, 3), (1, 1, 1, 1, 1, 1, 1, 1, 1, 0)
        ws = _aicc_cpu.conv2d_workspace_bytes(sizes, geo, dtype)
        out_bytes = 8 * 512 * 49 * esize
        staging = 2 ** 20  # the per-thread staging tiles
        assert 0 < ws <= out_bytes + staging, (dtype, ws, out_bytes)


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@pytest.mark.parametrize("dtype", ["f32", "bf16"])
def test_resnet50_maxpool_matches_the_padded_window_max(rng, layout, dtype):
    """The benchmark network's separable 3x3/2 max-pool (bf16 pooled in f32, exactly) equals
    the max over each padded window, -inf padding, NaN propagating; odd and even sizes."""
    from aicc_kernels.bench import resnet50

    net = resnet50.AiccResNet50.__new__(resnet50.AiccResNet50)
    net.layout, net.dtype = layout, (np.float32 if dtype == "f32" else BF16)
    for h, w in ((1, 1), (2, 3), (5, 4), (7, 7), (9, 2), (16, 15)):
        x = rng.standard_normal((2, h, w, 3)).astype(net.dtype)
        x.flat[rng.integers(0, x.size)] = -np.inf
        x.flat[rng.integers(0, x.size)] = np.nan
        got = net._maxpool(x if layout == "NHWC" else np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        got = got if layout == "NHWC" else got.transpose(0, 2, 3, 1)
        x64 = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
        p, q = (h - 1) // 2 + 1, (w - 1) // 2 + 1
        want = np.full((2, p, q, 3), -np.inf)
        with np.errstate(invalid="ignore"):
            for i in range(3):
                for j in range(3):
                    want = np.maximum(want, x64[:, i:i + 2 * p - 1:2, j:j + 2 * q - 1:2])
        assert got.dtype == net.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got.astype(np.float64), want)
