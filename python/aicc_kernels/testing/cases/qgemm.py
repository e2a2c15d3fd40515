"""qgemm: the case generator, the bit-exact check, and the conformance suite.

Shared by tests/test_qgemm.py and the conformance runner.
"""

from __future__ import annotations

import numpy as np
from hypothesis import assume, strategies as st

from ... import _dtypes
from .. import strategies as S
from ..tolerance import compare_exact
from . import Suite, Verdict, register_suite

_DRAW = "draw"


@st.composite
def qgemm_cases(draw, max_dim=97, max_k=600, a_dtype=_DRAW, out_dtype=_DRAW, tiles=None, at_tile=False):
    """Keyword arguments of ak.qgemm: u8/s8 activations over their full range (-128, 255
    included), scalar or per-channel zero points at the extremes, every output stage
    (s32, s8, u8, f32) with per-tensor or per-channel scales, bias and relu, [K, N] or
    [N, K] weights, strided views. a_dtype / out_dtype fix the combo when given; tiles
    (a testing.tiles.TilePlan) adds its tile-edge sizes to every dimension."""
    if isinstance(a_dtype, str) and a_dtype == _DRAW:
        a_dtype = draw(st.sampled_from([np.uint8, np.int8]))
    m = draw(S.tile_dim(S.dims(max_dim), tiles.m if tiles else ()))
    n = draw(S.tile_dim(S.dims(max_dim), tiles.n if tiles else ()))
    k = draw(S.tile_dim(st.one_of(S.dims(max_dim), st.integers(1, max_k)), tiles.k if tiles else ()))
    if at_tile:  # at least one dimension at a tile edge (a filter, so each still shrinks on its own)
        assume(m in tiles.m or n in tiles.n or k in tiles.k)
    trans_b = draw(st.booleans())
    a = draw(S.strided(S.int_array(draw, (m, k), a_dtype)))
    b = draw(S.strided(S.int_array(draw, (n, k) if trans_b else (k, n), np.int8)))
    info = np.iinfo(a_dtype)
    za = draw(st.sampled_from([0, int(info.min), int(info.max), 3]))
    per_channel = draw(st.booleans())
    zb = (S.int_array(draw, (n,), np.int8).astype(np.int32) if per_channel
          else draw(st.sampled_from([0, -128, 127, -5])))
    if isinstance(out_dtype, str) and out_dtype == _DRAW:
        out_dtype = draw(st.sampled_from([np.int32, np.int8, np.uint8, np.float32]))
    scale = None
    if out_dtype != np.int32:
        scale = (np.abs(S.float_array(draw, (n,), np.float32, kind="normal")) * 1e-3 + 1e-6
                 if draw(st.booleans()) else draw(st.sampled_from([1.0, 0.5, 1.0 / 3.0, 1e-4])))
    ozp = 0
    if out_dtype in (np.int8, np.uint8):
        oi = np.iinfo(out_dtype)
        ozp = draw(st.integers(int(oi.min), int(oi.max)))
    bias = S.int_array(draw, (n,), np.int8).astype(np.int32) * 1000 if draw(st.booleans()) else None
    activation = draw(st.sampled_from([None, "relu"]))
    return dict(a=a, b=b, a_zero_point=za, b_zero_point=zb, scale=scale, bias=bias,
                out_zero_point=ozp, out_dtype=out_dtype, activation=activation, trans_b=trans_b)


def check_qgemm_case(case, out, ref=None) -> Verdict:
    """None when `out` (a backend's ak.qgemm(**case)) equals the reference bit for bit."""
    import aicc_kernels as ak

    if ref is None:
        ref = ak.reference.qgemm(**{k: v for k, v in case.items() if k != "out"})
    if not isinstance(out, np.ndarray):
        return f"expected a NumPy array, got {type(out).__name__}"
    if out.dtype != ref.dtype or out.shape != ref.shape:
        return (f"expected a {_dtypes.short_name(ref.dtype)} result of shape {ref.shape}, "
                f"got {_dtypes.short_name(out.dtype)} of shape {out.shape}")
    return compare_exact(out, ref)


def _combo_dtypes(combo):
    return _dtypes.from_short_name(combo[0]).type, _dtypes.from_short_name(combo[-1]).type


def _strategy(combo, tiles=None):
    a_dtype, out_dtype = _combo_dtypes(combo)
    cap = tiles.max_dim if tiles else 97
    # The second branch always has a dimension at a tile edge (see cases/gemm.py).
    return st.one_of(qgemm_cases(a_dtype=a_dtype, out_dtype=out_dtype, tiles=tiles, max_dim=min(97, cap),
                                 max_k=min(600, cap)),
                     *([qgemm_cases(a_dtype=a_dtype, out_dtype=out_dtype, tiles=tiles, max_dim=min(20, cap),
                                    max_k=min(40, cap), at_tile=True)] if tiles else []))


def _tile_fixed(combo, tiles):
    """One case per tile edge per dimension: full-range values, per-channel zero points and
    bias, so a wrong or unwritten element of the last tile cannot hide."""
    from .gemm import tile_shapes

    a_dtype, out_dtype = _combo_dtypes(combo)
    info = np.iinfo(a_dtype)
    rng = np.random.default_rng(17)
    cases = []
    for m, n, k in tile_shapes(tiles):
        cases.append(dict(a=rng.integers(int(info.min), int(info.max) + 1, (m, k)).astype(a_dtype),
                          b=rng.integers(-128, 128, (k, n)).astype(np.int8), a_zero_point=int(info.min) + 3,
                          b_zero_point=rng.integers(-128, 128, n).astype(np.int32),
                          scale=None if out_dtype == np.int32 else np.float32(1e-4),
                          bias=rng.integers(-1000, 1000, n).astype(np.int32), out_zero_point=0,
                          out_dtype=out_dtype, activation=None, trans_b=False))
    return cases


def _fixed(combo, tiles=None):
    """The vpmaddubsw trap: with a = 255 (u8) or -128 (s8) and b = -128, every pair of
    products overflows int16; an exact kernel gets 1024 * 255 * -128 per element."""
    a_dtype, out_dtype = _combo_dtypes(combo)
    info = np.iinfo(a_dtype)
    k = 1024
    a = np.full((7, k), info.max if a_dtype == np.uint8 else info.min, a_dtype)
    b = np.full((k, 19), -128, np.int8)
    scale = None if out_dtype == np.int32 else 1e-7
    return [dict(a=a, b=b, a_zero_point=0, b_zero_point=0, scale=scale, bias=None, out_zero_point=0,
                 out_dtype=out_dtype, activation=None, trans_b=False)] + (_tile_fixed(combo, tiles) if tiles else [])


SUITE = register_suite(Suite(op="qgemm", strategy=_strategy, check=check_qgemm_case, fixed=_fixed))
