"""aicc-example-backend: a subset of the aicc_kernels op surface, implemented its own way.

    gemm  f32/f32/f32            blocked NumPy: 32x32 output tiles, K in blocks of 64,
                                 f32 accumulation, the epilogue applied per tile
    qgemm u8/s8/s32, s8/s8/s32   int32 widening; zero points folded in through row and
                                 column sums (the MLAS / ruy trick), so the inner loop
                                 multiplies the raw values

The kernels follow docs/PORTING.md: arguments arrive validated, `out` is preallocated
with the right shape and dtype, inputs may be strided views.

The tiling and the inner product are methods of small classes so that a test can make a
copy with one planted bug (tests/test_porting_kit.py) and watch the conformance runner
catch it.
"""

from __future__ import annotations

import math

import numpy as np

from aicc_kernels.backends import Backend

__all__ = ["BlockedGemm", "WideningQGemm", "make_backend"]
__version__ = "0.1.0"


class BlockedGemm:
    """out = activation(alpha * a @ b + beta * c + bias) in f32, one output tile at a time."""

    tile_m = 32
    tile_n = 32
    block_k = 64

    def tiles(self, size: int, tile: int):
        """(start, stop) of each tile along a dimension of `size`; the last one is partial."""
        return [(i, min(i + tile, size)) for i in range(0, size, tile)]

    def __call__(self, a, b, c, out, *, alpha=1.0, beta=0.0, bias=None, activation=None):
        m, k = a.shape
        n = b.shape[1]
        alpha32, beta32 = np.float32(alpha), np.float32(beta)
        for i0, i1 in self.tiles(m, self.tile_m):
            for j0, j1 in self.tiles(n, self.tile_n):
                acc = np.zeros((i1 - i0, j1 - j0), np.float32)
                with np.errstate(over="ignore", invalid="ignore"):  # inf/NaN inputs propagate
                    for k0, k1 in self.tiles(k, self.block_k):
                        acc += a[i0:i1, k0:k1].astype(np.float32) @ b[k0:k1, j0:j1].astype(np.float32)
                    acc *= alpha32
                    if beta != 0.0:  # beta == 0 never reads c (NaN in c must not leak)
                        acc += beta32 * c[i0:i1, j0:j1].astype(np.float32)
                    if bias is not None:
                        acc += bias[j0:j1]
                out[i0:i1, j0:j1] = _activation(acc, activation)


_erf = np.vectorize(math.erf, otypes=[np.float32])


def _activation(x: np.ndarray, name):
    if name is None:
        return x
    if name == "relu":
        return np.where(x < 0, np.float32(0), x)  # NaN stays NaN
    with np.errstate(over="ignore", invalid="ignore"):
        y = np.float32(0.5) * x * (np.float32(1) + _erf(x.astype(np.float64) / math.sqrt(2.0)))
    return np.where(np.isneginf(x), np.float32(0), y)


class WideningQGemm:
    """Exact INT8 GEMM to an int32 result.

    sum_k (a - za)(b - zb) = a @ b - zb * rowsum(a) - za * colsum(b) + K * za * zb,
    so the product runs on the raw values, widened to int32 before multiplying. The raw
    terms may wrap around int32 when zero points are large, but the op layer guarantees
    the true result fits in int32, and wrap-around arithmetic is exact modulo 2**32.
    """

    def dot(self, a32: np.ndarray, b32: np.ndarray) -> np.ndarray:
        """The raw int32 product a @ b (inputs already widened to int32)."""
        return a32 @ b32

    def __call__(self, a, b, out, *, a_zero_point=0, b_zero_point=0, scale=None, bias=None,
                 out_zero_point=0, activation=None):
        k = a.shape[1]
        a32 = a.astype(np.int32)
        b32 = b.astype(np.int32)
        za = np.int32(a_zero_point)
        zb = np.asarray(b_zero_point, np.int32).reshape(-1)  # scalar or per output column
        acc = self.dot(a32, b32)
        acc -= zb[None, :] * a32.sum(axis=1, dtype=np.int32)[:, None]
        acc -= za * b32.sum(axis=0, dtype=np.int32)[None, :]
        acc += np.int32(k) * za * zb[None, :]
        if bias is not None:
            acc += bias[None, :]
        if activation == "relu":
            np.maximum(acc, 0, out=acc)
        out[...] = acc


def make_backend(name: str = "example", gemm: BlockedGemm = None, qgemm: WideningQGemm = None) -> Backend:
    """The backend object the entry point hands to aicc_kernels (and tests build copies with)."""
    backend = Backend(name, "cpu", description="aicc-example-backend: blocked NumPy f32 GEMM, int32-widening INT8")
    backend.implements("gemm", "f32/f32/f32")(gemm or BlockedGemm())
    backend.implements("qgemm", "u8/s8/s32", "s8/s8/s32")(qgemm or WideningQGemm())
    return backend
