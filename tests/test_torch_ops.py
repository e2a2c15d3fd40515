"""torch.ops.aicc.*: every operator against aicc_kernels.reference (through the shared case
generators and tolerance table) and against the torch op; zero copies; opcheck; gradients
against PyTorch's own; torch.compile(fullgraph=True); bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

torch = pytest.importorskip("torch", reason="torch is not installed (pip install 'aicc-kernels[torch]')")

import aicc_kernels as ak  # noqa: E402
import aicc_kernels.torch as akt  # noqa: E402
from aicc_kernels import _dtypes  # noqa: E402
from aicc_kernels.ops.conv_geometry import ConvGeometry  # noqa: E402
from aicc_kernels.testing.cases import conv as conv_cases  # noqa: E402
from aicc_kernels.testing.cases.gemm import check_gemm_case, gemm_cases  # noqa: E402
from aicc_kernels.testing.cases.qgemm import check_qgemm_case, qgemm_cases  # noqa: E402
from aicc_kernels.torch import _tensors as T  # noqa: E402

FLOAT_NP = [np.float32, np.float16, _dtypes.bfloat16]
FLOAT_TORCH = [torch.float32, torch.float16, torch.bfloat16]
pytestmark = pytest.mark.skipif(not ak.backends.get("cpu").available, reason="cpu backend not built")


to_torch = T.from_array  # a tensor over the NumPy array's memory (bf16 via int16)


def to_numpy(t):
    return T.as_array(t)


def torch_dtype(dt):
    return None if dt is None else T.TORCH_DTYPE[np.dtype(dt)]


def param(v):
    """A scalar or per-channel parameter as the tensor the schema takes."""
    if v is None:
        return None
    return to_torch(np.asarray(v, dtype=np.float32 if isinstance(v, float) or np.asarray(v).dtype.kind == "f"
                               else np.int32))


# ---- zero copy ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_TORCH + [torch.int8, torch.uint8])
def test_tensors_reach_the_kernels_without_a_copy(dtype):
    t = torch.zeros(6, 10, dtype=dtype)[:, ::3]  # strided view: still no copy
    arr = T.as_array(t)
    assert arr.__array_interface__["data"][0] == t.data_ptr()
    assert arr.strides == tuple(s * t.element_size() for s in t.stride())
    assert arr.dtype == T.NP_DTYPE[dtype]
    back = T.from_array(arr)  # and back: the same memory, strides and dtype
    assert back.data_ptr() == t.data_ptr() and back.stride() == t.stride() and back.dtype == dtype


def test_bf16_operands_and_output_cross_without_conversion():
    a = torch.randn(4, 8).bfloat16()
    b = torch.randn(8, 5).bfloat16()
    y = torch.ops.aicc.matmul(a, b)
    assert y.dtype == torch.bfloat16
    case = dict(a=to_numpy(a), b=to_numpy(b))
    verdict = check_gemm_case(case, to_numpy(y))
    assert verdict is None, verdict


# ---- against the reference (shared generators and tolerances) ---------------------------------
@given(data=st.data())
def test_gemm_matches_reference(data):
    dtype = data.draw(st.sampled_from(FLOAT_NP))
    case = data.draw(gemm_cases(dtype, max_dim=40, max_k=80, nonfinite=True))
    y = torch.ops.aicc.gemm(to_torch(case["a"]), to_torch(case["b"]), to_torch(case["c"]), to_torch(case["bias"]),
                            alpha=case["alpha"], beta=case["beta"], trans_a=case["trans_a"],
                            trans_b=case["trans_b"], activation=case["activation"],
                            out_dtype=torch_dtype(case["out_dtype"]))
    verdict = check_gemm_case(case, to_numpy(y))
    assert verdict is None, verdict


@given(data=st.data())
def test_qgemm_bit_exact(data):
    case = data.draw(qgemm_cases(max_dim=40, max_k=120))
    y = torch.ops.aicc.qgemm(to_torch(case["a"]), to_torch(case["b"]), to_torch(case["bias"]),
                             a_zero_point=case["a_zero_point"], b_zero_point=param(case["b_zero_point"]),
                             scale=param(case["scale"]), out_zero_point=case["out_zero_point"],
                             out_dtype=torch_dtype(case["out_dtype"]), activation=case["activation"],
                             trans_b=case["trans_b"])
    verdict = check_qgemm_case(case, to_numpy(y))
    assert verdict is None, verdict


def _nchw(arr):
    """An NHWC array as the NCHW-shaped tensor torch uses for it: channels_last memory."""
    return to_torch(arr).permute(0, 3, 1, 2)


def _conv_args(case, x_key="x", w_key="w", x_shape=None, w_shape=None):
    geo = ConvGeometry(x_shape or case[x_key].shape, w_shape or case[w_key].shape,
                    **{k: case[k] for k in ("stride", "padding", "dilation", "groups", "layout")})
    (pt, pb), (pl, pr) = geo.padding
    return geo, [list(geo.stride), [pt, pb, pl, pr], list(geo.dilation), geo.groups]


def _as_torch_layout(arr, layout):
    return _nchw(arr) if layout == "NHWC" else to_torch(arr)


def _back_to_layout(t, layout):
    return to_numpy(t.permute(0, 2, 3, 1)) if layout == "NHWC" else to_numpy(t)


@given(data=st.data())
def test_conv2d_matches_reference(data):
    case = data.draw(conv_cases.conv2d_cases(data.draw(st.sampled_from(FLOAT_NP))))
    layout = case["layout"]
    _, geo_args = _conv_args(case)
    y = torch.ops.aicc.conv2d(_as_torch_layout(case["x"], layout), _as_torch_layout(case["w"], layout),
                              to_torch(case["bias"]), *geo_args, activation=case["activation"],
                              out_dtype=torch_dtype(case["out_dtype"]))
    verdict = conv_cases.check_conv2d_case(case, _back_to_layout(y, layout))
    assert verdict is None, verdict


@given(data=st.data())
def test_qconv2d_bit_exact(data):
    case = data.draw(conv_cases.qconv2d_cases())
    layout = case["layout"]
    _, geo_args = _conv_args(case)
    y = torch.ops.aicc.qconv2d(_as_torch_layout(case["x"], layout), _as_torch_layout(case["w"], layout),
                               to_torch(case["bias"]), *geo_args, x_zero_point=case["x_zero_point"],
                               w_zero_point=param(case["w_zero_point"]), scale=param(case["scale"]),
                               out_zero_point=case["out_zero_point"], out_dtype=torch_dtype(case["out_dtype"]),
                               activation=case["activation"])
    verdict = conv_cases.check_qconv2d_case(case, _back_to_layout(y, layout))
    assert verdict is None, verdict


def _nchw_shape(shape, layout, weight=False):
    if layout == "NCHW":
        return list(shape)
    a, b, c, d = shape  # NHWC [N, H, W, C] / weights [K, R, S, C/g]
    return [a, d, b, c]


@given(data=st.data())
def test_conv2d_backward_data_matches_reference(data):
    case = data.draw(conv_cases.conv2d_backward_data_cases(data.draw(st.sampled_from(FLOAT_NP))))
    layout = case["layout"]
    _, geo_args = _conv_args(case, x_shape=case["input_shape"])
    g = _as_torch_layout(case["grad_out"], layout)
    y = torch.ops.aicc.conv2d_backward_data(g, _as_torch_layout(case["w"], layout),
                                            _nchw_shape(case["input_shape"], layout), *geo_args)
    if layout == "NHWC" and not T.is_channels_last(g):
        y = y.contiguous(memory_format=torch.channels_last)  # ran the NCHW kernel (C == 1 or 1x1 maps)
    verdict = conv_cases.check_conv2d_backward_data_case(case, _back_to_layout(y, layout))
    assert verdict is None, verdict


@given(data=st.data())
def test_conv2d_backward_weight_matches_reference(data):
    case = data.draw(conv_cases.conv2d_backward_weight_cases(data.draw(st.sampled_from(FLOAT_NP))))
    layout = case["layout"]
    _, geo_args = _conv_args(case, w_shape=case["weight_shape"])
    x = _as_torch_layout(case["x"], layout)
    y = torch.ops.aicc.conv2d_backward_weight(x, _as_torch_layout(case["grad_out"], layout),
                                              _nchw_shape(case["weight_shape"], layout), *geo_args)
    if layout == "NHWC" and not T.is_channels_last(x):
        y = y.contiguous(memory_format=torch.channels_last)
    verdict = conv_cases.check_conv2d_backward_weight_case(case, _back_to_layout(y, layout))
    assert verdict is None, verdict


@settings(max_examples=15)
@given(batch=st.sampled_from([(), (3,), (2, 1)]), m=st.sampled_from([1, 5, 17]), k=st.sampled_from([1, 7, 33]),
       n=st.sampled_from([1, 4, 19]), dtype=st.sampled_from(FLOAT_TORCH), vec=st.sampled_from([None, "a", "b"]))
def test_matmul_batched_against_torch(batch, m, k, n, dtype, vec):
    g = torch.Generator().manual_seed(m * 1000 + k * 10 + n)
    a = torch.randn(*((k,) if vec == "a" else batch + (m, k)), generator=g).to(dtype)
    b = torch.randn(*((k,) if vec == "b" else (k, n)), generator=g).to(dtype)
    y = torch.ops.aicc.matmul(a, b)
    ref = torch.matmul(a.float(), b.float())
    assert y.shape == ref.shape and y.dtype == dtype
    tol = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}[dtype]
    assert torch.allclose(y.float(), ref, rtol=tol, atol=tol * k)


def test_int8_matmul_is_exact_int32():
    a = torch.randint(0, 256, (7, 300), dtype=torch.int32).to(torch.uint8)
    b = torch.randint(-128, 128, (300, 9), dtype=torch.int32).to(torch.int8)
    y = torch.ops.aicc.matmul(a, b)
    assert y.dtype == torch.int32
    assert torch.equal(y, a.long().matmul(b.long()).int())


def test_conv2d_against_torch_channels_last_gives_channels_last():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 16, 11, 11, generator=g).contiguous(memory_format=torch.channels_last)
    w = torch.randn(8, 4, 3, 3, generator=g).contiguous(memory_format=torch.channels_last)
    bias = torch.randn(8, generator=g)
    y = torch.ops.aicc.conv2d(x, w, bias, [2, 1], [1, 1], [1, 2], 4, activation="relu")
    ref = torch.relu(torch.nn.functional.conv2d(x, w, bias, (2, 1), 1, (1, 2), 4))
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(y, ref, rtol=1e-5, atol=1e-5)


# ---- opcheck (schema, fake kernel, autograd registration, AOT dispatch) -----------------------
def _opcheck_cases():
    g = torch.Generator().manual_seed(0)

    def r(*s, grad=False, dtype=torch.float32):
        return torch.randn(*s, generator=g).to(dtype).requires_grad_(grad)

    u8 = torch.randint(0, 256, (5, 7), generator=g, dtype=torch.int32).to(torch.uint8)
    s8 = torch.randint(-128, 128, (7, 3), generator=g, dtype=torch.int32).to(torch.int8)
    x8 = torch.randint(0, 256, (2, 4, 6, 6), generator=g, dtype=torch.int32).to(torch.uint8)
    w8 = torch.randint(-128, 128, (3, 4, 3, 3), generator=g, dtype=torch.int32).to(torch.int8)
    cl = torch.channels_last
    return [
        ("matmul", (r(2, 5, 7, grad=True), r(7, 3, grad=True)), {}),
        ("matmul", (r(5, 7, dtype=torch.bfloat16), r(7, 3, dtype=torch.bfloat16)), {"out_dtype": torch.float32}),
        ("matmul", (u8, s8), {}),
        ("gemm", (r(5, 7, grad=True), r(3, 7, grad=True), None, r(3, grad=True)),
         {"trans_b": True, "activation": "gelu"}),
        ("gemm", (r(7, 5, grad=True), r(7, 3, grad=True), r(5, 3, grad=True)),
         {"trans_a": True, "alpha": 0.5, "beta": 2.0, "activation": "relu"}),
        ("gemm", (r(5, 7, dtype=torch.float16), r(7, 3, dtype=torch.float16)), {"out_dtype": torch.float32}),
        ("qgemm", (u8, s8, torch.arange(3, dtype=torch.int32)),
         {"a_zero_point": 3, "b_zero_point": torch.tensor([1, -2, 0], dtype=torch.int32),
          "scale": torch.tensor(0.01), "out_dtype": torch.int8, "out_zero_point": -4, "activation": "relu"}),
        ("conv2d", (r(2, 4, 7, 7, grad=True), r(6, 2, 3, 3, grad=True), r(6, grad=True), [2, 1], [1, 2], [1, 1], 2),
         {"activation": "gelu"}),
        ("conv2d", (r(2, 4, 7, 7).contiguous(memory_format=cl).requires_grad_(),
                    r(6, 4, 3, 3).contiguous(memory_format=cl).requires_grad_(), r(6, grad=True), [1, 1],
                    [0, 1, 1, 2], [2, 1], 1), {"activation": "relu"}),
        ("conv2d", (r(1, 3, 5, 5, dtype=torch.bfloat16), r(2, 3, 1, 1, dtype=torch.bfloat16)),
         {"out_dtype": torch.float32}),
        # The fused epilogue: folded batch norm (scale) and the residual input, with gradients.
        ("conv2d", (r(2, 4, 7, 7).contiguous(memory_format=cl).requires_grad_(),
                    r(6, 4, 3, 3).contiguous(memory_format=cl).requires_grad_(), r(6, grad=True), [1, 1], [1, 1]),
         {"activation": "relu", "scale": r(6, grad=True),
          "residual": r(2, 6, 7, 7).contiguous(memory_format=cl).requires_grad_()}),
        ("conv2d", (r(2, 4, 7, 7, grad=True), r(6, 4, 3, 3, grad=True), None, [2, 2]),
         {"activation": "gelu", "scale": r(6, grad=True), "residual": r(2, 6, 3, 3, grad=True)}),
        ("qconv2d", (x8, w8, None, [1, 1], [1, 1]),
         {"x_zero_point": 128, "scale": torch.full((3,), 0.02), "out_dtype": torch.float32}),
        ("qconv2d", (x8.contiguous(memory_format=cl), w8.contiguous(memory_format=cl)), {}),
        ("conv2d_backward_data", (r(2, 6, 4, 9), r(6, 2, 3, 3), [2, 4, 7, 7], [2, 1], [1, 2], [1, 1], 2), {}),
        ("conv2d_backward_weight", (r(2, 4, 7, 7).contiguous(memory_format=cl),
                                    r(2, 6, 4, 9).contiguous(memory_format=cl), [6, 2, 3, 3], [2, 1], [1, 2],
                                    [1, 1], 2), {}),
    ]


@pytest.mark.parametrize("index", range(len(_opcheck_cases())))
def test_opcheck(index):
    name, args, kwargs = _opcheck_cases()[index]
    torch.library.opcheck(getattr(torch.ops.aicc, name).default, args, kwargs)


def test_opcheck_covers_every_operator():
    assert {name for name, _, _ in _opcheck_cases()} == set(akt.ops.OPERATORS)
    for name in akt.ops.OPERATORS:
        assert hasattr(torch.ops.aicc, name)


# ---- gradients against PyTorch's own --------------------------------------------------------
def _grads(fn, inputs, grad_out_seed=7):
    out = fn(*inputs)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(grad_out_seed)).to(out.dtype)
    return out, torch.autograd.grad(out, [t for t in inputs if t is not None and t.requires_grad], g)


def _close(ours, theirs, depth, dtype):
    """SEMANTICS.md's float rule in spirit: c * depth * eps(accumulation) relative to the
    magnitude, plus one rounding of the output type."""
    eps_out = {torch.float32: 2**-24, torch.float16: 2**-11, torch.bfloat16: 2**-8}[dtype]
    scale = theirs.float().abs().max().item() + 1e-30
    err = (ours.float() - theirs.float()).abs().max().item()
    assert err <= (2 * (depth + 2) * 2**-24 + 4 * eps_out) * scale * 4, (err, scale)


@pytest.mark.parametrize("activation", [None, "relu", "gelu"])
@pytest.mark.parametrize("trans", [(False, False), (True, False), (False, True), (True, True)])
def test_gemm_gradients_match_torch(activation, trans):
    g = torch.Generator().manual_seed(1)
    ta, tb = trans
    a = torch.randn(*((13, 9) if ta else (9, 13)), generator=g, requires_grad=True)
    b = torch.randn(*((6, 13) if tb else (13, 6)), generator=g, requires_grad=True)
    c = torch.randn(1, 6, generator=g, requires_grad=True)  # broadcast along M: its gradient sums rows
    bias = torch.randn(6, generator=g, requires_grad=True)
    act = {None: lambda t: t, "relu": torch.relu, "gelu": torch.nn.functional.gelu}[activation]

    def theirs(a, b, c, bias):
        return act(0.5 * ((a.t() if ta else a) @ (b.t() if tb else b)) - 2.0 * c + bias)

    def ours(a, b, c, bias):
        return torch.ops.aicc.gemm(a, b, c, bias, alpha=0.5, beta=-2.0, trans_a=ta, trans_b=tb, activation=activation)

    y1, g1 = _grads(ours, (a, b, c, bias))
    y2, g2 = _grads(theirs, (a, b, c, bias))
    _close(y1, y2, 13, torch.float32)
    for x, y in zip(g1, g2):
        assert x.shape == y.shape
        _close(x, y, 13, torch.float32)


@pytest.mark.parametrize("dtype", FLOAT_TORCH)
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("activation", [None, "relu", "gelu"])
def test_conv2d_gradients_match_torch(dtype, channels_last, activation):
    g = torch.Generator().manual_seed(2)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(2, 6, 9, 8, generator=g).to(dtype).contiguous(memory_format=fmt).requires_grad_()
    w = torch.randn(4, 3, 3, 2, generator=g).to(dtype).contiguous(memory_format=fmt).requires_grad_()
    bias = torch.randn(4, generator=g).to(dtype).requires_grad_()
    act = {None: lambda t: t, "relu": torch.relu, "gelu": torch.nn.functional.gelu}[activation]
    y1, g1 = _grads(lambda x, w, b: torch.ops.aicc.conv2d(x, w, b, [2, 1], [1, 0], [1, 2], 2, activation=activation),
                    (x, w, bias))
    # The torch side in f32 (CPU half convolutions are not in every build); ours rounds once to dtype.
    x32, w32, b32 = (t.detach().float().requires_grad_() for t in (x, w, bias))
    y2, g2 = _grads(lambda x, w, b: act(torch.nn.functional.conv2d(x, w, b, (2, 1), (1, 0), (1, 2), 2)),
                    (x32, w32, b32))
    depth = 3 * 3 * 2 * 2 * 9 * 8  # generous: the weight gradient sums over N * P * Q
    _close(y1, y2, 3 * 3 * 2, dtype)
    if channels_last:
        assert y1.is_contiguous(memory_format=torch.channels_last)
        assert g1[0].is_contiguous(memory_format=torch.channels_last)
    for ours, theirs in zip(g1, g2):
        assert ours.dtype == dtype and ours.shape == theirs.shape
        _close(ours, theirs, depth, dtype)


@pytest.mark.parametrize("dtype", FLOAT_TORCH)
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("activation", [None, "relu", "gelu"])
def test_conv2d_fused_epilogue_forward_and_gradients_match_torch(dtype, channels_last, activation):
    # out = act(scale * conv(x, w) + bias + residual): folded batch norm + the ResNet skip.
    g = torch.Generator().manual_seed(3)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(2, 4, 9, 8, generator=g).to(dtype).contiguous(memory_format=fmt).requires_grad_()
    w = torch.randn(6, 4, 3, 3, generator=g).to(dtype).contiguous(memory_format=fmt).requires_grad_()
    bias = torch.randn(6, generator=g).requires_grad_()
    scale = (torch.rand(6, generator=g) + 0.5).requires_grad_()
    # The residual in the other memory format than x on purpose: the op copies it once.
    residual = torch.randn(2, 6, 5, 8, generator=g).to(dtype).requires_grad_()
    act = {None: lambda t: t, "relu": torch.relu, "gelu": torch.nn.functional.gelu}[activation]
    y1, g1 = _grads(lambda x, w, b, s, r: torch.ops.aicc.conv2d(x, w, b, [2, 1], [1, 1], activation=activation,
                                                                 scale=s, residual=r),
                    (x, w, bias, scale, residual))
    ins = [t.detach().float().requires_grad_() for t in (x, w, bias, scale, residual)]
    y2, g2 = _grads(lambda x, w, b, s, r: act(torch.nn.functional.conv2d(x, w, None, (2, 1), (1, 1))
                                               * s.view(1, -1, 1, 1) + b.view(1, -1, 1, 1) + r), ins)
    depth = 3 * 3 * 4 * 2 * 5 * 8
    _close(y1, y2, 3 * 3 * 4, dtype)
    assert y1.dtype == dtype
    if channels_last:
        assert y1.is_contiguous(memory_format=torch.channels_last)
    for name, ours, theirs, orig in zip(("x", "w", "bias", "scale", "residual"), g1, g2,
                                        (x, w, bias, scale, residual)):
        assert ours.dtype == orig.dtype and ours.shape == theirs.shape, name
        _close(ours, theirs, depth, dtype)


def test_conv2d_fused_epilogue_bad_input_names_the_argument():
    x, w = torch.randn(1, 2, 5, 5), torch.randn(3, 2, 3, 3)
    with pytest.raises(ValueError, match="^scale"):
        torch.ops.aicc.conv2d(x, w, scale=torch.ones(4))
    with pytest.raises(ValueError, match="^residual"):
        torch.ops.aicc.conv2d(x, w, residual=torch.ones(1, 3, 4, 4))


def test_matmul_gradients_match_torch():
    g = torch.Generator().manual_seed(4)
    a = torch.randn(3, 5, 7, generator=g, requires_grad=True)
    b = torch.randn(7, 4, generator=g, requires_grad=True)  # broadcast over the batch: gradient sums
    _, g1 = _grads(torch.ops.aicc.matmul, (a, b))
    _, g2 = _grads(torch.matmul, (a, b))
    for x, y in zip(g1, g2):
        _close(x, y, 15, torch.float32)


# ---- drop-in modules, convert, training, compile ---------------------------------------------
def _cnn():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=2, bias=False), torch.nn.GELU(),
        torch.nn.Conv2d(8, 4, 2, padding="same"),
        torch.nn.Flatten(), torch.nn.Linear(4 * 5 * 5, 10))


def test_modules_keep_constructor_parameters_and_state_dict():
    lin = akt.Linear(5, 3)
    conv = akt.Conv2d(4, 6, 3, stride=2, padding=1, groups=2, bias=False)
    assert isinstance(lin, torch.nn.Linear) and isinstance(conv, torch.nn.Conv2d)
    ref_lin, ref_conv = torch.nn.Linear(5, 3), torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2, bias=False)
    assert lin.state_dict().keys() == ref_lin.state_dict().keys()
    assert conv.state_dict().keys() == ref_conv.state_dict().keys()
    lin.load_state_dict(ref_lin.state_dict())  # checkpoints load unchanged
    conv.load_state_dict(ref_conv.state_dict())
    x = torch.randn(2, 7, 5)
    assert torch.allclose(lin(x), ref_lin(x), atol=1e-6)
    xc = torch.randn(2, 4, 9, 9)
    assert torch.allclose(conv(xc), ref_conv(xc), atol=1e-5)


def test_convert_swaps_what_it_supports_and_reports_the_rest():
    class MyLinear(torch.nn.Linear):
        pass

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Conv2d(1, 1, 3, padding_mode="reflect"),
                                torch.nn.Linear(4, 4).double(), MyLinear(4, 4),
                                torch.nn.Sequential(torch.nn.Conv2d(2, 2, 1)))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    converted = akt.convert(model)
    rep = converted.aicc_report
    assert rep.converted == ["0", "4.0"]
    left = {name: reason for name, _, reason in rep.left}
    assert set(left) == {"1", "2", "3"}
    assert "padding_mode" in left["1"] and "float64" in left["2"] and "subclass" in left["3"]
    assert type(converted[0]) is akt.Linear and type(converted[4][0]) is akt.Conv2d
    assert type(model[0]) is torch.nn.Linear  # inplace=False: the original is untouched
    assert converted.state_dict().keys() == before.keys()
    assert all(torch.equal(converted.state_dict()[k], v) for k, v in before.items())
    assert "2 module(s) converted, 3 left" in str(rep)
    same = akt.convert(model, inplace=True)
    assert same is model and type(model[0]) is akt.Linear


def test_fallback_runs_torch_for_calls_our_kernels_cannot_take():
    lin = akt.convert(torch.nn.Linear(4, 3))
    with pytest.raises(TypeError, match="input: expected dtype"):
        lin(torch.randn(2, 4, dtype=torch.float64))
    lin_fb = akt.convert(torch.nn.Linear(4, 3), fallback=True)
    assert lin_fb(torch.randn(2, 4).double().to(torch.float32)).shape == (2, 3)
    lin_fb.double()  # the module now has f64 weights: our kernels cannot take them
    x = torch.randn(2, 4, dtype=torch.float64)
    assert torch.allclose(lin_fb(x), torch.nn.functional.linear(x, lin_fb.weight, lin_fb.bias))


def test_small_cnn_trains_like_native():
    native = _cnn()
    ours = akt.convert(native)
    assert len(ours.aicc_report.converted) == 4 and not ours.aicc_report.left
    opt_n = torch.optim.SGD(native.parameters(), lr=0.05)
    opt_o = torch.optim.SGD(ours.parameters(), lr=0.05)
    g = torch.Generator().manual_seed(5)
    for _ in range(4):
        x = torch.randn(4, 3, 10, 10, generator=g)
        target = torch.randint(0, 10, (4,), generator=g)
        for model, opt in ((native, opt_n), (ours, opt_o)):
            loss = torch.nn.functional.cross_entropy(model(x), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
    for (name, p), q in zip(native.named_parameters(), ours.parameters()):
        # f32 through 4 SGD steps: accumulation-order differences only.
        assert torch.allclose(p, q, rtol=1e-4, atol=1e-5), name


def test_small_cnn_channels_last_bf16_forward():
    native = _cnn().to(torch.bfloat16).to(memory_format=torch.channels_last)
    ours = akt.convert(native)
    x = torch.randn(2, 3, 10, 10).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    y_ours = ours(x).float()
    y_ref = _cnn()(x.float()).float()
    assert (y_ours - y_ref).abs().max() <= 0.05 * y_ref.abs().max() + 0.05


def test_compile_fullgraph_traces_the_converted_cnn():
    torch._dynamo.reset()
    model = akt.convert(_cnn())
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    x = torch.randn(2, 3, 10, 10, requires_grad=True)
    y = compiled(x)
    assert torch.allclose(y, model(x), atol=1e-6)
    y.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape


# ---- bad input ---------------------------------------------------------------------------------
def test_bad_input_names_the_argument():
    a = torch.randn(3, 4)
    with pytest.raises(TypeError, match="^b: expected dtype"):
        torch.ops.aicc.gemm(a, torch.randn(4, 2, dtype=torch.float16))
    with pytest.raises(ValueError, match="^b: expected 4 rows"):
        torch.ops.aicc.gemm(a, torch.randn(5, 2))
    with pytest.raises(TypeError, match="^a: expected dtype in"):
        torch.ops.aicc.gemm(a.to(torch.complex64), torch.randn(4, 2).to(torch.complex64))
    with pytest.raises(ValueError, match="^w: expected a 4-D"):
        torch.ops.aicc.conv2d(torch.randn(1, 2, 5, 5), torch.randn(2, 2, 3))
    with pytest.raises(ValueError, match="^padding: expected 1, 2 or 4"):
        torch.ops.aicc.conv2d(torch.randn(1, 2, 5, 5), torch.randn(2, 2, 3, 3), None, [1, 1], [1, 1, 1])
    with pytest.raises(ValueError, match="^scale: expected"):
        torch.ops.aicc.qgemm(torch.zeros(2, 3, dtype=torch.uint8), torch.zeros(3, 2, dtype=torch.int8),
                             out_dtype=torch.int8)
    with pytest.raises((NotImplementedError, RuntimeError), match="Sparse"):
        torch.ops.aicc.matmul(a.to_sparse(), torch.randn(4, 2))


def test_meta_tensors_give_shapes_only():
    y = torch.ops.aicc.conv2d(torch.empty(2, 3, 9, 9, device="meta"), torch.empty(4, 3, 3, 3, device="meta"),
                              None, [2, 2], [1, 1])
    assert y.device.type == "meta" and y.shape == (2, 4, 5, 5)
