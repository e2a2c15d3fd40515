"""The reduction kernels under the collectives (csrc/cpu/reduce): bit-exact against a
NumPy model of the contract (f32 accumulation in source order, rounded once), on every
ISA path; and the INT8 block quantizer against ak.reference.quantize_int8_blocks."""

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import aicc_kernels as ak

_ext = pytest.importorskip("aicc_kernels._aicc_cpu", reason="the C++ extension is not built")
OPS = {"sum": 0, "avg": 1, "max": 2, "min": 3}
BF16 = np.dtype(ml_dtypes.bfloat16)


ISAS = ["portable"] + ([_ext.detected_isa()] if _ext.detected_isa() != "portable" else [])


@pytest.fixture(params=ISAS)
def backend(request):
    """These are the collectives' CPU kernels: run them once per ISA path (not per backend)."""
    previous = _ext.active_isa()
    _ext.set_isa(request.param)
    try:
        yield request.param
    finally:
        _ext.set_isa(previous)


def model(srcs, op):
    """f32 (or native) accumulation in source order; max/min: first NaN wins."""
    dtype = srcs[0].dtype
    acc_t = np.float32 if dtype in (np.float16, BF16) else dtype.type
    acc = srcs[0].astype(acc_t)
    with np.errstate(all="ignore"):
        for s in srcs[1:]:
            v = s.astype(acc_t)
            if op in ("sum", "avg"):
                acc = (acc + v).astype(acc_t)
            elif op == "max":
                acc = np.where(np.isnan(acc), acc, np.where(np.isnan(v), v, np.where(acc > v, acc, v))) \
                    if acc.dtype.kind == "f" else np.maximum(acc, v)
            else:
                acc = np.where(np.isnan(acc), acc, np.where(np.isnan(v), v, np.where(acc < v, acc, v))) \
                    if acc.dtype.kind == "f" else np.minimum(acc, v)
        if op == "avg":
            acc = (acc / acc_t(len(srcs))).astype(acc_t)
    return acc.astype(dtype)


def same_bits(a, b):
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.tobytes() == b.tobytes()


DTYPES = [("f32", np.float32), ("f64", np.float64), ("f16", np.float16), ("bf16", BF16), ("s8", np.int8),
          ("s32", np.int32), ("s64", np.int64)]
# avg is defined for floating-point dtypes only (integer avg is refused: test_collective_thread).
CASES = [pytest.param(d, op, id=f"{name}-{op}") for name, d in DTYPES for op in OPS
         if not (op == "avg" and np.dtype(d).kind in "iu")]


@pytest.mark.parametrize("dtype,op", CASES)
@pytest.mark.parametrize("n", [0, 1, 7, 31, 33, 257, 70001])
def test_reduce_matches_model(backend, dtype, op, n, rng):
    nsrc = 3
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        srcs = [rng.integers(info.min, info.max, n, endpoint=True).astype(dtype) for _ in range(nsrc)]
    else:
        srcs = [(rng.standard_normal(n) * 100).astype(dtype) for _ in range(nsrc)]
        if n > 4:
            srcs[1][3] = np.nan
            srcs[0][2] = np.inf
            srcs[2][1] = -np.inf
    out = np.empty(n, dtype=dtype)
    _ext.reduce_arrays(srcs, out, OPS[op], nsrc)
    assert same_bits(out, model(srcs, op))


def test_reduce_parallel_same_bits(rng):
    srcs = [rng.standard_normal(300_001).astype(np.float16) for _ in range(4)]
    a, b = np.empty(300_001, np.float16), np.empty(300_001, np.float16)
    _ext.reduce_arrays(srcs, a, 0, 4, 1)
    _ext.reduce_arrays(srcs, b, 0, 4, 0)
    assert same_bits(a, b) and same_bits(a, model(srcs, "sum"))


@pytest.mark.parametrize("dtype", [np.float16, BF16], ids=["f16", "bf16"])
def test_convert_round_trip(backend, dtype, rng):
    x = np.concatenate([rng.standard_normal(1001).astype(np.float32) * 1e3,
                        np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-8, 7e4], np.float32)])
    h = np.empty(x.size, dtype=dtype)
    _ext.convert(x, h)
    with np.errstate(over="ignore"):
        assert same_bits(h, x.astype(dtype))
    back = np.empty(x.size, np.float32)
    _ext.convert(h, back)
    assert same_bits(back, h.astype(np.float32))


@given(n=st.integers(0, 1300), scale=st.sampled_from([1e-30, 1e-3, 1.0, 1e3, 1e30]),
       seed=st.integers(0, 2**32 - 1))
def test_quantize_int8_bit_exact(backend, n, scale, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * scale).astype(np.float32)
    if n > 300:
        x[256:300] = 0.0  # a partly zero block
        x[512:768] = 0.0  # an all-zero block
    q = np.empty(n, np.int8)
    s = np.empty(-(-n // 256), np.float32)
    _ext.quantize_int8(x, q, s)
    rq, rs = ak.reference.quantize_int8_blocks(x)
    assert np.array_equal(q, rq) and same_bits(s, rs)
    assert np.all(np.abs(q) <= 127)


def test_quantize_int8_nonfinite_block_is_nan(backend):
    x = np.ones(600, np.float32)
    x[300] = np.inf
    q = np.empty(600, np.int8)
    s = np.empty(3, np.float32)
    _ext.quantize_int8(x, q, s)
    assert np.isnan(s[1]) and s[0] == s[2] == np.float32(1 / 127)
    out = np.empty(600, np.float32)
    _ext.dequantize_int8(q, s, out)
    assert np.all(np.isnan(out[256:512])) and np.all(out[:256] == 1.0)


@pytest.mark.parametrize("op", list(OPS))
def test_reduce_int8_matches_model(backend, op, rng):
    n = 1000
    xs = [(rng.standard_normal(n) * 10 ** rng.uniform(-2, 2)).astype(np.float32) for _ in range(3)]
    qs, ss = zip(*(ak.reference.quantize_int8_blocks(x) for x in xs))
    q_out = np.empty(n, np.int8)
    s_out = np.empty(4, np.float32)
    _ext.reduce_int8(list(qs), list(ss), q_out, s_out, OPS[op], 3)
    out = np.empty(n, np.float32)
    _ext.dequantize_int8(q_out, s_out, out)
    assert same_bits(out, ak.reference.int8_allreduce_model(xs, op))
