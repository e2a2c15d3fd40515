"""Collectives on the thread communicator (N ranks = N threads; the same C++ algorithms
as shm), against ak.reference: exact with integer-valued inputs, within the documented
bound otherwise; every rank gets the same bits whatever the algorithm; failures raise
CollectiveError naming the rank or the mismatch, in bounded time."""

import time

import ml_dtypes
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import aicc_kernels as ak
from aicc_kernels.collective import CollectiveError, run_threads

pytest.importorskip("aicc_kernels._aicc_cpu", reason="the C++ extension is not built")

BF16 = np.dtype(ml_dtypes.bfloat16)
DTYPES = {"f32": np.dtype(np.float32), "f64": np.dtype(np.float64), "f16": np.dtype(np.float16), "bf16": BF16,
          "s32": np.dtype(np.int32), "s64": np.dtype(np.int64), "s8": np.dtype(np.int8)}
FLOATS = ("f32", "f64", "f16", "bf16")
# Algorithms: one-shot for everything, or the chunked reduce-scatter + all-gather with
# small (64 KiB) slots, so a few thousand elements already take several pipeline chunks.
ALGOS = {"oneshot": dict(oneshot_bytes=1 << 30), "chunked": dict(slot_bytes=1 << 16, oneshot_bytes=0)}
SIZES = [0, 1, 2, 3, 5, 7, 13, 31, 97, 1009, 16411, 40009]  # 0, 1, primes (none divisible by 2..4 ranks but 2)


def same_bits(a, b):
    return np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


def int_valued(rng, dtype, n, size, op):
    """Integer-valued inputs whose sum over `size` ranks is exact in `dtype` (nccl-tests' trick)."""
    limit = {"f16": 2048, "bf16": 256}.get(dtype, 10**6)
    per = max(1, limit // size) if op in ("sum", "avg") else limit
    if dtype == "s8":
        per = 127
    return [rng.integers(-per, per, n, endpoint=True).astype(DTYPES[dtype]) for _ in range(size)]


def run(size, fn, algo="oneshot", **kw):
    return run_threads(size, fn, **ALGOS[algo], **kw)


@given(size=st.integers(1, 4), n=st.sampled_from(SIZES), dtype=st.sampled_from(list(DTYPES)),
       op=st.sampled_from(["sum", "max", "min"]), algo=st.sampled_from(list(ALGOS)), seed=st.integers(0, 2**31))
def test_allreduce_exact_integer_valued(size, n, dtype, op, algo, seed):
    xs = int_valued(np.random.default_rng(seed), dtype, n, size, op)
    ref = ak.reference.allreduce(xs, op).astype(DTYPES[dtype])
    outs = run(size, lambda c: ak.allreduce(xs[c.rank], op), algo)
    for y in outs:
        assert y.dtype == DTYPES[dtype] and y.shape == (n,)
        assert same_bits(y, ref)


@given(size=st.integers(1, 4), n=st.sampled_from(SIZES), dtype=st.sampled_from(FLOATS),
       op=st.sampled_from(["sum", "avg", "max", "min"]), seed=st.integers(0, 2**31))
# D11: a fresh-venv CI run failed here once: an f16 avg whose exact mean is a tie among
# subnormals (384.5 * 2^-24 at element 4731), correctly rounded to even, exceeded a bound
# that had divided the subnormal half-spacing by the rank count.
@example(size=2, n=16411, dtype="f16", op="avg", seed=52)
def test_allreduce_within_bound_and_identical_across_ranks_and_algorithms(size, n, dtype, op, seed):
    rng = np.random.default_rng(seed)
    xs = [(rng.standard_normal(n) * 10.0 ** rng.uniform(-3, 3, n)).astype(DTYPES[dtype]) for _ in range(size)]
    ref = ak.reference.allreduce(xs, op)
    bound = ak.reference.allreduce_error_bound(xs, op)
    first = None
    for algo in ALGOS:
        outs = run(size, lambda c: ak.allreduce(xs[c.rank], op), algo)
        for y in outs:
            assert np.all(np.abs(y.astype(np.float64) - ref) <= bound)
            first = y if first is None else first
            assert same_bits(y, first)  # every rank, both algorithms: the same bits


def test_allreduce_nan_inf_propagate():
    xs = [np.array([1.0, np.nan, np.inf, -np.inf, 2.0], np.float32), np.array([2.0, 0.0, 1.0, 1.0, np.nan], np.float32)]
    for op in ("sum", "max", "min"):
        y = run(2, lambda c: ak.allreduce(xs[c.rank], op))
        assert np.isnan(y[0][1]) and np.isnan(y[0][4]) and same_bits(y[0], y[1])
    assert run(2, lambda c: ak.allreduce(xs[c.rank]))[0][2] == np.inf


def test_allreduce_integer_sums_wrap_like_numpy():
    xs = [np.array([127, -128, 100], np.int8), np.array([1, -1, 100], np.int8)]
    y = run(2, lambda c: ak.allreduce(xs[c.rank]))[0]
    assert np.array_equal(y, (xs[0] + xs[1]))


@pytest.mark.parametrize("algo", list(ALGOS))
@pytest.mark.parametrize("compression", ["fp16", "bf16", "int8"])
@pytest.mark.parametrize("op", ["sum", "avg", "max", "min"])
def test_compressed_allreduce_within_documented_bound(algo, compression, op):
    rng = np.random.default_rng(7)
    size, n = 3, 20011
    xs = [(rng.standard_normal(n) * 10.0 ** rng.uniform(-2, 2, n)).astype(np.float32) for _ in range(size)]
    outs = run(size, lambda c: ak.allreduce(xs[c.rank], op, compression=compression), algo)
    ref = ak.reference.allreduce(xs, op)
    bound = ak.reference.allreduce_error_bound(xs, op, compression=compression)
    for y in outs:
        assert y.dtype == np.float32
        assert np.all(np.abs(y - ref) <= bound)
        assert same_bits(y, outs[0])
    if compression == "int8":
        assert same_bits(outs[0], ak.reference.int8_allreduce_model(xs, op))


@pytest.mark.parametrize("algo", list(ALGOS))
def test_int8_wire_bytes_at_most_0_3_of_f32(algo):
    x = np.ones(1 << 16, np.float32)

    def body(c):
        before = c.wire_bytes
        ak.allreduce(x, compression="int8")
        mid = c.wire_bytes
        ak.allreduce(x)
        return mid - before, c.wire_bytes - mid

    for q8, f32 in run(2, body, algo):
        assert 0 < q8 <= 0.3 * f32


@pytest.mark.parametrize("size", [1, 2, 3, 4])
@pytest.mark.parametrize("dtype", list(DTYPES))
def test_reduce_scatter_all_gather_broadcast(size, dtype):
    rng = np.random.default_rng(size)
    dt = DTYPES[dtype]
    for rows in (0, 1, 7, 13, 4099):
        xs = int_valued(rng, dtype, rows * 3, size, "sum")
        xs = [x.reshape(rows, 3) for x in xs]

        def body(c):
            rs = ak.reduce_scatter(xs[c.rank])
            ag = ak.all_gather(xs[c.rank])
            b = xs[c.rank].copy()
            ak.broadcast(b, root=size - 1)
            return rs, ag, b

        outs = run(size, body, "chunked")
        parts = ak.reference.reduce_scatter(xs)
        for r, (rs, ag, b) in enumerate(outs):
            assert rs.dtype == dt and same_bits(rs, parts[r].astype(dt))
            assert same_bits(ag, ak.reference.all_gather(xs))
            assert same_bits(b, ak.reference.broadcast(xs, size - 1))


def test_reduce_scatter_f16_reduces_in_f32():
    xs = [np.full(8, 2048, np.float16), np.ones(8, np.float16), np.ones(8, np.float16)]
    # f32 accumulation: 2048 + 1 + 1 = 2050 exactly; f16 step by step would stick at 2048
    outs = run(3, lambda c: ak.reduce_scatter(xs[c.rank]))
    assert all(np.all(o == 2050) for o in outs)


@pytest.mark.parametrize("algo", list(ALGOS))
def test_in_place_out_and_strided(algo):
    rng = np.random.default_rng(3)
    xs = [rng.integers(-100, 100, (600, 101)).astype(np.float32) for _ in range(3)]
    ref = ak.reference.allreduce(xs).astype(np.float32)

    def body(c):
        a = xs[c.rank].copy()
        r1 = ak.allreduce(a, out=a)                       # in place
        out = np.empty((600, 101), np.float32)
        r2 = ak.allreduce(xs[c.rank], out=out)            # out=
        strided = np.zeros((600, 202), np.float32)[:, ::2]
        r3 = ak.allreduce(xs[c.rank], out=strided)        # non-contiguous out
        view = np.asfortranarray(xs[c.rank])
        r4 = ak.allreduce(view)                           # non-contiguous input
        t = xs[c.rank].copy().T
        r5 = ak.allreduce(t, out=t)                       # non-contiguous, in place
        return (r1 is a, r2 is out, r3 is strided, r1, r2, r3, r4, r5.T)

    for res in run(3, body, algo):
        assert res[0] and res[1] and res[2]
        for y in res[3:]:
            assert np.array_equal(y, ref)


def test_avg_of_integers_refused():
    with pytest.raises(TypeError, match="op: expected 'sum', 'max' or 'min' for integer dtypes"):
        run(2, lambda c: ak.allreduce(np.ones(3, np.int32), "avg"))


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(op="prod"), ValueError, r"op: expected one of \('sum', 'avg', 'max', 'min'\), got 'prod'"),
    (dict(compression="fp8"), ValueError, "compression: expected one of"),
    (dict(out=np.empty(4, np.float32)), ValueError, r"out: expected shape \(3,\), got \(4,\)"),
    (dict(out=np.empty(3, np.float64)), TypeError, "out: expected dtype f32, got f64"),
    (dict(comm="world"), TypeError, "comm: expected an aicc_kernels.collective.Communicator"),
])
def test_argument_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ak.allreduce(np.ones(3, np.float32), comm=kwargs.pop("comm", None) or ak.collective.init("single"), **kwargs)


def test_argument_errors_more():
    c = ak.collective.init("single")
    with pytest.raises(TypeError, match="compression: expected None for f64 input"):
        ak.allreduce(np.ones(3), compression="int8", comm=c)
    with pytest.raises(TypeError, match=r"x: expected dtype in \(f32, f64, f16, bf16, s32, s64, s8\), got u8"):
        ak.allreduce(np.ones(3, np.uint8), comm=c)
    x = np.ones(4, np.float32)
    with pytest.raises(ValueError, match="out: expected memory not overlapping x"):
        ak.allreduce(x, out=x.view(), comm=c)
    with pytest.raises(ValueError, match="root: expected an integer in"):
        ak.broadcast(x, root=1, comm=c)
    with pytest.raises(ValueError, match="x: expected an array with at least 1 dimension"):
        ak.reduce_scatter(np.float32(1.0), comm=c)
    with pytest.raises(ValueError, match="kind: expected one of"):
        ak.collective.init("nccl2")
    with pytest.raises(ValueError, match="kind: expected 'thread' only inside"):
        ak.collective.init("thread")
    with pytest.raises(ValueError, match="timeout: expected a positive number of seconds"):
        ak.collective.init("single", timeout=0)


def test_single_rank_default_communicator():
    c = ak.collective.init("single")
    assert (c.rank, c.size, c.kind) == (0, 1, "single")
    assert np.array_equal(ak.allreduce(np.arange(5.0), comm=c), np.arange(5.0))
    ak.barrier(comm=c)


# -- failures --------------------------------------------------------------------------

def test_mismatched_count_names_both_calls_and_comm_stays_usable():
    def body(c):
        with pytest.raises(CollectiveError) as info:
            ak.allreduce(np.ones(10 + c.rank, np.float32))
        y = ak.allreduce(np.ones(4, np.float32))  # still in step afterwards
        return str(info.value), y

    outs = run(2, body)
    for msg, y in outs:
        assert msg == ("collective mismatch at call #1: rank 0 called allreduce(op=sum, dtype=f32, count=10, shape=(10,)), "
                       "rank 1 called allreduce(op=sum, dtype=f32, count=11, shape=(11,))")
        assert np.all(y == 2)


@pytest.mark.parametrize("calls", [
    (lambda c: ak.allreduce(np.ones(4, np.float32), "sum"), lambda c: ak.allreduce(np.ones(4, np.float32), "max"),
     "op=max"),
    (lambda c: ak.allreduce(np.ones(4, np.float32)), lambda c: ak.allreduce(np.ones(4, np.float16)), "dtype=f16"),
    (lambda c: ak.allreduce(np.ones(4, np.float32)), lambda c: ak.broadcast(np.ones(4, np.float32)), "broadcast("),
    (lambda c: ak.barrier(), lambda c: ak.all_gather(np.ones(4, np.float32)), "all_gather("),
    (lambda c: ak.allreduce(np.ones(4, np.float32)), lambda c: ak.allreduce(np.ones(4, np.float32), compression="int8"),
     "compression=int8"),
])
def test_mismatched_collectives_are_named(calls):
    a, b, needle = calls

    def body(c):
        with pytest.raises(CollectiveError, match="collective mismatch") as info:
            (a if c.rank == 0 else b)(c)
        return str(info.value)

    for msg in run(3, body):
        assert needle in msg and "rank 1 called" in msg


def test_missing_rank_times_out_naming_it():
    def body(c):
        if c.rank == 2:
            return None  # never calls the collective
        t0 = time.monotonic()
        with pytest.raises(CollectiveError, match="allreduce: timed out after 0.5 s waiting for rank 2"):
            ak.allreduce(np.ones(8, np.float32))
        return time.monotonic() - t0

    times = run(3, body, timeout=0.5)
    assert all(t < 5 for t in times if t is not None)


def test_exception_in_one_rank_fails_the_others_fast():
    def body(c):
        if c.rank == 1:
            raise ValueError("boom")
        ak.allreduce(np.ones(8, np.float32))

    t0 = time.monotonic()
    with pytest.raises(ValueError, match="boom"):
        run(3, body, timeout=60)
    assert time.monotonic() - t0 < 10

    seen = []

    def body2(c):
        if c.rank == 1:
            raise ValueError("boom")
        try:
            ak.allreduce(np.ones(8, np.float32))
        except CollectiveError as exc:
            seen.append(str(exc))

    with pytest.raises(ValueError):
        run(3, body2, timeout=60)
    assert seen == ["rank 1 raised ValueError: boom"] * 2


def test_timeout_from_environment(monkeypatch):
    monkeypatch.setenv("AICC_COLLECTIVE_TIMEOUT", "0.25")

    def body(c):
        assert c.timeout == 0.25
        if c.rank == 0:
            with pytest.raises(CollectiveError, match="timed out after 0.25 s waiting for rank 1"):
                ak.barrier()

    run(2, body)
    monkeypatch.setenv("AICC_COLLECTIVE_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="AICC_COLLECTIVE_TIMEOUT: expected seconds"):
        run(2, lambda c: None)


def test_failure_leaves_communicator_unusable_with_the_reason():
    def body(c):
        if c.rank == 1:
            return
        with pytest.raises(CollectiveError):
            ak.barrier()
        with pytest.raises(CollectiveError, match="communicator unusable after an earlier failure: barrier: timed out"):
            ak.barrier()

    run(2, body, timeout=0.2)


@pytest.mark.parametrize("dtype", ["f64", "f32", "bf16"])
def test_single_rank_message_larger_than_a_staging_slot(dtype):
    # Regression: a group of one once took the one-shot path for any size and wrote a whole
    # message into one 64 KiB / 1 MiB slot.
    x = np.arange(100_003).astype(DTYPES[dtype])
    (y,) = run_threads(1, lambda c: ak.allreduce(x), slot_bytes=1 << 16)
    assert same_bits(y, x)
    big = np.arange(3 << 18, dtype=np.float32)  # 3 MiB > the default 1 MiB slot
    assert same_bits(ak.allreduce(big, comm=ak.collective.init("single")), big)
