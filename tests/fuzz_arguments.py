"""The argument-layer fuzz target (issue 17, item 3); run by tests/test_fuzz_arguments.py in
a subprocess with a deadline, so a crash or a hang fails the test instead of the suite.

    python tests/fuzz_arguments.py [--examples N] [--log FILE]

Hypothesis draws arbitrary arguments for every public op -- arrays of any dtype (complex,
bool, object included), shapes with 0 and with huge extents (zero-stride views), strided
and read-only views, keywords of wrong types and values, and environment values -- and
each call must either return what the reference returns for the same arguments, or raise
ValueError / TypeError / NotImplementedError whose message starts with the name of an
argument ("<name>: expected ...") and names an argument the call passed. The one other
outcome allowed is NumPy's MemoryError "Unable to allocate ..." for an output larger than
the machine (huge zero-stride inputs ask for one). Anything else (another exception, a
wrong result, a crash, a hang) fails. Each example is written to the log before it runs,
so a crash names the example that caused it.
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import sys
import time
import warnings

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import aicc_kernels as ak

ALLOWED = (ValueError, TypeError, NotImplementedError)
ENV_NAMES = ("AICC_NUM_THREADS", "AICC_COLLECTIVE_TIMEOUT", "AICC_SHM_SLOT_BYTES", "AICC_SHM_ONESHOT_BYTES")
HUGE = 2**40
DTYPES = [np.float32, np.float16, ak.bfloat16, np.float64, np.int8, np.uint8, np.int16, np.int32, np.int64, np.bool_,
          np.complex64]
LOG = None
COUNT = {"examples": 0, "results": 0, "errors": 0}


class Failure(AssertionError):
    pass


# -- strategies ------------------------------------------------------------------------------

def small_values(dtype, shape, rng):
    """Small integers (exact in every float dtype and in every accumulation), some NaN/Inf."""
    v = np.asarray(rng.integers(-3, 4, shape))
    if np.dtype(dtype).kind == "u" or dtype is np.bool_:
        v = np.abs(v)
    a = np.asarray(v.astype(dtype))
    if np.dtype(dtype).kind == "f" or dtype is ak.bfloat16:
        if a.size and rng.random() < 0.1:
            a.reshape(-1)[rng.integers(0, a.size)] = np.nan if rng.random() < 0.5 else np.inf
    return a


@st.composite
def arrays(draw, ndim=None, dims=None, dtypes=None, allow_huge=True):
    """An array of a drawn dtype and shape: fresh, transposed, negative-stride, padded,
    read-only, or a zero-stride view with a huge extent."""
    dtype = draw(st.sampled_from(dtypes or DTYPES))
    nd = draw(st.integers(0, 5)) if ndim is None else ndim
    shape = tuple(draw(st.sampled_from(dims or [0, 1, 2, 3, 5])) for _ in range(nd))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    kind = draw(st.sampled_from(["plain", "plain", "T", "neg", "pad", "ro", "huge"]))
    if kind == "huge" and allow_huge and nd:
        axis = draw(st.integers(0, nd - 1))
        base = small_values(dtype, shape[:axis] + (1,) + shape[axis + 1:], rng)
        return np.broadcast_to(base, shape[:axis] + (HUGE,) + shape[axis + 1:])
    a = small_values(dtype, shape, rng)
    if kind == "T" and nd >= 2:
        return np.ascontiguousarray(a.swapaxes(-1, -2)).swapaxes(-1, -2)
    if kind == "neg" and nd >= 1:
        return np.ascontiguousarray(a[..., ::-1])[..., ::-1]
    if kind == "pad" and nd >= 1:
        big = np.zeros(shape[:-1] + (2 * shape[-1],), dtype)
        big[..., ::2] = a
        return big[..., ::2]
    if kind == "ro":
        a.flags.writeable = False
    return a


@st.composite
def coherent(draw, kind):
    """Arguments that fit together (same dtype, matching extents), so that many examples get
    as far as the kernels: (a, b) for gemm/matmul, (x, w) for conv2d."""
    dtype = draw(st.sampled_from([np.float32, np.float16, ak.bfloat16] if kind != "q" else [np.uint8, np.int8]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    d = st.sampled_from([0, 1, 2, 3, 5, 7, 13])
    if kind in ("mm", "q"):
        m, k, n = draw(d), draw(d), draw(d)
        bt = np.int8 if kind == "q" else dtype
        return small_values(dtype, (m, k), rng), small_values(bt, (k, n), rng)
    n, c, h, w = draw(st.integers(0, 2)), draw(st.integers(0, 4)), draw(st.integers(0, 6)), draw(st.integers(0, 6))
    k, r = draw(st.integers(0, 4)), draw(st.integers(1, 3))
    wt = np.int8 if dtype in (np.uint8, np.int8) else dtype
    return small_values(dtype, (n, c, h, w), rng), small_values(wt, (k, c, r, r), rng)


JUNK = st.one_of(st.none(), st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4),
                 st.booleans(), st.just([1, 2]), st.just((1, 2, 3)), st.just(b"x"), st.just(object()),
                 st.just(np.float32(2.5)), st.just(np.array([1, 2])))


def maybe(strategy, junk=True):
    """Usually left out (the default); else a plausible value, or anything at all."""
    options = [st.just(inspect.Parameter.empty), strategy]
    if junk:
        options.append(JUNK)
    return st.one_of(*options)


def activations():
    return st.sampled_from([None, "relu", "gelu", "tanh", "RELU", 1, b"relu", np.array(["relu", "gelu"])])


def float_dtypes():
    return st.sampled_from([None, np.float32, np.float16, ak.bfloat16, np.float64, np.int32, np.int8, "f32", "float32",
                            "bf16", "nope", 7])


def geometry():
    ints = st.one_of(st.integers(-1, 3), st.sampled_from([2**31 - 1, 2**31, 2**62, 2**63, 2**70]))
    pairs = st.tuples(ints, ints)
    return dict(stride=maybe(st.one_of(ints, pairs)), dilation=maybe(st.one_of(ints, pairs)),
                padding=maybe(st.one_of(ints, pairs, st.tuples(pairs, pairs), st.sampled_from(["same", "valid", "full"]))),
                groups=maybe(st.integers(-1, 4)), layout=maybe(st.sampled_from(["NCHW", "NHWC", "nchw", "CHWN", np.array([1, 2]), ["NCHW"]])))


def outs():
    return maybe(st.one_of(arrays(dims=[0, 1, 2, 3, 4, 5, 6, 7], allow_huge=False), st.just([[0.0]])), junk=False)


def env():
    values = st.one_of(st.sampled_from(["", "0", "1", "2", "abc", "-3", "1e3", "2abc", "100000", "inf", "nan",
                                        "2305843009213693952", "65536"]), st.integers(-5, 10**6).map(str))
    return st.dictionaries(st.sampled_from(ENV_NAMES), values, max_size=2)


# -- the oracle ------------------------------------------------------------------------------

def names_passed(fn, args, kwargs):
    sig = inspect.signature(fn)
    bound = sig.bind_partial(*args, **kwargs)
    names = set()
    for name, value in bound.arguments.items():
        if sig.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
            names |= set(value)  # wrappers' **kwargs: the names inside were passed
        else:
            names.add(name)
    return names


def message_names(msg: str):
    head = msg.split(": ", 1)[0] if ": " in msg else ""
    return {n.strip() for n in re.split(r",\s*", head) if n.strip()}


def equal(y, ref, loose):
    y = np.asarray(y)
    ref = np.asarray(ref)
    if y.shape != ref.shape or y.dtype != ref.dtype:
        return False
    if y.dtype.kind in "iub":
        return np.array_equal(y, ref)
    y64, r64 = y.astype(np.float64), ref.astype(np.float64)
    if not loose:
        return np.array_equal(y64, r64, equal_nan=True)
    close = np.isclose(y64, r64, rtol=2e-2, atol=1e-2, equal_nan=True)
    return bool(np.all(close))


#: Examples whose float work could exceed this many multiply-adds are skipped: a zero-stride
#: view with a 2^40 reduction extent is a valid call that would simply run for hours.
MAX_WORK = 2**30


def _size(a):
    return a.size if isinstance(a, np.ndarray) else 0


def matmul_work(a, b, *rest, **kw):
    if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)) or a.ndim == 0 or b.ndim == 0:
        return 0
    n = b.shape[-1] if b.ndim > 1 else 1
    return _size(a) * n * max(1, _size(b) // max(1, (b.shape[-2] if b.ndim > 1 else b.shape[0]) * n))


def pair_work(x, y, *rest, **kw):
    """conv2d and its backward ops: at most |x| |y| multiply-adds."""
    return _size(x) * _size(y)


def check(op_name, fn, ref_fn, args, kwargs, environ, loose=False, work=None):
    """Runs fn(*args, **kwargs) with `environ` set; asserts the contract."""
    if work is not None:
        assume(work(*args) <= MAX_WORK)
    COUNT["examples"] += 1
    kwargs = {k: v for k, v in kwargs.items() if v is not inspect.Parameter.empty}
    example = (f"{op_name} env={environ} args={[describe(a) for a in args]} "
               f"kwargs={ {k: describe(v) for k, v in kwargs.items()} }")
    if LOG is not None:
        LOG.write(f"{COUNT['examples']} {example}\n")
        LOG.flush()
    saved = {k: os.environ.get(k) for k in environ}
    os.environ.update(environ)
    try:
        allowed_names = names_passed(fn, args, kwargs) | set(environ)
        try:
            if "AICC_NUM_THREADS" in environ:
                ak.set_num_threads(0)  # the pool re-reads AICC_NUM_THREADS
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                y = fn(*args, **kwargs)
        except ALLOWED as exc:
            COUNT["errors"] += 1
            # The message leads with the argument ("<name>: expected ..."), or names a passed
            # argument as the cause ("c: expected ... because beta=1.0, got None").
            named = message_names(str(exc))
            mentioned = {n for n in allowed_names if re.search(rf"\b{re.escape(n)}\b", str(exc))}
            if not (named & allowed_names or (named and mentioned)):
                raise Failure(f"{type(exc).__name__} names none of the passed arguments "
                              f"{sorted(allowed_names)}: {exc}\n    in {example}") from exc
            return
        except MemoryError as exc:
            # The one other outcome allowed: an output (or a documented copy) larger than
            # this machine's memory -- e.g. a conv2d over a zero-stride x with N = 2^40 --
            # fails to allocate like any NumPy array would. Only before any kernel ran.
            if not str(exc).startswith("Unable to allocate"):
                raise Failure(f"raised MemoryError not from an allocation: {exc}\n    in {example}") from exc
            COUNT["errors"] += 1
            return
        except Exception as exc:
            raise Failure(f"raised {type(exc).__name__} (not ValueError/TypeError/"
                          f"NotImplementedError): {exc}\n    in {example}") from exc
        COUNT["results"] += 1
        ref = ref_fn(*args, **kwargs)
        if not equal(y, ref, loose):
            raise Failure(f"result differs from the reference: {describe(np.asarray(y))} vs "
                          f"{describe(np.asarray(ref))}\n    in {example}")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if "AICC_NUM_THREADS" in environ:
            try:
                ak.set_num_threads(0)
            except ValueError:
                pass


def describe(v):
    if isinstance(v, np.ndarray):
        return f"array{v.shape}:{v.dtype}:strides={v.strides}:ro={not v.flags.writeable}"
    r = repr(v)
    return r if len(r) < 60 else r[:57] + "..."


def ref_of(name):
    return lambda *a, **k: getattr(ak, name)(*a, backend="reference", **k)


# -- one hypothesis test per op --------------------------------------------------------------

SETTINGS = dict(deadline=None, database=None, derandomize=False, print_blob=True,
                suppress_health_check=list(HealthCheck))


def make_tests(n):
    s = settings(max_examples=n, **SETTINGS)

    @s
    @given(ab=st.one_of(st.tuples(arrays(), arrays()), coherent("mm")), out=outs(), out_dtype=maybe(float_dtypes()),
           environ=env())
    def fuzz_matmul(ab, out, out_dtype, environ):
        a, b = ab
        check("matmul", ak.matmul, ref_of("matmul"), (a, b), dict(out=out, out_dtype=out_dtype), environ,
              work=matmul_work)

    @s
    @given(ab=st.one_of(st.tuples(arrays(ndim=2), arrays(ndim=2)), coherent("mm")), c=maybe(arrays(ndim=2)), alpha=maybe(st.floats(-2, 2)),
           beta=maybe(st.sampled_from([0.0, 1.0, -0.5, float("nan")])), trans_a=maybe(st.booleans()),
           trans_b=maybe(st.booleans()), bias=maybe(arrays(ndim=1)), activation=maybe(activations(), junk=False),
           out_dtype=maybe(float_dtypes()), out=outs(), environ=env())
    def fuzz_gemm(ab, c, alpha, beta, trans_a, trans_b, bias, activation, out_dtype, out, environ):
        a, b = ab
        check("gemm", ak.gemm, ref_of("gemm"), (a, b),
              dict(c=c, alpha=alpha, beta=beta, trans_a=trans_a, trans_b=trans_b, bias=bias, activation=activation,
                   out_dtype=out_dtype, out=out), environ, loose=activation == "gelu",
              work=lambda a, b: max(matmul_work(a, b), matmul_work(b, a)))

    zp = st.one_of(st.integers(-300, 300), arrays(ndim=1, dtypes=[np.int32, np.int64, np.float32]))
    scales = st.one_of(st.floats(-1, 1), st.just(float("nan")), arrays(ndim=1, dtypes=[np.float32, np.float64]))
    qdt = st.sampled_from([np.int32, np.int8, np.uint8, np.float32, np.float16, "s32", "bogus"])

    @s
    @given(ab=st.one_of(st.tuples(arrays(ndim=2, dtypes=[np.uint8, np.int8, np.int16, np.float32]),
                                  arrays(ndim=2, dtypes=[np.int8, np.uint8, np.int32])), coherent("q")), a_zero_point=maybe(zp), b_zero_point=maybe(zp),
           scale=maybe(scales), bias=maybe(arrays(ndim=1, dtypes=[np.int32, np.int64, np.float32])),
           out_zero_point=maybe(st.integers(-300, 300)), out_dtype=maybe(qdt),
           activation=maybe(st.sampled_from([None, "relu", "gelu"]), junk=False), out=outs(), environ=env())
    def fuzz_qgemm(ab, a_zero_point, b_zero_point, scale, bias, out_zero_point, out_dtype, activation, out, environ):
        a, b = ab
        check("qgemm", ak.qgemm, ref_of("qgemm"), (a, b),
              dict(a_zero_point=a_zero_point, b_zero_point=b_zero_point, scale=scale, bias=bias,
                   out_zero_point=out_zero_point, out_dtype=out_dtype, activation=activation, out=out), environ)

    conv_dims = [0, 1, 2, 3, 4]
    fdt = [np.float32, np.float16, ak.bfloat16, np.float64, np.int8]

    @s
    @given(xw=st.one_of(st.tuples(arrays(ndim=4, dims=conv_dims, dtypes=fdt), arrays(ndim=4, dims=[0, 1, 2, 3], dtypes=fdt)),
                        coherent("conv"), coherent("conv")),
           bias=maybe(arrays(ndim=1, dims=[0, 1, 2, 3, 4])), activation=maybe(activations(), junk=False),
           out_dtype=maybe(float_dtypes()), out=outs(), environ=env(), data=st.data())
    def fuzz_conv2d(xw, bias, activation, out_dtype, out, environ, data):
        g = {k: data.draw(v) for k, v in geometry().items()}
        x, w = xw
        check("conv2d", ak.conv2d, ref_of("conv2d"), (x, w),
              dict(bias=bias, activation=activation, out_dtype=out_dtype, out=out, **g), environ,
              loose=activation == "gelu", work=pair_work)

    @s
    @given(x=arrays(ndim=4, dims=conv_dims, dtypes=[np.uint8, np.int8, np.float32]),
           w=arrays(ndim=4, dims=[0, 1, 2, 3], dtypes=[np.int8, np.uint8]), bias=maybe(arrays(ndim=1, dtypes=[np.int32])),
           x_zero_point=maybe(zp), w_zero_point=maybe(zp), scale=maybe(scales), out_dtype=maybe(qdt),
           out=outs(), environ=env(), data=st.data())
    def fuzz_qconv2d(x, w, bias, x_zero_point, w_zero_point, scale, out_dtype, out, environ, data):
        g = {k: data.draw(v) for k, v in geometry().items()}
        check("qconv2d", ak.qconv2d, ref_of("qconv2d"), (x, w),
              dict(bias=bias, x_zero_point=x_zero_point, w_zero_point=w_zero_point, scale=scale, out_dtype=out_dtype,
                   out=out, **g), environ)

    shapes4 = st.one_of(st.tuples(*[st.sampled_from(conv_dims)] * 4), JUNK,
                        st.tuples(st.integers(-1, 3), st.integers(0, 3), st.sampled_from([0, 3, 2**31, 2**63]),
                                  st.integers(0, 3)))

    @s
    @given(grad_out=arrays(ndim=4, dims=conv_dims, dtypes=fdt), w=arrays(ndim=4, dims=[0, 1, 2, 3], dtypes=fdt),
           input_shape=shapes4, out=outs(), environ=env(), data=st.data())
    def fuzz_conv2d_backward_data(grad_out, w, input_shape, out, environ, data):
        g = {k: data.draw(v) for k, v in geometry().items()}
        check("conv2d_backward_data", ak.conv2d_backward_data, ref_of("conv2d_backward_data"),
              (grad_out, w, input_shape), dict(out=out, **g), environ, work=pair_work)

    @s
    @given(x=arrays(ndim=4, dims=conv_dims, dtypes=fdt), grad_out=arrays(ndim=4, dims=conv_dims, dtypes=fdt),
           weight_shape=shapes4, out=outs(), environ=env(), data=st.data())
    def fuzz_conv2d_backward_weight(x, grad_out, weight_shape, out, environ, data):
        g = {k: data.draw(v) for k, v in geometry().items()}
        check("conv2d_backward_weight", ak.conv2d_backward_weight, ref_of("conv2d_backward_weight"),
              (x, grad_out, weight_shape), dict(out=out, **g), environ, work=pair_work)

    @s
    @given(w=arrays(ndim=4, dims=[0, 1, 2, 3], dtypes=fdt), x=arrays(ndim=4, dims=conv_dims, dtypes=fdt),
           groups=maybe(st.integers(-1, 3)), layout=maybe(st.sampled_from(["NCHW", "NHWC", "x"])), environ=env())
    def fuzz_prepack_conv2d_weights(w, x, groups, layout, environ):
        kw = {k: v for k, v in dict(groups=groups, layout=layout).items() if v is not inspect.Parameter.empty}

        def packed_conv(x, w, **k):
            return ak.conv2d(x, ak.prepack_conv2d_weights(w, **k), **k)

        def reference(x, w, **k):
            return ak.reference.conv2d(x, w, **k)

        check("prepack_conv2d_weights+conv2d", packed_conv, reference, (x, w), kw, environ, work=pair_work)

    ops = st.sampled_from(["sum", "avg", "max", "min", "mean", None, 3, np.array(["sum", "max"]), ["sum"]])
    coll_dtypes = [np.float32, np.float16, ak.bfloat16, np.float64, np.int32, np.int64, np.int8, np.uint8, np.bool_,
                   np.complex64]

    def one_rank(op_name, call, ref, environ, kw):
        def run(x, **k):
            return ak.collective.run_threads(1, lambda c: call(x, comm=c, **k))[0]
        check(op_name, run, ref, (kw.pop("x"),), kw, environ)

    @s
    @given(x=arrays(dtypes=coll_dtypes, allow_huge=False), op=maybe(ops, junk=False),
           compression=maybe(st.sampled_from([None, "fp16", "bf16", "int8", "zip", np.array([0, 1]), ["fp16"]]), junk=False), environ=env())
    def fuzz_allreduce(x, op, compression, environ):
        kw = {k: v for k, v in dict(x=x, op=op, compression=compression).items() if v is not inspect.Parameter.empty}

        def ref(x, op="sum", compression=None):
            r = ak.reference.allreduce([x], op, compression=compression)
            if compression == "int8":
                return ak.reference.int8_allreduce_model([x], op).reshape(x.shape).astype(x.dtype)
            return np.asarray(r).astype(x.dtype)

        one_rank("allreduce", ak.allreduce, ref, environ, kw)

    @s
    @given(x=arrays(dtypes=coll_dtypes, allow_huge=False), op=maybe(ops, junk=False), environ=env())
    def fuzz_reduce_scatter(x, op, environ):
        kw = {k: v for k, v in dict(x=x, op=op).items() if v is not inspect.Parameter.empty}
        one_rank("reduce_scatter", ak.reduce_scatter,
                 lambda x, op="sum": np.asarray(ak.reference.reduce_scatter([x], op)[0]).astype(x.dtype), environ, kw)

    @s
    @given(x=arrays(dtypes=coll_dtypes, allow_huge=False), environ=env())
    def fuzz_all_gather(x, environ):
        one_rank("all_gather", ak.all_gather, lambda x: np.asarray(ak.reference.all_gather([x])), environ, dict(x=x))

    @s
    @given(x=st.one_of(arrays(dtypes=coll_dtypes, allow_huge=False), JUNK), root=maybe(st.integers(-2, 2)),
           environ=env())
    def fuzz_broadcast(x, root, environ):
        kw = {k: v for k, v in dict(x=x, root=root).items() if v is not inspect.Parameter.empty}
        one_rank("broadcast", ak.broadcast, lambda x, root=0: np.array(x), environ, kw)

    @s
    @given(n=st.one_of(st.integers(-2**70, 2**70), st.integers(-2, 64), JUNK), environ=env())
    def fuzz_set_num_threads(n, environ):
        previous = ak.get_num_threads()

        def call(n):
            ak.set_num_threads(n)
            return np.array(ak.get_num_threads())

        try:
            check("set_num_threads", call, lambda n: np.array(ak.get_num_threads()), (n,), {}, environ)
        finally:
            ak.set_num_threads(previous)

    return [fuzz_matmul, fuzz_gemm, fuzz_qgemm, fuzz_conv2d, fuzz_qconv2d, fuzz_conv2d_backward_data,
            fuzz_conv2d_backward_weight, fuzz_prepack_conv2d_weights, fuzz_allreduce, fuzz_reduce_scatter,
            fuzz_all_gather, fuzz_broadcast, fuzz_set_num_threads]


def main(argv=None) -> int:
    global LOG
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=150, help="examples per op")
    parser.add_argument("--log", default=None, help="append each example here before running it")
    ns = parser.parse_args(argv)
    LOG = open(ns.log, "a") if ns.log else None
    t0 = time.monotonic()
    failed = 0
    for test in make_tests(ns.examples):
        t = time.monotonic()
        before = COUNT["examples"]
        try:
            test()
        except Exception as exc:  # noqa: BLE001 - report every op, then fail
            failed += 1
            subs = getattr(exc, "exceptions", [exc])
            for sub in subs:
                print(f"FAIL {test.__name__}: {type(sub).__name__}: {sub}", flush=True)
        print(f"{test.__name__}: {COUNT['examples'] - before} examples in {time.monotonic() - t:.1f} s", flush=True)
    print(f"fuzz: examples={COUNT['examples']} results={COUNT['results']} errors={COUNT['errors']} "
          f"seconds={time.monotonic() - t0:.1f} failed_ops={failed}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
