"""gemm: the case generator, the reference check, and the conformance suite.

tests/test_gemm.py and the conformance runner both draw from `gemm_cases` and judge with
`check_gemm_case`, so a backend that passes the runner passes the project's own tests.
"""

from __future__ import annotations

import numpy as np
from hypothesis import assume, strategies as st

from ... import _dtypes
from .. import strategies as S
from ..tolerance import check_gemm
from . import Suite, Verdict, register_suite

FLOAT_TYPES = [np.float32, np.float16, _dtypes.bfloat16]
_DRAW = "draw"


@st.composite
def gemm_cases(draw, dtype, max_dim=97, max_k=300, nonfinite=False, out_dtype=_DRAW, tiles=None, at_tile=False):
    """Keyword arguments of ak.gemm: shapes with edges (0, 1, primes, tile +- 1), both
    transposes, strided / Fortran views, small-integer / normal / extreme values (NaN and
    inf when nonfinite), alpha/beta, bias and activation. out_dtype: None (= dtype),
    np.float32, or drawn from both. tiles: a testing.tiles.TilePlan whose edge sizes
    (T-1 .. a prime above 2T) each dimension sometimes takes."""
    m = draw(S.tile_dim(S.dims(max_dim), tiles.m if tiles else ()))
    n = draw(S.tile_dim(S.dims(max_dim), tiles.n if tiles else ()))
    k = draw(S.tile_dim(st.one_of(S.dims(max_dim), st.integers(1, max_k)), tiles.k if tiles else ()))
    if at_tile:  # at least one dimension at a tile edge (a filter, so each still shrinks on its own)
        assume(m in tiles.m or n in tiles.n or k in tiles.k)
    trans_a, trans_b = draw(st.booleans()), draw(st.booleans())
    kind = draw(st.sampled_from(["int", "normal", "extreme"]))
    a = S.float_array(draw, (k, m) if trans_a else (m, k), dtype, kind=kind, nonfinite=nonfinite and draw(st.booleans()))
    b = S.float_array(draw, (n, k) if trans_b else (k, n), dtype, kind=kind, nonfinite=nonfinite and draw(st.booleans()))
    a, b = draw(S.strided(a)), draw(S.strided(b))
    if isinstance(out_dtype, str) and out_dtype == _DRAW:
        out_dtype = draw(st.sampled_from([None, np.float32]))
    alpha = draw(st.sampled_from([1.0, -0.5, 2.0, 0.0]))
    beta = draw(st.sampled_from([0.0, 0.0, 1.0, -2.0]))
    c = S.float_array(draw, (m, n), draw(st.sampled_from(FLOAT_TYPES)), kind="normal") if beta else None
    bias = S.float_array(draw, (n,), np.float32, kind="normal") if draw(st.booleans()) else None
    activation = draw(st.sampled_from([None, "relu", "gelu"]))
    return dict(a=a, b=b, c=c, alpha=alpha, beta=beta, trans_a=trans_a, trans_b=trans_b, bias=bias,
                activation=activation, out_dtype=out_dtype)


def check_gemm_case(case, out, ref=None) -> Verdict:
    """None when `out` (a backend's ak.gemm(**case)) is within the tolerance table of the reference."""
    import aicc_kernels as ak

    if ref is None:
        ref = ak.reference.gemm(**{k: v for k, v in case.items() if k != "out"})
    if not isinstance(out, np.ndarray):
        return f"expected a NumPy array, got {type(out).__name__}"
    if out.dtype != ref.dtype or out.shape != ref.shape:
        return (f"expected a {_dtypes.short_name(ref.dtype)} result of shape {ref.shape}, "
                f"got {_dtypes.short_name(out.dtype)} of shape {out.shape}")
    a = case["a"].T if case.get("trans_a") else case["a"]
    b = case["b"].T if case.get("trans_b") else case["b"]
    return check_gemm(out, ref, a, b, case.get("c"), alpha=case.get("alpha", 1.0), beta=case.get("beta", 0.0),
                      bias=case.get("bias"), activation=case.get("activation"))


def _combo_dtypes(combo):
    dtype = _dtypes.from_short_name(combo[0])
    out = _dtypes.from_short_name(combo[-1])
    return dtype, (None if out == dtype else np.float32)


def _strategy(combo, tiles=None):
    dtype, out_dtype = _combo_dtypes(combo)
    cap = tiles.max_dim if tiles else 97
    # The third branch always has a dimension at a tile edge, so the search reaches the
    # tile tails often enough to find, then shrink, a bug that lives only there.
    return st.one_of(gemm_cases(dtype, out_dtype=out_dtype, tiles=tiles, max_dim=min(97, cap), max_k=min(300, cap)),
                     gemm_cases(dtype, max_dim=min(20, cap), max_k=min(40, cap), nonfinite=True, out_dtype=out_dtype),
                     *([gemm_cases(dtype, out_dtype=out_dtype, tiles=tiles, max_dim=min(20, cap), max_k=min(40, cap),
                                   at_tile=True)] if tiles else []))


def tile_shapes(tiles, small=(5, 7, 3)):
    """(m, n, k) triples with one dimension at each tile edge of `tiles` and the others small."""
    shapes = []
    for d, dim in enumerate("mnk"):
        for e in tiles.edges(dim):
            shape = list(small)
            shape[d] = e
            shapes.append(tuple(shape))
    return shapes


def _tile_fixed(combo, tiles):
    """One case per tile edge per dimension, with bias and relu so the epilogue of the
    last tile is checked too; exact small integers, so any wrong element shows."""
    dtype, out_dtype = _combo_dtypes(combo)
    rng = np.random.default_rng(13)
    cases = []
    for m, n, k in tile_shapes(tiles):
        cases.append(dict(a=rng.integers(-4, 5, (m, k)).astype(dtype), b=rng.integers(-4, 5, (k, n)).astype(dtype),
                          c=None, alpha=1.0, beta=0.0, trans_a=False, trans_b=False,
                          bias=rng.integers(-4, 5, n).astype(np.float32), activation="relu", out_dtype=out_dtype))
    return cases


def _fixed(combo, tiles=None):
    dtype, out_dtype = _combo_dtypes(combo)
    rng = np.random.default_rng(7)
    plain = dict(c=None, alpha=1.0, beta=0.0, trans_a=False, trans_b=False, bias=None, activation=None,
                 out_dtype=out_dtype)
    large_k = dict(plain, a=rng.standard_normal((37, 3001)).astype(dtype),
                   b=rng.standard_normal((3001, 29)).astype(dtype))
    # beta == 0 must not read C: NaN there must not reach the result (OpenBLAS #929).
    nan_c = dict(plain, a=rng.integers(-3, 4, (9, 5)).astype(dtype), b=rng.integers(-3, 4, (5, 11)).astype(dtype),
                 c=np.full((9, 11), np.nan, dtype))
    # Every edge of a register tile at once: sizes one past common tiles, with the epilogue.
    edges = dict(plain, a=rng.integers(-4, 5, (17, 33)).astype(dtype), b=rng.integers(-4, 5, (33, 65)).astype(dtype),
                 c=rng.integers(-4, 5, (17, 65)).astype(dtype), alpha=2.0, beta=-1.0,
                 bias=rng.integers(-4, 5, 65).astype(np.float32), activation="relu")
    return [large_k, nan_c, edges] + (_tile_fixed(combo, tiles) if tiles else [])


SUITE = register_suite(Suite(op="gemm", strategy=_strategy, check=check_gemm_case, fixed=_fixed))
