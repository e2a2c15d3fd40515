"""qconv2d's fused residual (issue 11, item 2: the quantized ResNet block's conv + requantized
skip add + relu in the INT8 output stage), bit-exact against the reference on every backend and
registry entry, through every qconv2d algorithm (im2col + qgemm, depthwise, the small-C stem),
NCHW and NHWC, in place (residual is out) included; and the exact order of operations the
reference (the spec) defines, checked against an independent NumPy computation."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

import aicc_kernels as ak
from aicc_kernels.testing import strategies as S
from aicc_kernels.testing.cases.conv import conv_geometry
from aicc_kernels.testing.devices import to_device, to_host
from aicc_kernels.testing.tolerance import compare_exact

# Residual scales: exact powers of two, values whose products round, tiny, and one so large
# that s_r * (r - z_r) overflows f32 (the output saturates; f32 outputs get +-inf).
RESIDUAL_SCALES = [1.0, 0.5, 1.0 / 3.0, 2.0 ** -7, 1e-4, 250.0, 3e38]


def _host_arrays_only(backend):
    if backend in ("cuda",):
        pytest.skip("the cuda backend has no fused residual in its INT8 output stage yet (KernelUnsupported)")


def _draw_quant(data, geo, x_dtype):
    info = np.iinfo(x_dtype)
    zx = data.draw(st.sampled_from([0, int(info.min), int(info.max), 3]))
    zw = (S.int_array(data.draw, (geo.k,), np.int8).astype(np.int32) if data.draw(st.booleans())
          else data.draw(st.sampled_from([0, -128, 127, -5])))
    out_dtype = data.draw(st.sampled_from([np.int8, np.uint8, np.float32]))
    scale = (np.abs(S.float_array(data.draw, (geo.k,), np.float32, kind="normal")) * 1e-3 + 1e-6
             if data.draw(st.booleans()) else data.draw(st.sampled_from([1.0, 0.5, 1.0 / 3.0, 1e-4])))
    ozp = 0
    if out_dtype in (np.int8, np.uint8):
        oi = np.iinfo(out_dtype)
        ozp = data.draw(st.integers(int(oi.min), int(oi.max)))
    bias = S.int_array(data.draw, (geo.k,), np.int8).astype(np.int32) * 1000 if data.draw(st.booleans()) else None
    activation = data.draw(st.sampled_from([None, "relu"]))
    return bias, dict(x_zero_point=zx, w_zero_point=zw, scale=scale, out_zero_point=ozp, out_dtype=out_dtype,
                      activation=activation)


@given(case=conv_geometry(), data=st.data())
def test_qconv2d_residual_bit_exact(backend, case, data):
    _host_arrays_only(backend)
    x_shape, w_shape, kw, geo = case
    x_dtype = data.draw(st.sampled_from([np.uint8, np.int8]))
    x = S.int_array(data.draw, x_shape, x_dtype)
    w = S.int_array(data.draw, w_shape, np.int8)
    bias, q = _draw_quant(data, geo, x_dtype)
    r_dtype = data.draw(st.sampled_from([np.uint8, np.int8]))
    residual = S.int_array(data.draw, geo.out_shape, r_dtype)
    ri = np.iinfo(r_dtype)
    q.update(residual_scale=data.draw(st.sampled_from(RESIDUAL_SCALES)),
             residual_zero_point=data.draw(st.sampled_from([0, int(ri.min), int(ri.max), 7])))
    ref = ak.reference.qconv2d(x, w, bias, residual=residual, **q, **kw)
    assert ref.dtype == np.dtype(q["out_dtype"]) and ref.shape == geo.out_shape
    y = ak.qconv2d(x, w, bias, residual=residual, backend=backend, **q, **kw)
    mismatch = compare_exact(y, ref)
    assert mismatch is None, str(mismatch)
    if np.dtype(q["out_dtype"]) == residual.dtype:  # in place: the residual is out itself
        out = residual.copy()
        assert ak.qconv2d(x, w, bias, residual=out, out=out, backend=backend, **q, **kw) is out
        assert compare_exact(out, ref) is None, "in place: " + str(compare_exact(out, ref))


def test_reference_order_of_operations():
    """The spec, written out independently: v = f32(acc) * f32(scale) (rounded), t =
    f32(s_r) * f32(r - z_r) (rounded), v + t (rounded), rint half even, + out_zero_point,
    saturate; relu clamps at out_zero_point. Values chosen so a fused multiply-add, an f64
    intermediate or adding before scaling would each give a different answer somewhere."""
    rng = np.random.default_rng(11)
    x = rng.integers(0, 256, (3, 5, 6, 7), dtype=np.uint8)
    w = rng.integers(-128, 128, (8, 5, 3, 3), dtype=np.int8)
    r = rng.integers(-128, 128, (3, 8, 4, 5), dtype=np.int8)
    scale = (rng.random(8) * 3e-3 + 1e-4).astype(np.float32)
    s_r, z_r, z_x, z_out = 0.1, -3, 128, 5
    acc = ak.reference.qconv2d(x, w, x_zero_point=z_x).astype(np.int64)
    v = acc.astype(np.float32) * scale[None, :, None, None]
    t = np.float32(s_r) * (r.astype(np.int32) - z_r).astype(np.float32)
    v = (v + t).astype(np.float32)
    for out_dtype, act in ((np.int8, None), (np.uint8, "relu"), (np.float32, None), (np.float32, "relu")):
        got = ak.reference.qconv2d(x, w, x_zero_point=z_x, scale=scale, out_dtype=out_dtype,
                                   out_zero_point=0 if out_dtype == np.float32 else z_out, activation=act,
                                   residual=r, residual_scale=s_r, residual_zero_point=z_r)
        if out_dtype == np.float32:
            want = np.maximum(v, np.float32(0)) if act else v
        else:
            info = np.iinfo(out_dtype)
            lo = max(info.min, z_out) if act else info.min
            want = np.clip(np.rint(v).astype(np.float64) + z_out, lo, info.max).astype(out_dtype)
        np.testing.assert_array_equal(got, want)
    # Half-way cases: the residual term lands the sum exactly on .5; rint takes the even side.
    one = np.ones((1, 1, 1, 1), np.uint8)
    for acc_val, r_val, want in ((1, 1, 2), (2, 1, 2), (3, 1, 4), (-1, -1, -2)):
        y = ak.reference.qconv2d(one, np.full((1, 1, 1, 1), acc_val, np.int8), scale=1.0, out_dtype=np.int8,
                                 residual=np.full((1, 1, 1, 1), r_val, np.int8), residual_scale=0.5)
        assert y.item() == want, (acc_val, r_val, y.item(), want)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("algorithm", ["gemm", "pointwise", "depthwise", "stem"])
@pytest.mark.parametrize("out_dtype", [np.uint8, np.int8, np.float32])
def test_qconv2d_residual_every_algorithm_extremes(backend, rng, layout, algorithm, out_dtype):
    """Each qconv2d algorithm with full-range x / w / residual, per-channel zero points and
    scales, relu, saturating sums; bit-exact, and in place where out and residual share a dtype."""
    _host_arrays_only(backend)
    c, k, r, groups, stride = {"gemm": (19, 40, 3, 1, 1), "pointwise": (24, 33, 1, 1, 1),
                               "depthwise": (21, 21, 3, 21, 2), "stem": (3, 35, 7, 1, 2)}[algorithm]
    h, wd = 13, 17
    x_shape = (2, c, h, wd) if layout == "NCHW" else (2, h, wd, c)
    w_shape = (k, c // groups, r, r) if layout == "NCHW" else (k, r, r, c // groups)
    x = rng.choice([0, 255, 1, 128], size=x_shape).astype(np.uint8)
    w = rng.choice([-128, 127, 0, -1], size=w_shape).astype(np.int8)
    kw = dict(stride=stride, padding=r // 2, groups=groups, layout=layout, x_zero_point=128,
              w_zero_point=rng.integers(-128, 128, k), bias=rng.integers(-5000, 5000, k).astype(np.int32),
              scale=(rng.random(k) * 4e-4 + 1e-6).astype(np.float32), out_dtype=out_dtype,
              out_zero_point=0 if out_dtype == np.float32 else int(np.iinfo(out_dtype).min) + 100)
    out_shape = ak.reference.qconv2d(x, w, **{**kw, "out_dtype": np.int32, "scale": None, "out_zero_point": 0}).shape
    for r_dtype in (np.uint8, np.int8):
        ri = np.iinfo(r_dtype)
        res = rng.choice([ri.min, ri.max, 0, 1], size=out_shape).astype(r_dtype)
        for activation in (None, "relu"):
            for s_r, z_r in ((0.75, int(ri.max)), (1.0 / 3.0, int(ri.min)), (3e38, 0)):
                q = dict(kw, activation=activation, residual_scale=s_r, residual_zero_point=z_r)
                ref = ak.reference.qconv2d(x, w, residual=res, **q)
                y = ak.qconv2d(x, w, residual=res, backend=backend, **q)
                assert compare_exact(y, ref) is None, (r_dtype, activation, s_r, str(compare_exact(y, ref)))
                if np.dtype(out_dtype) == res.dtype:
                    out = res.copy()
                    ak.qconv2d(x, w, residual=out, out=out, backend=backend, **q)
                    assert compare_exact(out, ref) is None, "in place"
    # The residual changed the result (not silently dropped).
    plain = ak.qconv2d(x, w, backend=backend, **kw)
    assert not np.array_equal(plain, ak.qconv2d(x, w, residual=res, residual_scale=0.75, backend=backend, **kw))


def test_qconv2d_residual_non_contiguous_and_empty(backend, rng):
    """A non-contiguous residual is copied; a non-contiguous out aliasing the residual reads it
    before the result is written; zero-size inputs (C = 0) still add the residual."""
    _host_arrays_only(backend)
    x = rng.integers(0, 256, (1, 8, 8, 5), dtype=np.uint8)
    w = rng.integers(-128, 128, (6, 3, 3, 5), dtype=np.int8)
    kw = dict(layout="NHWC", padding=1, scale=0.01, out_dtype=np.uint8, x_zero_point=128, residual_scale=0.5,
              residual_zero_point=10)
    big = rng.integers(0, 256, (1, 8, 8, 12), dtype=np.uint8)
    res = big[..., ::2]  # strided view
    ref = ak.reference.qconv2d(x, w, residual=np.ascontiguousarray(res), **kw)
    assert compare_exact(ak.qconv2d(x, w, residual=res, backend=backend, **kw), ref) is None
    ak.qconv2d(x, w, residual=res, out=res, backend=backend, **kw)  # non-contiguous, in place
    assert compare_exact(res, ref) is None
    x0, w0 = np.zeros((1, 4, 4, 0), np.uint8), np.zeros((6, 3, 3, 0), np.int8)
    r0 = rng.integers(0, 256, (1, 4, 4, 6), dtype=np.uint8)
    kw0 = dict(kw, padding=1)
    assert compare_exact(ak.qconv2d(x0, w0, residual=r0, backend=backend, **kw0),
                         ak.reference.qconv2d(x0, w0, residual=r0, **kw0)) is None


X = np.zeros((1, 4, 8, 8), np.uint8)
W = np.zeros((6, 4, 3, 3), np.int8)
R = np.zeros((1, 6, 6, 6), np.uint8)
Q = dict(scale=0.1, out_dtype=np.uint8)


@pytest.mark.parametrize("kwargs, exc, argument", [
    (dict(residual=np.zeros((1, 6, 6, 5), np.uint8), **Q), ValueError, "residual"),
    (dict(residual=np.zeros((1, 6, 6, 6), np.float32), **Q), TypeError, "residual"),
    (dict(residual=np.zeros((1, 6, 6, 6), np.int32), **Q), TypeError, "residual"),
    (dict(residual=R), ValueError, "residual"),  # s32 output: no scale to add it under
    (dict(residual=R, residual_scale=0.0, **Q), ValueError, "residual_scale"),
    (dict(residual=R, residual_scale=-1.0, **Q), ValueError, "residual_scale"),
    (dict(residual=R, residual_scale=float("nan"), **Q), ValueError, "residual_scale"),
    (dict(residual=R, residual_scale=1e39, **Q), ValueError, "residual_scale"),  # inf as f32
    (dict(residual=R, residual_scale="1.0", **Q), TypeError, "residual_scale"),
    (dict(residual=R, residual_scale=np.ones(6), **Q), TypeError, "residual_scale"),
    (dict(residual=R, residual_zero_point=256, **Q), ValueError, "residual_zero_point"),
    (dict(residual=R.view(np.int8), residual_zero_point=128, **Q), ValueError, "residual_zero_point"),
    (dict(residual=R, residual_zero_point=1.5, **Q), TypeError, "residual_zero_point"),
])
def test_bad_residual_names_the_argument(backend, kwargs, exc, argument):
    _host_arrays_only(backend)
    with pytest.raises(exc, match=rf"^{argument}: expected"):
        ak.qconv2d(X, W, backend=backend, **kwargs)


def test_residual_overlapping_out_is_refused_unless_it_is_out(backend):
    _host_arrays_only(backend)
    buf = np.zeros((1, 6, 6, 7), np.uint8)
    with pytest.raises(ValueError, match="^out: expected memory not overlapping residual"):
        ak.qconv2d(X, W, residual=buf[..., 1:], out=buf[..., :6], **Q, backend=backend)
    out = np.zeros((1, 6, 6, 6), np.uint8)
    ak.qconv2d(X, W, residual=out, out=out, **Q, backend=backend)  # exactly out: allowed


def test_cpp_api_checks_the_residual_too():
    """The C++ entry validates again for C++ callers (the binding passes arrays through)."""
    from aicc_kernels import _aicc_cpu

    geo = (1, 1, 0, 0, 0, 0, 1, 1, 1, 0)
    out = np.zeros((1, 6, 6, 6), np.uint8)
    scale = np.full(1, 0.1, np.float32)
    zw = np.zeros(6, np.int32)
    for res, rs, rz, argument in ((np.zeros((1, 6, 6, 5), np.uint8), 1.0, 0, "residual"),
                                  (np.zeros((1, 6, 6, 6), np.float32), 1.0, 0, "residual"),
                                  (R, -1.0, 0, "residual_scale"), (R, 1.0, 300, "residual_zero_point")):
        with pytest.raises(ValueError, match=rf"^{argument}: expected"):
            _aicc_cpu.qconv2d(X, W, None, out, geo, 0, zw, scale, 0, 0, res, rs, rz)
    with pytest.raises(ValueError, match="^residual: expected"):
        _aicc_cpu.qconv2d(X, W, None, np.zeros((1, 6, 6, 6), np.int32), geo, 0, zw, None, 0, 0, R, 1.0, 0)
