"""The MPI communicator (mpi4py): many hosts, MPI as the engine.

MPI's own collectives do what they already do well: f32 / f64 / integer sum, max and
min (avg = MPI sum, then one division). Our kernels add what MPI lacks, composed from
MPI data movement:

  f16 / bf16 (and fp16 / bf16 compression of f32): reduce-scatter as an Alltoall of
  1/size slices, each rank reduces its slice with the f32-accumulating kernel (rank order,
  rounded once), then an Allgather of the reduced slices;
  int8 compression: the same, on 256-value blocks quantized with one f32 scale each,
  dequantized and reduced in f32, requantized once before the Allgather.

Every wait is a nonblocking request polled against the communicator's deadline, and
every call first exchanges a small descriptor (kind, op, dtype, count, ...) so that
mismatched calls raise CollectiveError instead of exchanging wrong data. A rank that
dies is handled by the MPI runtime (mpirun ends the job); a rank that hangs hits the
deadline.
"""

from __future__ import annotations

import time

import numpy as np

from .. import _dtypes
from .communicator import COMPRESSIONS, OPS, Communicator, resolve_timeout
from .errors import CollectiveError

_KINDS = {"allreduce": 1, "reduce_scatter": 2, "all_gather": 3, "broadcast": 4, "barrier": 5}
_KIND_NAMES = {v: k for k, v in _KINDS.items()}
_OP_NAMES = {v: k for k, v in OPS.items()}
_COMP_NAMES = {v: k for k, v in COMPRESSIONS.items()}
_DTYPE_CODES = {np.dtype(np.float32): 0, np.dtype(np.float64): 1, np.dtype(np.float16): 2, _dtypes.bfloat16: 3,
                np.dtype(np.int8): 4, np.dtype(np.uint8): 5, np.dtype(np.int32): 6, np.dtype(np.int64): 7}
_DTYPE_NAMES = {v: _dtypes.short_name(k) for k, v in _DTYPE_CODES.items()}
# Types whose sum / max / min MPI computes itself. Not int8: Open MPI 4.1's vectorized
# (op/avx) int8 sum saturates on whole vectors and wraps on the tail (measured: 127 + 1 gives
# 127 in the first 64 elements, -128 after), so int8 goes through our wrapping kernel.
_NATIVE = {np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int32), np.dtype(np.int64)}
_BLOCK = 256
#: f16 / bf16 messages up to this many bytes: one Allgather + local reduction (fewer steps).
_ONESHOT_BYTES = 64 << 10


#: Extents carried in the descriptor; a longer shape puts a hash of the rest in the last one.
_DESC_DIMS = 6


def _shape_fields(shape) -> list:
    if shape is None:
        return [-1] + [0] * _DESC_DIMS
    dims = [int(d) for d in shape]
    if len(dims) > _DESC_DIMS:
        dims = dims[:_DESC_DIMS - 1] + [hash(tuple(dims[_DESC_DIMS - 1:])) & 0x7FFFFFFFFFFFFFFF]
    return [len(shape)] + dims + [0] * (_DESC_DIMS - len(dims))


def _describe_shape(row) -> str:
    ndim = int(row[6])
    if ndim < 0:
        return ""
    dims = [str(int(d)) for d in row[7:7 + min(ndim, _DESC_DIMS)]]
    if ndim > _DESC_DIMS:
        return f", shape=({', '.join(dims[:-1])}, ...) [{ndim}-d]"
    return f", shape=({', '.join(dims)}{',' if ndim == 1 else ''})"


def _describe(row) -> str:
    kind, op, dtype, comp, count, extra = (int(v) for v in row[:6])
    name = _KIND_NAMES.get(kind, "?")
    if name == "barrier":
        return "barrier()"
    parts = []
    if name in ("allreduce", "reduce_scatter"):
        parts.append(f"op={_OP_NAMES.get(op, '?')}")
    parts.append(f"dtype={_DTYPE_NAMES.get(dtype, '?')}")
    parts.append(f"count={count}{_describe_shape(row)}")
    if name == "allreduce" and comp:
        parts.append(f"compression={_COMP_NAMES.get(comp)}")
    if name == "broadcast":
        parts.append(f"root={extra}")
    return f"{name}({', '.join(parts)})"


class MpiCommunicator(Communicator):
    kind = "mpi"

    def __init__(self, comm=None, timeout=None):
        from mpi4py import MPI

        from .. import _aicc_cpu

        self._MPI = MPI
        self._ext = _aicc_cpu
        self._comm = comm if comm is not None else MPI.COMM_WORLD
        super().__init__(self._comm.Get_rank(), self._comm.Get_size(), resolve_timeout(timeout))
        self._calls = 0
        self._wire = 0
        self._broken = None
        self._ops = {"sum": MPI.SUM, "avg": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}

    @property
    def wire_bytes(self) -> int:
        return self._wire

    # -- waiting with a deadline ------------------------------------------------------
    def _wait(self, request, what: str) -> None:
        deadline = time.monotonic() + self._timeout
        spins = 0
        while not request.Test():
            spins += 1
            if spins > 2000:
                time.sleep(50e-6 if spins < 20000 else 1e-3)
            if (spins & 63) == 0 and time.monotonic() > deadline:
                self._broken = (f"{what}: timed out after {self._timeout:g} s in call #{self._calls} on rank "
                                f"{self.rank} (a rank did not arrive; timeout set by init(timeout=) or "
                                f"AICC_COLLECTIVE_TIMEOUT)")
                raise CollectiveError(self._broken)

    def _begin(self, what: str, op="sum", dtype=np.float32, comp=None, count=0, extra=0, shape=None) -> None:
        if self._broken:
            raise CollectiveError(f"communicator unusable after an earlier failure: {self._broken}")
        self._calls += 1
        # The shape is compared with the count: (2, 3) on one rank and (3, 2) on another is
        # a mismatch, not a reinterpretation (Python's tuple hash is the same on every rank).
        mine = np.array([_KINDS[what], OPS[op], _DTYPE_CODES[np.dtype(dtype)], COMPRESSIONS[comp], count, extra]
                        + _shape_fields(shape), dtype=np.int64)
        if self.size == 1:
            return
        rows = np.empty((self.size, mine.size), dtype=np.int64)
        self._wait(self._comm.Iallgather(mine, rows), what)
        for r in range(1, self.size):
            if not np.array_equal(rows[r], rows[0]):
                raise CollectiveError(f"collective mismatch at call #{self._calls}: rank 0 called "
                                      f"{_describe(rows[0])}, rank {r} called {_describe(rows[r])}")

    @staticmethod
    def _bytes(a: np.ndarray) -> np.ndarray:
        return a.reshape(-1).view(np.uint8)

    # -- collectives --------------------------------------------------------------------
    def barrier(self) -> None:
        self._begin("barrier")
        if self.size > 1:
            self._wait(self._comm.Ibarrier(), "barrier")

    def _allreduce(self, x, out, op, compression, what="allreduce"):
        self._begin(what, op, x.dtype, compression, x.size, shape=x.shape)
        n, size = x.size, self.size
        if compression is None and x.dtype in _NATIVE:
            if size == 1:
                out[...] = x
            else:
                send = self._MPI.IN_PLACE if out is x else x.reshape(-1)
                self._wait(self._comm.Iallreduce(send, out.reshape(-1), op=self._ops[op]), "allreduce")
                self._wire += 2 * (size - 1) * n * x.itemsize // size
            if op == "avg":
                np.divide(out, x.dtype.type(size), out=out)
            return
        if compression == "int8":
            self._allreduce_int8(x, out, op)
            return
        wire = {"fp16": np.dtype(np.float16), "bf16": _dtypes.bfloat16}.get(compression, x.dtype)
        flat_out = out.reshape(-1)
        if n * wire.itemsize <= _ONESHOT_BYTES or size == 1:
            # Small: one Allgather of every rank's input, then every rank reduces all of them
            # in rank order itself (same bits as the large path: f32 sum in rank order).
            mine = x.reshape(-1) if wire == x.dtype else np.empty(n, dtype=wire)
            if wire != x.dtype:
                self._ext.convert(x.reshape(-1), mine)
            rows = np.empty((size, n), dtype=wire)
            if size > 1:
                self._wait(self._comm.Iallgather(self._bytes(mine), self._bytes(rows)), "allreduce")
            else:
                rows[0] = mine
            self._wire += (size - 1) * n * wire.itemsize
            if wire == out.dtype:
                self._ext.reduce_arrays(list(rows), flat_out, OPS[op], size)
            else:
                red = np.empty(n, dtype=wire)
                self._ext.reduce_arrays(list(rows), red, OPS[op], size)
                self._ext.convert(red, flat_out)
            return
        # Large: reduce-scatter (Alltoall of 1/size slices + our reduction), then Allgather.
        c = -(-n // size)
        c = -(-c // 16) * 16  # 32-byte aligned slices
        direct = n == size * c and wire == x.dtype  # no padding, no conversion: use x and out as they are
        if direct:
            send = x.reshape(-1)
        else:
            send = np.empty(size * c, dtype=wire)
            send[n:] = 0
            if wire == x.dtype:
                send[:n] = x.reshape(-1)
            else:
                self._ext.convert(x.reshape(-1), send[:n])
        recv = np.empty((size, c), dtype=wire)
        self._wait(self._comm.Ialltoall(self._bytes(send), self._bytes(recv)), "allreduce")
        mine = np.empty(c, dtype=wire)
        self._ext.reduce_arrays(list(recv), mine, OPS[op], size)
        full = flat_out if direct and wire == out.dtype else np.empty(size * c, dtype=wire)
        self._wait(self._comm.Iallgather(self._bytes(mine), self._bytes(full)), "allreduce")
        self._wire += 2 * (size - 1) * c * wire.itemsize
        if full is not flat_out:
            if wire == out.dtype:
                flat_out[:] = full[:n]
            else:
                self._ext.convert(full[:n], flat_out)

    def _allreduce_int8(self, x, out, op):
        n, size = x.size, self.size
        c = -(-n // (size * _BLOCK)) * _BLOCK if n else 0  # whole blocks per rank
        xs = np.zeros(size * c, dtype=np.float32)
        xs[:n] = x.reshape(-1)
        q = np.empty(size * c, dtype=np.int8)
        s = np.empty(size * c // _BLOCK, dtype=np.float32)
        self._ext.quantize_int8(xs, q, s)
        rq = np.empty((size, c), dtype=np.int8)
        rs = np.empty((size, c // _BLOCK), dtype=np.float32)
        if size > 1:
            self._wait(self._comm.Ialltoall(q, rq), "allreduce")
            self._wait(self._comm.Ialltoall(s, rs), "allreduce")
        else:
            rq[0], rs[0] = q, s
        mq = np.empty(c, dtype=np.int8)
        ms = np.empty(c // _BLOCK, dtype=np.float32)
        self._ext.reduce_int8(list(rq), list(rs), mq, ms, OPS[op], size)
        fq = np.empty(size * c, dtype=np.int8)
        fs = np.empty(size * c // _BLOCK, dtype=np.float32)
        if size > 1:
            self._wait(self._comm.Iallgather(mq, fq), "allreduce")
            self._wait(self._comm.Iallgather(ms, fs), "allreduce")
        else:
            fq[:], fs[:] = mq, ms
        self._wire += 2 * (size - 1) * (c + 4 * (c // _BLOCK))
        full = np.empty(size * c, dtype=np.float32)
        self._ext.dequantize_int8(fq, fs, full)
        out.reshape(-1)[:] = full[:n]

    def _reduce_scatter(self, x, out, offsets, op):
        # Composed from allreduce (MPI's Reduce_scatter for native types would need the
        # same descriptor exchange; this keeps one code path and our f16/bf16 semantics).
        full = np.empty_like(x)
        self._allreduce(x, full, op, None, what="reduce_scatter")
        lo, hi = offsets[self.rank], offsets[self.rank + 1]
        out.reshape(-1)[:] = full.reshape(-1)[lo:hi]

    def _all_gather(self, x, out):
        self._begin("all_gather", dtype=x.dtype, count=x.size, shape=x.shape)
        if self.size == 1:
            out.reshape(-1)[:] = x.reshape(-1)
            return
        self._wait(self._comm.Iallgather(self._bytes(x), self._bytes(out)), "all_gather")
        self._wire += (self.size - 1) * x.nbytes

    def _broadcast(self, buf, root):
        self._begin("broadcast", dtype=buf.dtype, count=buf.size, extra=root, shape=buf.shape)
        if self.size == 1:
            return
        self._wait(self._comm.Ibcast(self._bytes(buf), root=root), "broadcast")
        if self.rank == root:
            self._wire += buf.nbytes
