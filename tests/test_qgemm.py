"""INT8 GEMM: bit-exact against the reference for every input, every output stage."""

import numpy as np
import pytest
from hypothesis import given

import aicc_kernels as ak
from aicc_kernels.testing.cases.qgemm import check_qgemm_case, qgemm_cases
from aicc_kernels.testing.devices import to_device, to_host
from aicc_kernels.testing.tolerance import compare_exact


@given(case=qgemm_cases())
def test_qgemm_bit_exact(backend, case):
    verdict = check_qgemm_case(case, to_host(ak.qgemm(**to_device(case, backend), backend=backend)))
    assert verdict is None, str(verdict)


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


# --- Exhaustive output-stage combinations, edge tiles, layouts, threads -------------------

def _full_range(rng, shape, dtype):
    """Random values with the extremes (-128, 127, 0, 255 ...) strongly over-represented."""
    info = np.iinfo(dtype)
    extremes = np.array([info.min, info.max, info.min + 1, info.max - 1, 0], dtype=np.int64)
    x = rng.integers(int(info.min), int(info.max) + 1, size=shape)
    pick = rng.random(shape) < 0.5
    x[pick] = rng.choice(extremes, size=int(pick.sum()))
    return x.astype(dtype)


def _case(rng, m, n, k, a_dtype, out_dtype, per_channel_zb, per_channel_scale, with_bias, relu):
    info = np.iinfo(a_dtype)
    a = _full_range(rng, (m, k), a_dtype)
    b = _full_range(rng, (k, n), np.int8)
    zb = (_full_range(rng, (n,), np.int8).astype(np.int32) if per_channel_zb else -128)
    scale = None
    if out_dtype != np.int32:
        scale = (rng.uniform(1e-6, 1e-3, n).astype(np.float32) if per_channel_scale
                 else np.float32(1.0 / 4096))
    ozp = int(rng.integers(int(np.iinfo(out_dtype).min), int(np.iinfo(out_dtype).max) + 1)) \
        if out_dtype in (np.int8, np.uint8) else 0
    bias = rng.integers(-100000, 100000, n).astype(np.int32) if with_bias else None
    return dict(a=a, b=b, a_zero_point=int(info.max) if a_dtype == np.uint8 else int(info.min),
                b_zero_point=zb, scale=scale, bias=bias, out_zero_point=ozp, out_dtype=out_dtype,
                activation="relu" if relu else None)


def _check(case, backend):
    out = to_host(ak.qgemm(**to_device(case, backend), backend=backend))
    ref = ak.reference.qgemm(**case)
    assert out.dtype == ref.dtype
    mismatch = compare_exact(out, ref)
    assert mismatch is None, str(mismatch)


@pytest.mark.parametrize("a_dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("out_dtype", [np.int32, np.float32, np.int8, np.uint8])
def test_every_output_stage_combination(backend, a_dtype, out_dtype):
    """a dtype x out dtype x (scalar | per-channel) b zero point x (per-tensor | per-channel)
    scale x bias x relu, on full-range values; sizes off the 6x16 tile in every direction."""
    rng = np.random.default_rng(7)
    for per_channel_zb in (False, True):
        for per_channel_scale in ((False, True) if out_dtype != np.int32 else (False,)):
            for with_bias in (False, True):
                for relu in (False, True):
                    _check(_case(rng, 37, 53, 301, a_dtype, out_dtype, per_channel_zb,
                                 per_channel_scale, with_bias, relu), backend)


@pytest.mark.parametrize("m", [1, 5, 6, 7, 12, 13])
@pytest.mark.parametrize("n", [1, 15, 16, 17, 32, 33])
@pytest.mark.parametrize("k", [0, 1, 2, 3, 5, 15, 16, 17, 33])
def test_edge_tiles(backend, m, n, k):
    """Partial tiles in M (6 / 12) and N (16 / 32), K around the packers' pair, quad, 16 and
    8-quad boundaries; K = 0 gives bias only. The output sits inside a larger sentinel buffer: nothing outside the
    result may change."""
    rng = np.random.default_rng(m * 10000 + n * 100 + k)
    case = _case(rng, m, n, k, np.uint8, np.int8, True, True, True, False)
    big = to_device(np.full((m + 2, n + 3), 77, np.int8), backend)
    out = big[1:-1, 1:-2]
    case_ = dict(case)
    case_.pop("out_dtype")
    ak.qgemm(**to_device(case_, backend), out_dtype=np.int8, out=out, backend=backend)
    big = to_host(big)
    np.testing.assert_array_equal(big[1:-1, 1:-2], ak.reference.qgemm(**case))
    inner = np.zeros(big.shape, bool)
    inner[1:-1, 1:-2] = True
    assert (big[~inner] == 77).all(), "qgemm wrote outside its output"


@pytest.mark.parametrize("a_dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("zb_kind", ["zero", "scalar", "per_channel"])
@pytest.mark.parametrize("k", [63, 64, 65, 130, 1024 + 64 + 3])
def test_int32_output_edges(backend, a_dtype, zb_kind, k):
    """The int32 output stage (fused into the last K slice on the VNNI route) on partial tiles:
    rows around the 4-row groups and 12-row panels of the A packer, columns around the 16 / 32
    lanes, K around the packer's 64-byte chunks and past one K slice; with zb = 0 the row sums
    are skipped. Bias and relu on and off; the output sits in a sentinel buffer."""
    rng = np.random.default_rng(k)
    info = np.iinfo(a_dtype)
    for m, n in ((1, 1), (3, 17), (4, 16), (5, 31), (7, 33), (12, 32), (13, 47), (16, 15), (25, 65)):
        a = _full_range(rng, (m, k), a_dtype)
        b = _full_range(rng, (k, n), np.int8)
        zb = {"zero": 0, "scalar": -128, "per_channel": _full_range(rng, (n,), np.int8).astype(np.int32)}[zb_kind]
        for bias, relu in ((None, False), (rng.integers(-100000, 100000, n).astype(np.int32), True)):
            kw = dict(a_zero_point=int(info.max) if m % 2 else 0, b_zero_point=zb, bias=bias,
                      activation="relu" if relu else None)
            big = to_device(np.full((m + 2, n + 3), 77, np.int32), backend)
            ak.qgemm(*to_device((a, b), backend), **kw, out=big[1:-1, 1:-2], backend=backend)
            big = to_host(big)
            np.testing.assert_array_equal(big[1:-1, 1:-2], ak.reference.qgemm(a, b, **kw), err_msg=f"m={m} n={n}")
            inner = np.zeros(big.shape, bool)
            inner[1:-1, 1:-2] = True
            assert (big[~inner] == 77).all(), f"qgemm wrote outside its output (m={m} n={n})"


@pytest.mark.parametrize("a_dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("k", [1023, 4001])
def test_full_range_long_k(backend, a_dtype, k):
    """K up to ~4000 with extreme values and zero points (several K slices, every partial
    sum large): still exact in int32."""
    rng = np.random.default_rng(k)
    info = np.iinfo(a_dtype)
    a = rng.choice(np.array([info.min, info.max], np.int64), size=(13, k)).astype(a_dtype)
    b = rng.choice(np.array([-128, 127], np.int64), size=(k, 35)).astype(np.int8)
    for za, zb in ((0, 0), (int(info.max), -128), (int(info.min), 127)):
        limit = (2**31 - 1) // (max(abs(int(info.min) - za), abs(int(info.max) - za))
                                * max(abs(-128 - zb), abs(127 - zb)))
        if k > limit:
            continue
        out = to_host(ak.qgemm(*to_device((a, b), backend), a_zero_point=za, b_zero_point=zb, backend=backend))
        expected = (a.astype(np.int64) - za) @ (b.astype(np.int64) - zb)
        np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("layout", ["a_fortran", "b_transposed", "b_fortran", "steps", "out_strided"])
def test_strided_and_transposed_inputs(backend, layout):
    rng = np.random.default_rng(3)
    m, n, k = 29, 41, 77
    a = _full_range(rng, (m, k), np.int8)
    b = _full_range(rng, (k, n), np.int8)
    zb = _full_range(rng, (n,), np.int8).astype(np.int32)
    kw = dict(a_zero_point=-3, b_zero_point=zb, bias=rng.integers(-999, 999, n).astype(np.int32))
    expected = ak.reference.qgemm(a, b, **kw)
    dev = lambda x: to_device(x, backend)  # noqa: E731  (strided views stay strided on the device)
    if layout == "a_fortran":
        got = ak.qgemm(dev(np.asfortranarray(a)), dev(b), **kw, backend=backend)
    elif layout == "b_transposed":  # [N, K] weights, the common inference layout
        got = ak.qgemm(dev(a), dev(np.ascontiguousarray(b.T)), trans_b=True, **kw, backend=backend)
    elif layout == "b_fortran":
        got = ak.qgemm(dev(a), dev(np.asfortranarray(b)), **kw, backend=backend)
    elif layout == "steps":
        a_big = np.zeros((m * 2, k * 3), np.int8)
        a_big[::2, ::3] = a
        b_big = np.zeros((k * 3, n * 2), np.int8)
        b_big[::3, ::2] = b
        got = ak.qgemm(dev(a_big)[::2, ::3], dev(b_big)[::3, ::2], **kw, backend=backend)
    else:
        out_big = dev(np.zeros((m, n * 2), np.int32))
        got = ak.qgemm(dev(a), dev(b), **kw, out=out_big[:, ::2], backend=backend)
        assert (to_host(out_big)[:, 1::2] == 0).all()
    np.testing.assert_array_equal(to_host(got), expected)


@pytest.mark.parametrize("m, n, k, out_dtype", [
    (203, 300, 1100, np.float32),  # column tasks, several K slices, separate output stage
    (203, 300, 1100, np.int32),    # the same with the fused int32 stage
    (100, 4000, 64, np.int32),     # many column tasks sharing A panels packed on first use
    (2000, 20, 700, np.int32),     # N narrower than the threads: pack tasks, then M blocks
])
def test_thread_count_does_not_change_results(backend, m, n, k, out_dtype):
    """Threads split M and N, never K: 1 and 2 threads give identical bits (large enough to
    be split), with both zero-point terms present."""
    rng = np.random.default_rng(11)
    case = _case(rng, m, n, k, np.uint8, out_dtype, True, True, True, False)
    previous = ak.get_num_threads()
    try:
        ak.set_num_threads(1)
        one = to_host(ak.qgemm(**to_device(case, backend), backend=backend))
        ak.set_num_threads(2)
        two = to_host(ak.qgemm(**to_device(case, backend), backend=backend))
    finally:
        ak.set_num_threads(previous)
    assert compare_exact(two, one) is None
    assert compare_exact(one, ak.reference.qgemm(**case)) is None


def test_concurrent_python_threads(backend):
    """Several Python threads calling qgemm at once (GIL released, per-thread workspaces)
    all get exact results."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(5)
    cases = [_case(rng, 64 + 7 * i, 80 + 5 * i, 300 + 31 * i, (np.uint8, np.int8)[i % 2],
                   (np.int32, np.float32, np.int8, np.uint8)[i % 4], bool(i % 2), True, bool(i % 3),
                   bool(i % 2)) for i in range(8)]
    refs = [ak.reference.qgemm(**c) for c in cases]

    def run(i):
        return [to_host(ak.qgemm(**to_device(cases[i], backend), backend=backend)) for _ in range(3)]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(run, range(len(cases))))
    for outs, ref in zip(results, refs):
        for out in outs:
            assert compare_exact(out, ref) is None


def test_requantization_rounds_half_to_even_and_saturates(backend):
    """Ties (x.5) round to even; huge accumulators saturate at both ends (never wrap)."""
    a = np.array([[1], [3], [5], [7], [-1], [-3], [127], [-128]], np.int8)
    b = np.ones((1, 2), np.int8)
    da, db = to_device((a, b), backend)
    for out_dtype, ozp in ((np.int8, 0), (np.uint8, 10), (np.int8, -5)):
        got = to_host(ak.qgemm(da, db, scale=0.5, out_dtype=out_dtype, out_zero_point=ozp, backend=backend))
        ref = ak.reference.qgemm(a, b, scale=0.5, out_dtype=out_dtype, out_zero_point=ozp)
        np.testing.assert_array_equal(got, ref)
        big = to_host(ak.qgemm(da, db, scale=1e30, out_dtype=out_dtype, out_zero_point=ozp, backend=backend))
        np.testing.assert_array_equal(big, ak.reference.qgemm(a, b, scale=1e30, out_dtype=out_dtype,
                                                              out_zero_point=ozp))
    halves = to_host(ak.qgemm(da, db, scale=0.5, out_dtype=np.int8, backend=backend))
    assert halves[:4, 0].tolist() == [0, 2, 2, 4]


@pytest.mark.parametrize("per_channel", [False, True])
def test_largest_k_with_wrapping_raw_sums(backend, per_channel):
    """s8 a with zero point 0 allows K = 131071. A u8-operand route (VNNI: a + 128) then has raw
    sums of 255 * 127 * K, far past int32; the zero-point fold runs modulo 2^32 and the result,
    which fits, must still be exact."""
    k = 131071
    a = np.full((2, k), 127, np.int8)
    a[1, ::2] = -128
    b = np.full((k, 33), 127, np.int8)
    b[:, 1] = -128
    b[::3, 2] = -128
    zb = np.zeros(33, np.int32) if per_channel else 0
    out = to_host(ak.qgemm(*to_device((a, b), backend), b_zero_point=zb, backend=backend))
    np.testing.assert_array_equal(out, a.astype(np.int64) @ b.astype(np.int64))
    with pytest.raises(ValueError, match="K <= 131071"):
        ak.qgemm(np.zeros((1, k + 1), np.int8), np.zeros((k + 1, 1), np.int8), backend=backend)


def test_out_overlapping_an_input_is_refused():
    """The fast path skips the overlap test only for arrays that own their memory; views of a
    shared buffer still reach it and are refused."""
    raw = np.zeros(64, np.uint8)
    a = raw.reshape(4, 16)
    out = raw.view(np.int32).reshape(4, 4)
    b = np.zeros((16, 4), np.int8)
    with pytest.raises(ValueError, match="out: .*overlapping a"):
        ak.qgemm(a, b, out=out)
    raw_b = np.zeros(64, np.int8)
    with pytest.raises(ValueError, match="out: .*overlapping b"):
        ak.qgemm(np.zeros((4, 16), np.uint8), raw_b.reshape(16, 4), out=raw_b.view(np.int32).reshape(4, 4))
    fresh = np.empty((4, 4), np.int32)  # owns its memory: the fast path, same result
    np.testing.assert_array_equal(ak.qgemm(np.ones((4, 16), np.uint8), np.ones((16, 4), np.int8), out=fresh),
                                  np.full((4, 4), 16))
