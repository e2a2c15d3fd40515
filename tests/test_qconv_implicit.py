"""INT8 NHWC convolution as an implicit GEMM on the shared driver (docs/CONV.md): the A packer
gathers taps straight from the input with padding taps holding the activation zero point, and
the zero points are folded with the packers' row and column sums. These shapes reach what the
small hypothesis geometries do not: depths past one depth block of every INT8 entry (512 k for
the int16 pairs, 1024 for the quads), output pixels past several row blocks, per-channel weight
zero points (row sums added up over depth blocks), groups, strides and dilation, and results that
do not depend on the thread count."""

import numpy as np
import pytest

import aicc_kernels as ak
from aicc_kernels.testing.tolerance import compare_exact

# (N, H, W, C, K, R, stride, padding, dilation, groups)
SHAPES = [
    (2, 9, 11, 130, 33, 3, 1, 1, 1, 1),    # depth 1170: two depth blocks on every entry
    (1, 17, 15, 24, 40, 3, 2, 2, 2, 2),    # strided, dilated, grouped, padding wider than the taps reach
    (3, 7, 7, 64, 70, 5, 1, 2, 1, 1),      # depth 1600, 5x5 with padding 2 on every side
    (1, 40, 9, 8, 35, 1, 2, 0, 1, 1),      # strided 1x1 (not pointwise: not read in place)
]


def _case(rng, shape, x_dtype, zx, per_channel):
    n, h, w, c, k, r, stride, padding, dilation, groups = shape
    info = np.iinfo(x_dtype)
    x = rng.choice([info.min, info.max, 0, 1, zx], size=(n, h, w, c)).astype(x_dtype)
    wt = rng.choice([-128, 127, 0, -1, 5], size=(k, r, r, c // groups)).astype(np.int8)
    zw = rng.integers(-128, 128, k).astype(np.int32) if per_channel else np.int32(-128)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, layout="NHWC",
              x_zero_point=zx, w_zero_point=zw)
    return x, wt, kw


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("x_dtype,zx", [(np.uint8, 128), (np.uint8, 0), (np.uint8, 255), (np.int8, -128),
                                        (np.int8, 0), (np.int8, 7)])
def test_qconv2d_nhwc_implicit_gemm_bit_exact(backend, rng, shape, x_dtype, zx):
    if backend != "cpu":
        pytest.skip("CPU driver test (host arrays, registry entries)")
    for per_channel in (False, True):
        x, wt, kw = _case(rng, shape, x_dtype, zx, per_channel)
        ref = ak.reference.qconv2d(x, wt, **kw)
        y = ak.qconv2d(x, wt, backend=backend, **kw)
        assert compare_exact(y, ref) is None, (per_channel, str(compare_exact(y, ref)))
    # Requantized u8 output with bias, per-channel scales and relu: the full output stage.
    k = wt.shape[0]
    q = dict(kw, bias=rng.integers(-9000, 9000, k).astype(np.int32), scale=(rng.random(k) * 1e-4 + 1e-6).astype(np.float32),
             out_dtype=np.uint8, out_zero_point=17, activation="relu")
    ref = ak.reference.qconv2d(x, wt, **q)
    assert compare_exact(ak.qconv2d(x, wt, backend=backend, **q), ref) is None


def test_qconv2d_nhwc_implicit_gemm_thread_independent(rng):
    x, wt, kw = _case(rng, (2, 9, 11, 130, 33, 3, 1, 1, 1, 1), np.uint8, 128, True)
    before = ak.get_num_threads()
    try:
        outs = []
        for t in (1, 2, 3):
            ak.set_num_threads(t)
            outs.append(ak.qconv2d(x, wt, **kw))
    finally:
        ak.set_num_threads(before)
    assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[0], outs[2])
    assert compare_exact(outs[0], ak.reference.qconv2d(x, wt, **kw)) is None
