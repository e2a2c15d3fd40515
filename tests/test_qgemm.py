"""INT8 GEMM: bit-exact against the reference for every input, every output stage."""

import numpy as np
import pytest
from hypothesis import given

import aicc_kernels as ak
from aicc_kernels.testing.cases.qgemm import check_qgemm_case, qgemm_cases


@given(case=qgemm_cases())
def test_qgemm_bit_exact(backend, case):
    verdict = check_qgemm_case(case, ak.qgemm(**case, backend=backend))
    assert verdict is None, str(verdict)


@pytest.mark.parametrize("a_dtype", [np.uint8, np.int8])
def test_full_range_products_do_not_saturate(backend, a_dtype):
    # The vpmaddubsw trap: 255 * -128 + 255 * -128 saturates int16. Every pair here does.
    info = np.iinfo(a_dtype)
    k = 1024
    a = np.full((7, k), info.max if a_dtype == np.uint8 else info.min, a_dtype)
    b = np.full((k, 19), -128, np.int8)
    out = ak.qgemm(a, b, backend=backend)
    expected = a.astype(np.int64) @ b.astype(np.int64)
    np.testing.assert_array_equal(out, expected)


def test_matmul_int8_is_exact(backend, rng):
    a = rng.integers(0, 256, (3, 5, 70)).astype(np.uint8)
    b = rng.integers(-128, 128, (70, 9)).astype(np.int8)
    np.testing.assert_array_equal(ak.matmul(a, b, backend=backend), a.astype(np.int64) @ b)
