"""The direct conv of few input channels (C <= 4, groups 1: the network stem; docs/CONV.md
"Stem"): against the reference on every registry entry the backend fixture forces, at the
places the path can break: output rows wider than a tile (MR = 6..12 pixels) and not a multiple
of it, channel counts around the kernel's column blocks (16/32/48/64 on AVX-512, 8/16 on AVX2,
4/8 portable) and past them (K > 64: several blocks), left/right/top/bottom padding, kernels
that reach past both sides, strides 1..3 and dilation."""

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import aicc_kernels as ak
from aicc_kernels import _aicc_cpu, _dtypes
from aicc_kernels.ops.conv_geometry import ConvGeometry
from aicc_kernels.testing import strategies as S
from aicc_kernels.testing.tolerance import F32_MAX, compare_float, float_bound

FLOATS = [np.float32, np.float16, _dtypes.bfloat16]


def _host_only(backend):
    if backend != "cpu" and not str(backend).startswith("cpu"):
        pytest.skip("the small-C path is a CPU kernel; other backends run the generic conv tests")


def _abs(x):
    a = np.abs(np.asarray(x).astype(np.float64))
    return np.where(np.isfinite(a), a, 0.0)


def _check(y, x, w, bias, activation, out_dtype, kw, depth):
    ref = ak.reference.conv2d(x, w, bias, activation=activation, out_dtype=out_dtype, **kw)
    assert y.shape == ref.shape and y.dtype == ref.dtype
    mag = ak.reference.conv2d(_abs(x).astype(np.float32), _abs(w).astype(np.float32),
                              None if bias is None else np.abs(bias), **kw).astype(np.float64)
    bound = float_bound(np.asarray(ref).astype(np.float64), mag, depth, y.dtype, activation)
    unchecked = ~np.isfinite(mag) | (mag > F32_MAX / 4)
    mismatch = compare_float(y, ref, bound, unchecked)
    assert mismatch is None, str(mismatch)


@st.composite
def smallc_case(draw):
    layout = draw(st.sampled_from(["NCHW", "NHWC"]))
    n = draw(st.sampled_from([1, 1, 2]))
    c = draw(st.integers(1, 4))
    k = draw(st.sampled_from([1, 2, 3, 5, 7, 8, 13, 16, 17, 31, 32, 33, 48, 63, 64, 65, 97]))
    r, s = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    h, w = draw(st.integers(1, 11)), draw(st.sampled_from([1, 2, 5, 7, 11, 12, 13, 17, 25, 29, 31]))
    stride = draw(st.sampled_from([1, 2, 3, (1, 2), (2, 1)]))
    dilation = draw(st.sampled_from([1, 1, 1, 2, (1, 2), (2, 1)]))
    padding = draw(st.sampled_from([0, 1, 3, ((0, 0), (3, 0)), ((2, 1), (0, 4)), ((0, 3), (1, 1)), "same"]))
    x_shape = (n, c, h, w) if layout == "NCHW" else (n, h, w, c)
    w_shape = (k, c, r, s) if layout == "NCHW" else (k, r, s, c)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=1, layout=layout)
    try:
        geo = ConvGeometry(x_shape, w_shape, **kw)
    except ValueError:
        assume(False)
    return x_shape, w_shape, kw, geo


@given(case=smallc_case(), data=st.data())
def test_smallc_matches_reference(backend, case, data):
    _host_only(backend)
    x_shape, w_shape, kw, geo = case
    dtype = data.draw(st.sampled_from(FLOATS))
    nonfinite = data.draw(st.booleans()) and data.draw(st.booleans())
    x = S.float_array(data.draw, x_shape, dtype, nonfinite=nonfinite)
    w = S.float_array(data.draw, w_shape, dtype)
    bias = S.float_array(data.draw, (geo.k,), np.float32, kind="normal") if data.draw(st.booleans()) else None
    activation = data.draw(st.sampled_from([None, None, "relu", "gelu"]))
    out_dtype = data.draw(st.sampled_from([None, np.float32]))
    packed = data.draw(st.booleans())
    weights = ak.prepack_conv2d_weights(w, groups=1, layout=kw["layout"], backend=backend) if packed else w
    y = ak.conv2d(x, weights, bias, activation=activation, out_dtype=out_dtype, backend=backend, **kw)
    _check(y, x, w, bias, activation, out_dtype, kw, geo.cg * geo.r * geo.s)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("rs, stride, pad, k, hw", [(7, 2, 3, 64, 45), (3, 2, 1, 32, 37), (3, 1, 1, 24, 29)])
def test_stem_shapes(backend, rng, layout, dtype, rs, stride, pad, k, hw):
    """The ResNet (7x7/2, K=64) and MobileNet (3x3/2, K=32) stems at a reduced image size (rows of
    several tiles, odd widths), with bias + relu and without (the direct-store tiles)."""
    _host_only(backend)
    x = rng.standard_normal((2, 3, hw, hw) if layout == "NCHW" else (2, hw, hw, 3)).astype(dtype)
    w = rng.standard_normal((k, 3, rs, rs) if layout == "NCHW" else (k, rs, rs, 3)).astype(dtype)
    bias = rng.standard_normal(k).astype(np.float32)
    kw = dict(stride=stride, padding=pad, layout=layout)
    for b, act in ((None, None), (bias, "relu")):
        y = ak.conv2d(x, w, b, activation=act, backend=backend, **kw)
        _check(y, x, w, b, act, None, kw, 3 * rs * rs)


def test_smallc_results_do_not_depend_on_thread_count(rng):
    x = rng.standard_normal((2, 23, 31, 3)).astype(np.float32)
    w = rng.standard_normal((40, 7, 7, 3)).astype(np.float32)
    before = ak.get_num_threads()
    try:
        ak.set_num_threads(1)
        one = ak.conv2d(x, w, stride=2, padding=3, layout="NHWC")
        ak.set_num_threads(2)
        two = ak.conv2d(x, w, stride=2, padding=3, layout="NHWC")
    finally:
        ak.set_num_threads(before)
    np.testing.assert_array_equal(one, two)


def test_smallc_nonfinite_inputs_propagate(backend, rng):
    """An Inf tap gives Inf exactly where the reference does (padding is a real zero; no tile
    reads past the input or picks up a neighbour's value)."""
    _host_only(backend)
    x = np.zeros((1, 9, 9, 3), np.float32)
    x[0, 4, 4, 1] = np.inf
    w = np.abs(rng.standard_normal((5, 3, 3, 3))).astype(np.float32) + 0.5
    kw = dict(stride=2, padding=1, layout="NHWC")
    y = ak.conv2d(x, w, backend=backend, **kw)
    ref = ak.reference.conv2d(x, w, **kw)
    np.testing.assert_array_equal(np.isinf(y), np.isinf(ref))
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))


def test_smallc_workspace_is_reported():
    geo = (2, 2, 3, 3, 3, 3, 1, 1, 1, 1)
    ws = _aicc_cpu.conv2d_workspace_bytes((8, 3, 224, 224, 64, 7, 7), geo, "f32")
    assert 0 < ws < 8 * 112 * 112 * 64 * 4  # slab + packed weights: far below the output


@st.composite
def _run_case(draw, c_range, layouts=("NHWC",)):
    """NHWC groups-1 convs whose filter rows are one input run (unit column dilation) or not
    (dilation 2), with left/right padding, widths that are not a multiple of the stride, and
    depths R*S*C past the float GEMM's kc (256: blocks end inside a filter row)."""
    n = draw(st.sampled_from([1, 2]))
    c = draw(st.integers(*c_range))
    k = draw(st.sampled_from([1, 3, 8, 17]))
    r, s = draw(st.integers(1, 7)), draw(st.integers(2, 7))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 13))
    stride = draw(st.sampled_from([1, 2, (1, 2), (2, 1), 3]))
    dilation = draw(st.sampled_from([1, 1, 2, (1, 2), (2, 1)]))
    padding = draw(st.sampled_from([0, 1, 3, ((0, 0), (4, 0)), ((1, 2), (0, 5)), "same"]))
    layout = draw(st.sampled_from(layouts))
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=1, layout=layout)
    x_shape, w_shape = ((n, h, w, c), (k, r, s, c)) if layout == "NHWC" else ((n, c, h, w), (k, c, r, s))
    try:
        geo = ConvGeometry(x_shape, w_shape, **kw)
    except ValueError:
        assume(False)
    return x_shape, w_shape, kw, geo


@given(case=_run_case((5, 9)), data=st.data())
def test_implicit_gemm_row_runs_match_reference(backend, case, data):
    """The float implicit-GEMM A packer copies a filter row as one run (C > 4: not the small-C
    path), clipped at the padding and at kc block ends."""
    _host_only(backend)
    x_shape, w_shape, kw, geo = case
    dtype = data.draw(st.sampled_from(FLOATS))
    x = S.float_array(data.draw, x_shape, dtype, nonfinite=data.draw(st.booleans()) and data.draw(st.booleans()))
    w = S.float_array(data.draw, w_shape, dtype)
    y = ak.conv2d(x, w, backend=backend, **kw)
    _check(y, x, w, None, None, None, kw, geo.cg * geo.r * geo.s)


@given(case=_run_case((1, 6), ("NHWC", "NCHW")), data=st.data())
def test_qconv2d_im2col_row_runs_bit_exact(backend, case, data):
    """INT8 im2col copies a filter row as one run (NHWC: S*C elements; NCHW: S per channel, into
    pixel-major rows); padding holds the zero point: bit-exact."""
    _host_only(backend)
    x_shape, w_shape, kw, geo = case
    x_dtype = data.draw(st.sampled_from([np.uint8, np.int8]))
    info = np.iinfo(x_dtype)
    x = S.int_array(data.draw, x_shape, x_dtype)
    w = S.int_array(data.draw, w_shape, np.int8)
    zx = data.draw(st.sampled_from([0, int(info.min), int(info.max), 3]))
    y = ak.qconv2d(x, w, x_zero_point=zx, backend=backend, **kw)
    ref = ak.reference.qconv2d(x, w, x_zero_point=zx, **kw)
    np.testing.assert_array_equal(y, ref)


# -- the direct INT8 stem (registry family smallc_int8; docs/CONV.md "INT8 stem") --------------
# On a CPU setting without its kernel (AVX512_VNNI masked, AVX2, portable) the same tests run the
# im2col + qgemm path, so both are held to the reference.

@given(case=smallc_case(), data=st.data())
def test_qstem_bit_exact(backend, case, data):
    """Every small-C geometry (C 1..4, kernels to 7x7, strides, dilations, asymmetric padding,
    channel counts around the 16/32/48/64 column blocks and past them), u8 and s8 inputs with
    extreme zero points (padding holds them), per-tensor or per-channel weight zero points (the
    row term), every output dtype, relu, bias, and the fused residual."""
    _host_only(backend)
    x_shape, w_shape, kw, geo = case
    x_dtype = data.draw(st.sampled_from([np.uint8, np.int8]))
    info = np.iinfo(x_dtype)
    x = S.int_array(data.draw, x_shape, x_dtype)
    w = S.int_array(data.draw, w_shape, np.int8)
    zw = (S.int_array(data.draw, (geo.k,), np.int8).astype(np.int32) if data.draw(st.booleans())
          else data.draw(st.sampled_from([0, -128, 127])))
    out_dtype = data.draw(st.sampled_from([np.int32, np.uint8, np.int8, np.float32]))
    q = dict(x_zero_point=data.draw(st.sampled_from([0, int(info.min), int(info.max), 3])), w_zero_point=zw,
             out_dtype=out_dtype, activation=data.draw(st.sampled_from([None, "relu"])),
             bias=S.int_array(data.draw, (geo.k,), np.int8).astype(np.int32) * 997 if data.draw(st.booleans()) else None)
    if out_dtype != np.int32:
        q["scale"] = data.draw(st.sampled_from([1e-3, 1.0 / 3.0, 1.0]))
        if out_dtype != np.float32:
            oi = np.iinfo(out_dtype)
            q["out_zero_point"] = data.draw(st.sampled_from([int(oi.min), 0, int(oi.max), 5]))
        if data.draw(st.booleans()):
            r_dtype = data.draw(st.sampled_from([np.uint8, np.int8]))
            q.update(residual=S.int_array(data.draw, geo.out_shape, r_dtype), residual_scale=0.37,
                     residual_zero_point=int(np.iinfo(r_dtype).max))
    y = ak.qconv2d(x, w, backend=backend, **q, **kw)
    ref = ak.reference.qconv2d(x, w, **q, **kw)
    assert y.dtype == ref.dtype and y.shape == ref.shape
    np.testing.assert_array_equal(y, ref)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("x_dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("rs, stride, pad, k, hw", [(7, 2, 3, 64, 45), (3, 2, 1, 32, 37), (5, 1, 2, 50, 33)])
def test_qstem_shapes_full_range(backend, rng, layout, x_dtype, rs, stride, pad, k, hw):
    """The ResNet and MobileNet stems (and a K that is no multiple of 16) at reduced sizes with
    the value extremes: rows of several tiles and odd widths (NCHW rows of 16-pixel transpose
    blocks and a remainder), per-channel zero points, in-place residual."""
    _host_only(backend)
    info = np.iinfo(x_dtype)
    x = rng.choice([info.min, info.max, 0, 1], size=(2, 3, hw, hw) if layout == "NCHW" else (2, hw, hw, 3)).astype(x_dtype)
    w = rng.choice([-128, 127, 0, -1], size=(k, 3, rs, rs) if layout == "NCHW" else (k, rs, rs, 3)).astype(np.int8)
    kw = dict(stride=stride, padding=pad, layout=layout, x_zero_point=int(info.max), w_zero_point=rng.integers(-128, 128, k),
              bias=rng.integers(-9000, 9000, k).astype(np.int32))
    for out_dtype in (np.int32, np.float32, np.uint8, np.int8):
        q = dict(kw, out_dtype=out_dtype)
        if out_dtype != np.int32:
            q["scale"] = (rng.random(k) * 2e-4 + 1e-6).astype(np.float32)
        for activation in (None, "relu"):
            ref = ak.reference.qconv2d(x, w, activation=activation, **q)
            np.testing.assert_array_equal(ak.qconv2d(x, w, activation=activation, backend=backend, **q), ref)
        if out_dtype in (np.uint8, np.int8):
            res = rng.integers(np.iinfo(out_dtype).min, np.iinfo(out_dtype).max + 1, ref.shape).astype(out_dtype)
            rq = dict(q, activation="relu", residual_scale=0.6, residual_zero_point=3)
            want = ak.reference.qconv2d(x, w, residual=res, **rq)
            ak.qconv2d(x, w, residual=res, out=res, backend=backend, **rq)  # in place
            np.testing.assert_array_equal(res, want)


def test_qstem_results_do_not_depend_on_thread_count(rng):
    x = rng.integers(0, 256, (2, 23, 31, 3), dtype=np.uint8)
    w = rng.integers(-128, 128, (40, 7, 7, 3), dtype=np.int8)
    kw = dict(stride=2, padding=3, layout="NHWC", x_zero_point=128, w_zero_point=rng.integers(-5, 5, 40))
    before = ak.get_num_threads()
    try:
        ak.set_num_threads(1)
        one = ak.qconv2d(x, w, **kw)
        ak.set_num_threads(2)
        two = ak.qconv2d(x, w, **kw)
    finally:
        ak.set_num_threads(before)
    np.testing.assert_array_equal(one, two)


def test_qstem_is_the_registry_choice_and_reports_its_workspace():
    """With AVX512_VNNI the stem runs the direct kernel, whose scratch (the padded u8 image and
    the packed weights) is far below im2col's chunk; masking VNNI selects the im2col route."""
    entries = {e["name"]: e for e in _aicc_cpu.registry() if e["family"] == "smallc_int8"}
    assert list(entries)[-1] == "smallc_int8_via_qgemm_portable"
    geo = (2, 2, 3, 3, 3, 3, 1, 1, 1, 1)
    ws = _aicc_cpu.conv2d_workspace_bytes((8, 3, 224, 224, 64, 7, 7), geo, "u8")
    output = 8 * 112 * 112 * 64
    if entries.get("smallc_u8s8_avx512vnni", {}).get("chosen"):
        assert 0 < ws < output // 20
    else:
        assert 0 < ws <= output
