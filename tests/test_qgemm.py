"""INT8 GEMM: bit-exact against the reference for every input, every output stage."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

import aicc_kernels as ak
from aicc_kernels.testing import strategies as S
from aicc_kernels.testing.devices import to_device, to_host
from aicc_kernels.testing.tolerance import compare_exact


@st.composite
def qgemm_cases(draw, max_dim=97, max_k=600):
    a_dtype = draw(st.sampled_from([np.uint8, np.int8]))
    m, n = draw(S.dims(max_dim)), draw(S.dims(max_dim))
    k = draw(st.one_of(S.dims(max_dim), st.integers(1, max_k)))
    trans_b = draw(st.booleans())
    a = draw(S.strided(S.int_array(draw, (m, k), a_dtype)))
    b = draw(S.strided(S.int_array(draw, (n, k) if trans_b else (k, n), np.int8)))
    info = np.iinfo(a_dtype)
    za = draw(st.sampled_from([0, int(info.min), int(info.max), 3]))
    per_channel = draw(st.booleans())
    zb = (S.int_array(draw, (n,), np.int8).astype(np.int32) if per_channel
          else draw(st.sampled_from([0, -128, 127, -5])))
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


@given(case=qgemm_cases())
def test_qgemm_bit_exact(backend, case):
    out = to_host(ak.qgemm(**to_device(case, backend), backend=backend))
    ref = ak.reference.qgemm(**case)
    assert out.dtype == ref.dtype
    mismatch = compare_exact(out, ref)
    assert mismatch is None, str(mismatch)


@pytest.mark.parametrize("a_dtype", [np.uint8, np.int8])
def test_full_range_products_do_not_saturate(backend, a_dtype):
    # The vpmaddubsw trap: 255 * -128 + 255 * -128 saturates int16. Every pair here does.
    info = np.iinfo(a_dtype)
    k = 1024
    a = np.full((7, k), info.max if a_dtype == np.uint8 else info.min, a_dtype)
    b = np.full((k, 19), -128, np.int8)
    out = to_host(ak.qgemm(*to_device((a, b), backend), backend=backend))
    expected = a.astype(np.int64) @ b.astype(np.int64)
    np.testing.assert_array_equal(out, expected)


def test_matmul_int8_is_exact(backend, rng):
    a = rng.integers(0, 256, (3, 5, 70)).astype(np.uint8)
    b = rng.integers(-128, 128, (70, 9)).astype(np.int8)
    out = to_host(ak.matmul(*to_device((a, b), backend), backend=backend))
    np.testing.assert_array_equal(out, a.astype(np.int64) @ b)
