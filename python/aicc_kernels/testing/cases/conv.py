"""conv2d, qconv2d and the conv2d backward ops: case generators, reference checks, suites.

Registered only when this build has the conv ops (aicc_kernels.ops.conv). The geometry
generator covers batch 0/1/more, odd sizes, dense / grouped / depthwise, strides,
dilation, every padding form, both layouts, and kernels larger than the input where
padding makes them fit.
"""

from __future__ import annotations

import numpy as np
from hypothesis import assume, strategies as st

from ... import _dtypes
from .. import strategies as S
from ..tolerance import F32_MAX, GELU_SLOPE, bf16_flush_term, compare_exact, compare_float, float_bound
from . import Suite, Verdict, register_suite

from ...ops.conv_geometry import ConvGeometry


def tile_geometry(dim, e, layout):
    """A convolution with one implicit-GEMM dimension at size e: output positions (dim "m":
    a 1-row image of width e, a 1x3 kernel, padding 1), output channels ("n") or input
    channels ("k": C * R * S with a 1x1 kernel); the others small."""
    n, c, k, h, w, r, s, pad = 1, 3, 4, 2, 2, 1, 1, 0
    if dim == "m":
        h, w, r, s, pad = 1, e, 1, 3, ((0, 0), (1, 1))
    elif dim == "n":
        k = e
    else:
        c = e
    x_shape = (n, c, h, w) if layout == "NCHW" else (n, h, w, c)
    w_shape = (k, c, r, s) if layout == "NCHW" else (k, r, s, c)
    kw = dict(stride=1, padding=pad, dilation=1, groups=1, layout=layout)
    return x_shape, w_shape, kw, ConvGeometry(x_shape, w_shape, **kw)


def tile_geometries(tiles):
    """Every tile edge of `tiles` (a TilePlan) in each implicit-GEMM dimension, layouts alternating."""
    edges = [(dim, e) for dim in "mnk" for e in tiles.edges(dim)]
    return [tile_geometry(dim, e, ("NCHW", "NHWC")[i % 2]) for i, (dim, e) in enumerate(edges)]


@st.composite
def conv_geometry(draw, max_hw=9, tiles=None):
    """(x_shape, w_shape, options, geometry) of a valid convolution; with a TilePlan, one
    case in four puts one implicit-GEMM dimension at a tile edge."""
    layout = draw(st.sampled_from(["NCHW", "NHWC"]))
    if tiles is not None and draw(st.sampled_from((False, False, False, True))):
        dim = draw(st.sampled_from([d for d in "mnk" if tiles.edges(d)]))
        return tile_geometry(dim, draw(st.sampled_from(tiles.edges(dim))), layout)
    n = draw(st.sampled_from([0, 1, 1, 2, 3]))
    kind = draw(st.sampled_from(["dense", "dense", "grouped", "depthwise"]))
    if kind == "dense":
        groups, cg, kg = 1, draw(st.integers(1, 7)), draw(st.integers(1, 9))
    elif kind == "grouped":
        groups, cg, kg = draw(st.integers(2, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    else:
        groups, cg, kg = draw(st.integers(2, 9)), 1, 1
    h, w = draw(st.integers(1, max_hw)), draw(st.integers(1, max_hw))
    r, s = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = draw(st.sampled_from([1, 2, 3, (1, 2), (2, 1)]))
    dilation = draw(st.sampled_from([1, 1, 2, (1, 2)]))
    pad_kind = draw(st.sampled_from(["int", "pair", "sides", "same", "valid"]))
    padding = {"int": draw(st.integers(0, 3)), "pair": (draw(st.integers(0, 3)), draw(st.integers(0, 2))),
               "sides": ((draw(st.integers(0, 3)), draw(st.integers(0, 3))),
                         (draw(st.integers(0, 3)), draw(st.integers(0, 3)))),
               "same": "same", "valid": "valid"}[pad_kind]
    c, k = cg * groups, kg * groups
    x_shape = (n, c, h, w) if layout == "NCHW" else (n, h, w, c)
    w_shape = (k, cg, r, s) if layout == "NCHW" else (k, r, s, cg)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, layout=layout)
    try:
        geo = ConvGeometry(x_shape, w_shape, **kw)
    except ValueError:
        assume(False)
    return x_shape, w_shape, kw, geo


def _options(case):
    return {k: case[k] for k in ("stride", "padding", "dilation", "groups", "layout") if k in case}


def _geometry(case, x_shape, w_shape):
    return ConvGeometry(x_shape, w_shape, **_options(case))


def _abs32(x):
    a = np.abs(np.asarray(x).astype(np.float64))
    return np.where(np.isfinite(a), a, 0.0).astype(np.float32)


def _shape_verdict(out, ref) -> Verdict:
    if not isinstance(out, np.ndarray):
        return f"expected a NumPy array, got {type(out).__name__}"
    if out.dtype != ref.dtype or out.shape != ref.shape:
        return (f"expected a {_dtypes.short_name(ref.dtype)} result of shape {ref.shape}, "
                f"got {_dtypes.short_name(out.dtype)} of shape {out.shape}")
    return None


def _float_verdict(out, ref, magnitude, depth, activation=None, flush=0.0) -> Verdict:
    """flush: the bf16 subnormal products DAZ hardware may drop (tolerance.bf16_flush_term)."""
    bad = _shape_verdict(out, ref)
    if bad:
        return bad
    magnitude = np.asarray(magnitude).astype(np.float64)
    bound = float_bound(np.asarray(ref).astype(np.float64), magnitude, depth, out.dtype, activation)
    bound = bound + (GELU_SLOPE if activation == "gelu" else 1.0) * np.asarray(flush, dtype=np.float64)
    unchecked = ~np.isfinite(magnitude) | (magnitude > F32_MAX / 4)
    return compare_float(out, ref, bound, unchecked)


# -- conv2d ---------------------------------------------------------------------------------

@st.composite
def conv2d_cases(draw, dtype, out_dtype="draw", tiles=None):
    x_shape, w_shape, kw, geo = draw(conv_geometry(tiles=tiles))
    nonfinite = draw(st.booleans()) and draw(st.booleans())
    x = S.float_array(draw, x_shape, dtype, nonfinite=nonfinite)
    w = S.float_array(draw, w_shape, dtype)
    bias = S.float_array(draw, (geo.k,), np.float32, kind="normal") if draw(st.booleans()) else None
    if isinstance(out_dtype, str) and out_dtype == "draw":
        out_dtype = draw(st.sampled_from([None, np.float32]))
    activation = draw(st.sampled_from([None, "relu", "gelu"]))
    return dict(x=x, w=w, bias=bias, activation=activation, out_dtype=out_dtype, **kw)


def check_conv2d_case(case, out, ref=None) -> Verdict:
    from ... import reference

    if ref is None:
        ref = reference.conv2d(**case)
    geo = _geometry(case, case["x"].shape, case["w"].shape)
    bias = case.get("bias")
    mag = reference.conv2d(_abs32(case["x"]), _abs32(case["w"]), None if bias is None else np.abs(bias),
                           **_options(case))
    flush = bf16_flush_term(case["x"], case["w"], lambda x, w: reference.conv2d(
        x.astype(np.float32), w.astype(np.float32), **_options(case)).astype(np.float64))
    return _float_verdict(out, ref, mag, geo.cg * geo.r * geo.s, case.get("activation"), flush)


# -- qconv2d --------------------------------------------------------------------------------

@st.composite
def qconv2d_cases(draw, x_dtype="draw", out_dtype="draw", tiles=None):
    x_shape, w_shape, kw, geo = draw(conv_geometry(tiles=tiles))
    if isinstance(x_dtype, str) and x_dtype == "draw":
        x_dtype = draw(st.sampled_from([np.uint8, np.int8]))
    x = S.int_array(draw, x_shape, x_dtype)
    w = S.int_array(draw, w_shape, np.int8)
    info = np.iinfo(x_dtype)
    zx = draw(st.sampled_from([0, int(info.min), int(info.max), 3]))
    zw = (S.int_array(draw, (geo.k,), np.int8).astype(np.int32) if draw(st.booleans())
          else draw(st.sampled_from([0, -128, 127, -5])))
    if isinstance(out_dtype, str) and out_dtype == "draw":
        out_dtype = draw(st.sampled_from([np.int32, np.int8, np.uint8, np.float32]))
    scale = None
    if out_dtype != np.int32:
        scale = (np.abs(S.float_array(draw, (geo.k,), np.float32, kind="normal")) * 1e-3 + 1e-6
                 if draw(st.booleans()) else draw(st.sampled_from([1.0, 0.5, 1.0 / 3.0, 1e-4])))
    ozp = 0
    if out_dtype in (np.int8, np.uint8):
        oi = np.iinfo(out_dtype)
        ozp = draw(st.integers(int(oi.min), int(oi.max)))
    bias = S.int_array(draw, (geo.k,), np.int8).astype(np.int32) * 1000 if draw(st.booleans()) else None
    activation = draw(st.sampled_from([None, "relu"]))
    return dict(x=x, w=w, bias=bias, x_zero_point=zx, w_zero_point=zw, scale=scale, out_zero_point=ozp,
                out_dtype=out_dtype, activation=activation, **kw)


def check_qconv2d_case(case, out, ref=None) -> Verdict:
    from ... import reference

    if ref is None:
        ref = reference.qconv2d(**case)
    return _shape_verdict(out, ref) or compare_exact(out, ref)


# -- backward -------------------------------------------------------------------------------

@st.composite
def conv2d_backward_data_cases(draw, dtype, tiles=None):
    x_shape, w_shape, kw, geo = draw(conv_geometry(tiles=tiles))
    w = S.float_array(draw, w_shape, dtype, kind="normal")
    g = S.float_array(draw, geo.out_shape, dtype, kind=draw(st.sampled_from(["int", "normal"])))
    return dict(grad_out=g, w=w, input_shape=x_shape, **kw)


def check_conv2d_backward_data_case(case, out, ref=None) -> Verdict:
    from ... import reference

    if ref is None:
        ref = reference.conv2d_backward_data(**case)
    geo = _geometry(case, case["input_shape"], case["w"].shape)
    mag = reference.conv2d_backward_data(_abs32(case["grad_out"]), _abs32(case["w"]), case["input_shape"],
                                         **_options(case))
    flush = bf16_flush_term(case["grad_out"], case["w"], lambda g, w: reference.conv2d_backward_data(
        g.astype(np.float32), w.astype(np.float32), case["input_shape"], **_options(case)).astype(np.float64))
    return _float_verdict(out, ref, mag, (geo.k // geo.groups) * geo.r * geo.s, flush=flush)


@st.composite
def conv2d_backward_weight_cases(draw, dtype, tiles=None):
    x_shape, w_shape, kw, geo = draw(conv_geometry(tiles=tiles))
    x = S.float_array(draw, x_shape, dtype, kind=draw(st.sampled_from(["int", "normal"])))
    g = S.float_array(draw, geo.out_shape, dtype, kind=draw(st.sampled_from(["int", "normal"])))
    return dict(x=x, grad_out=g, weight_shape=w_shape, **kw)


def check_conv2d_backward_weight_case(case, out, ref=None) -> Verdict:
    from ... import reference

    if ref is None:
        ref = reference.conv2d_backward_weight(**case)
    geo = _geometry(case, case["x"].shape, case["weight_shape"])
    mag = reference.conv2d_backward_weight(_abs32(case["x"]), _abs32(case["grad_out"]), case["weight_shape"],
                                           **_options(case))
    flush = bf16_flush_term(case["x"], case["grad_out"], lambda x, g: reference.conv2d_backward_weight(
        x.astype(np.float32), g.astype(np.float32), case["weight_shape"], **_options(case)).astype(np.float64))
    return _float_verdict(out, ref, mag, geo.n * geo.p * geo.q, flush=flush)


def _float_combo(combo):
    dtype = _dtypes.from_short_name(combo[0])
    return dtype, (None if _dtypes.from_short_name(combo[-1]) == dtype else np.float32)


def _fixed_conv2d(combo, tiles=None):
    """A 3x3 'same' convolution one channel past common vector widths, with bias and relu;
    then one case per tile edge (tile_geometries)."""
    dtype, out_dtype = _float_combo(combo)
    rng = np.random.default_rng(11)
    tile_cases = [dict(x=rng.integers(-3, 4, xs).astype(dtype), w=rng.integers(-3, 4, ws).astype(dtype),
                       bias=rng.integers(-3, 4, geo.k).astype(np.float32), activation="relu", out_dtype=out_dtype,
                       **kw) for xs, ws, kw, geo in (tile_geometries(tiles) if tiles else [])]
    return [dict(x=rng.integers(-3, 4, (2, 17, 9, 7)).astype(dtype), w=rng.integers(-3, 4, (9, 17, 3, 3)).astype(dtype),
                 bias=rng.integers(-3, 4, 9).astype(np.float32), activation="relu", out_dtype=out_dtype,
                 stride=1, padding="same", dilation=1, groups=1, layout="NCHW")] + tile_cases


def _fixed_qconv2d(combo, tiles=None):
    """Full-range products (255 or -128 times -128) over 3x3x64 taps: saturating int16 sums
    fail; then one full-range case per tile edge (tile_geometries), padded taps included."""
    x_dtype, out_dtype = _dtypes.from_short_name(combo[0]).type, _dtypes.from_short_name(combo[-1]).type
    info = np.iinfo(x_dtype)
    rng = np.random.default_rng(19)
    tile_cases = [dict(x=rng.integers(int(info.min), int(info.max) + 1, xs).astype(x_dtype),
                       w=rng.integers(-128, 128, ws).astype(np.int8), bias=rng.integers(-999, 999, geo.k).astype(np.int32),
                       x_zero_point=int(info.min) + 3, w_zero_point=-5,
                       scale=None if out_dtype == np.int32 else 1e-4, out_zero_point=0, out_dtype=out_dtype,
                       activation=None, **kw) for xs, ws, kw, geo in (tile_geometries(tiles) if tiles else [])]
    x = np.full((1, 6, 6, 64), info.max if x_dtype == np.uint8 else info.min, x_dtype)
    w = np.full((5, 3, 3, 64), -128, np.int8)
    return [dict(x=x, w=w, bias=None, x_zero_point=0, w_zero_point=0,
                 scale=None if out_dtype == np.int32 else 1e-7, out_zero_point=0, out_dtype=out_dtype,
                 activation=None, stride=1, padding=0, dilation=1, groups=1, layout="NHWC")] + tile_cases


def _fixed_backward_data(combo, tiles=None):
    dtype = _dtypes.from_short_name(combo[0])
    rng = np.random.default_rng(23)
    return [dict(grad_out=rng.integers(-3, 4, geo.out_shape).astype(dtype), w=rng.integers(-3, 4, ws).astype(dtype),
                 input_shape=xs, **kw) for xs, ws, kw, geo in (tile_geometries(tiles) if tiles else [])]


def _fixed_backward_weight(combo, tiles=None):
    dtype = _dtypes.from_short_name(combo[0])
    rng = np.random.default_rng(29)
    return [dict(x=rng.integers(-3, 4, xs).astype(dtype), grad_out=rng.integers(-3, 4, geo.out_shape).astype(dtype),
                 weight_shape=ws, **kw) for xs, ws, kw, geo in (tile_geometries(tiles) if tiles else [])]


register_suite(Suite(op="conv2d", strategy=lambda combo, tiles=None: conv2d_cases(*_float_combo(combo), tiles=tiles),
                     check=check_conv2d_case, fixed=_fixed_conv2d, tensors=("x", "w")))
register_suite(Suite(op="qconv2d",
                     strategy=lambda combo, tiles=None: qconv2d_cases(
                         _dtypes.from_short_name(combo[0]).type, _dtypes.from_short_name(combo[-1]).type, tiles=tiles),
                     check=check_qconv2d_case, fixed=_fixed_qconv2d, tensors=("x", "w")))
register_suite(Suite(op="conv2d_backward_data",
                     strategy=lambda combo, tiles=None: conv2d_backward_data_cases(
                         _dtypes.from_short_name(combo[0]), tiles=tiles),
                     check=check_conv2d_backward_data_case, fixed=_fixed_backward_data, tensors=("grad_out", "w")))
register_suite(Suite(op="conv2d_backward_weight",
                     strategy=lambda combo, tiles=None: conv2d_backward_weight_cases(
                         _dtypes.from_short_name(combo[0]), tiles=tiles),
                     check=check_conv2d_backward_weight_case, fixed=_fixed_backward_weight,
                     tensors=("x", "grad_out")))
