"""D11: the reference's error bounds end with the result dtype's final rounding, including
half the spacing of its subnormals, undivided by the rank count (docs/COLLECTIVES.md)."""

from __future__ import annotations

import numpy as np
import pytest

import aicc_kernels as ak

HALF_SUBNORMAL = {"f16": 2.0**-25, "bf16": 2.0**-134, "f32": 2.0**-150, "f64": 2.0**-1075}
DTYPES = {"f16": np.float16, "bf16": ak.bfloat16, "f32": np.float32, "f64": np.float64}


def test_the_failing_ci_case_f16_avg_tie_among_subnormals():
    """The exact element that failed: x0 = -77 * 2^-24, x1 = 846 * 2^-24 (f16 subnormals); the
    exact mean 384.5 * 2^-24 is a tie, rounded to even: 384 * 2^-24, an error of 2^-25."""
    n = 16411
    x0 = np.zeros(n, np.float16)
    x1 = np.zeros(n, np.float16)
    x0[4731] = -77 * 2.0**-24
    x1[4731] = 846 * 2.0**-24
    xs = [x0, x1]
    ref = ak.reference.allreduce(xs, "avg")
    bound = ak.reference.allreduce_error_bound(xs, "avg")
    assert ref[4731] == 384.5 * 2.0**-24
    for y in ak.collective.run_threads(2, lambda c: ak.allreduce(xs[c.rank], "avg")):
        assert float(y[4731]) == 384 * 2.0**-24  # round half to even
        err = np.abs(y.astype(np.float64) - ref)
        assert err[4731] == 2.0**-25
        assert np.all(err <= bound)


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("op", ["sum", "avg"])
@pytest.mark.parametrize("size", [1, 2, 3, 4, 64])
def test_bound_never_below_half_the_result_subnormal_spacing(dtype, op, size):
    xs = [np.zeros(5, DTYPES[dtype]) for _ in range(size)]
    assert np.all(ak.reference.allreduce_error_bound(xs, op) >= HALF_SUBNORMAL[dtype])


@pytest.mark.parametrize("compression", ["fp16", "bf16", "int8"])
@pytest.mark.parametrize("op", ["sum", "avg"])
def test_compressed_bounds_include_the_f32_result_and_wire_subnormal_terms(compression, op):
    xs = [np.zeros(300, np.float32) for _ in range(3)]
    bound = ak.reference.allreduce_error_bound(xs, op, compression=compression)
    wire = {"fp16": HALF_SUBNORMAL["f16"], "bf16": HALF_SUBNORMAL["bf16"], "int8": 0.0}[compression]
    assert np.all(bound >= wire + HALF_SUBNORMAL["f32"])


@pytest.mark.parametrize("dtype", ["f16", "bf16"])
def test_avg_of_subnormal_ties_is_within_bound_on_every_rank_count(dtype):
    """Every pair/triple of small subnormal multiples whose mean is a tie: the kernel's
    correctly rounded result must fit the bound (it did not, at random, before)."""
    spacing = 2.0**-24 if dtype == "f16" else 2.0**-133
    k = np.arange(-40, 41, dtype=np.float64)
    for size in (2, 3, 4):
        xs = [(np.roll(k, r) * spacing).astype(DTYPES[dtype]) for r in range(size)]
        ref = ak.reference.allreduce(xs, "avg")
        bound = ak.reference.allreduce_error_bound(xs, "avg")
        for y in ak.collective.run_threads(size, lambda c: ak.allreduce(xs[c.rank], "avg")):
            assert np.all(np.abs(y.astype(np.float64) - ref) <= bound)
