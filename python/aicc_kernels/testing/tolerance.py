"""The tolerance table: how far a backend's result may be from the reference.

One function per kind of result, used by the project's tests and by the conformance
runner alike (docs/SEMANTICS.md, "Tolerances", states the same rules in prose).

Floating point (f32 accumulation, any input type):
    |out - ref| <= ACCUMULATION_FACTOR * (K + 2) * eps(f32) * magnitude       (accumulation)
                 + eps(out) * |ref|                                            (final rounding)
                 + tiny(out)                                                    (subnormal floor)
where magnitude = |alpha| (|A| @ |B|) + |beta| |C| + |bias| is the sum of the absolute values
of every term, computed in float64. The first term is the classic bound of a length-K
dot product (Higham, gamma_K), with a factor 2 of margin for blocked/FMA orders; `gelu`
multiplies it by max|gelu'| < 1.13 and adds 4 eps(f32) |ref| for the erf evaluation.
Non-finite values: where the reference is NaN the result must be NaN, where it is +-inf the
result must be the same inf; where magnitude, or the unscaled |A| @ |B|, comes within 4x of
the f32 maximum the element is not checked (the f32 accumulation may overflow where the
f64 reference does not, and alpha = 0 turns that overflow into NaN).

bf16 x bf16 products: the bf16 dot-product instructions (vdpbf16ps, AMX-BF16) read subnormal
bf16 inputs as zero (DAZ; docs/SEMANTICS.md). Where both operands are bf16 the bound therefore
adds, at full weight, the products that involve a subnormal input:
    + |alpha| (|A_sub| @ |B| + |A| @ |B_sub|)      (A_sub: the subnormal entries of A, else 0)
which is zero for data without bf16 subnormals, so nothing is widened for ordinary inputs.

INT8 (any output type): bit-exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _dtypes

ACCUMULATION_FACTOR = 2.0
GELU_SLOPE = 1.13
F32_EPS = float(np.finfo(np.float32).eps)
F32_MAX = float(np.finfo(np.float32).max)


@dataclass
class Mismatch:
    """The first element outside the tolerance, for error messages and conformance reports."""

    index: tuple
    got: float
    expected: float
    allowed: float
    count: int
    total: int

    def __str__(self) -> str:
        return (f"{self.count} of {self.total} elements out of tolerance; first at {self.index}: "
                f"got {self.got!r}, expected {self.expected!r} (allowed error {self.allowed:.3g})")


def float_bound(ref64: np.ndarray, magnitude: np.ndarray, k: int, out_dtype, activation=None) -> np.ndarray:
    """Allowed |out - ref| per element (float64), per the rule in the module docstring."""
    out_info = _dtypes.finfo(out_dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        acc = ACCUMULATION_FACTOR * (k + 2) * F32_EPS * magnitude
        if activation == "gelu":
            acc = GELU_SLOPE * acc + 4 * F32_EPS * np.abs(ref64)
        return acc + float(out_info.eps) * np.abs(ref64) + float(out_info.smallest_normal)


def compare_float(out, ref, bound, unchecked=None) -> Mismatch | None:
    """None when every element of `out` is within `bound` of `ref` (same NaN/inf pattern)."""
    with np.errstate(invalid="ignore"):  # a wrong result may hold signalling NaNs
        got = np.asarray(out).astype(np.float64)
        ref = np.asarray(ref).astype(np.float64)
    bound = np.broadcast_to(bound, ref.shape)
    with np.errstate(invalid="ignore"):
        nan_ref = np.isnan(ref)
        inf_ref = np.isinf(ref)
        finite = ~nan_ref & ~inf_ref
        ok = np.where(nan_ref, np.isnan(got), True)
        ok &= np.where(inf_ref, got == ref, True)
        ok &= np.where(finite, np.abs(got - ref) <= bound, True)
    if unchecked is not None:
        ok |= unchecked
    if ok.all():
        return None
    bad = np.argwhere(~ok)
    idx = tuple(int(i) for i in bad[0])
    return Mismatch(idx, float(got[idx]), float(ref[idx]), float(bound[idx]), len(bad), ok.size)


def compare_exact(out, ref) -> Mismatch | None:
    """None when `out` equals `ref` bit for bit (integers; NaN == NaN for floats)."""
    out = np.asarray(out)
    ref = np.asarray(ref)
    if out.dtype.kind == "f" or out.dtype == _dtypes.bfloat16:
        as_bytes = (lambda x: np.ascontiguousarray(x).view(np.uint8).reshape(x.shape + (x.itemsize,)))
        ok = (as_bytes(out) == as_bytes(ref.astype(out.dtype))).all(axis=-1)
        ok |= np.isnan(out.astype(np.float64)) & np.isnan(ref.astype(np.float64))
    else:
        ok = out == ref
    if ok.all():
        return None
    bad = np.argwhere(~ok)
    idx = tuple(int(i) for i in bad[0])
    return Mismatch(idx, out[idx].item(), ref[idx].item(), 0.0, len(bad), ok.size)


def gemm_magnitude(a, b, c=None, *, alpha=1.0, beta=0.0, bias=None) -> np.ndarray:
    """|alpha| (|A| @ |B|) + |beta| |C| + |bias| in float64 (inf/nan inputs count as 0 here:
    their positions are judged by the NaN/inf pattern of the reference)."""
    def absf(x):
        x = np.abs(np.asarray(x).astype(np.float64))
        return np.where(np.isfinite(x), x, 0.0)

    with np.errstate(over="ignore"):
        mag = abs(alpha) * (absf(a) @ absf(b))
        if beta != 0.0 and c is not None:
            mag = mag + abs(beta) * absf(c)
        if bias is not None:
            mag = mag + absf(bias)[None, :]
    return mag


def bf16_subnormals(x) -> np.ndarray | None:
    """|x| where x is a bf16 subnormal (the inputs DAZ hardware reads as zero), 0 elsewhere, in
    float64; None when x is not bf16 or has no subnormal (the common case: no extra term)."""
    x = np.asarray(x)
    if x.dtype != _dtypes.bfloat16:
        return None
    a = np.abs(x.astype(np.float64))
    sub = np.where((a > 0) & (a < float(_dtypes.finfo(_dtypes.bfloat16).smallest_normal)), a, 0.0)
    return sub if sub.any() else None


def bf16_flush_term(a, b, product) -> np.ndarray | float:
    """product(|A_sub|, |B|) + product(|A|, |B_sub|) when both operands are bf16 (see the module
    docstring), else 0. `product` is the op's bilinear map on float64 magnitudes."""
    if np.asarray(a).dtype != _dtypes.bfloat16 or np.asarray(b).dtype != _dtypes.bfloat16:
        return 0.0
    sa, sb = bf16_subnormals(a), bf16_subnormals(b)
    if sa is None and sb is None:
        return 0.0

    def absf(x):
        x = np.abs(np.asarray(x).astype(np.float64))
        return np.where(np.isfinite(x), x, 0.0)

    with np.errstate(over="ignore", invalid="ignore"):
        term = 0.0
        if sa is not None:
            term = term + product(sa, absf(b))
        if sb is not None:
            term = term + product(absf(a), sb)
    return np.where(np.isfinite(term), term, 0.0)


def check_gemm(out, ref, a, b, c=None, *, alpha=1.0, beta=0.0, bias=None, activation=None) -> Mismatch | None:
    """Compares a float GEMM result (any backend) with the reference result. a, b are op(A), op(B)."""
    mag = gemm_magnitude(a, b, c, alpha=alpha, beta=beta, bias=bias)
    bound = float_bound(np.asarray(ref).astype(np.float64), mag, a.shape[1], np.asarray(out).dtype, activation)
    flush = bf16_flush_term(a, b, np.matmul)
    if activation == "gelu":
        flush = GELU_SLOPE * flush
    bound = bound + abs(alpha) * flush
    # The f32 accumulator holds A @ B before alpha scales it: judge overflow on that sum
    # (alpha = 0 times an overflowed sum is NaN in f32 but 0 in the float64 reference).
    raw = mag if alpha == 1.0 and beta == 0.0 and bias is None else gemm_magnitude(a, b)
    unchecked = ~np.isfinite(mag) | (mag > F32_MAX / 4) | ~np.isfinite(raw) | (raw > F32_MAX / 4)
    return compare_float(out, ref, bound, unchecked)
