"""Bad input to the conv ops: a ValueError / TypeError naming the argument, never a crash."""

import numpy as np
import pytest

import aicc_kernels as ak

X = np.zeros((1, 4, 8, 8), np.float32)
W = np.zeros((6, 4, 3, 3), np.float32)


@pytest.mark.parametrize("call, exc, argument", [
    (lambda b: ak.conv2d(X, np.zeros((6, 3, 3, 3), np.float32), backend=b), ValueError, "w"),
    (lambda b: ak.conv2d(X, W, groups=2, backend=b), ValueError, "w"),
    (lambda b: ak.conv2d(X, W, groups=3, backend=b), ValueError, "groups"),
    (lambda b: ak.conv2d(X, np.zeros((6, 4, 9, 3), np.float32), backend=b), ValueError, "w"),
    (lambda b: ak.conv2d(X, np.zeros((6, 4, 3, 3), np.float32), dilation=5, backend=b), ValueError, "w"),
    (lambda b: ak.conv2d(X, W, stride=0, backend=b), ValueError, "stride"),
    (lambda b: ak.conv2d(X, W, stride=-1, backend=b), ValueError, "stride"),
    (lambda b: ak.conv2d(X, W, dilation=0, backend=b), ValueError, "dilation"),
    (lambda b: ak.conv2d(X, W, stride=(1, 2, 3), backend=b), ValueError, "stride"),
    (lambda b: ak.conv2d(X, W, padding=-1, backend=b), ValueError, "padding"),
    (lambda b: ak.conv2d(X, W, padding="full", backend=b), ValueError, "padding"),
    (lambda b: ak.conv2d(X, W, padding=((1, 1), (1, 1), (1, 1)), backend=b), ValueError, "padding"),
    (lambda b: ak.conv2d(X, W, layout="NWHC", backend=b), ValueError, "layout"),
    (lambda b: ak.conv2d(X, W.astype(np.float16), backend=b), TypeError, "w"),
    (lambda b: ak.conv2d(X.astype(np.int8), W.astype(np.int8), backend=b), TypeError, "x"),
    (lambda b: ak.conv2d(X[0], W, backend=b), ValueError, "x"),
    (lambda b: ak.conv2d(X, W[0], backend=b), ValueError, "w"),
    (lambda b: ak.conv2d(X, W, np.zeros(5, np.float32), backend=b), ValueError, "bias"),
    (lambda b: ak.conv2d(X, W, activation="tanh", backend=b), ValueError, "activation"),
    # The fused epilogue (issue 11): residual is the output's shape, layout and x's dtype or f32;
    # scale is (K,) floats.
    (lambda b: ak.conv2d(X, W, residual=np.zeros((1, 6, 6, 5), np.float32), backend=b), ValueError, "residual"),
    (lambda b: ak.conv2d(X, W, residual=np.zeros((6, 6, 6), np.float32), backend=b), ValueError, "residual"),
    # NHWC-shaped residual for an NCHW conv (and the reverse): the layout is part of the shape.
    (lambda b: ak.conv2d(X, W, padding=1, residual=np.zeros((1, 8, 8, 6), np.float32), backend=b), ValueError,
     "residual"),
    (lambda b: ak.conv2d(np.zeros((1, 8, 8, 4), np.float32), np.zeros((6, 3, 3, 4), np.float32), padding=1,
                         layout="NHWC", residual=np.zeros((1, 6, 8, 8), np.float32), backend=b), ValueError,
     "residual"),
    (lambda b: ak.conv2d(X, W, residual=np.zeros((1, 6, 6, 6), np.float16), backend=b), TypeError, "residual"),
    (lambda b: ak.conv2d(X, W, residual=np.zeros((1, 6, 6, 6), np.int32), backend=b), TypeError, "residual"),
    (lambda b: ak.conv2d(X.astype(np.float16), W.astype(np.float16), residual=np.zeros((1, 6, 6, 6), ak.bfloat16),
                         backend=b), TypeError, "residual"),
    (lambda b: ak.conv2d(X, W, residual="skip", backend=b), TypeError, "residual"),
    (lambda b: ak.conv2d(X, W, scale=np.ones(5, np.float32), backend=b), ValueError, "scale"),
    (lambda b: ak.conv2d(X, W, scale=np.ones((6, 1), np.float32), backend=b), ValueError, "scale"),
    (lambda b: ak.conv2d(X, W, scale=2.0, backend=b), ValueError, "scale"),
    (lambda b: ak.conv2d(X, W, scale=np.ones(6, np.int32), backend=b), TypeError, "scale"),
    (lambda b: ak.conv2d(X, ak.prepack_conv2d_weights(W), scale=np.ones(7, np.float32), backend=b), ValueError,
     "scale"),
    (lambda b: ak.conv2d(X, ak.prepack_conv2d_weights(W), residual=np.zeros((1, 6, 6, 7), np.float32), backend=b),
     ValueError, "residual"),
    (lambda b: ak.conv2d(X, W, out=np.zeros((1, 6, 5, 5), np.float32), backend=b), ValueError, "out"),
    (lambda b: ak.conv2d(X, W, out=np.zeros((1, 6, 6, 6), np.float64), backend=b), TypeError, "out"),
    (lambda b: ak.conv2d(X, W, out_dtype=np.int8, backend=b), TypeError, "out_dtype"),
    # NHWC weights are [K, R, S, C/groups]: NCHW-shaped weights are refused.
    (lambda b: ak.conv2d(np.zeros((1, 8, 8, 4), np.float32), W, layout="NHWC", backend=b), ValueError, "w"),
    (lambda b: ak.qconv2d(X.astype(np.uint8), W.astype(np.uint8), backend=b), TypeError, "w"),
    (lambda b: ak.qconv2d(X.astype(np.uint8), W.astype(np.int8), x_zero_point=300, backend=b), ValueError,
     "x_zero_point"),
    (lambda b: ak.qconv2d(X.astype(np.uint8), W.astype(np.int8), w_zero_point=np.zeros(5, np.int32), backend=b),
     ValueError, "w_zero_point"),
    (lambda b: ak.qconv2d(X.astype(np.uint8), W.astype(np.int8), out_dtype=np.int8, backend=b), ValueError,
     "scale"),
    (lambda b: ak.qconv2d(X.astype(np.uint8), W.astype(np.int8), out_dtype=np.int8, scale=np.ones(5), backend=b),
     ValueError, "scale"),
    (lambda b: ak.qconv2d(X.astype(np.uint8), W.astype(np.int8), out_dtype=np.int8, scale=-1.0, backend=b),
     ValueError, "scale"),
    (lambda b: ak.qconv2d(X.astype(np.uint8), W.astype(np.int8), scale=1.0, backend=b), ValueError, "scale"),
    (lambda b: ak.qconv2d(X.astype(np.uint8), W.astype(np.int8), bias=np.zeros(6, np.float32), backend=b),
     TypeError, "bias"),
    (lambda b: ak.qconv2d(X.astype(np.uint8), W.astype(np.int8), out_dtype=np.float16, backend=b), TypeError,
     "out_dtype"),
    (lambda b: ak.qconv2d(X.astype(np.uint8), W.astype(np.int8), activation="gelu", backend=b), ValueError,
     "activation"),
    (lambda b: ak.qconv2d(np.zeros((1, 20000, 3, 3), np.uint8), np.zeros((1, 20000, 3, 3), np.int8), backend=b),
     ValueError, "w"),
    (lambda b: ak.conv2d_backward_data(np.zeros((1, 6, 5, 5), np.float32), W, X.shape, backend=b), ValueError,
     "grad_out"),
    (lambda b: ak.conv2d_backward_data(np.zeros((1, 6, 6, 6), np.float32), W, (1, 4, 8), backend=b), ValueError,
     "input_shape"),
    (lambda b: ak.conv2d_backward_data(np.zeros((1, 6, 6, 6), np.float16), W, X.shape, backend=b), TypeError, "w"),
    (lambda b: ak.conv2d_backward_weight(X, np.zeros((1, 6, 6, 5), np.float32), W.shape, backend=b), ValueError,
     "grad_out"),
    (lambda b: ak.conv2d_backward_weight(X, np.zeros((1, 6, 6, 6), np.float32), (6, 3, 3, 3), backend=b),
     ValueError, "weight_shape"),
    (lambda b: ak.conv2d_backward_weight(X, np.zeros((1, 6, 6, 6), np.float32), "6x4x3x3", backend=b),
     TypeError, "weight_shape"),
])
def test_bad_input_names_the_argument(backend, call, exc, argument):
    with pytest.raises(exc, match=rf"^{argument}: expected"):
        call(backend)


def test_out_overlapping_input_is_refused(backend):
    buf = np.zeros((1, 6, 8, 8), np.float32)
    with pytest.raises(ValueError, match="^out: expected memory not overlapping x"):
        ak.conv2d(buf[:, :4], W, padding=1, out=buf, backend=backend)


def test_residual_overlapping_out_is_refused_unless_it_is_out(backend):
    buf = np.zeros((1, 6, 6, 7), np.float32)
    with pytest.raises(ValueError, match="^out: expected memory not overlapping residual"):
        ak.conv2d(X, W, residual=buf[..., 1:], out=buf[..., :6], backend=backend)
    out = np.zeros((1, 6, 6, 6), np.float32)
    ak.conv2d(X, W, residual=out, out=out, backend=backend)  # exactly out: allowed (in place)


def test_read_only_out_is_refused(backend):
    out = np.zeros((1, 6, 6, 6), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="^out: expected a writeable array"):
        ak.conv2d(X, W, out=out, backend=backend)


def test_cpp_entry_point_rechecks(backend):
    """The extension validates again for direct (C++-level) callers."""
    if backend != "cpu":
        pytest.skip("checks the C++ extension only")
    from aicc_kernels import _aicc_cpu

    geo = (1, 1, 0, 0, 0, 0, 1, 1, 1, 0)
    with pytest.raises(ValueError, match="^out: expected shape"):
        _aicc_cpu.conv2d(X, W, None, np.zeros((1, 6, 5, 5), np.float32), geo, 0)
    with pytest.raises(ValueError, match="^groups: expected"):
        _aicc_cpu.conv2d(X, W, None, np.zeros((1, 6, 6, 6), np.float32), geo[:8] + (3, 0), 0)
    with pytest.raises(ValueError, match="^stride: expected"):
        _aicc_cpu.conv2d(X, W, None, np.zeros((1, 6, 6, 6), np.float32), (0,) + geo[1:], 0)
    with pytest.raises(ValueError, match="^x: expected a C-contiguous"):
        _aicc_cpu.conv2d(np.zeros((1, 4, 8, 16), np.float32)[..., ::2], W, None, np.zeros((1, 6, 6, 6), np.float32),
                         geo, 0)
    out = np.zeros((1, 6, 6, 6), np.float32)
    with pytest.raises(ValueError, match="^scale: expected length 6"):
        _aicc_cpu.conv2d(X, W, None, out, geo, 0, scale=np.ones(5, np.float32))
    with pytest.raises(ValueError, match="^residual: expected shape"):
        _aicc_cpu.conv2d(X, W, None, out, geo, 0, residual=np.zeros((1, 6, 6, 5), np.float32))
    with pytest.raises(ValueError, match="^residual: expected a C-contiguous"):
        _aicc_cpu.conv2d(X, W, None, out, geo, 0, residual=np.zeros((1, 6, 6, 12), np.float32)[..., ::2])
    with pytest.raises(ValueError, match="^residual: expected dtype f32"):
        _aicc_cpu.conv2d(X, W, None, out, geo, 0, residual=np.zeros((1, 6, 6, 6), np.float16))
    big = np.zeros((2, 6, 6, 6), np.float32)
    with pytest.raises(ValueError, match="^residual: expected memory not overlapping out"):
        _aicc_cpu.conv2d(X, W, None, big[:1], geo, 0, residual=big.reshape(-1)[3:3 + 216].reshape(1, 6, 6, 6))
    packed = _aicc_cpu.Conv2dWeights(W, 1, 0)
    with pytest.raises(ValueError, match="^residual: expected shape"):
        _aicc_cpu.conv2d_prepacked(X, packed, None, out, geo, 0, residual=np.zeros((1, 6, 5, 6), np.float32))


# -- issue 17, D8: every zero-size dimension matches the reference ------------------------

_ZERO_CASES = [
    ("C=0", (2, 0, 5, 5), (4, 0, 3, 3), {}),
    ("C=0 NHWC", (2, 5, 5, 0), (4, 3, 3, 0), {"layout": "NHWC"}),
    ("C=0 groups", (2, 0, 5, 5), (4, 0, 1, 1), {"groups": 2}),
    ("H=0 padded", (2, 3, 0, 5), (4, 3, 3, 3), {"padding": 2}),
    ("W=0 padded NHWC", (2, 5, 0, 3), (4, 3, 3, 3), {"padding": 2, "layout": "NHWC"}),
    ("H=W=0 padded stride", (1, 2, 0, 0), (3, 2, 2, 2), {"padding": 3, "stride": 2}),
    ("N=0", (0, 3, 5, 5), (4, 3, 3, 3), {}),
    ("K=0", (2, 3, 5, 5), (0, 3, 3, 3), {}),
]


@pytest.mark.parametrize("name,x_shape,w_shape,kw", _ZERO_CASES, ids=[c[0] for c in _ZERO_CASES])
def test_zero_size_dimensions_match_the_reference(name, x_shape, w_shape, kw):
    k = w_shape[0]
    rng = np.random.default_rng(7)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    bias = np.arange(k, dtype=np.float32) - 1.5
    for act in (None, "relu"):
        ref = ak.reference.conv2d(x, w, bias, activation=act, **kw)
        np.testing.assert_array_equal(ak.conv2d(x, w, bias, activation=act, **kw), ref)
        groups = kw.get("groups", 1)
        packed = ak.prepack_conv2d_weights(w, groups=groups, layout=kw.get("layout", "NCHW"))
        np.testing.assert_array_equal(ak.conv2d(x, packed, bias, activation=act, **kw), ref)
    xq = rng.integers(0, 256, x_shape).astype(np.uint8)
    wq = rng.integers(-128, 128, w_shape).astype(np.int8)
    bq = np.arange(k, dtype=np.int32) * 7 - 3
    for out_dtype, extra in ((np.int32, {}), (np.int8, {"scale": 0.5, "out_zero_point": 3})):
        ref = ak.reference.qconv2d(xq, wq, bq, x_zero_point=5, out_dtype=out_dtype, **extra, **kw)
        np.testing.assert_array_equal(ak.qconv2d(xq, wq, bq, x_zero_point=5, out_dtype=out_dtype, **extra, **kw), ref)
    y = ak.reference.conv2d(x, w, **kw)
    g = rng.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_array_equal(ak.conv2d_backward_data(g, w, x_shape, **kw),
                                  ak.reference.conv2d_backward_data(g, w, x_shape, **kw))
    np.testing.assert_array_equal(ak.conv2d_backward_weight(x, g, w_shape, **kw),
                                  ak.reference.conv2d_backward_weight(x, g, w_shape, **kw))


@pytest.mark.parametrize("name,x_shape,w_shape,kw", _ZERO_CASES, ids=[c[0] for c in _ZERO_CASES])
def test_zero_size_dimensions_with_the_fused_epilogue(name, x_shape, w_shape, kw):
    """C = 0 / H = W = 0 with padding: every output is scale * 0 + bias + residual through the
    activation, as the reference computes it."""
    k = w_shape[0]
    rng = np.random.default_rng(8)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    out_shape = ak.reference.conv2d(x, w, **kw).shape
    fused = dict(scale=np.arange(k, dtype=np.float32), residual=rng.standard_normal(out_shape).astype(np.float32),
                 activation="relu")
    bias = np.arange(k, dtype=np.float32) - 1.5
    ref = ak.reference.conv2d(x, w, bias, **fused, **kw)
    np.testing.assert_array_equal(ak.conv2d(x, w, bias, **fused, **kw), ref)
    packed = ak.prepack_conv2d_weights(w, groups=kw.get("groups", 1), layout=kw.get("layout", "NCHW"))
    np.testing.assert_array_equal(ak.conv2d(x, packed, bias, **fused, **kw), ref)


# -- issue 17, D10: messages name the argument the user passed; one rule for `out` --------

def test_out_that_is_not_an_array_is_named():
    a = np.ones((3, 4), np.float32)
    b = np.ones((4, 5), np.float32)
    with pytest.raises(TypeError, match=r"^out: expected a numpy.ndarray or a device array, got list"):
        ak.gemm(a, b, out=[[0] * 5] * 3)
    with pytest.raises(TypeError, match=r"^out: expected"):
        ak.conv2d(np.ones((1, 1, 4, 4), np.float32), np.ones((1, 1, 1, 1), np.float32), out=[1])


def test_f32_output_choice_is_not_repeated():
    a = np.ones((3, 4), np.float32)
    with pytest.raises(TypeError, match=r"^out_dtype: expected f32 for f32 inputs, got f16$"):
        ak.gemm(a, a.T, out_dtype=np.float16)
    with pytest.raises(TypeError, match=r"^out_dtype: expected f32 for f32 inputs, got f16$"):
        ak.conv2d(np.ones((1, 1, 4, 4), np.float32), np.ones((1, 1, 1, 1), np.float32), out_dtype=np.float16)
    with pytest.raises(TypeError, match=r"^out_dtype: expected f16 or f32 for f16 inputs, got bf16$"):
        ak.gemm(a.astype(np.float16), a.T.astype(np.float16), out_dtype=ak.bfloat16)


@pytest.mark.parametrize("kw,name", [
    (dict(stride=2**62, padding=2**62), "stride"), (dict(padding=2**63), "padding"), (dict(dilation=2**64), "dilation"),
    (dict(padding=((0, 2**31), (0, 0))), "padding"), (dict(stride=(1, 2**40)), "stride"), (dict(groups=2**70), "groups"),
])
def test_huge_geometry_is_a_value_error_naming_it(kw, name):
    x = np.ones((1, 1, 4, 4), np.float32)
    w = np.ones((1, 1, 1, 1), np.float32)
    for call in (lambda: ak.conv2d(x, w, **kw), lambda: ak.qconv2d(x.astype(np.uint8), w.astype(np.int8), **kw),
                 lambda: ak.conv2d_backward_data(x, w, (1, 1, 4, 4), **kw)):
        with pytest.raises(ValueError, match=rf"^{name}: expected an integer in \[\d+, 2147483647\], got \d+"):
            call()


def test_huge_shape_arguments_are_named():
    g = np.ones((1, 1, 4, 4), np.float32)
    with pytest.raises(ValueError, match=r"^input_shape: expected 4 integers in \[0, 2147483647\]"):
        ak.conv2d_backward_data(g, np.ones((1, 1, 1, 1), np.float32), (1, 1, 2**63, 4))
    with pytest.raises(ValueError, match=r"^weight_shape: expected 4 integers in \[0, 2147483647\]"):
        ak.conv2d_backward_weight(g, g, (1, 1, 2**40, 1))


def _strided_outs(shape, dtype):
    """Fortran order, negative strides, a padded (every other element) view."""
    yield np.zeros(shape[::-1], dtype).T
    yield np.zeros(shape, dtype)[:, :, ::-1]
    yield np.zeros(shape[:-1] + (2 * shape[-1],), dtype)[..., ::2]


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_strided_out_accepted_by_every_conv_op(layout):
    """One rule for `out` (SEMANTICS.md, "Layouts"): any strides; the result is the same as
    with a fresh output. Backward ops used to refuse it naming the kernel's 'grad_in'/'grad_w'."""
    rng = np.random.default_rng(3)
    x_shape = (2, 3, 6, 5) if layout == "NCHW" else (2, 6, 5, 3)
    w_shape = (4, 3, 3, 3)
    kw = dict(padding=1, layout=layout)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    y = ak.conv2d(x, w, **kw)
    g = rng.standard_normal(y.shape).astype(np.float32)
    expected = {"fwd": y, "data": ak.conv2d_backward_data(g, w, x_shape, **kw),
                "weight": ak.conv2d_backward_weight(x, g, w_shape, **kw),
                "q": ak.qconv2d(x.astype(np.int8), w.astype(np.int8), **kw)}
    for out in _strided_outs(y.shape, np.float32):
        assert ak.conv2d(x, w, out=out, **kw) is out
        np.testing.assert_array_equal(out, expected["fwd"])
    for out in _strided_outs(x_shape, np.float32):
        ak.conv2d_backward_data(g, w, x_shape, out=out, **kw)
        np.testing.assert_array_equal(out, expected["data"])
    for out in _strided_outs(w_shape, np.float32):
        ak.conv2d_backward_weight(x, g, w_shape, out=out, **kw)
        np.testing.assert_array_equal(out, expected["weight"])
    for out in _strided_outs(y.shape, np.int32):
        ak.qconv2d(x.astype(np.int8), w.astype(np.int8), out=out, **kw)
        np.testing.assert_array_equal(out, expected["q"])


def test_matmul_out_with_strides_that_cannot_be_viewed_batched():
    a = np.random.default_rng(1).standard_normal((4,)).astype(np.float32)
    b = np.random.default_rng(2).standard_normal((2, 4, 3)).astype(np.float32)
    out = np.zeros((3, 2), np.float32).T  # final shape (2, 3); the batched (2, 1, 3) view needs a copy
    assert ak.matmul(a, b, out=out) is out
    np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-5)
