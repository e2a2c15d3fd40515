"""NCHW forward paths of the float conv (docs/CONV.md, "NCHW"): the implicit-GEMM panel gathers
(f32 words, bf16 pair words; per image and small images batched into one GEMM), and the 1x1
stride-1 conv that reads its B operand (the image's channel rows) in place. Each runs on every
registry setting through the `backend` fixture (the AVX-512 gather, the portable one)."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import aicc_kernels as ak
from aicc_kernels import _dtypes
from aicc_kernels.testing import strategies as S
from aicc_kernels.testing.tolerance import F32_MAX, compare_exact, compare_float, float_bound
from conftest import on_threads


def _abs(x):
    a = np.abs(np.asarray(x).astype(np.float64))
    return np.where(np.isfinite(a), a, 0.0)


def _check(y, x, w, bias, activation, kw):
    ref = ak.reference.conv2d(x, w, bias, activation=activation, **kw)
    assert y.shape == ref.shape and y.dtype == ref.dtype
    mag = ak.reference.conv2d(_abs(x).astype(np.float32), _abs(w).astype(np.float32),
                              None if bias is None else np.abs(bias), **kw).astype(np.float64)
    bound = float_bound(ref.astype(np.float64), mag, w.shape[1] * w.shape[2] * w.shape[3], y.dtype, activation)
    mismatch = compare_float(y, ref, bound, ~np.isfinite(mag) | (mag > F32_MAX / 4))
    assert mismatch is None, str(mismatch)


def _with_offset(x, offset):
    """A copy of x whose data starts `offset` bytes past a 64-byte boundary."""
    buf = np.empty(x.nbytes + 128, np.uint8)
    start = (-buf.ctypes.data) % 64 + offset
    y = buf[start:start + x.nbytes].view(x.dtype).reshape(x.shape)
    y[...] = x
    assert y.ctypes.data % 64 == offset
    return y


@given(data=st.data())
def test_nchw_implicit_gemm_gathers_match_reference(backend, data):
    """Per-image GEMMs (more than 256 output pixels) and small images batched into one GEMM, f32
    and bf16, strides 1-3 (the AVX-512 gather handles 1 and 2, the portable one the rest),
    dilation, asymmetric padding, groups, channel counts around the 12-row tile and the 32-pixel
    panel, NaN/Inf inputs."""
    dtype = data.draw(st.sampled_from([np.float32, _dtypes.bfloat16]))
    small = data.draw(st.booleans())
    n = data.draw(st.integers(1, 3))
    h = data.draw(st.integers(1, 12) if small else st.integers(17, 40))
    w_ = data.draw(st.integers(1, 12) if small else st.integers(17, 40))
    groups = data.draw(st.sampled_from([1, 1, 2]))
    cg = data.draw(st.sampled_from([1, 2, 3, 5, 8, 13]))
    kg = data.draw(st.sampled_from([1, 4, 11, 12, 13, 29, 64]))
    r, s = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    stride = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    dilation = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)))
    pads = [data.draw(st.integers(0, 3)) for _ in range(4)]
    if h + pads[0] + pads[1] < dilation[0] * (r - 1) + 1 or w_ + pads[2] + pads[3] < dilation[1] * (s - 1) + 1:
        pads = [dilation[0] * (r - 1), dilation[0] * (r - 1), dilation[1] * (s - 1), dilation[1] * (s - 1)]
    x = S.float_array(data.draw, (n, cg * groups, h, w_), dtype, nonfinite=data.draw(st.booleans()))
    wt = S.float_array(data.draw, (kg * groups, cg, r, s), dtype)
    bias = S.float_array(data.draw, (kg * groups,), np.float32, kind="normal") if data.draw(st.booleans()) else None
    activation = data.draw(st.sampled_from([None, "relu"]))
    kw = dict(stride=stride, padding=((pads[0], pads[1]), (pads[2], pads[3])), dilation=dilation, groups=groups,
              layout="NCHW")
    y = ak.conv2d(x, wt, bias, activation=activation, backend=backend, **kw)
    _check(y, x, wt, bias, activation, kw)


@given(data=st.data())
def test_nchw_pointwise_reads_rows_in_place(backend, data):
    """1x1 stride-1 NCHW f32: with x 64-byte aligned and H*W a multiple of 16 floats the GEMM
    reads the channel rows in place (the strided-B kernel), else it packs them; both must give
    the reference's values and the same bits, on 1 and 2 threads. Column counts around the
    32-pixel panel (a last partial panel is packed), output channels around the 12-row tile."""
    n = data.draw(st.integers(1, 2))
    c = data.draw(st.sampled_from([1, 3, 16, 17, 40]))
    k = data.draw(st.sampled_from([1, 4, 12, 13, 31, 64]))
    h, w_ = data.draw(st.sampled_from([(4, 4), (4, 8), (8, 8), (16, 18), (3, 16), (16, 17), (5, 7)]))
    x = S.float_array(data.draw, (n, c, h, w_), np.float32, nonfinite=data.draw(st.booleans()))
    wt = S.float_array(data.draw, (k, c, 1, 1), np.float32)
    bias = S.float_array(data.draw, (k,), np.float32, kind="normal") if data.draw(st.booleans()) else None
    activation = data.draw(st.sampled_from([None, "relu"]))
    kw = dict(layout="NCHW")
    previous = ak.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            ak.set_num_threads(threads)
            for offset in (0, 16):
                results.append(ak.conv2d(_with_offset(x, offset), wt, bias, activation=activation,
                                         backend=backend, **kw))
    finally:
        ak.set_num_threads(previous)
    _check(results[0], x, wt, bias, activation, kw)
    for other in results[1:]:
        assert compare_exact(results[0], other) is None


@pytest.mark.parametrize("hw", [(56, 56), (28, 28)])
def test_nchw_pointwise_in_place_resnet_shapes(backend, rng, hw):
    """The ResNet-50 1x1 shapes that take the in-place path (aligned, H*W = 3136 / 784: 98 and
    24.5 panels), several kc blocks (C = 600 > the f32 entry's 512), against the packed path."""
    x = rng.standard_normal((2, 600, *hw)).astype(np.float32)
    w = rng.standard_normal((70, 600, 1, 1)).astype(np.float32)
    bias = rng.standard_normal(70).astype(np.float32)
    y_in_place = ak.conv2d(_with_offset(x, 0), w, bias, activation="relu", backend=backend, layout="NCHW")
    y_packed = ak.conv2d(_with_offset(x, 16), w, bias, activation="relu", backend=backend, layout="NCHW")
    assert compare_exact(y_in_place, y_packed) is None
    _check(y_in_place, x, w, bias, "relu", dict(layout="NCHW"))


@pytest.mark.parametrize("dtype", [np.float32, _dtypes.bfloat16])
@pytest.mark.parametrize("n, c, k, h, w_, r, stride, padding, dilation, groups", [
    (4, 20, 24, 41, 37, 3, 2, 1, 1, 1),            # one image per GEMM (> 256 phase pixels), odd sizes
    (4, 16, 33, 40, 36, 1, 2, 0, 1, 1),            # 1x1/2: three phases without taps
    (3, 36, 40, 13, 11, 3, 2, 1, 1, 2),            # the batch in one GEMM per group
    (4, 16, 8, 37, 31, 5, 3, ((2, 1), (0, 3)), 1, 1),  # stride 3: element-strided rows
    (2, 17, 12, 35, 34, 3, (2, 1), 2, 2, 1),       # stride 2 x 1, dilation 2
    (4, 20, 24, 17, 19, 3, 1, 1, 1, 1),            # stride 1, one image per GEMM: straight into grad_in
    (3, 16, 20, 9, 7, 3, 1, ((0, 3), (2, 1)), 1, 1),  # stride 1, batched, more outputs than pixels
    (4, 32, 40, 7, 7, 3, 1, 1, 1, 2),              # stride 1, batched, groups
    (4, 40, 24, 7, 5, 1, 1, 0, 1, 1),              # 1x1 on images of <= 64 pixels: one GEMM per batch
    (3, 32, 48, 8, 8, 1, 1, 0, 1, 2),              # the same with groups
    (4, 24, 40, 17, 16, 1, 1, 0, 1, 1),            # 1x1, larger images: a GEMM per image, dealt out
    (4, 32, 16, 9, 9, 1, 1, 0, 1, 2),              # the same with groups
])
def test_nchw_backward_data_phases_thread_count_and_reference(backend, rng, dtype, n, c, k, h, w_, r, stride,
                                                                padding, dilation, groups):
    """NCHW backward data by phase convs (strided: a block of images' phases into a scratch,
    then grad_in's rows written from it; stride 1: one phase, written into grad_in directly
    where the GEMM covers one image): image blocks dealt out to the threads (4 images on 2
    threads), or block by block with each GEMM on all threads (3 threads): bit-identical
    results on 1, 2 and 3 threads, within the float bound of the reference. NaN/Inf in grad_out
    reach the pixels whose taps read them."""
    if backend == "cuda":
        pytest.skip("written with NumPy arrays throughout; the cuda backend runs the property tests")
    x_shape, w_shape = (n, c, h, w_), (k, c // groups, r, r)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, layout="NCHW")
    wt = (rng.standard_normal(w_shape) * 0.2).astype(dtype)
    y_shape = ak.reference.conv2d(np.zeros(x_shape, dtype), wt, **kw).shape
    g = rng.standard_normal(y_shape).astype(np.float32)
    g[0, 0, 0, 0], g[-1, -1, -1, -1] = np.nan, np.inf
    g = g.astype(dtype)
    results = on_threads((1, 2, 3), lambda: ak.conv2d_backward_data(g, wt, x_shape, backend=backend, **kw))
    for other in results[1:]:
        assert compare_exact(results[0], other) is None
    ref = ak.reference.conv2d_backward_data(g, wt, x_shape, **kw)
    mag = ak.reference.conv2d_backward_data(_abs(g).astype(np.float32), _abs(wt).astype(np.float32), x_shape,
                                            **kw).astype(np.float64)
    assert results[0].shape == ref.shape and results[0].dtype == ref.dtype
    bound = float_bound(ref.astype(np.float64), mag, (k // groups) * r * r, results[0].dtype, None)
    mismatch = compare_float(results[0], ref, bound, ~np.isfinite(mag) | (mag > F32_MAX / 4))
    assert mismatch is None, str(mismatch)
