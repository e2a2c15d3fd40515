"""torch.ops.aicc.*: our kernels as PyTorch operators (torch.library).

Each operator has a schema, a CPU kernel (and a CUDA kernel, for our cuda backend), a fake
kernel for tracing (torch.compile, meta tensors), and, for the float ops, an autograd
formula whose backward runs our kernels (conv2d_backward_data / _weight, gemm).

The kernels pass tensors to the op layer without copying (see _tensors.py), let the op
layer validate once, and write into outputs torch allocated. Tensors are NCHW-shaped, as
everywhere in torch; a channels_last input runs our NHWC kernels on the same memory and
gives a channels_last output.
"""

from __future__ import annotations

import math

import torch

from .. import ops as _ops
from . import _native
from . import _tensors as T

NAMESPACE = "aicc"

SCHEMAS = {
    "matmul": "matmul(Tensor a, Tensor b, *, ScalarType? out_dtype=None) -> Tensor",
    "gemm": ("gemm(Tensor a, Tensor b, Tensor? c=None, Tensor? bias=None, *, float alpha=1., float beta=0., "
             "bool trans_a=False, bool trans_b=False, str? activation=None, ScalarType? out_dtype=None) -> Tensor"),
    "qgemm": ("qgemm(Tensor a, Tensor b, Tensor? bias=None, *, int a_zero_point=0, Tensor? b_zero_point=None, "
              "Tensor? scale=None, int out_zero_point=0, ScalarType? out_dtype=None, str? activation=None, "
              "bool trans_b=False) -> Tensor"),
    "conv2d": ("conv2d(Tensor x, Tensor w, Tensor? bias=None, int[2] stride=1, int[] padding=[0, 0], "
               "int[2] dilation=1, int groups=1, *, str? activation=None, ScalarType? out_dtype=None, Tensor? scale=None, "
               "Tensor? residual=None) -> Tensor"),
    "qconv2d": ("qconv2d(Tensor x, Tensor w, Tensor? bias=None, int[2] stride=1, int[] padding=[0, 0], "
                "int[2] dilation=1, int groups=1, *, int x_zero_point=0, Tensor? w_zero_point=None, "
                "Tensor? scale=None, int out_zero_point=0, ScalarType? out_dtype=None, str? activation=None) "
                "-> Tensor"),
    "conv2d_backward_data": ("conv2d_backward_data(Tensor grad_out, Tensor w, int[] input_shape, "
                             "int[2] stride=1, int[] padding=[0, 0], int[2] dilation=1, int groups=1) -> Tensor"),
    "conv2d_backward_weight": ("conv2d_backward_weight(Tensor x, Tensor grad_out, int[] weight_shape, "
                               "int[2] stride=1, int[] padding=[0, 0], int[2] dilation=1, int groups=1) -> Tensor"),
}

#: Internal entries of the native kernels (native/aicc_torch_ops.cc): when a gradient is
#: needed, its C++ AutogradCPU kernel of matmul / gemm calls these, whose Python kernel
#: applies the operator's autograd.Function below. Same schemas, not for direct use.
AUTOGRAD_ENTRIES = {"matmul": "_matmul_autograd", "gemm": "_gemm_autograd"}

_lib = torch.library.Library(NAMESPACE, "DEF")
for _schema in SCHEMAS.values():
    _lib.define(_schema)
for _name, _entry in AUTOGRAD_ENTRIES.items():
    _lib.define(_entry + SCHEMAS[_name][len(_name):])


def _device_of(first, **tensors):
    """The device of the call; every tensor argument on it, dense, of a known dtype."""
    device = first.device
    for name, t in tensors.items():
        if t is not None:
            T.check_tensor(t, name, device)
    return device


def _padding(padding):
    """int[] padding: (ph, pw) as in torch, or (top, bottom, left, right) for the asymmetric
    pads that torch's padding='same' makes for even kernels."""
    p = [int(v) for v in padding]
    if len(p) == 1:
        return ((p[0], p[0]), (p[0], p[0]))
    if len(p) == 2:
        return ((p[0], p[0]), (p[1], p[1]))
    if len(p) == 4:
        return ((p[0], p[1]), (p[2], p[3]))
    raise ValueError(f"padding: expected 1, 2 or 4 integers ((ph, pw) or (top, bottom, left, right)), got {p}")


def _pair(v):
    v = [int(e) for e in v] if isinstance(v, (list, tuple)) else [int(v)]
    return (v[0], v[0]) if len(v) == 1 else (v[0], v[1])


def _conv_out_hw(h, w, r, s, stride, padding, dilation):
    (pt, pb), (pl, pr) = _padding(padding)
    sh, sw = _pair(stride)
    dh, dw = _pair(dilation)
    p = (h + pt + pb - dh * (r - 1) - 1) // sh + 1
    q = (w + pl + pr - dw * (s - 1) - 1) // sw + 1
    return p, q


# ---- matmul / gemm / qgemm ------------------------------------------------------------------
def _matmul_shape(a_shape, b_shape):
    if len(a_shape) == 0 or len(b_shape) == 0:
        raise ValueError(f"{'a' if len(a_shape) == 0 else 'b'}: expected a tensor of at least 1 dimension, "
                         "got a scalar")
    a2 = (1,) + tuple(a_shape) if len(a_shape) == 1 else tuple(a_shape)
    b2 = tuple(b_shape) + (1,) if len(b_shape) == 1 else tuple(b_shape)
    batch = tuple(torch.broadcast_shapes(a2[:-2], b2[:-2]))
    return batch + ((a2[-2],) if len(a_shape) > 1 else ()) + ((b2[-1],) if len(b_shape) > 1 else ())


def _matmul_dtype(a, out_dtype):
    if a.dtype in T.QUANT_ACTIVATION_DTYPES:
        return torch.int32
    return a.dtype if out_dtype is None else out_dtype


_FLOAT_SET = frozenset(T.FLOAT_DTYPES)


@torch.library.impl(_lib, "matmul", "CPU")
def _matmul_cpu(a, b, *, out_dtype=None):
    if (out_dtype is None and a.dim() == 2 and b.dim() == 2 and a.dtype in _FLOAT_SET and a.is_cpu and b.is_cpu
            and a.layout == torch.strided and b.layout == torch.strided):
        # The common call (2-D, CPU, float) goes straight to ak.gemm, matmul's 2-D path, which
        # validates it once (a wrong dtype or shape of b raises there, naming b).
        out = torch.empty((a.shape[0], b.shape[1]), dtype=a.dtype)
        _ops.gemm(T.as_array(a), T.as_array(b), out=T.as_array(out))
        return out
    device = _device_of(a, a=a, b=b)
    odt = _matmul_dtype(a, out_dtype)
    out = torch.empty(_matmul_shape(a.shape, b.shape), dtype=odt, device=device)
    with T.kernel_stream(device):
        _ops.matmul(T.as_array(a), T.as_array(b), out_dtype=T.np_dtype(out_dtype), out=T.as_array(out))
    return out


@torch.library.register_fake(f"{NAMESPACE}::matmul", lib=_lib)
def _matmul_fake(a, b, *, out_dtype=None):
    return a.new_empty(_matmul_shape(a.shape, b.shape), dtype=_matmul_dtype(a, out_dtype))


def _gemm_mn(a, b, trans_a, trans_b):
    m = a.shape[1] if trans_a else a.shape[0]
    n = b.shape[0] if trans_b else b.shape[1]
    return m, n


@torch.library.impl(_lib, "gemm", "CPU")
def _gemm_cpu(a, b, c=None, bias=None, *, alpha=1.0, beta=0.0, trans_a=False, trans_b=False, activation=None,
              out_dtype=None):
    device = _device_of(a, a=a, b=b, c=c, bias=bias)
    if a.dim() != 2 or b.dim() != 2:
        bad = "a" if a.dim() != 2 else "b"
        raise ValueError(f"{bad}: expected a 2-D tensor, got {(a if bad == 'a' else b).dim()}-D shape "
                         f"{tuple((a if bad == 'a' else b).shape)}")
    odt = a.dtype if out_dtype is None else out_dtype
    out = torch.empty(_gemm_mn(a, b, trans_a, trans_b), dtype=odt, device=device)
    with T.kernel_stream(device):
        _ops.gemm(T.as_array(a), T.as_array(b), T.as_array_or_none(c), alpha=alpha, beta=beta, trans_a=trans_a,
                  trans_b=trans_b, bias=T.as_array_or_none(bias), activation=activation,
                  out_dtype=T.np_dtype(out_dtype), out=T.as_array(out))
    return out


@torch.library.register_fake(f"{NAMESPACE}::gemm", lib=_lib)
def _gemm_fake(a, b, c=None, bias=None, *, alpha=1.0, beta=0.0, trans_a=False, trans_b=False, activation=None,
               out_dtype=None):
    torch._check(a.dim() == 2 and b.dim() == 2, lambda: "a, b: expected 2-D tensors")
    return a.new_empty(_gemm_mn(a, b, trans_a, trans_b), dtype=a.dtype if out_dtype is None else out_dtype)


def _qout_dtype(out_dtype):
    return torch.int32 if out_dtype is None else out_dtype


@torch.library.impl(_lib, "qgemm", "CPU")
def _qgemm_cpu(a, b, bias=None, *, a_zero_point=0, b_zero_point=None, scale=None, out_zero_point=0,
               out_dtype=None, activation=None, trans_b=False):
    device = _device_of(a, a=a, b=b)
    if a.dim() != 2 or b.dim() != 2:
        bad = "a" if a.dim() != 2 else "b"
        raise ValueError(f"{bad}: expected a 2-D tensor, got shape {tuple((a if bad == 'a' else b).shape)}")
    odt = _qout_dtype(out_dtype)
    out = torch.empty(_gemm_mn(a, b, False, trans_b), dtype=odt, device=device)
    with T.kernel_stream(device):
        _ops.qgemm(T.as_array(a), T.as_array(b), a_zero_point=a_zero_point,
                   b_zero_point=0 if b_zero_point is None else T.scalar_or_array(b_zero_point, "b_zero_point"),
                   scale=T.scalar_or_array(scale, "scale"), bias=None if bias is None else _host_bias(bias),
                   out_zero_point=out_zero_point, out_dtype=T.NP_DTYPE.get(odt, odt),
                   activation=activation, trans_b=trans_b, out=T.as_array(out))
    return out


def _host_bias(bias):
    """int32 bias of the quantized ops: a small vector, validated on the host by the op layer."""
    T.check_tensor(bias, "bias")
    return bias.detach().cpu().numpy()


@torch.library.register_fake(f"{NAMESPACE}::qgemm", lib=_lib)
def _qgemm_fake(a, b, bias=None, *, a_zero_point=0, b_zero_point=None, scale=None, out_zero_point=0,
                out_dtype=None, activation=None, trans_b=False):
    torch._check(a.dim() == 2 and b.dim() == 2, lambda: "a, b: expected 2-D tensors")
    return a.new_empty(_gemm_mn(a, b, False, trans_b), dtype=_qout_dtype(out_dtype))


# ---- convolutions -----------------------------------------------------------------------------
def _geometry(stride, padding, dilation, groups, layout):
    return dict(stride=_pair(stride), padding=_padding(padding), dilation=_pair(dilation), groups=int(groups),
                layout=layout)


def _conv_shape(x, w, stride, padding, dilation):
    n, _, h, wd = x.shape
    k, _, r, s = w.shape
    p, q = _conv_out_hw(h, wd, r, s, stride, padding, dilation)
    return (n, k, p, q)


def _check_4d(**tensors):
    for name, t in tensors.items():
        if t.dim() != 4:
            raise ValueError(f"{name}: expected a 4-D tensor (NCHW shape; channels_last memory is fine), "
                             f"got {t.dim()}-D shape {tuple(t.shape)}")


@torch.library.impl(_lib, "conv2d", "CPU")
def _conv2d_cpu(x, w, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1, *, activation=None,
                out_dtype=None, scale=None, residual=None):
    device = _device_of(x, x=x, w=w, bias=bias, scale=scale, residual=residual)
    _check_4d(x=x, w=w)
    nhwc = T.is_channels_last(x)
    geo = _geometry(stride, padding, dilation, groups, "NHWC" if nhwc else "NCHW")
    # The op layer validates the geometry; the output shape here only needs to be right
    # when that validation passes (it raises before any write otherwise).
    shape = _conv_shape(x, w, stride, padding, dilation) if _plausible(x, w, geo) else (0, 0, 0, 0)
    out = T.empty(shape, x.dtype if out_dtype is None else out_dtype, device, nhwc)
    xa, wa, oa = (T.nhwc(x), T.nhwc(w), T.nhwc(out)) if nhwc else (x, w, out)
    fused = {}  # only when given: a plain call stays the plain op call
    if scale is not None:
        fused["scale"] = T.as_array(scale)
    if residual is not None:
        # The epilogue reads the residual in the output's memory layout (a copy only when the
        # caller's tensor is in the other one); a wrong shape or dtype is the op layer's error.
        if residual.dim() == 4 and T.is_channels_last(residual) != nhwc:
            residual = residual.contiguous(memory_format=torch.channels_last if nhwc else torch.contiguous_format)
        fused["residual"] = T.as_array(T.nhwc(residual) if nhwc and residual.dim() == 4 else residual)
    with T.kernel_stream(device):
        _ops.conv2d(T.as_array(xa), T.as_array(wa), T.as_array_or_none(bias), activation=activation,
                    out_dtype=T.np_dtype(out_dtype), out=T.as_array(oa), **geo, **fused)
    return out


def _plausible(x, w, geo):
    """True when the output extent is positive, i.e. the shape is worth allocating; a bad
    geometry then fails in the op layer with its own message."""
    (pt, pb), (pl, pr) = geo["padding"]
    dh, dw = geo["dilation"]
    return (x.shape[2] + pt + pb >= dh * (w.shape[2] - 1) + 1 and x.shape[3] + pl + pr >= dw * (w.shape[3] - 1) + 1
            and w.shape[2] >= 1 and w.shape[3] >= 1)


@torch.library.register_fake(f"{NAMESPACE}::conv2d", lib=_lib)
def _conv2d_fake(x, w, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1, *, activation=None,
                 out_dtype=None, scale=None, residual=None):
    torch._check(x.dim() == 4 and w.dim() == 4, lambda: "x, w: expected 4-D tensors")
    return T.empty(_conv_shape(x, w, stride, padding, dilation), x.dtype if out_dtype is None else out_dtype,
                   x.device, T.is_channels_last(x))


@torch.library.impl(_lib, "qconv2d", "CPU")
def _qconv2d_cpu(x, w, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1, *, x_zero_point=0,
                 w_zero_point=None, scale=None, out_zero_point=0, out_dtype=None, activation=None):
    device = _device_of(x, x=x, w=w)
    _check_4d(x=x, w=w)
    nhwc = T.is_channels_last(x)
    geo = _geometry(stride, padding, dilation, groups, "NHWC" if nhwc else "NCHW")
    shape = _conv_shape(x, w, stride, padding, dilation) if _plausible(x, w, geo) else (0, 0, 0, 0)
    odt = _qout_dtype(out_dtype)
    out = T.empty(shape, odt, device, nhwc)
    xa, wa, oa = (T.nhwc(x), T.nhwc(w), T.nhwc(out)) if nhwc else (x, w, out)
    with T.kernel_stream(device):
        _ops.qconv2d(T.as_array(xa), T.as_array(wa), None if bias is None else _host_bias(bias),
                     x_zero_point=x_zero_point,
                     w_zero_point=0 if w_zero_point is None else T.scalar_or_array(w_zero_point, "w_zero_point"),
                     scale=T.scalar_or_array(scale, "scale"), out_zero_point=out_zero_point,
                     out_dtype=T.NP_DTYPE.get(odt, odt), activation=activation, out=T.as_array(oa), **geo)
    return out


@torch.library.register_fake(f"{NAMESPACE}::qconv2d", lib=_lib)
def _qconv2d_fake(x, w, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1, *, x_zero_point=0,
                  w_zero_point=None, scale=None, out_zero_point=0, out_dtype=None, activation=None):
    torch._check(x.dim() == 4 and w.dim() == 4, lambda: "x, w: expected 4-D tensors")
    return T.empty(_conv_shape(x, w, stride, padding, dilation), _qout_dtype(out_dtype), x.device,
                   T.is_channels_last(x))


def _shape4(shape, name):
    shape = [int(v) for v in shape]
    if len(shape) != 4:
        raise ValueError(f"{name}: expected 4 integers (an NCHW-order shape), got {shape}")
    return shape


@torch.library.impl(_lib, "conv2d_backward_data", "CPU")
def _conv2d_backward_data_cpu(grad_out, w, input_shape, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    device = _device_of(grad_out, grad_out=grad_out, w=w)
    _check_4d(grad_out=grad_out, w=w)
    n, c, h, wd = _shape4(input_shape, "input_shape")
    nhwc = T.is_channels_last(grad_out)
    geo = _geometry(stride, padding, dilation, groups, "NHWC" if nhwc else "NCHW")
    out = T.empty((n, c, h, wd), grad_out.dtype, device, nhwc)
    if nhwc:
        args = (T.nhwc(grad_out), T.nhwc(w), (n, h, wd, c), T.nhwc(out))
    else:
        args = (grad_out, w, (n, c, h, wd), out)
    with T.kernel_stream(device):
        _ops.conv2d_backward_data(T.as_array(args[0]), T.as_array(args[1]), args[2], out=T.as_array(args[3]), **geo)
    return out


@torch.library.register_fake(f"{NAMESPACE}::conv2d_backward_data", lib=_lib)
def _conv2d_backward_data_fake(grad_out, w, input_shape, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    return T.empty(tuple(input_shape), grad_out.dtype, grad_out.device, T.is_channels_last(grad_out))


@torch.library.impl(_lib, "conv2d_backward_weight", "CPU")
def _conv2d_backward_weight_cpu(x, grad_out, weight_shape, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    device = _device_of(x, x=x, grad_out=grad_out)
    _check_4d(x=x, grad_out=grad_out)
    k, cg, r, s = _shape4(weight_shape, "weight_shape")
    nhwc = T.is_channels_last(x)
    geo = _geometry(stride, padding, dilation, groups, "NHWC" if nhwc else "NCHW")
    out = T.empty((k, cg, r, s), x.dtype, device, nhwc)
    if nhwc:
        args = (T.nhwc(x), T.nhwc(grad_out), (k, r, s, cg), T.nhwc(out))
    else:
        args = (x, grad_out, (k, cg, r, s), out)
    with T.kernel_stream(device):
        _ops.conv2d_backward_weight(T.as_array(args[0]), T.as_array(args[1]), args[2], out=T.as_array(args[3]),
                                    **geo)
    return out


@torch.library.register_fake(f"{NAMESPACE}::conv2d_backward_weight", lib=_lib)
def _conv2d_backward_weight_fake(x, grad_out, weight_shape, stride=(1, 1), padding=(0, 0), dilation=(1, 1),
                                 groups=1):
    return T.empty(tuple(weight_shape), x.dtype, x.device, T.is_channels_last(x))


# ---- CUDA: the same kernels, when our cuda backend is built ------------------------------------
def _cuda_built() -> bool:
    try:
        from .. import _aicc_cuda  # noqa: F401
    except ImportError:
        return False
    return True


if _cuda_built():
    for _name, _fn in (("matmul", _matmul_cpu), ("gemm", _gemm_cpu), ("qgemm", _qgemm_cpu), ("conv2d", _conv2d_cpu),
                       ("qconv2d", _qconv2d_cpu), ("conv2d_backward_data", _conv2d_backward_data_cpu),
                       ("conv2d_backward_weight", _conv2d_backward_weight_cpu)):
        _lib.impl(_name, _fn, "CUDA")


# ---- autograd ---------------------------------------------------------------------------------
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _activation_grad(grad, out, activation, pre_activation):
    """grad * activation'(pre-activation). relu: the output's sign says it (relu(y) > 0 iff
    y > 0, the mask torch's own relu backward uses). gelu: its derivative at the
    pre-activation, recomputed by the caller (the forward keeps no extra buffer)."""
    if activation is None:
        return grad
    if activation == "relu":
        return grad * (out > 0)
    y = pre_activation()
    slope = 0.5 * (1.0 + torch.erf(y * _INV_SQRT2)) + y * torch.exp(-0.5 * y * y) * _INV_SQRT2PI
    return (grad.float() * slope).to(grad.dtype)


def _gemm_setup(ctx, inputs, keyword_only_inputs, output):
    a, b, c, bias = (tuple(inputs) + (None, None))[:4]  # trailing defaults may be left out
    ctx.kw = keyword_only_inputs
    ctx.has_c, ctx.has_bias = c is not None, bias is not None
    ctx.c_shape = None if c is None else c.shape
    ctx.c_dtype = None if c is None else c.dtype
    ctx.bias_dtype = None if bias is None else bias.dtype
    ctx.save_for_backward(a, b, c, bias, output if keyword_only_inputs.get("activation") == "relu" else None)


def _gemm_backward(ctx, grad):
    a, b, c, bias, out = ctx.saved_tensors
    kw = ctx.kw
    alpha, beta = kw.get("alpha", 1.0), kw.get("beta", 0.0)
    trans_a, trans_b = kw.get("trans_a", False), kw.get("trans_b", False)
    act = kw.get("activation")
    g = _activation_grad(grad, out, act, lambda: torch.ops.aicc.gemm(
        a, b, c, bias, alpha=alpha, beta=beta, trans_a=trans_a, trans_b=trans_b, out_dtype=torch.float32))
    g = g.to(a.dtype)
    opa = a.t() if trans_a else a
    opb = b.t() if trans_b else b
    grad_a = grad_b = grad_c = grad_bias = None
    if ctx.input_grad[0]:
        # d op(a) = alpha g op(b)^T; with trans_a the gradient of a is its transpose, computed
        # directly as alpha op(b) g^T (our gemm reads the transposed views in place).
        grad_a = (torch.ops.aicc.gemm(opb, g, trans_b=True, alpha=alpha) if trans_a
                  else torch.ops.aicc.gemm(g, opb, trans_b=True, alpha=alpha))
    if ctx.input_grad[1]:
        grad_b = (torch.ops.aicc.gemm(g, opa, trans_a=True, alpha=alpha) if trans_b
                  else torch.ops.aicc.gemm(opa, g, trans_a=True, alpha=alpha))
    if ctx.has_c and ctx.input_grad[2]:
        grad_c = (g.float() * beta).sum_to_size(ctx.c_shape).to(ctx.c_dtype)
    if ctx.has_bias and ctx.input_grad[3]:
        grad_bias = g.float().sum(0).to(ctx.bias_dtype)
    return grad_a, grad_b, grad_c, grad_bias


def _matmul_setup(ctx, inputs, keyword_only_inputs, output):
    a, b = inputs
    ctx.save_for_backward(a, b)


def _matmul_backward(ctx, grad):
    a, b = ctx.saved_tensors
    if a.dtype not in T.FLOAT_DTYPES:
        raise RuntimeError("aicc::matmul: integer matmul has no gradient")
    g = grad.to(a.dtype)
    a2 = a.unsqueeze(0) if a.dim() == 1 else a
    b2 = b.unsqueeze(-1) if b.dim() == 1 else b
    if a.dim() == 1:
        g = g.unsqueeze(-2)
    if b.dim() == 1:
        g = g.unsqueeze(-1)
    grad_a = grad_b = None
    if ctx.input_grad[0]:
        grad_a = torch.ops.aicc.matmul(g, b2.transpose(-1, -2)).sum_to_size(a2.shape).reshape(a.shape)
    if ctx.input_grad[1]:
        grad_b = torch.ops.aicc.matmul(a2.transpose(-1, -2), g).sum_to_size(b2.shape).reshape(b.shape)
    return grad_a, grad_b


def _conv_setup(ctx, inputs, keyword_only_inputs, output):
    x, w, bias, stride, padding, dilation, groups = (list(inputs) + [None] * 7)[:7]
    ctx.geo = (stride if stride is not None else (1, 1), padding if padding is not None else (0, 0),
               dilation if dilation is not None else (1, 1), groups if groups is not None else 1)
    kw = dict(keyword_only_inputs)
    scale, residual = kw.pop("scale", None), kw.pop("residual", None)
    ctx.kw = kw
    ctx.has_bias = bias is not None
    ctx.bias_dtype = None if bias is None else bias.dtype
    ctx.residual_dtype = None if residual is None else residual.dtype
    act = kw.get("activation")
    # The residual is needed again only to recompute gelu's pre-activation.
    ctx.save_for_backward(x, w, bias, output if act == "relu" else None, scale,
                          residual if act not in (None, "relu") else None)
    ctx.has_residual = residual is not None


def _conv_backward(ctx, grad):
    """out = act(scale * conv(x, w) + bias + residual): g = dL/d(pre-activation) is the
    residual's and bias's gradient; scale * g is conv's output gradient, which our backward
    kernels turn into x's and w's; scale's is the channel sum of g * conv(x, w) (one extra
    forward conv, only when scale needs a gradient)."""
    x, w, bias, out, scale, residual = ctx.saved_tensors
    stride, padding, dilation, groups = ctx.geo
    fused = {k: v for k, v in (("scale", scale), ("residual", residual)) if v is not None}
    g = _activation_grad(grad, out, ctx.kw.get("activation"), lambda: torch.ops.aicc.conv2d(
        x, w, bias, stride, padding, dilation, groups, out_dtype=torch.float32, **fused))
    kw_grads = {}
    if ctx.has_residual and ctx.kw_input_grad.get("residual"):
        kw_grads["residual"] = g.to(ctx.residual_dtype)
    if scale is not None and ctx.kw_input_grad.get("scale"):
        z = torch.ops.aicc.conv2d(x, w, None, stride, padding, dilation, groups, out_dtype=torch.float32)
        kw_grads["scale"] = (g.float() * z).sum((0, 2, 3)).to(scale.dtype)
    grad_bias = None
    if ctx.has_bias and ctx.input_grad[2]:
        grad_bias = g.float().sum((0, 2, 3)).to(ctx.bias_dtype)
    if scale is not None:
        g = g.float() * scale.float().view(1, -1, 1, 1)
    g = g.to(x.dtype)
    if T.is_channels_last(x) != T.is_channels_last(g):
        # The backward kernels read grad_out in x's layout (one copy, only when they differ).
        g = g.contiguous(memory_format=torch.channels_last if T.is_channels_last(x) else torch.contiguous_format)
    grad_x = grad_w = None
    if ctx.input_grad[0]:
        grad_x = torch.ops.aicc.conv2d_backward_data(g, w, list(x.shape), stride, padding, dilation, groups)
    if ctx.input_grad[1]:
        grad_w = torch.ops.aicc.conv2d_backward_weight(x, g, list(w.shape), stride, padding, dilation, groups)
    return (grad_x, grad_w, grad_bias) + (None,) * 4, kw_grads


_AFTER_AUTOGRAD = torch._C._after_autograd_keyset
_CPU_KEY = torch._C.DispatchKey.CPU


def _register_autograd(name, cpu_kernel, setup_context, backward, tensor_kwargs=()):
    """The Autograd kernel of aicc::<name>: an autograd.Function when an input requires grad,
    else straight on to the kernel below.

    torch.library.register_autograd does the same with a generic wrapper that costs ~10-20 us
    per call here (a pytree walk, a Metadata object and one more trip through the dispatcher
    even when no gradient is needed), as much as a 64x64 GEMM. Here a call whose tensors are
    plain CPU tensors (nothing below autograd but the CPU key: no fake / functional tensors,
    no modes) calls the CPU kernel directly; anything else is redispatched as torch's wrapper
    does, so tracing, meta and CUDA tensors take their own kernels.
    """
    op = getattr(torch.ops.aicc, name).default

    def run_below(keyset, args, kwargs):
        if keyset is None:  # from the native kernel's autograd entry: dispatch from the top
            return op(*args, **kwargs)  # (autograd keys are excluded by the caller's guard)
        below = keyset & _AFTER_AUTOGRAD
        if below.highestPriorityTypeId() == _CPU_KEY:
            return cpu_kernel(*args, **kwargs)
        return op.redispatch(below, *args, **kwargs)

    # Keyword-only tensor arguments (conv2d's scale and residual) travel as positional inputs
    # of the Function, after the positional ones: autograd only sees (and differentiates)
    # tensors passed to apply() directly, never those inside a dict.
    def split(args, kwargs):
        static = {k: v for k, v in kwargs.items() if k not in tensor_kwargs}
        return static, (len(args),) + tuple(args) + tuple(kwargs.get(k) for k in tensor_kwargs)

    def join(static, n_args, flat):
        kwargs = dict(static)
        kwargs.update({k: v for k, v in zip(tensor_kwargs, flat[n_args:]) if v is not None})
        return tuple(flat[:n_args]), kwargs

    class Function(torch.autograd.Function):
        @staticmethod
        def forward(keyset, static, n_args, *flat):
            args, kwargs = join(static, n_args, flat)
            with torch._C._AutoDispatchBelowAutograd():
                return run_below(keyset, args, kwargs)

        @staticmethod
        def setup_context(ctx, inputs, output):
            _, static, n_args, *flat = inputs
            args, kwargs = join(static, n_args, flat)
            ctx.n_args = n_args  # the dispatcher may leave trailing defaults out
            setup_context(ctx, args, kwargs, output)

        @staticmethod
        def backward(ctx, grad):
            needs = tuple(ctx.needs_input_grad[3:])  # past (keyset, static kwargs, n_args)
            ctx.input_grad = needs[:ctx.n_args] + (False,) * 8
            ctx.kw_input_grad = dict(zip(tensor_kwargs, needs[ctx.n_args:]))
            grads = backward(ctx, grad)
            kw_grads = {}
            if isinstance(grads, tuple) and len(grads) == 2 and isinstance(grads[1], dict):
                grads, kw_grads = grads
            return ((None, None, None) + tuple(grads)[:ctx.n_args]
                    + tuple(kw_grads.get(k) for k in tensor_kwargs))

    Function.__name__ = Function.__qualname__ = f"aicc_{name}_autograd"

    def autograd_kernel(keyset, *args, **kwargs):
        if torch.is_grad_enabled() and (torch._C._any_requires_grad(*args) or any(
                isinstance(kwargs.get(k), torch.Tensor) and kwargs[k].requires_grad for k in tensor_kwargs)):
            static, flat = split(args, kwargs)
            return Function.apply(keyset, static, *flat)
        return run_below(keyset, args, kwargs)

    _lib.impl(name, autograd_kernel, "Autograd", with_keyset=True)

    if name in AUTOGRAD_ENTRIES:
        def autograd_entry(*args, **kwargs):
            static, flat = split(args, kwargs)
            return Function.apply(None, static, *flat)

        _lib.impl(AUTOGRAD_ENTRIES[name], autograd_entry, "CompositeImplicitAutograd")


_register_autograd("matmul", _matmul_cpu, _matmul_setup, _matmul_backward)
_register_autograd("gemm", _gemm_cpu, _gemm_setup, _gemm_backward)
_register_autograd("conv2d", _conv2d_cpu, _conv_setup, _conv_backward, tensor_kwargs=("scale", "residual"))

# Last, once every schema and Python kernel exists: the C++ per-call path of matmul / gemm
# (_native.py says when and why it is not in use; the Python kernels above then serve).
_native.load()

OPERATORS = tuple(SCHEMAS)

__all__ = ["OPERATORS", "SCHEMAS", "NAMESPACE"]
