"""The collectives as conformance suites: allreduce, reduce_scatter, all_gather, broadcast.

A backend implements a collective as one call over every rank of a communicator it owns
(single-process multi-device, like an NCCL group call; the C ABI's aicc_collective_fn):

    def allreduce(inputs, outputs, *, op): ...          # inputs[r], outputs[r]: rank r's buffers
    def reduce_scatter(inputs, outputs, *, op): ...     # outputs[r]: rank r's part (np.array_split)
    def all_gather(inputs, outputs): ...                # outputs[r]: every input, in rank order
    def broadcast(inputs, outputs, *, root): ...        # outputs[r]: inputs[root]

Buffers are contiguous 1-D arrays of the combo's dtype ("f32/f32": input, output), the
outputs allocated by the runner through backend.empty. Floats are judged with
reference.allreduce_error_bound (docs/COLLECTIVES.md: f16/bf16 reduced in f32, rounded
once per step); gathers and broadcasts must be exact.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from ... import _dtypes, reference
from .. import strategies as S
from ..tolerance import compare_exact, compare_float
from . import Suite, Verdict, register_suite

COMBOS = [("f32", "f32"), ("f16", "f16"), ("bf16", "bf16")]
REDUCE_OPS = ("sum", "avg", "max", "min")


@st.composite
def collective_cases(draw, dtype, kind, tiles=None):
    """{inputs: [one 1-D array per rank], op or root}: 1 to 8 ranks, counts with edges
    (0, 1, primes, tile edges), small integers (exact sums, the nccl-tests trick) or normals."""
    nranks = draw(st.sampled_from([1, 2, 3, 4, 5, 8]))
    count = draw(S.tile_dim(S.dims(97), tiles.m if tiles else ()))
    values = draw(st.sampled_from(["int", "normal"]))
    inputs = [S.float_array(draw, (count,), dtype, kind=values) for _ in range(nranks)]
    case = dict(inputs=inputs)
    if kind in ("allreduce", "reduce_scatter"):
        case["op"] = draw(st.sampled_from(REDUCE_OPS))
    if kind == "broadcast":
        case["root"] = draw(st.integers(0, nranks - 1))
    return case


def _out_counts(kind, nranks, count):
    if kind == "reduce_scatter":
        return [len(p) for p in np.array_split(np.empty(count), nranks)]
    if kind == "all_gather":
        return [nranks * count] * nranks
    return [count] * nranks


def _call(kind):
    def call(case, backend):
        inputs = case["inputs"]
        combo = (_dtypes.short_name(inputs[0].dtype),) * 2
        kernel = backend.kernel(kind, combo)
        dtype = inputs[0].dtype
        outputs = [backend.empty((n,), dtype) for n in _out_counts(kind, len(inputs), inputs[0].size)]
        device_inputs = [backend.asarray(x) for x in inputs] if backend.device != "cpu" else inputs
        options = {k: case[k] for k in ("op", "root") if k in case}
        kernel(device_inputs, outputs, **options)
        host = [np.asarray(backend.to_numpy(o)) for o in outputs]
        # One array per case: reduce_scatter's parts end to end, the others one row per rank.
        return np.concatenate(host) if kind == "reduce_scatter" else np.stack(host)

    return call


def _check(kind):
    def check(case, out, ref=None) -> Verdict:
        inputs = case["inputs"]
        nranks, dtype = len(inputs), inputs[0].dtype
        if kind in ("allreduce", "reduce_scatter"):
            full = reference.allreduce(inputs, case["op"])
            bound = reference.allreduce_error_bound(inputs, case["op"])
            want = full if kind == "reduce_scatter" else np.broadcast_to(full, (nranks,) + full.shape)
            bound = bound if kind == "reduce_scatter" else np.broadcast_to(bound, want.shape)
        elif kind == "all_gather":
            want = np.broadcast_to(reference.all_gather(inputs), (nranks, nranks * inputs[0].size))
            bound = None
        else:
            want = np.broadcast_to(reference.broadcast(inputs, case["root"]), (nranks, inputs[0].size))
            bound = None
        if not isinstance(out, np.ndarray) or out.shape != want.shape or out.dtype != dtype:
            return (f"expected {_dtypes.short_name(dtype)} outputs of total shape {want.shape}, got "
                    f"{getattr(out, 'dtype', type(out).__name__)} of shape {getattr(out, 'shape', None)}")
        if bound is None:
            return compare_exact(out, np.ascontiguousarray(want).astype(dtype))
        return compare_float(out, want, bound)

    return check


for _kind in ("allreduce", "reduce_scatter", "all_gather", "broadcast"):
    register_suite(Suite(op=_kind, strategy=lambda combo, tiles=None, kind=_kind: collective_cases(
                             _dtypes.from_short_name(combo[0]), kind, tiles=tiles),
                         check=_check(_kind), call=_call(_kind), combos=COMBOS, tensors=(), poison=False))
