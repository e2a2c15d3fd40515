"""Hypothesis strategies for kernel test cases (shared with the conformance runner).

Sizes favour the edges kernels get wrong: 0, 1, primes, one past a tile, and
occasionally large K. Values cover the full range of integer types (-128 and 255
included) and, for floats, exact small integers (so most sums are exact), random
normals, extremes near the type's max, and NaN / inf when asked.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from .. import _dtypes

EDGE_SIZES = [0, 1, 2, 3, 5, 7, 8, 13, 16, 17, 31, 33, 47, 64, 97]


def dims(max_size: int = 97, *, allow_zero: bool = True) -> st.SearchStrategy[int]:
    edges = [s for s in EDGE_SIZES if s <= max_size and (allow_zero or s > 0)]
    return st.one_of(st.sampled_from(edges), st.integers(1 if not allow_zero else 0, max_size))


def tile_dim(small: st.SearchStrategy[int], edges=()) -> st.SearchStrategy[int]:
    """`small` or a tile-edge size (testing/tiles.py), half the time each.

    one_of shrinks towards its first branch: a failing case goes back to a small size in
    every dimension where the bug does not need a tile edge, and to the smallest failing
    edge where it does."""
    if not edges:
        return small
    edges = tuple(edges)
    return st.one_of(small, st.sampled_from(edges))


def float_array(draw, shape, dtype, *, kind=None, nonfinite=False) -> np.ndarray:
    """A float array of `dtype`. kind: 'int' (small exact integers), 'normal', 'extreme',
    or None to let hypothesis choose."""
    dtype = np.dtype(dtype)
    kind = kind or draw(st.sampled_from(["int", "normal", "normal", "extreme"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape)) if shape else 1
    if kind == "int":
        x = rng.integers(-4, 5, size=shape).astype(np.float64)
    elif kind == "normal":
        x = rng.standard_normal(size=shape)
    else:  # large magnitudes, mixed with tiny ones and exact zeros
        big = float(_dtypes.finfo(dtype).max) ** 0.5 / 4
        x = rng.choice([-big, big, 1e-3, -1e-3, 0.0], size=shape) * rng.uniform(0.5, 1.0, size=shape)
    if nonfinite and size:
        flat = x.reshape(-1)
        count = draw(st.integers(1, min(3, size)))
        for _ in range(count):
            flat[rng.integers(0, size)] = rng.choice([np.nan, np.inf, -np.inf])
    return x.astype(dtype)


def int_array(draw, shape, dtype, *, full_range: bool | None = None) -> np.ndarray:
    """An s8/u8 array; full_range puts the extreme values (-128, 127, 0, 255) in often."""
    info = np.iinfo(dtype)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if full_range is None:
        full_range = draw(st.booleans())
    if full_range:
        return rng.choice([info.min, info.max, info.min + 1, info.max - 1, 0], size=shape).astype(dtype)
    return rng.integers(info.min, int(info.max) + 1, size=shape).astype(dtype)


@st.composite
def strided(draw, x: np.ndarray) -> np.ndarray:
    """The same values as x, sometimes presented as a non-contiguous view (odd strides,
    transposed storage), to exercise the kernels' packing of arbitrary layouts."""
    layout = draw(st.sampled_from(["contiguous", "fortran", "step"]))
    if layout == "fortran":
        return np.asfortranarray(x)
    if layout == "step" and x.ndim >= 1:
        step = draw(st.sampled_from([2, 3]))
        big = np.zeros(x.shape[:-1] + (x.shape[-1] * step,), dtype=x.dtype)
        big[..., ::step] = x
        return big[..., ::step]
    return x
