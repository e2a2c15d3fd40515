"""Float GEMM / matmul against the reference, on every backend and ISA path."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import aicc_kernels as ak
from aicc_kernels import _dtypes
from aicc_kernels.testing import strategies as S
from aicc_kernels.testing.cases.gemm import FLOAT_TYPES, check_gemm_case, gemm_cases
from aicc_kernels.testing.devices import to_device, to_host


def _assert_gemm_matches(case, out):
    verdict = check_gemm_case(case, out)
    assert verdict is None, str(verdict)


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


def test_matmul_empty_result_over_a_huge_broadcast_batch():
    # A stride-0 (2**40, 0, 0) view holds no data; the empty result must come back at once,
    # not after walking 2**40 batch indices (found by tests/fuzz_arguments.py).
    from numpy.lib.stride_tricks import as_strided
    huge = as_strided(np.zeros(1, np.float32), shape=(1 << 40, 0, 0), strides=(0, 0, 0))
    result = ak.matmul(np.zeros((0,), np.float32), huge)
    assert result.shape == (1 << 40, 0) and result.dtype == np.float32
    no_rows = as_strided(np.zeros(1, np.float32), shape=(1 << 40, 0, 3), strides=(0, 0, 0))
    assert ak.matmul(no_rows, np.ones((3, 5), np.float32)).shape == (1 << 40, 0, 5)


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


# ---------------------------------------------------------------------------------------
# Blocked driver: tile / block edges, every layout and dtype combination, epilogue details.
# The CPU f32 paths block with MR x NR = 12x32 (AVX-512; NC=4064), 6x16 (AVX2; NC=4080) or
# 4x8 (portable; NC=4080), MC=144, KC=256 (k > 256 is split into balanced blocks).
# ---------------------------------------------------------------------------------------

def _case(a, b, c=None, **kw):
    case = dict(a=a, b=b, c=c, alpha=1.0, beta=0.0, trans_a=False, trans_b=False, bias=None,
                activation=None, out_dtype=None)
    case.update(kw)
    return case


@pytest.mark.parametrize("m", [1, 5, 6, 7, 143, 144, 145])
def test_gemm_block_edges(backend, m, rng):
    # k around the kc blocks: 256 (AVX2) and 512 (AVX-512), one block up to an eighth past them
    for k in (1, 255, 256, 257, 289, 513, 577):
        for n in (1, 15, 16, 17, 33):
            a = rng.standard_normal((m, k)).astype(np.float32)
            b = rng.standard_normal((k, n)).astype(np.float32)
            bias = rng.standard_normal(n).astype(np.float32)
            case = _case(a, b, bias=bias, activation="relu")
            _assert_gemm_matches(case, ak.gemm(**case, backend=backend))


@pytest.mark.parametrize("m", [11, 12, 13, 24, 25])
def test_gemm_block_edges_wide_tile(backend, m, rng):
    """Edges of the 12x32 AVX-512 tile (rows around 12 and 24, columns around 32 and 64),
    through every A/B layout the packers vectorize (row- and column-major, k below and above
    the 8-deep transpose blocks) and f32/bf16 inputs."""
    for k in (1, 7, 9, 256, 257):
        for n in (31, 32, 33, 63, 65):
            for trans_a, trans_b in ((False, False), (True, True)):
                for dtype in (np.float32, _dtypes.bfloat16):
                    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
                    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
                    case = _case(a, b, trans_a=trans_a, trans_b=trans_b, out_dtype=np.float32)
                    _assert_gemm_matches(case, ak.gemm(**case, backend=backend))


def test_gemm_around_nc(backend, rng):
    """n at and across the AVX-512 column block (NC = 4064) and the AVX2/portable one (4080)."""
    for n in (4063, 4064, 4065, 4080, 4081):
        a = rng.standard_normal((13, 20)).astype(np.float32)
        b = rng.standard_normal((20, n)).astype(np.float32)
        bias = rng.standard_normal(n).astype(np.float32)
        case = _case(a, b, bias=bias)
        _assert_gemm_matches(case, ak.gemm(**case, backend=backend))


def test_gemm_wider_than_nc(backend, rng):
    for k in (3, 300):
        a = rng.standard_normal((7, k)).astype(np.float32)
        b = rng.standard_normal((k, 4081)).astype(np.float32)
        case = _case(a, b)
        _assert_gemm_matches(case, ak.gemm(**case, backend=backend))


@pytest.mark.parametrize("dtype", FLOAT_TYPES, ids=_dtypes.short_name)
@pytest.mark.parametrize("out_dtype", [None, np.float32], ids=["out=in", "out=f32"])
@pytest.mark.parametrize("k", [40, 300], ids=["one-kc-block", "two-kc-blocks"])
def test_gemm_dtype_combinations(backend, dtype, out_dtype, k, rng):
    m, n = 23, 37
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    for c_dtype in FLOAT_TYPES:
        c = rng.standard_normal((m, n)).astype(c_dtype)
        bias = rng.standard_normal(n).astype(np.float32)
        for activation in (None, "relu", "gelu"):
            case = _case(a, b, c, alpha=0.75, beta=-1.5, bias=bias, activation=activation, out_dtype=out_dtype)
            _assert_gemm_matches(case, ak.gemm(**case, backend=backend))


@pytest.mark.parametrize("k", [9, 300])
@pytest.mark.parametrize("dtype", FLOAT_TYPES, ids=_dtypes.short_name)
def test_in_place_update_multi_block(backend, dtype, k, rng):
    # out is C: partial sums must not overwrite C before the epilogue reads it.
    a = rng.integers(-3, 4, (20, k)).astype(dtype)
    b = rng.integers(-3, 4, (k, 35)).astype(dtype)
    c = rng.integers(-3, 4, (20, 35)).astype(dtype)
    expected = ak.reference.gemm(a, b, c, alpha=2.0, beta=3.0)
    result = ak.gemm(a, b, c, alpha=2.0, beta=3.0, out=c, backend=backend)
    assert result is c
    np.testing.assert_array_equal(c.astype(np.float64), expected.astype(np.float64))


def test_gemm_layouts(backend, rng):
    """Transposed, column-major, odd strides and stride-0 (broadcast) operands."""
    m, k, n = 29, 70, 45
    base_a = rng.standard_normal((3 * m, 4 * k)).astype(np.float32)
    base_b = rng.standard_normal((3 * k, 4 * n)).astype(np.float32)
    a_views = {
        "contiguous": np.ascontiguousarray(base_a[:m, :k]),
        "fortran": np.asfortranarray(base_a[:m, :k]),
        "strided": base_a[::3, ::4][:m, :k],
        "broadcast-row": np.broadcast_to(base_a[0, :k], (m, k)),
        "broadcast-col": np.broadcast_to(base_a[:m, :1], (m, k)),
    }
    b_views = {
        "contiguous": np.ascontiguousarray(base_b[:k, :n]),
        "fortran": np.asfortranarray(base_b[:k, :n]),
        "strided": base_b[::3, ::4][:k, :n],
        "broadcast-row": np.broadcast_to(base_b[0, :n], (k, n)),
    }
    for a in a_views.values():
        for b in b_views.values():
            case = _case(a, b)
            _assert_gemm_matches(case, ak.gemm(**case, backend=backend))
    for trans_a in (False, True):
        for trans_b in (False, True):
            a = a_views["strided"]
            b = b_views["fortran"]
            a_in = np.ascontiguousarray(a.T) if trans_a else a
            b_in = np.asfortranarray(b.T) if trans_b else b
            case = _case(a_in, b_in, trans_a=trans_a, trans_b=trans_b)
            _assert_gemm_matches(case, ak.gemm(**case, backend=backend))


@pytest.mark.parametrize("dtype", FLOAT_TYPES, ids=_dtypes.short_name)
def test_gemm_broadcast_c(backend, dtype, rng):
    m, k, n = 13, 300, 21
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    for shape in [(n,), (1, n), (m, 1), (1, 1), ()]:
        c = rng.standard_normal(shape).astype(dtype)
        case = _case(a, b, c, beta=0.5)
        _assert_gemm_matches(case, ak.gemm(**case, backend=backend))


@pytest.mark.parametrize("dtype", FLOAT_TYPES, ids=_dtypes.short_name)
def test_gemm_writes_only_out(backend, dtype, rng):
    """Edge tiles never write outside out, also with non-unit output strides."""
    m, k, n = 17, 300, 23
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    sentinel = np.array(12345.0, dtype=dtype)
    for make in (lambda big: big[1:m + 1, 2:n + 2], lambda big: big[1:2 * m + 1:2, 2:3 * n + 2:3]):
        big = np.full((2 * m + 3, 3 * n + 5), sentinel, dtype=dtype)
        out = make(big)
        mask = np.ones(big.shape, bool)
        make(mask)[...] = False
        ak.gemm(a, b, out=out, backend=backend)
        assert (big[mask] == sentinel).all()
        _assert_gemm_matches(_case(a, b), out)


def test_gemm_nonfinite_not_skipped(backend):
    """inf * 0 is NaN (no zero-skipping), NaN reaches exactly its row/column, padded lanes
    of edge tiles do not leak NaN into neighbours."""
    m, k, n = 7, 300, 17
    a = np.ones((m, k), np.float32)
    b = np.ones((k, n), np.float32)
    a[2, 5] = np.inf
    b[5, :] = 0.0          # row 2 gets inf * 0 = NaN in every column
    b[200, 16] = np.nan     # column 16 (the lone column of an edge tile) gets NaN
    out = ak.gemm(a, b, backend=backend)
    expected_nan = np.zeros((m, n), bool)
    expected_nan[2, :] = True
    expected_nan[:, 16] = True
    np.testing.assert_array_equal(np.isnan(out), expected_nan)


def _bf16_kernel_reads_subnormals_as_zero():
    """True where the registry's bf16 GEMM entry is a bf16 dot-product kernel (pair words)."""
    chosen = ak._config.kernels().get("bf16_gemm")
    return any(e["name"] == chosen and e.get("k_per_word") == 2 for e in ak._config.registry()
               if e["family"] == "bf16_gemm")


@pytest.mark.parametrize("dtype", [np.float16, _dtypes.bfloat16], ids=_dtypes.short_name)
def test_output_rounding_matches_reference_bitwise(backend, dtype, rng):
    """k = 1, b = 1: the f32 value is alpha * a exactly as the reference computes it, so the
    single rounding to f16/bf16 (RNE, overflow, subnormals, NaN) must agree bit for bit."""
    info = _dtypes.finfo(dtype)
    values = np.concatenate([rng.standard_normal(300) * float(info.max) ** 0.5,
                             rng.standard_normal(100) * float(info.smallest_normal),
                             [float(info.max), -float(info.max), np.inf, -np.inf, np.nan, 0.0, -0.0]])
    a = values.astype(dtype).reshape(-1, 1)
    b = np.ones((1, 19), dtype)
    from aicc_kernels.testing.tolerance import bf16_subnormals, compare_exact
    a_ref = a
    if backend == "cpu" and dtype == _dtypes.bfloat16 and _bf16_kernel_reads_subnormals_as_zero():
        # docs/SEMANTICS.md: the bf16 dot-product kernels read subnormal inputs as (signed) zero.
        sub = bf16_subnormals(a)
        if sub is not None:
            a_ref = np.where(sub > 0, np.copysign(0.0, a.astype(np.float64)), a).astype(dtype)
    for alpha in (1.0, 1.2345678, -3.1e-3, 1.9999999):
        out = ak.gemm(a, b, alpha=alpha, backend=backend)
        ref = ak.reference.gemm(a_ref, b, alpha=alpha)
        mismatch = compare_exact(out, ref)
        assert mismatch is None, f"alpha={alpha}: {mismatch}"
    # Exact ties: x + ulp(x)/2 is exact in f32 and halfway between two outputs; half of the
    # x have an odd last bit (round up to even), half an even one (round down).
    mant_bits = 10 if dtype == np.float16 else 7
    x = (rng.uniform(0.01, 100, 400) * rng.choice([-1, 1], 400)).astype(dtype).astype(np.float64)
    _, e = np.frexp(x)
    half_ulp = np.ldexp(np.sign(x), e - 2 - mant_bits)
    a = np.stack([x, half_ulp], axis=1).astype(dtype)
    ones = np.ones((2, 27), dtype)  # vector columns and scalar tail columns of the epilogue
    out = ak.gemm(a, ones, backend=backend)
    mismatch = compare_exact(out, ak.reference.gemm(a, ones))
    assert mismatch is None, f"ties: {mismatch}"


def test_gelu_accuracy(backend):
    """gelu on exact inputs (k = 1, b = 1) within 6 eps(f32) relative (docs/SEMANTICS.md);
    the vectorized erf's measured maximum is 4.2 eps. Includes the tails and +-inf."""
    import math
    x = np.concatenate([np.linspace(-14, 14, 20011), [np.inf, -np.inf, 0.0, -1e-30, 1e-30]]).astype(np.float32)
    a = x.reshape(-1, 1)
    b = np.ones((1, 24), np.float32)  # 16 vector columns + an 8-column edge tile
    out = ak.gemm(a, b, activation="gelu", backend=backend)
    ref = np.array([v * 0.5 * math.erfc(-v / math.sqrt(2)) if np.isfinite(v) else (v if v > 0 else 0.0)
                    for v in x.astype(np.float64)])
    eps = float(np.finfo(np.float32).eps)
    tiny = float(np.finfo(np.float32).tiny)
    for col in (0, 15, 16, 23):
        got = out[:, col].astype(np.float64)
        with np.errstate(invalid="ignore"):
            ok = (got == ref) | (np.abs(got - ref) <= 6 * eps * np.abs(ref) + tiny)
        assert ok.all(), f"column {col}: worst at x={x[~ok][0]}: got {got[~ok][0]}, expected {ref[~ok][0]}"


@pytest.mark.parametrize("shape", [(7, 600, 1000), (300, 600, 50), (150, 40, 150), (128, 300, 1000)],
                         ids=["few-rows", "many-rows", "one-kc-block", "uneven-row-panels"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16], ids=_dtypes.short_name)
def test_threads_identical_results(backend, shape, dtype, rng):
    """Each output's k-order is fixed: 1 and 2 threads give the same bits, whichever way the
    driver splits the work (rows, or columns when there are few rows)."""
    m, k, n = shape
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    c = rng.standard_normal((m, n)).astype(dtype)
    previous = ak.get_num_threads()
    try:
        results = []
        for t in (1, 2):
            ak.set_num_threads(t)
            results.append(ak.gemm(a, b, c, beta=1.0, activation="gelu", backend=backend))
    finally:
        ak.set_num_threads(previous)
    np.testing.assert_array_equal(results[0].view(np.uint16 if dtype == np.float16 else np.uint32),
                                  results[1].view(np.uint16 if dtype == np.float16 else np.uint32))


# ------------------------------------------------------------------------- the common-call fast path

_FAST_DTYPES = [np.float32, np.float16, _dtypes.bfloat16]


@settings(max_examples=60)
@given(m=st.integers(0, 40), n=st.integers(0, 40), k=st.integers(0, 40), dtype=st.sampled_from(_FAST_DTYPES),
       layout=st.sampled_from(["c", "f", "reversed", "sliced"]), with_out=st.sampled_from([None, "same", "f32"]),
       alpha=st.sampled_from([1.0, -0.5, 2]))
def test_plain_numpy_calls_match_the_generic_path_bit_for_bit(m, n, k, dtype, layout, with_out, alpha):
    """ak.gemm / ak.matmul on plain NumPy arrays skip the generic dispatch (ops/gemm.py): same bits,
    same output dtype, as the same call through backend='cpu' (the generic path)."""
    rng = np.random.default_rng(m * 1681 + n * 41 + k)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    if layout == "f":
        a, b = np.asfortranarray(a), np.asfortranarray(b)
    elif layout == "reversed":
        a, b = a[::-1], b[:, ::-1]
    elif layout == "sliced":
        a = np.repeat(a, 2, axis=1)[:, ::2] if k else a
    out = None if with_out is None else np.empty((m, n), dtype if with_out == "same" else np.float32)
    got = ak.gemm(a, b, alpha=alpha, out=out)
    want = ak.gemm(a, b, alpha=alpha, out=None if out is None else np.empty_like(out), backend="cpu")
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
    if out is not None:
        assert got is out
    if alpha == 1.0 and out is None:
        np.testing.assert_array_equal(ak.matmul(a, b).view(np.uint8), want.view(np.uint8))


def test_plain_integer_matmul_and_qgemm_match_the_reference():
    rng = np.random.default_rng(3)
    for a_dtype in (np.uint8, np.int8):
        info = np.iinfo(a_dtype)
        a = rng.integers(info.min, info.max + 1, (37, 129)).astype(a_dtype)
        b = rng.integers(-128, 128, (129, 33)).astype(np.int8)
        ref = ak.reference.qgemm(a, b)
        np.testing.assert_array_equal(ak.qgemm(a, b), ref)
        np.testing.assert_array_equal(ak.matmul(a, b), ref)
        out = np.full((37, 33), 7, np.int32)
        assert ak.qgemm(a, b, out=out) is out
        np.testing.assert_array_equal(out, ref)
        strided = np.zeros((37, 66), np.int32)[:, ::2]  # not the fast path's layout: the generic path
        np.testing.assert_array_equal(ak.qgemm(a, b, out=strided), ref)
    with pytest.raises(ValueError, match="out"):
        ak.qgemm(a, b, out=np.empty((37, 34), np.int32))


def test_fast_path_leaves_bad_calls_to_the_generic_checks():
    a32 = np.ones((3, 4), np.float32)
    with pytest.raises(TypeError, match="b: expected dtype f32"):
        ak.gemm(a32, np.ones((4, 2), np.float16))
    with pytest.raises(ValueError, match="b: expected 4 rows"):
        ak.gemm(a32, np.ones((5, 2), np.float32))
    with pytest.raises(ValueError, match="out"):
        ak.gemm(a32, np.ones((4, 2), np.float32), out=np.empty((3, 3), np.float32))
    with pytest.raises(ValueError, match="out"):  # out overlapping an input: refused, not computed
        buf = np.ones((4, 4), np.float32)
        ak.gemm(buf, buf, out=buf)
    with pytest.raises(ValueError, match="a: expected K"):  # int32 overflow guard still applies
        ak.matmul(np.zeros((1, 70000), np.uint8), np.zeros((70000, 1), np.int8))


@pytest.mark.parametrize("dtype", [np.float32, _dtypes.bfloat16])
@pytest.mark.parametrize("shape", [(25, 300, 70), (48, 513, 64), (12, 7, 32), (37, 1030, 33)])
def test_results_do_not_depend_on_how_a_is_read(rng, shape, dtype):
    """The same A values read in place (a compact row stride: the AVX-512/AVX2 entries'
    indirect kernels; bf16 as pair words) and packed (a 4 KiB row stride, which would thrash L1
    read in place) give the same bits: both run the same products in the same order
    (docs/GEMM_DESIGN.md). Odd k: the bf16 tail block is packed."""
    m, k, n = shape
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    per_4k = 4096 // np.dtype(dtype).itemsize
    wide = np.zeros((m, -(-k // per_4k) * per_4k), dtype)  # row stride a multiple of 4 KiB
    wide[:, :k] = a
    compact = ak.gemm(a, b)
    strided = ak.gemm(wide[:, :k], b)
    assert compact.dtype == strided.dtype and compact.tobytes() == strided.tobytes()
