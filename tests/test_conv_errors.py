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
