"""Float GEMM / matmul against the reference, on every backend and ISA path."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

import aicc_kernels as ak
from aicc_kernels import _dtypes
from aicc_kernels.testing import strategies as S
from aicc_kernels.testing.devices import to_device, to_host
from aicc_kernels.testing.tolerance import check_gemm

FLOAT_TYPES = [np.float32, np.float16, _dtypes.bfloat16]


@st.composite
def gemm_cases(draw, dtype, max_dim=97, max_k=300, nonfinite=False):
    m, n = draw(S.dims(max_dim)), draw(S.dims(max_dim))
    k = draw(st.one_of(S.dims(max_dim), st.integers(1, max_k)))
    trans_a, trans_b = draw(st.booleans()), draw(st.booleans())
    kind = draw(st.sampled_from(["int", "normal", "extreme"]))
    a = S.float_array(draw, (k, m) if trans_a else (m, k), dtype, kind=kind, nonfinite=nonfinite and draw(st.booleans()))
    b = S.float_array(draw, (n, k) if trans_b else (k, n), dtype, kind=kind, nonfinite=nonfinite and draw(st.booleans()))
    a, b = draw(S.strided(a)), draw(S.strided(b))
    out_dtype = draw(st.sampled_from([None, np.float32]))
    alpha = draw(st.sampled_from([1.0, -0.5, 2.0, 0.0]))
    beta = draw(st.sampled_from([0.0, 0.0, 1.0, -2.0]))
    c = S.float_array(draw, (m, n), draw(st.sampled_from(FLOAT_TYPES)), kind="normal") if beta else None
    bias = S.float_array(draw, (n,), np.float32, kind="normal") if draw(st.booleans()) else None
    activation = draw(st.sampled_from([None, "relu", "gelu"]))
    return dict(a=a, b=b, c=c, alpha=alpha, beta=beta, trans_a=trans_a, trans_b=trans_b, bias=bias,
                activation=activation, out_dtype=out_dtype)


def _assert_gemm_matches(case, out):
    ref = ak.reference.gemm(**case)
    a = case["a"].T if case["trans_a"] else case["a"]
    b = case["b"].T if case["trans_b"] else case["b"]
    assert out.dtype == ref.dtype and out.shape == ref.shape
    mismatch = check_gemm(out, ref, a, b, case["c"], alpha=case["alpha"], beta=case["beta"],
                          bias=case["bias"], activation=case["activation"])
    assert mismatch is None, str(mismatch)


@pytest.mark.parametrize("dtype", FLOAT_TYPES, ids=_dtypes.short_name)
@given(data=st.data())
def test_gemm_matches_reference(backend, dtype, data):
    case = data.draw(gemm_cases(dtype))
    _assert_gemm_matches(case, to_host(ak.gemm(**to_device(case, backend), backend=backend)))


@pytest.mark.parametrize("dtype", FLOAT_TYPES, ids=_dtypes.short_name)
@given(data=st.data())
def test_gemm_nonfinite_inputs_propagate(backend, dtype, data):
    case = data.draw(gemm_cases(dtype, max_dim=20, max_k=40, nonfinite=True))
    _assert_gemm_matches(case, to_host(ak.gemm(**to_device(case, backend), backend=backend)))


@pytest.mark.parametrize("dtype", FLOAT_TYPES, ids=_dtypes.short_name)
def test_gemm_large_k(backend, dtype, rng):
    a = rng.standard_normal((37, 3001)).astype(dtype)
    b = rng.standard_normal((3001, 29)).astype(dtype)
    case = dict(a=a, b=b, c=None, alpha=1.0, beta=0.0, trans_a=False, trans_b=False, bias=None,
                activation=None, out_dtype=None)
    _assert_gemm_matches(case, to_host(ak.gemm(*to_device((a, b), backend), backend=backend)))


def test_beta_zero_never_reads_c(backend, rng):
    a = rng.standard_normal((9, 5)).astype(np.float32)
    b = rng.standard_normal((5, 11)).astype(np.float32)
    c = np.full((9, 11), np.nan, np.float32)
    a, b, c = to_device((a, b, c), backend)
    out = to_host(ak.gemm(a, b, c, beta=0.0, backend=backend))
    assert np.isfinite(out).all()
    out = to_device(np.full((9, 11), np.nan, np.float32), backend)
    ak.gemm(a, b, out=out, backend=backend)
    assert np.isfinite(to_host(out)).all()


def test_in_place_update_of_c(backend, rng):
    a = rng.integers(-3, 4, (6, 4)).astype(np.float32)
    b = rng.integers(-3, 4, (4, 7)).astype(np.float32)
    c = rng.integers(-3, 4, (6, 7)).astype(np.float32)
    expected = 2.0 * (a @ b) + 3.0 * c
    a, b, c = to_device((a, b, c), backend)
    result = ak.gemm(a, b, c, alpha=2.0, beta=3.0, out=c, backend=backend)
    assert result is c
    np.testing.assert_array_equal(to_host(c), expected)


@pytest.mark.parametrize("dtype", FLOAT_TYPES, ids=_dtypes.short_name)
@given(data=st.data())
def test_matmul_batched_broadcasting(backend, dtype, data):
    batch_a = data.draw(st.sampled_from([(), (1,), (3,), (2, 1), (2, 3)]))
    batch_b = data.draw(st.sampled_from([(), (1,), (3,), (2, 3)]))
    m, k, n = data.draw(S.dims(9)), data.draw(S.dims(9)), data.draw(S.dims(9))
    a = S.float_array(data.draw, batch_a + (m, k), dtype, kind="int")
    b = S.float_array(data.draw, batch_b + (k, n), dtype, kind="int")
    out = to_host(ak.matmul(*to_device((a, b), backend), backend=backend))
    expected = np.matmul(a.astype(np.float64), b.astype(np.float64)).astype(dtype)
    np.testing.assert_array_equal(out, expected)  # small integers: exact in any order


def test_matmul_vector_promotion(backend):
    a = np.arange(4, dtype=np.float32)
    b = np.arange(12, dtype=np.float32).reshape(4, 3)
    da, db = to_device((a, b), backend)
    np.testing.assert_array_equal(to_host(ak.matmul(da, db, backend=backend)), a @ b)
    np.testing.assert_array_equal(to_host(ak.matmul(db.T, da, backend=backend)), b.T @ a)
    assert ak.matmul(da, da, backend=backend).shape == ()


def test_threads_do_not_change_results(rng):
    a = rng.standard_normal((131, 257)).astype(np.float32)
    b = rng.standard_normal((257, 149)).astype(np.float32)
    previous = ak.get_num_threads()
    try:
        ak.set_num_threads(1)
        one = ak.gemm(a, b)
        ak.set_num_threads(2)
        two = ak.gemm(a, b)
    finally:
        ak.set_num_threads(previous)
    np.testing.assert_array_equal(one, two)


def test_concurrent_python_threads_are_safe(rng):
    from concurrent.futures import ThreadPoolExecutor

    pairs = [(rng.standard_normal((64, 80)).astype(np.float32), rng.standard_normal((80, 48)).astype(np.float32))
             for _ in range(8)]
    expected = [ak.gemm(a, b) for a, b in pairs]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda p: ak.gemm(*p), pairs * 4))
    for i, r in enumerate(results):
        np.testing.assert_array_equal(r, expected[i % len(pairs)])
