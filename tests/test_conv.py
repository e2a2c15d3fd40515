"""conv2d, qconv2d and the conv2d backward ops against the NumPy reference, plus the
adjoint identity and thread-count independence of the backward ops."""

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import aicc_kernels as ak
from aicc_kernels import _dtypes
from aicc_kernels.testing import strategies as S
from aicc_kernels.ops.conv_geometry import ConvGeometry
from aicc_kernels.testing.cases.conv import conv_geometry  # shared with the conformance runner
from aicc_kernels.testing.devices import to_device, to_host
from aicc_kernels.testing.tolerance import F32_MAX, compare_exact, compare_float, float_bound
from conftest import on_threads

FLOATS = [np.float32, np.float16, _dtypes.bfloat16]


def _host_arrays_only(backend):
    if backend in ("cuda",):
        pytest.skip("written with NumPy arrays throughout; the cuda backend runs the property tests above")


def _abs(x):
    a = np.abs(np.asarray(x).astype(np.float64))
    return np.where(np.isfinite(a), a, 0.0)


def check_float(out, ref, magnitude, depth, activation=None):
    bound = float_bound(np.asarray(ref).astype(np.float64), magnitude, depth, out.dtype, activation)
    unchecked = ~np.isfinite(magnitude) | (magnitude > F32_MAX / 4)
    return compare_float(out, ref, bound, unchecked)


@given(case=conv_geometry(), data=st.data())
def test_conv2d_matches_reference(backend, case, data):
    x_shape, w_shape, kw, geo = case
    dtype = data.draw(st.sampled_from(FLOATS))
    nonfinite = data.draw(st.booleans()) and data.draw(st.booleans())
    x = S.float_array(data.draw, x_shape, dtype, nonfinite=nonfinite)
    w = S.float_array(data.draw, w_shape, dtype)
    bias = S.float_array(data.draw, (geo.k,), np.float32, kind="normal") if data.draw(st.booleans()) else None
    activation = data.draw(st.sampled_from([None, "relu", "gelu"]))
    out_dtype = data.draw(st.sampled_from([None, np.float32]))
    y = to_host(ak.conv2d(*to_device((x, w, bias), backend), activation=activation, out_dtype=out_dtype,
                          backend=backend, **kw))
    ref = ak.reference.conv2d(x, w, bias, activation=activation, out_dtype=out_dtype, **kw)
    assert y.shape == geo.out_shape and y.dtype == ref.dtype
    mag = ak.reference.conv2d(_abs(x).astype(np.float32), _abs(w).astype(np.float32),
                              None if bias is None else np.abs(bias), **kw).astype(np.float64)
    mismatch = check_float(y, ref, mag, geo.cg * geo.r * geo.s, activation)
    assert mismatch is None, str(mismatch)


@given(data=st.data())
def test_conv2d_nhwc_wide_channels_match_reference(backend, data):
    """NHWC f32 and bf16 convs with 16+ channels per group, where the AVX-512/AVX2 entries read the input in
    place (a row pointer per output pixel and tap, zeros for padding; docs/CONV.md) instead of
    packing it: tiles that wrap across image rows and images, padding on every side, strides,
    dilation, groups, depths that split a tap across kc blocks, and non-finite inputs. (The
    shared geometry strategy keeps channels below 8, so it never takes this path.)"""
    _host_arrays_only(backend)
    draw = data.draw
    groups = draw(st.sampled_from([1, 1, 2]))
    cg, kg = draw(st.sampled_from([16, 17, 31, 64, 80])), draw(st.integers(1, 40))
    n, h, w = draw(st.sampled_from([1, 2])), draw(st.integers(1, 13)), draw(st.integers(1, 13))
    r, s = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kw = dict(stride=draw(st.sampled_from([1, 2, (1, 2)])), padding=draw(st.integers(0, 2)),
              dilation=draw(st.sampled_from([1, 2])), groups=groups, layout="NHWC")
    try:
        geo = ConvGeometry((n, h, w, cg * groups), (kg * groups, r, s, cg), **kw)
    except ValueError:
        assume(False)
    dtype = draw(st.sampled_from([np.float32, _dtypes.bfloat16]))  # bf16: pair words in place (even Cg)
    x = S.float_array(draw, (n, h, w, cg * groups), dtype, nonfinite=draw(st.booleans()))
    wt = S.float_array(draw, (kg * groups, r, s, cg), dtype)
    y = to_host(ak.conv2d(*to_device((x, wt), backend), backend=backend, **kw))
    ref = ak.reference.conv2d(x, wt, **kw)
    mag = ak.reference.conv2d(_abs(x).astype(np.float32), _abs(wt).astype(np.float32), **kw).astype(np.float64)
    assert y.shape == geo.out_shape
    mismatch = check_float(y, ref, mag, geo.cg * geo.r * geo.s)
    assert mismatch is None, str(mismatch)


@given(case=conv_geometry(), data=st.data())
def test_qconv2d_bit_exact(backend, case, data):
    x_shape, w_shape, kw, geo = case
    x_dtype = data.draw(st.sampled_from([np.uint8, np.int8]))
    x = S.int_array(data.draw, x_shape, x_dtype)
    w = S.int_array(data.draw, w_shape, np.int8)
    info = np.iinfo(x_dtype)
    zx = data.draw(st.sampled_from([0, int(info.min), int(info.max), 3]))
    zw = (S.int_array(data.draw, (geo.k,), np.int8).astype(np.int32) if data.draw(st.booleans())
          else data.draw(st.sampled_from([0, -128, 127, -5])))
    out_dtype = data.draw(st.sampled_from([np.int32, np.int8, np.uint8, np.float32]))
    scale = None
    if out_dtype != np.int32:
        scale = (np.abs(S.float_array(data.draw, (geo.k,), np.float32, kind="normal")) * 1e-3 + 1e-6
                 if data.draw(st.booleans()) else data.draw(st.sampled_from([1.0, 0.5, 1.0 / 3.0, 1e-4])))
    ozp = 0
    if out_dtype in (np.int8, np.uint8):
        oi = np.iinfo(out_dtype)
        ozp = data.draw(st.integers(int(oi.min), int(oi.max)))
    bias = S.int_array(data.draw, (geo.k,), np.int8).astype(np.int32) * 1000 if data.draw(st.booleans()) else None
    activation = data.draw(st.sampled_from([None, "relu"]))
    q = dict(x_zero_point=zx, w_zero_point=zw, scale=scale, out_zero_point=ozp, out_dtype=out_dtype,
             activation=activation, **kw)
    y = to_host(ak.qconv2d(*to_device((x, w, bias), backend), backend=backend, **to_device(q, backend)))
    ref = ak.reference.qconv2d(x, w, bias, **q)
    assert y.dtype == ref.dtype and y.shape == geo.out_shape
    mismatch = compare_exact(y, ref)
    assert mismatch is None, str(mismatch)


@given(case=conv_geometry(), data=st.data())
def test_backward_matches_reference(backend, case, data):
    x_shape, w_shape, kw, geo = case
    dtype = data.draw(st.sampled_from(FLOATS))
    x = S.float_array(data.draw, x_shape, dtype, kind=data.draw(st.sampled_from(["int", "normal"])))
    w = S.float_array(data.draw, w_shape, dtype, kind="normal")
    g = S.float_array(data.draw, geo.out_shape, dtype, kind=data.draw(st.sampled_from(["int", "normal"])))
    gx = to_host(ak.conv2d_backward_data(*to_device((g, w), backend), x_shape, backend=backend, **kw))
    gx_ref = ak.reference.conv2d_backward_data(g, w, x_shape, **kw)
    mag = ak.reference.conv2d_backward_data(_abs(g).astype(np.float32), _abs(w).astype(np.float32), x_shape,
                                            **kw).astype(np.float64)
    assert gx.shape == x_shape and gx.dtype == dtype
    mismatch = check_float(gx, gx_ref, mag, (geo.k // geo.groups) * geo.r * geo.s)
    assert mismatch is None, "backward_data: " + str(mismatch)
    gw = to_host(ak.conv2d_backward_weight(*to_device((x, g), backend), w_shape, backend=backend, **kw))
    gw_ref = ak.reference.conv2d_backward_weight(x, g, w_shape, **kw)
    mag = ak.reference.conv2d_backward_weight(_abs(x).astype(np.float32), _abs(g).astype(np.float32), w_shape,
                                              **kw).astype(np.float64)
    assert gw.shape == w_shape and gw.dtype == dtype
    mismatch = check_float(gw, gw_ref, mag, geo.n * geo.p * geo.q)
    assert mismatch is None, "backward_weight: " + str(mismatch)


@given(case=conv_geometry(), data=st.data())
def test_adjoint_identity(backend, case, data):
    """<conv(x), g> == <x, backward_data(g)> and == <w, backward_weight(x, g)>: exactly, for
    small integer values (every sum is exact in f32)."""
    _host_arrays_only(backend)
    x_shape, w_shape, kw, geo = case
    x = S.float_array(data.draw, x_shape, np.float32, kind="int")
    w = S.float_array(data.draw, w_shape, np.float32, kind="int")
    g = S.float_array(data.draw, geo.out_shape, np.float32, kind="int")
    y = ak.conv2d(x, w, backend=backend, **kw)
    lhs = float(np.sum(y.astype(np.float64) * g))
    gx = ak.conv2d_backward_data(g, w, x_shape, backend=backend, **kw)
    gw = ak.conv2d_backward_weight(x, g, w_shape, backend=backend, **kw)
    assert lhs == float(np.sum(x.astype(np.float64) * gx))
    assert lhs == float(np.sum(w.astype(np.float64) * gw))


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_adjoint_identity_random_values(backend, rng, layout):
    _host_arrays_only(backend)
    x_shape, w_shape = ((2, 6, 11, 9), (8, 3, 3, 3)) if layout == "NCHW" else ((2, 11, 9, 6), (8, 3, 3, 3))
    kw = dict(stride=2, padding=((1, 2), (0, 1)), dilation=(1, 2), groups=2, layout=layout)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    y = ak.conv2d(x, w, backend=backend, **kw)
    g = rng.standard_normal(y.shape).astype(np.float32)
    lhs = np.sum(y.astype(np.float64) * g)
    rhs = np.sum(x.astype(np.float64) * ak.conv2d_backward_data(g, w, x_shape, backend=backend, **kw))
    scale = np.sum(np.abs(y.astype(np.float64) * g))
    assert abs(lhs - rhs) <= 1e-5 * scale


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", ["3x3", "1x1", "depthwise"])
def test_results_do_not_depend_on_thread_count(backend, rng, layout, dtype, shape):
    _host_arrays_only(backend)
    c, k, r, groups = {"3x3": (8, 16, 3, 1), "1x1": (8, 16, 1, 1), "depthwise": (8, 8, 3, 8)}[shape]
    x_shape = (3, c, 13, 10) if layout == "NCHW" else (3, 13, 10, c)
    w_shape = (k, c // groups, r, r) if layout == "NCHW" else (k, r, r, c // groups)
    kw = dict(stride=1, padding=r // 2, groups=groups, layout=layout)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    previous = ak.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 3):
            ak.set_num_threads(threads)
            y = ak.conv2d(x, w, backend=backend, **kw)
            g = np.ones_like(y) if not results else results[0][0]
            g = (np.sin(np.arange(y.size)).reshape(y.shape)).astype(dtype)
            results.append((y, ak.conv2d_backward_data(g, w, x_shape, backend=backend, **kw),
                            ak.conv2d_backward_weight(x, g, w_shape, backend=backend, **kw)))
    finally:
        ak.set_num_threads(previous)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert compare_exact(a, b) is None


def test_kernel_larger_than_input_with_padding(backend, rng):
    x = rng.standard_normal((1, 2, 2, 3)).astype(np.float32)
    w = rng.standard_normal((3, 2, 5, 5)).astype(np.float32)
    y = to_host(ak.conv2d(*to_device((x, w), backend), padding=2, backend=backend))
    ref = ak.reference.conv2d(x, w, padding=2)
    assert y.shape == (1, 3, 2, 3)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


def test_same_padding_keeps_the_size(backend, rng):
    _host_arrays_only(backend)
    for stride in (1, 2):
        x = rng.standard_normal((1, 9, 10, 3)).astype(np.float32)
        w = rng.standard_normal((4, 4, 3, 3)).astype(np.float32)
        y = ak.conv2d(x, w, padding="same", stride=stride, layout="NHWC", backend=backend)
        assert y.shape == (1, -(-9 // stride), -(-10 // stride), 4)


def test_out_argument_is_written_in_place(backend, rng):
    _host_arrays_only(backend)
    x = rng.standard_normal((2, 4, 7, 7)).astype(np.float32)
    w = rng.standard_normal((5, 4, 3, 3)).astype(np.float32)
    out = np.full((2, 5, 5, 5), np.nan, np.float32)
    result = ak.conv2d(x, w, out=out, backend=backend)
    assert result is out
    np.testing.assert_allclose(out, ak.reference.conv2d(x, w), rtol=1e-5, atol=1e-4)
    gx = np.full(x.shape, np.nan, np.float32)
    assert ak.conv2d_backward_data(np.ones_like(out), w, x.shape, out=gx, backend=backend) is gx
    assert np.isfinite(gx).all()


def test_strided_inputs_are_accepted(backend, rng):
    x = rng.standard_normal((2, 9, 9, 8)).astype(np.float32)[:, ::2, :, ::2]   # NHWC view, C=4
    w = rng.standard_normal((6, 3, 3, 8)).astype(np.float32)[..., ::2]
    y = to_host(ak.conv2d(*to_device((x, w), backend), padding=1, layout="NHWC", backend=backend))
    np.testing.assert_allclose(y, ak.reference.conv2d(x, w, padding=1, layout="NHWC"), rtol=1e-5, atol=1e-4)


def test_nan_in_out_does_not_leak(backend, rng):
    _host_arrays_only(backend)
    x = rng.standard_normal((1, 3, 5, 5)).astype(np.float32)
    w = rng.standard_normal((2, 3, 1, 1)).astype(np.float32)
    out = np.full((1, 2, 5, 5), np.nan, np.float32)
    ak.conv2d(x, w, out=out, backend=backend)
    assert np.isfinite(out).all()


@pytest.mark.parametrize("stride", [1, 2, (2, 1), (1, 2)])
@pytest.mark.parametrize("c", [31, 32, 70])
def test_depthwise_bf16_5x5_nhwc(backend, rng, stride, c):
    """bf16 NHWC 5x5 depthwise forward, the shape the AVX512_BF16 entry runs on vdpbf16ps (two
    kernel rows per instruction; docs/CONV.md): widths around its 8- and 4-pixel groups, full and
    partial 32-channel blocks, kernel rows in the padding (an odd last row paired with zeros),
    row dilation, bias and relu, NaN/inf inputs; against the reference, and the same bits on 1
    and 2 threads."""
    _host_arrays_only(backend)
    for h, w, padding, dilation in [(9, 21, 2, 1), (7, 13, ((4, 0), (1, 3)), (2, 1)), (5, 1, 2, 1), (6, 8, 0, 1)]:
        x = rng.standard_normal((2, h, w, c)).astype(_dtypes.bfloat16)
        x.reshape(-1)[::89] = np.inf
        x.reshape(-1)[::131] = np.nan
        wt = rng.standard_normal((c, 5, 5, 1)).astype(_dtypes.bfloat16)
        bias = rng.standard_normal(c).astype(np.float32)
        kw = dict(stride=stride, padding=padding, dilation=dilation, groups=c, layout="NHWC")
        try:
            ref = ak.reference.conv2d(x, wt, bias, activation="relu", **kw)
        except ValueError:  # kernel larger than the padded input
            continue
        outs = on_threads((1, 2), lambda: ak.conv2d(x, wt, bias, activation="relu", backend=backend, **kw))
        np.testing.assert_array_equal(outs[0].view(np.uint16), outs[1].view(np.uint16))
        mag = ak.reference.conv2d(_abs(x).astype(np.float32), _abs(wt).astype(np.float32), np.abs(bias),
                                  **kw).astype(np.float64)
        mismatch = check_float(outs[0], ref, mag, 25, "relu")
        assert mismatch is None, f"{h}x{w} padding {padding}: {mismatch}"


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("stride, dilation, padding", [(1, 1, 1), (1, 2, ((2, 0), (3, 1))), (2, 1, "same"),
                                                       (1, 1, 0), (3, (1, 2), 2)])
def test_depthwise_vector_paths(backend, rng, layout, dtype, stride, dilation, padding):
    """Wide rows and many channels, so the depthwise kernel's register-blocked paths (32 and
    8 channels, 16 and 8 columns) and their tails all run; NaN propagates through relu."""
    c, hw = 43, (29, 37)
    x_shape = (2, c) + hw if layout == "NCHW" else (2,) + hw + (c,)
    w_shape = (c, 1, 3, 3) if layout == "NCHW" else (c, 3, 3, 1)
    x = rng.standard_normal(x_shape).astype(dtype)
    x.reshape(-1)[::97] = np.nan
    w = rng.standard_normal(w_shape).astype(dtype)
    bias = rng.standard_normal(c).astype(np.float32)
    kw = dict(stride=stride, dilation=dilation, padding=padding, groups=c, layout=layout)
    for activation in (None, "relu", "gelu"):
        y = to_host(ak.conv2d(*to_device((x, w, bias), backend), activation=activation, backend=backend, **kw))
        ref = ak.reference.conv2d(x, w, bias, activation=activation, **kw)
        mag = ak.reference.conv2d(_abs(x).astype(np.float32), _abs(w).astype(np.float32), np.abs(bias),
                                  **kw).astype(np.float64)
        mismatch = check_float(y, ref, mag, 9, activation)
        assert mismatch is None, f"{activation}: {mismatch}"


@given(case=conv_geometry(max_hw=7), data=st.data())
def test_prepacked_weights_match_plain_calls(backend, case, data):
    """ak.prepack_conv2d_weights once, then conv2d with any input/stride/padding: the same
    contract as passing the weight array."""
    _host_arrays_only(backend)
    x_shape, w_shape, kw, geo = case
    dtype = data.draw(st.sampled_from(FLOATS))
    x = S.float_array(data.draw, x_shape, dtype, kind="normal")
    w = S.float_array(data.draw, w_shape, dtype, kind="normal")
    bias = S.float_array(data.draw, (geo.k,), np.float32, kind="normal") if data.draw(st.booleans()) else None
    activation = data.draw(st.sampled_from([None, "relu", "gelu"]))
    packed = ak.prepack_conv2d_weights(w, groups=kw["groups"], layout=kw["layout"], backend=backend)
    y = ak.conv2d(x, packed, bias, activation=activation, backend=backend, **kw)
    mag = ak.reference.conv2d(_abs(x).astype(np.float32), _abs(w).astype(np.float32),
                              None if bias is None else np.abs(bias), **kw).astype(np.float64)
    ref = ak.reference.conv2d(x, w, bias, activation=activation, **kw)
    mismatch = check_float(y, ref, mag, geo.cg * geo.r * geo.s, activation)
    assert mismatch is None, str(mismatch)


def test_prepacked_weights_are_a_copy_and_check_their_options(backend, rng):
    _host_arrays_only(backend)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    x = rng.standard_normal((1, 3, 6, 6)).astype(np.float32)
    packed = ak.prepack_conv2d_weights(w, backend=backend)
    expected = ak.conv2d(x, w, backend=backend)
    w[...] = 0  # the prepacked object owns a copy
    np.testing.assert_array_equal(ak.conv2d(x, packed, backend=backend), expected)
    with pytest.raises(ValueError, match="^layout: expected 'NCHW'"):
        ak.conv2d(x, packed, layout="NHWC", backend=backend)
    with pytest.raises(ValueError, match="^groups: expected 1"):
        ak.conv2d(x, packed, groups=2, backend=backend)
    with pytest.raises(ValueError, match="^w: expected C/groups"):
        ak.conv2d(rng.standard_normal((1, 5, 6, 6)).astype(np.float32), packed, backend=backend)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("x_dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("out_dtype", [np.int32, np.int8, np.uint8, np.float32])
def test_qconv2d_depthwise_full_range(backend, rng, layout, x_dtype, out_dtype):
    """The direct INT8 depthwise kernel: extreme values, per-channel zero points and scales,
    stride/dilation/asymmetric padding, relu; bit-exact."""
    c = 19
    x_shape = (2, c, 11, 13) if layout == "NCHW" else (2, 11, 13, c)
    w_shape = (c, 1, 3, 3) if layout == "NCHW" else (c, 3, 3, 1)
    info = np.iinfo(x_dtype)
    x = rng.choice([info.min, info.max, 0, 1], size=x_shape).astype(x_dtype)
    w = rng.choice([-128, 127, 0, -1], size=w_shape).astype(np.int8)
    kw = dict(stride=(2, 1), dilation=(1, 2), padding=((2, 0), (1, 3)), groups=c, layout=layout,
              x_zero_point=int(info.max), w_zero_point=rng.integers(-128, 128, c), out_dtype=out_dtype,
              bias=rng.integers(-5000, 5000, c).astype(np.int32))
    if out_dtype != np.int32:
        kw["scale"] = (rng.random(c) * 1e-3 + 1e-5).astype(np.float32)
    if out_dtype in (np.int8, np.uint8):
        kw["out_zero_point"] = 7
    for activation in (None, "relu"):
        y = to_host(ak.qconv2d(*to_device((x, w), backend), activation=activation, backend=backend,
                               **to_device(kw, backend)))
        assert compare_exact(y, ak.reference.qconv2d(x, w, activation=activation, **kw)) is None


def _depthwise_geometry(layout, n, c, h, w, r, s, stride, dilation, padding):
    """(x_shape, w_shape, conv keywords, ConvGeometry) of a depthwise conv; draws that make no
    valid geometry are rejected (hypothesis assume)."""
    x_shape = (n, c, h, w) if layout == "NCHW" else (n, h, w, c)
    w_shape = (c, 1, r, s) if layout == "NCHW" else (c, r, s, 1)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=c, layout=layout)
    try:
        geo = ConvGeometry(x_shape, w_shape, **kw)
    except ValueError:
        assume(False)
    return x_shape, w_shape, kw, geo


@st.composite
def _depthwise_case(draw):
    """A depthwise conv wide enough that the NHWC primitives' channel vectors (4/8/16 lanes)
    and 4-pixel blocks run with their tails, the interior/border column split happens, and the
    stride phases of the backward data have 0, 1 or several taps."""
    layout = draw(st.sampled_from(["NCHW", "NHWC"]))
    n = draw(st.sampled_from([0, 1, 2]))
    c = draw(st.sampled_from([1, 2, 3, 5, 7, 13, 16, 17, 31, 32, 33, 47]))
    h, w = draw(st.integers(1, 17)), draw(st.integers(1, 23))
    r, s = draw(st.sampled_from([(3, 3), (5, 5), (1, 1), (3, 5), (2, 3), (1, 4)]))
    stride = draw(st.sampled_from([1, 1, 2, 2, 3, (1, 2), (2, 1)]))
    dilation = draw(st.sampled_from([1, 1, 1, 2, (2, 1)]))
    padding = draw(st.sampled_from([0, 1, 2, "same", ((0, 3), (2, 1)), ((3, 0), (0, 4))]))
    return _depthwise_geometry(layout, n, c, h, w, r, s, stride, dilation, padding)


def _check_depthwise_backward(backend, case, data):
    """Backward data and weight of a drawn depthwise case against the reference, in a drawn
    float dtype (shared by the NHWC/NCHW hypothesis tests below)."""
    x_shape, w_shape, kw, geo = case
    dtype = data.draw(st.sampled_from(FLOATS))
    x = S.float_array(data.draw, x_shape, dtype)
    w = S.float_array(data.draw, w_shape, dtype, kind=data.draw(st.sampled_from(["int", "normal"])))
    g = S.float_array(data.draw, geo.out_shape, dtype)
    gx = to_host(ak.conv2d_backward_data(*to_device((g, w), backend), x_shape, backend=backend, **kw))
    mag = ak.reference.conv2d_backward_data(_abs(g).astype(np.float32), _abs(w).astype(np.float32), x_shape,
                                            **kw).astype(np.float64)
    assert gx.shape == x_shape and gx.dtype == dtype
    mismatch = check_float(gx, ak.reference.conv2d_backward_data(g, w, x_shape, **kw), mag, geo.r * geo.s)
    assert mismatch is None, "backward_data: " + str(mismatch)
    gw = to_host(ak.conv2d_backward_weight(*to_device((x, g), backend), w_shape, backend=backend, **kw))
    mag = ak.reference.conv2d_backward_weight(_abs(x).astype(np.float32), _abs(g).astype(np.float32), w_shape,
                                              **kw).astype(np.float64)
    assert gw.shape == w_shape and gw.dtype == dtype
    mismatch = check_float(gw, ak.reference.conv2d_backward_weight(x, g, w_shape, **kw), mag,
                           geo.n * geo.p * geo.q)
    assert mismatch is None, "backward_weight: " + str(mismatch)


@given(case=_depthwise_case(), data=st.data())
def test_depthwise_backward_matches_reference(backend, case, data):
    """The direct depthwise backward kernels (data by stride phase, weight by fixed-chunk partial
    filters) in every float dtype, on every ISA path the backend fixture forces."""
    _check_depthwise_backward(backend, case, data)


@given(case=_depthwise_case(), data=st.data())
def test_depthwise_forward_all_dtypes_match_reference(backend, case, data):
    """The depthwise forward (register-resident weights, 4 pixels per step) in f32/f16/bf16 with
    bias and activations, and INT8 with folded zero points, bit-exact."""
    x_shape, w_shape, kw, geo = case
    dtype = data.draw(st.sampled_from(FLOATS))
    x = S.float_array(data.draw, x_shape, dtype, nonfinite=data.draw(st.booleans()))
    w = S.float_array(data.draw, w_shape, dtype)
    bias = S.float_array(data.draw, (geo.k,), np.float32, kind="normal") if data.draw(st.booleans()) else None
    activation = data.draw(st.sampled_from([None, "relu", "gelu"]))
    y = to_host(ak.conv2d(*to_device((x, w, bias), backend), activation=activation, backend=backend, **kw))
    mag = ak.reference.conv2d(_abs(x).astype(np.float32), _abs(w).astype(np.float32),
                              None if bias is None else np.abs(bias), **kw).astype(np.float64)
    mismatch = check_float(y, ak.reference.conv2d(x, w, bias, activation=activation, **kw), mag, geo.r * geo.s,
                           activation)
    assert mismatch is None, str(mismatch)
    x_dtype = data.draw(st.sampled_from([np.uint8, np.int8]))
    info = np.iinfo(x_dtype)
    xq = S.int_array(data.draw, x_shape, x_dtype)
    wq = S.int_array(data.draw, w_shape, np.int8)
    per_channel_zw = data.draw(st.booleans())
    q = dict(x_zero_point=data.draw(st.sampled_from([0, int(info.min), int(info.max), 3])),
             w_zero_point=(data.draw(st.lists(st.integers(-128, 127), min_size=geo.k, max_size=geo.k))
                           if per_channel_zw else data.draw(st.integers(-128, 127))),
             bias=np.asarray(data.draw(st.lists(st.integers(-2**20, 2**20), min_size=geo.k, max_size=geo.k)),
                             dtype=np.int32),
             out_dtype=np.int32, activation=data.draw(st.sampled_from([None, "relu"])), **kw)
    if isinstance(q["w_zero_point"], list):
        q["w_zero_point"] = np.asarray(q["w_zero_point"], dtype=np.int32)
    yq = to_host(ak.qconv2d(*to_device((xq, wq), backend), backend=backend, **to_device(q, backend)))
    assert compare_exact(yq, ak.reference.qconv2d(xq, wq, **q)) is None


@st.composite
def _depthwise_nchw_case(draw):
    """NCHW depthwise shapes around the AVX-512 plane kernel's edges: heights around its 7-row
    blocks (fewer rows than a block, a recomputed last block, blocks touching the padding),
    widths around its 16-column vectors (masked tails, a single partial vector, W = 1), 3x3
    and 5x5 at strides 1 and 2 (its range), and geometry outside it (3x5, stride 3, dilation:
    the row kernel) so both routes run."""
    n = draw(st.sampled_from([0, 1, 2]))
    c = draw(st.sampled_from([1, 2, 3, 5]))
    h = draw(st.sampled_from([1, 2, 3, 5, 6, 7, 8, 13, 14, 15, 22, 29]))
    w = draw(st.sampled_from([1, 2, 3, 5, 15, 16, 17, 31, 32, 33, 47, 57]))
    r, s = draw(st.sampled_from([(3, 3), (3, 3), (5, 5), (5, 5), (3, 5), (1, 4)]))
    stride = draw(st.sampled_from([1, 1, 2, 2, (1, 2), (2, 1), 3]))
    dilation = draw(st.sampled_from([1, 1, 1, 1, 2, (1, 2)]))
    padding = draw(st.sampled_from([0, 1, 2, "same", ((0, 3), (2, 1)), ((3, 0), (0, 4)), ((4, 4), (4, 4))]))
    return _depthwise_geometry("NCHW", n, c, h, w, r, s, stride, dilation, padding)


@given(case=_depthwise_nchw_case(), data=st.data())
def test_depthwise_nchw_forward_matches_reference(backend, case, data):
    """NCHW depthwise forward (AVX-512: rows of 16 output columns per vector, 7 output rows per
    block, masked borders, stride 2 by lane deinterleave, 16-bit inputs widened per input row)
    in every float dtype, with NaN / inf inputs, bias, activations, and the fused scale /
    residual / out_dtype epilogue; bf16 rounded in registers is bit for bit the f32 result
    rounded once; results do not depend on the thread count."""
    _host_arrays_only(backend)
    x_shape, w_shape, kw, geo = case
    dtype = data.draw(st.sampled_from(FLOATS))
    x = S.float_array(data.draw, x_shape, dtype, nonfinite=data.draw(st.booleans()))
    w = S.float_array(data.draw, w_shape, dtype, kind=data.draw(st.sampled_from(["int", "normal"])))
    bias = S.float_array(data.draw, (geo.k,), np.float32, kind="normal") if data.draw(st.booleans()) else None
    scale = S.float_array(data.draw, (geo.k,), np.float32, kind="normal") if data.draw(st.booleans()) else None
    residual = (S.float_array(data.draw, geo.out_shape, dtype, nonfinite=data.draw(st.booleans()))
                if data.draw(st.booleans()) else None)
    activation = data.draw(st.sampled_from([None, "relu", "gelu"]))
    out_dtype = data.draw(st.sampled_from([None, np.float32]))
    fused = dict(scale=scale, residual=residual, activation=activation, out_dtype=out_dtype)
    y = ak.conv2d(x, w, bias, backend=backend, **fused, **kw)
    ref = ak.reference.conv2d(x, w, bias, **fused, **kw)
    assert y.shape == geo.out_shape and y.dtype == ref.dtype
    mismatch = check_float(y, ref, _fused_magnitude(x, w, scale, bias, residual, kw), geo.r * geo.s + 2, activation)
    assert mismatch is None, str(mismatch)
    if dtype == _dtypes.bfloat16 and scale is None and residual is None and activation != "gelu":
        plain = ak.conv2d(x, w, bias, activation=activation, backend=backend, **kw)
        wide = ak.conv2d(x, w, bias, activation=activation, out_dtype=np.float32, backend=backend, **kw)
        np.testing.assert_array_equal(plain.view(np.uint16)[~np.isnan(wide)],
                                      wide.astype(_dtypes.bfloat16).view(np.uint16)[~np.isnan(wide)])
        assert np.array_equal(np.isnan(plain.astype(np.float32)), np.isnan(wide))
    previous = ak.get_num_threads()
    try:
        ak.set_num_threads(2)
        y2 = ak.conv2d(x, w, bias, backend=backend, **fused, **kw)
    finally:
        ak.set_num_threads(previous)
    np.testing.assert_array_equal(y2.view(np.uint8), y.view(np.uint8))


@given(case=_depthwise_nchw_case(), data=st.data())
def test_depthwise_nchw_backward_matches_reference(backend, case, data):
    """NCHW depthwise backward around the AVX-512 plane kernels' edges: data at stride 1 as the
    flipped-kernel forward (mirrored padding, bf16 rounded in registers), weight with per-tap
    column-vector accumulators over whole planes; other geometry on the row primitives."""
    _check_depthwise_backward(backend, case, data)


@pytest.mark.parametrize("dtype", [np.float32, _dtypes.bfloat16])
@pytest.mark.parametrize("r, stride", [(3, 1), (5, 2)])
def test_depthwise_nchw_many_images_and_channels(backend, rng, dtype, r, stride):
    """Batch 67 (the NCHW weight gradient's chunks hold 3 images: 23 chunks) and 70 channels
    (runs of 64 planes per task, one partial): forward, backward data and weight against the
    reference, bit-identical on 1 and 3 threads."""
    _host_arrays_only(backend)
    c, kw = 70, dict(stride=stride, padding=r // 2, groups=70, layout="NCHW")
    x = rng.standard_normal((67, c, 9, 11)).astype(dtype)
    w = rng.standard_normal((c, 1, r, r)).astype(dtype)
    g = rng.standard_normal(ak.reference.conv2d(x[:1], w, **kw).shape[1:]).astype(np.float32)
    g = np.broadcast_to(g, (67,) + g.shape).copy().astype(dtype)
    g[5] *= 2  # not the same gradient for every image
    results = on_threads((1, 3), lambda: (ak.conv2d(x, w, backend=backend, **kw),
                                          ak.conv2d_backward_data(g, w, x.shape, backend=backend, **kw),
                                          ak.conv2d_backward_weight(x, g, w.shape, backend=backend, **kw)))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))
    y, gx, gw = results[0]
    ax, aw, ag = (_abs(v).astype(np.float32) for v in (x, w, g))
    assert check_float(y, ak.reference.conv2d(x, w, **kw), ak.reference.conv2d(ax, aw, **kw), r * r) is None
    assert check_float(gx, ak.reference.conv2d_backward_data(g, w, x.shape, **kw),
                       ak.reference.conv2d_backward_data(ag, aw, x.shape, **kw), r * r) is None
    assert check_float(gw, ak.reference.conv2d_backward_weight(x, g, w.shape, **kw),
                       ak.reference.conv2d_backward_weight(ax, ag, w.shape, **kw), g.shape[0] * g.shape[2] * g.shape[3]) is None


@pytest.mark.parametrize("dtype", [np.float32, _dtypes.bfloat16])
@pytest.mark.parametrize("c, k, r, groups, padding, dilation", [
    (13, 32, 3, 1, 1, 1), (100, 32, 1, 1, 0, 1), (32, 64, 3, 2, ((2, 0), (1, 1)), 1), (5, 32, 5, 1, 2, 1),
    (64, 40, 3, 1, ((2, 0), (1, 1)), 1), (64, 48, 3, 2, 1, 1), (32, 40, 3, 1, 2, 2), (64, 256, 1, 1, 0, 1),
    (16, 77, 1, 1, 0, 1)])
def test_dense_backward_weight_nhwc_packers(backend, rng, dtype, c, k, r, groups, padding, dilation):
    """NHWC weight gradients on their fast packers: few output channels per group run swapped,
    dW^T = col^T x G (taps in 12-row panels, whole and partial; 1x1 reading x directly; bf16:
    the column matrix staged in bf16 and packed as pairs of pixels),
    transposed back; C/groups a multiple of the panel width packs x's channel runs straight into
    the B panels (padding, dilation, groups); many output channels read G^T as a column-major A
    (bf16: pair words from two pixels' rows, whole and partial 12-row panels). f32 and bf16,
    against the reference, and bit-identical on 1, 2 and 3 threads."""
    _host_arrays_only(backend)
    x_shape, w_shape = (2, 17, 11, c), (k, r, r, c // groups)
    kw = dict(stride=1, padding=padding, dilation=dilation, groups=groups, layout="NHWC")
    x = rng.standard_normal(x_shape).astype(np.float32).astype(dtype)
    y_shape = ak.reference.conv2d(x, np.zeros(w_shape, dtype), **kw).shape
    g = rng.standard_normal(y_shape).astype(np.float32).astype(dtype)
    mag = ak.reference.conv2d_backward_weight(_abs(x).astype(np.float32), _abs(g).astype(np.float32), w_shape,
                                              **kw).astype(np.float64)
    want = ak.reference.conv2d_backward_weight(x, g, w_shape, **kw)
    results = on_threads((1, 2, 3), lambda: ak.conv2d_backward_weight(x, g, w_shape, backend=backend, **kw))
    mismatch = check_float(results[0], want, mag, y_shape[0] * y_shape[1] * y_shape[2])
    assert mismatch is None, str(mismatch)
    for other in results[1:]:
        assert compare_exact(results[0], other) is None


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@pytest.mark.parametrize("dtype", [np.float32, _dtypes.bfloat16])
@pytest.mark.parametrize("n, h, w, c, k, r, stride, groups, padding", [
    (2, 67, 71, 8, 41, 1, 1, 1, 0),           # 9514 pixels, 4 uneven chunks; more rows than taps
    (3, 41, 47, 40, 24, 1, 1, 1, 0),          # 5781 pixels, 2 chunks; swapped (24 output channels)
    (2, 37, 59, 32, 40, 3, 1, 2, ((2, 0), (1, 1))),  # 4366 pixels, 2 chunks; 3x3, groups, padding
    (4, 64, 65, 5, 7, 3, 1, 1, 1),            # 16640 pixels: the 8-chunk cap, tiny channels
    (2, 95, 90, 16, 32, 3, 2, 1, 1),          # stride 2: 4320 output pixels, 2 chunks
])
def test_backward_weight_depth_chunks(backend, rng, layout, dtype, n, h, w, c, k, r, stride, groups, padding):
    """Weight gradients over 4096+ output pixels cut the pixel sum into depth chunks
    (docs/CONV.md: as many as the pixel count alone gives, 2048+ pixels each, at most 8),
    each into its own copy of dW, added in chunk order: chunk bounds that cross image rows
    and images, uneven chunks, the swapped, row-split and column-split layouts, groups,
    padding, stride and bf16; NCHW sums the batch's pixels in one GEMM too (G^T read per
    image run, columns gathered per image). Against the reference, and bit-identical on 1, 2
    and 3 threads (the chunks never depend on the thread count; the tiles inside a chunk do)."""
    _host_arrays_only(backend)
    if layout == "NHWC":
        x_shape, w_shape = (n, h, w, c), (k, r, r, c // groups)
    else:
        x_shape, w_shape = (n, c, h, w), (k, c // groups, r, r)
    kw = dict(stride=stride, padding=padding, groups=groups, layout=layout)
    x = rng.standard_normal(x_shape).astype(dtype)
    y_shape = ak.reference.conv2d(x, np.zeros(w_shape, dtype), **kw).shape
    pixels = y_shape[0] * (y_shape[1] * y_shape[2] if layout == "NHWC" else y_shape[2] * y_shape[3])
    assert pixels >= 4096  # at least two chunks
    g = rng.standard_normal(y_shape).astype(dtype)
    x32, g32 = x.astype(np.float32), g.astype(np.float32)
    mag = ak.reference.conv2d_backward_weight(np.abs(x32), np.abs(g32), w_shape, **kw).astype(np.float64)
    want = ak.reference.conv2d_backward_weight(x, g, w_shape, **kw)
    results = on_threads((1, 2, 3), lambda: ak.conv2d_backward_weight(x, g, w_shape, backend=backend, **kw))
    mismatch = check_float(results[0], want, mag, pixels)
    assert mismatch is None, str(mismatch)
    for other in results[1:]:
        assert compare_exact(results[0], other) is None


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("dtype", [np.float32, _dtypes.bfloat16])
@pytest.mark.parametrize("r, dilation, padding", [(3, 1, 1), (5, 1, ((2, 1), (0, 4))), (3, 2, 2), (3, 1, 0),
                                                  (3, 1, ((3, 0), (1, 1)))])
def test_dense_backward_data_stride1_paths(backend, rng, layout, dtype, r, dilation, padding):
    """Stride-1 backward data runs as a forward conv of grad_out with swapped, flipped weights
    (padding (R-1)*dil - pad); padding beyond the kernel's reach takes the column path. Sizes
    past one GEMM register tile in every dimension, groups 1 and 2."""
    for groups in (1, 2):
        c, k = 2 * 19, 2 * 13
        x_shape = (2, c, 29, 19) if layout == "NCHW" else (2, 29, 19, c)
        w_shape = (k, c // groups, r, r) if layout == "NCHW" else (k, r, r, c // groups)
        kw = dict(stride=1, padding=padding, dilation=dilation, groups=groups, layout=layout)
        w = rng.standard_normal(w_shape).astype(dtype)
        y_shape = ak.reference.conv2d(np.zeros(x_shape, dtype), w, **kw).shape
        g = rng.standard_normal(y_shape).astype(dtype)
        gx = to_host(ak.conv2d_backward_data(*to_device((g, w), backend), x_shape, backend=backend, **kw))
        mag = ak.reference.conv2d_backward_data(_abs(g).astype(np.float32), _abs(w).astype(np.float32), x_shape,
                                                **kw).astype(np.float64)
        mismatch = check_float(gx, ak.reference.conv2d_backward_data(g, w, x_shape, **kw), mag,
                               (k // groups) * r * r)
        assert mismatch is None, f"groups={groups}: {mismatch}"


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("dtype", [np.float32, _dtypes.bfloat16])
def test_strided_depthwise_and_wide_dense_backward_do_not_depend_on_thread_count(backend, rng, layout, dtype):
    """Depthwise 5x5/2 (stride phases, 37 channels: vector tails), a dense 3x3 whose weight
    gradient splits into a different number of column tiles per thread count, a dense 3x3/2
    (NHWC: backward data by phase sub-convolutions) and a 1x1 with more
    output than input channels (its weight gradient splits by rows, into 1, 2 or 3 row tiles of
    whole and partial 12-row panels): bit-identical results on 1, 2 and 3 threads."""
    _host_arrays_only(backend)
    cases = [(37, 37, 5, 37, 2, ((2, 1), (0, 3))), (24, 40, 3, 1, 1, 1), (32, 24, 3, 1, 2, 1), (8, 41, 1, 1, 1, 0)]
    previous = ak.get_num_threads()
    try:
        for c, k, r, groups, stride, padding in cases:
            x_shape = (3, c, 19, 23) if layout == "NCHW" else (3, 19, 23, c)
            w_shape = (k, c // groups, r, r) if layout == "NCHW" else (k, r, r, c // groups)
            kw = dict(stride=stride, padding=padding, groups=groups, layout=layout)
            x = rng.standard_normal(x_shape).astype(dtype)
            w = rng.standard_normal(w_shape).astype(dtype)
            y_shape = ak.reference.conv2d(x, w, **kw).shape
            g = rng.standard_normal(y_shape).astype(dtype)
            results = []
            for threads in (1, 2, 3):
                ak.set_num_threads(threads)
                results.append((ak.conv2d(x, w, backend=backend, **kw),
                                ak.conv2d_backward_data(g, w, x_shape, backend=backend, **kw),
                                ak.conv2d_backward_weight(x, g, w_shape, backend=backend, **kw)))
            for other in results[1:]:
                for a, b in zip(results[0], other):
                    assert compare_exact(a, b) is None, f"C={c} K={k} groups={groups}"
    finally:
        ak.set_num_threads(previous)


@given(data=st.data())
def test_strided_backward_data_phases_match_reference(backend, data):
    """Strided backward data with C/groups >= 16 runs per stride phase as stride-1 forward
    convs of grad_out with the phase's sub-kernel (flipped, OC/IC-swapped): NHWC scatters each
    phase, NCHW runs every phase of a block of images into a scratch and writes grad_in's rows
    from it (stride-2 columns interleaved by vector unpacks, odd widths: one more even column).
    Phases with several, one or no taps, dilation, asymmetric padding, groups, images of more
    than 256 phase pixels (NCHW: one image per GEMM) and fewer (NCHW: the batch in one GEMM);
    padding beyond the kernel's reach falls back to the column path."""
    layout = data.draw(st.sampled_from(["NHWC", "NCHW"]))
    groups = data.draw(st.sampled_from([1, 2]))
    cg, kg = data.draw(st.sampled_from([16, 17, 33])), data.draw(st.sampled_from([1, 5, 19]))
    r, s = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5))
    stride = data.draw(st.sampled_from([2, 3, (2, 1), (1, 2), (3, 2)]))
    dilation = data.draw(st.sampled_from([1, 2, (2, 1), 3]))
    padding = data.draw(st.sampled_from([0, 1, 2, "same", ((0, 3), (2, 1)), ((4, 0), (0, 5))]))
    # batches of several hundred input pixels, plus a few small ones
    n, h, w = data.draw(st.sampled_from([(8, 12, 11), (8, 17, 13), (5, 23, 9), (1, 3, 7), (2, 1, 13), (2, 41, 37)]))
    dtype = data.draw(st.sampled_from(FLOATS))
    if layout == "NHWC":
        x_shape, w_shape = (n, h, w, cg * groups), (kg * groups, r, s, cg)
    else:
        x_shape, w_shape = (n, cg * groups, h, w), (kg * groups, cg, r, s)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, layout=layout)
    try:
        geo = ConvGeometry(x_shape, w_shape, **kw)
    except ValueError:
        assume(False)
    wt = S.float_array(data.draw, w_shape, dtype, kind="normal")
    g = S.float_array(data.draw, geo.out_shape, dtype)
    gx = to_host(ak.conv2d_backward_data(*to_device((g, wt), backend), x_shape, backend=backend, **kw))
    mag = ak.reference.conv2d_backward_data(_abs(g).astype(np.float32), _abs(wt).astype(np.float32), x_shape,
                                            **kw).astype(np.float64)
    assert gx.shape == x_shape and gx.dtype == dtype
    mismatch = check_float(gx, ak.reference.conv2d_backward_data(g, wt, x_shape, **kw), mag, kg * r * s)
    assert mismatch is None, str(mismatch)


# -- fused epilogue: out = act(scale[k] * conv + bias[k] + residual) (issue 11, item 2) ----

def _fused_magnitude(x, w, scale, bias, residual, kw):
    """|scale| conv(|x|, |w|) + |bias| + |residual|: what the float error bound scales with."""
    mag = ak.reference.conv2d(_abs(x).astype(np.float32), _abs(w).astype(np.float32), **kw).astype(np.float64)
    k_axis = 1 if kw["layout"] == "NCHW" else 3
    per_k = [1] * 4
    per_k[k_axis] = -1
    if scale is not None:
        mag = mag * _abs(scale).reshape(per_k)
    if bias is not None:
        mag = mag + _abs(bias).reshape(per_k)
    if residual is not None:
        mag = mag + _abs(residual)
    return mag


@given(case=conv_geometry(), data=st.data())
def test_conv2d_fused_epilogue_matches_reference(backend, case, data):
    """Every algorithm (implicit GEMM, pointwise, depthwise, grouped; both layouts; prepacked
    or not) with any subset of scale / bias / residual and every activation; NaN / inf in the
    residual reach exactly the outputs the reference puts them in."""
    _host_arrays_only(backend)
    x_shape, w_shape, kw, geo = case
    dtype = data.draw(st.sampled_from(FLOATS))
    x = S.float_array(data.draw, x_shape, dtype)
    w = S.float_array(data.draw, w_shape, dtype)
    scale = (S.float_array(data.draw, (geo.k,), data.draw(st.sampled_from([np.float32, np.float64, dtype])),
                           kind="normal") if data.draw(st.booleans()) else None)
    bias = S.float_array(data.draw, (geo.k,), np.float32, kind="normal") if data.draw(st.booleans()) else None
    residual = None
    if scale is None or data.draw(st.booleans()):
        r_dtype = data.draw(st.sampled_from([dtype, np.float32]))
        residual = S.float_array(data.draw, geo.out_shape, r_dtype, nonfinite=data.draw(st.booleans()))
    activation = data.draw(st.sampled_from([None, "relu", "gelu"]))
    out_dtype = data.draw(st.sampled_from([None, np.float32]))
    wk = (ak.prepack_conv2d_weights(w, groups=kw["groups"], layout=kw["layout"], backend=backend)
          if data.draw(st.booleans()) else w)
    fused = dict(scale=scale, residual=residual, activation=activation, out_dtype=out_dtype)
    y = ak.conv2d(x, wk, bias, backend=backend, **fused, **kw)
    ref = ak.reference.conv2d(x, w, bias, **fused, **kw)
    assert y.shape == geo.out_shape and y.dtype == ref.dtype
    mag = _fused_magnitude(x, w, scale, bias, residual, kw)
    # Two more f32 roundings than the plain conv (the scale multiply, the residual add).
    mismatch = check_float(y, ref, mag, geo.cg * geo.r * geo.s + 2, activation)
    assert mismatch is None, str(mismatch)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("dtype", [np.float32, _dtypes.bfloat16])
@pytest.mark.parametrize("shape", ["3x3", "3x3deep", "1x1", "1x1/2", "depthwise", "grouped", "stem"])
def test_fused_epilogue_order_and_single_rounding(backend, rng, layout, dtype, shape):
    """The fused result is bit for bit the plain conv's f32 sums followed, in f32, by
    * scale, + bias, + residual, relu, one rounding (SEMANTICS.md): the epilogue runs on the
    sums the plain path computes, in the documented order, and rounds once. 3x3deep: depth
    576, more than one k block (partial sums in out or in the workspace). stem: the small-C direct
    conv (7x7/2, C = 3)."""
    _host_arrays_only(backend)
    c, k, r, groups, stride = {"3x3": (19, 37, 3, 1, 1), "3x3deep": (64, 40, 3, 1, 1), "1x1": (23, 29, 1, 1, 1),
                               "1x1/2": (8, 16, 1, 1, 2), "depthwise": (21, 21, 3, 21, 1),
                               "grouped": (12, 18, 3, 3, 2), "stem": (3, 32, 7, 1, 2)}[shape]
    n, h, wd = 2, 11, 13
    x = rng.standard_normal((n, c, h, wd) if layout == "NCHW" else (n, h, wd, c)).astype(dtype)
    w = rng.standard_normal((k, c // groups, r, r) if layout == "NCHW" else (k, r, r, c // groups)).astype(dtype)
    kw = dict(stride=stride, padding=r // 2, groups=groups, layout=layout)
    acc = ak.conv2d(x, w, out_dtype=np.float32, backend=backend, **kw)
    scale = rng.standard_normal(k).astype(np.float32)
    bias = rng.standard_normal(k).astype(np.float32)
    residual = rng.standard_normal(acc.shape).astype(dtype)
    per_k = (1, k, 1, 1) if layout == "NCHW" else (1, 1, 1, k)
    expected = acc * scale.reshape(per_k) + bias.reshape(per_k) + residual.astype(np.float32)
    expected = np.where(np.isnan(expected), expected, np.maximum(expected, np.float32(0)))
    for out_dtype in (np.float32, dtype):
        y = ak.conv2d(x, w, bias, scale=scale, residual=residual, activation="relu", out_dtype=out_dtype,
                      backend=backend, **kw)
        assert compare_exact(y, expected.astype(out_dtype)) is None, (out_dtype, compare_exact(y, expected))


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("shape", ["3x3", "1x1", "depthwise"])
def test_residual_may_be_out_itself(backend, rng, layout, shape):
    """out = relu(conv(x) + out) in place (the residual is read before out is written); a
    depth over one k block (partial sums must not be kept in out then)."""
    _host_arrays_only(backend)
    c, k, r, groups = {"3x3": (64, 24, 3, 1), "1x1": (600, 16, 1, 1), "depthwise": (16, 16, 3, 16)}[shape]
    x = rng.standard_normal((2, c, 7, 9) if layout == "NCHW" else (2, 7, 9, c)).astype(np.float32)
    w = rng.standard_normal((k, c // groups, r, r) if layout == "NCHW" else (k, r, r, c // groups)).astype(np.float32)
    kw = dict(padding=r // 2, groups=groups, layout=layout)
    start = ak.conv2d(x, w, **kw)  # any values of the output's shape
    start = rng.standard_normal(start.shape).astype(np.float32)
    expected = ak.conv2d(x, w, residual=start.copy(), activation="relu", backend=backend, **kw)
    out = start.copy()
    assert ak.conv2d(x, w, residual=out, out=out, activation="relu", backend=backend, **kw) is out
    np.testing.assert_array_equal(out, expected)


_NO_EXTRA_PASS = r"""
import resource, sys
import numpy as np
import aicc_kernels as ak
shape = sys.argv[1]
layout = "NHWC"
n, h, w, c, k, r, groups = {"3x3": (1, 512, 512, 4, 64, 3, 1), "1x1": (1, 512, 512, 8, 64, 1, 1),
                            "depthwise": (1, 512, 512, 64, 64, 3, 64)}[shape]
x = np.ones((n, h, w, c), np.float32)
wt = np.ones((k, r, r, c // groups), np.float32)
kw = dict(padding=r // 2, groups=groups, layout=layout)
out = np.ones((n, h, w, k), np.float32)
res = np.ones((n, h, w, k), np.float32)
scale = np.ones(k, np.float32)
ak.conv2d(x[:, :8], wt, out=out[:, :8], **kw)  # packing buffers and threads exist before the measurement
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
ak.conv2d(x, wt, np.ones(k, np.float32), scale=scale, residual=res, activation="relu", out=out, **kw)
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
assert out[0, h // 2, w // 2, 0] == c // groups * r * r + 2, out[0, h // 2, w // 2, 0]  # interior pixel
print(grown, out.nbytes)
"""


@pytest.mark.parametrize("shape", ["3x3", "1x1", "depthwise"])
def test_fused_epilogue_makes_no_output_sized_temporary(shape, tmp_path):
    """The fused epilogue runs where the sums are formed: a 64 MiB output gains no output-sized
    buffer (peak RSS of a fresh process grows by less than half the output), which a
    conv-then-add (or a fused path through a temporary) would need."""
    import subprocess
    import sys

    if not ak.backends.get("cpu").available:
        pytest.skip("measures the cpu backend")
    script = tmp_path / "no_extra_pass.py"
    script.write_text(_NO_EXTRA_PASS)
    run = subprocess.run([sys.executable, str(script), shape], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    grown, out_bytes = (int(v) for v in run.stdout.split())
    assert grown < out_bytes // 2, f"peak RSS grew by {grown} bytes for a {out_bytes}-byte output"



def test_cuda_conv_kernel_declines_the_fused_epilogue():
    """The cuda kernel has bias + activation only: scale / residual raise KernelUnsupported
    before any device work (checked without a GPU), instead of being dropped."""
    from aicc_kernels.backends.base import KernelUnsupported
    from aicc_kernels.backends.cuda import conv as cuda_conv

    x = np.zeros((1, 2, 4, 4), np.float32)
    w = np.zeros((3, 2, 1, 1), np.float32)
    out = np.zeros((1, 3, 4, 4), np.float32)
    geo = dict(stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1, layout="NCHW")
    for fused in (dict(scale=np.ones(3, np.float32)), dict(residual=out.copy())):
        with pytest.raises(KernelUnsupported, match="no fused scale / residual epilogue"):
            cuda_conv._conv2d(x, w, None, out, **geo, **fused)


@st.composite
def _qdepthwise_case(draw):
    """NHWC INT8 depthwise shapes around the VNNI kernel's edges: channel counts around its
    64-channel blocks and 16-channel output vectors (tails of every size, several blocks), odd
    output widths (the last output of a stride-1 pair alone), stride 2, dilation (one output per
    step), padding wider than the kernel's reach and asymmetric, 3x3 / 5x5 / other kernels."""
    layout = draw(st.sampled_from(["NHWC", "NHWC", "NCHW"]))
    n = draw(st.sampled_from([1, 2]))
    c = draw(st.sampled_from([1, 3, 15, 16, 17, 31, 33, 63, 64, 65, 80, 127, 128, 131]))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 11))
    r, s = draw(st.sampled_from([(3, 3), (3, 3), (5, 5), (1, 1), (2, 3), (3, 7)]))
    stride = draw(st.sampled_from([1, 1, 2, (1, 2), (2, 1), 3]))
    dilation = draw(st.sampled_from([1, 1, 1, 2, (1, 2)]))
    padding = draw(st.sampled_from([0, 1, 2, "same", ((0, 3), (2, 1)), ((1, 0), (0, 4))]))
    return _depthwise_geometry(layout, n, c, h, w, r, s, stride, dilation, padding)


@given(case=_qdepthwise_case(), data=st.data())
def test_qconv2d_depthwise_output_stages_bit_exact(backend, case, data):
    """INT8 depthwise with every output stage (s32, f32, s8/u8 with scalar or per-channel scale,
    out zero point, relu, residual), zero points anywhere in range (0, the extremes; weight zero
    points zero, scalar or per channel) and full-range inputs, bit-exact against the reference
    on every registry entry (VNNI and AVX2 included)."""
    _host_arrays_only(backend)
    x_shape, w_shape, kw, geo = case
    x_dtype = data.draw(st.sampled_from([np.uint8, np.int8]))
    info = np.iinfo(x_dtype)
    x = S.int_array(data.draw, x_shape, x_dtype)
    w = S.int_array(data.draw, w_shape, np.int8)
    zw = data.draw(st.sampled_from(["zero", "scalar", "per_channel"]))
    q = dict(x_zero_point=data.draw(st.sampled_from([0, int(info.min), int(info.max), 3])),
             w_zero_point=data.draw(st.sampled_from([-128, 127, 5])) if zw == "scalar" else 0,
             out_dtype=data.draw(st.sampled_from([np.int32, np.float32, np.int8, np.uint8])),
             activation=data.draw(st.sampled_from([None, "relu"])), **kw)
    if zw == "per_channel":
        q["w_zero_point"] = S.int_array(data.draw, (geo.k,), np.int8).astype(np.int32)
    bias = (np.asarray(data.draw(st.lists(st.integers(-2**20, 2**20), min_size=geo.k, max_size=geo.k)),
                       dtype=np.int32) if data.draw(st.booleans()) else None)
    if q["out_dtype"] != np.int32:
        per_channel = data.draw(st.booleans())
        q["scale"] = (np.asarray(data.draw(st.lists(st.floats(1e-5, 0.1), min_size=geo.k, max_size=geo.k)),
                                 dtype=np.float32) if per_channel else np.float32(data.draw(st.floats(1e-5, 0.1))))
    if q["out_dtype"] in (np.int8, np.uint8):
        oi = np.iinfo(q["out_dtype"])
        q["out_zero_point"] = data.draw(st.sampled_from([0, int(oi.min), int(oi.max), 7]))
        if data.draw(st.booleans()):
            r_dtype = data.draw(st.sampled_from([np.uint8, np.int8]))
            ri = np.iinfo(r_dtype)
            q["residual"] = S.int_array(data.draw, geo.out_shape, r_dtype)
            q["residual_scale"] = data.draw(st.sampled_from([0.5, 1.0, 0.0173]))
            q["residual_zero_point"] = data.draw(st.sampled_from([0, int(ri.min), int(ri.max)]))
    y = ak.qconv2d(x, w, bias, backend=backend, **q)
    assert compare_exact(y, ak.reference.qconv2d(x, w, bias, **q)) is None
