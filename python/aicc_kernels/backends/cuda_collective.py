"""The "nccl" communicator: collectives over CuPy arrays through NCCL, loaded at run time.

NCCL is never linked: ``libnccl.so.2`` (or the file named by ``AICC_NCCL_LIBRARY``) is
opened with dlopen (ctypes) on first use, so the package imports without it and
`nccl_unavailable_reason()` says why it cannot be used.

It has the private methods of the CPU communicators (aicc_kernels.collective:
``_allreduce(x, out, op, compression)``, ``_reduce_scatter(x, out, offsets, op)``,
``_all_gather(x, out)``, ``_broadcast(buf, root)``), so the public ops dispatch to it like
to any other kind, plus public `allreduce` / `reduce_scatter` / `all_gather` /
`broadcast` methods for direct use. Every call is enqueued on CuPy's current stream;
one NcclCommunicator drives one GPU (the current device at creation).

Semantics (the CPU collectives' contract): op sum / avg / max / min; f32, f16, bf16
(NCCL reduces in the element type, one rounding per step), s8, u8, s32, s64, f64.
compression="fp16" / "bf16" sends f32 data as f16 / bf16 and reduces in that type;
"int8" is the CPU collectives' algorithm on NCCL data movement: 256-value blocks with one
f32 scale each, an all-to-all of slices (ncclSend/ncclRecv), each slice dequantized and
reduced in f32 in rank order and requantized once, then an all-gather; every rank gets
bitwise the same result. Float "avg" is a sum followed by one division, as on the CPU.

Bootstrap: NCCL needs one 128-byte unique id shared by all ranks. `from_communicator`
sends it over an existing host communicator (shm / mpi, aicc_kernels.collective), or pass
``unique_id=`` (rank 0 makes one with `nccl_unique_id()`).
"""

from __future__ import annotations

import ctypes
import os
import threading

import numpy as np

from .. import _device, _dtypes

INT8_BLOCK = 256
_OPS = {"sum": 0, "max": 2, "min": 3, "avg": 4}  # ncclRedOp_t (ncclProd = 1)
# ncclDataType_t values from nccl.h (stable ABI).
_NCCL_TYPES = {np.dtype(np.int8): 0, np.dtype(np.uint8): 1, np.dtype(np.int32): 2, np.dtype(np.int64): 4,
               np.dtype(np.float16): 6, np.dtype(np.float32): 7, np.dtype(np.float64): 8, _dtypes.bfloat16: 9}

_lib = None
_lib_error = None
_lib_lock = threading.Lock()


class NcclError(RuntimeError):
    """An NCCL call failed; the message has NCCL's own error string."""


class _UniqueId(ctypes.Structure):
    _fields_ = [("internal", ctypes.c_char * 128)]


def _load():
    """The NCCL library (ctypes.CDLL), loaded once; NcclError with the reason otherwise."""
    global _lib, _lib_error
    with _lib_lock:
        if _lib is None and _lib_error is None:
            name = os.environ.get("AICC_NCCL_LIBRARY", "libnccl.so.2")
            try:
                lib = ctypes.CDLL(name)
            except OSError as exc:
                _lib_error = f"NCCL could not be loaded ({name}: {exc})"
            else:
                vp, sz, i = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int
                for fn, args in {
                    "ncclGetUniqueId": [ctypes.POINTER(_UniqueId)],
                    "ncclCommInitRank": [ctypes.POINTER(vp), i, _UniqueId, i],
                    "ncclCommDestroy": [vp],
                    "ncclAllReduce": [vp, vp, sz, i, i, vp, vp],
                    "ncclReduceScatter": [vp, vp, sz, i, i, vp, vp],
                    "ncclAllGather": [vp, vp, sz, i, vp, vp],
                    "ncclBroadcast": [vp, vp, sz, i, i, vp, vp],
                    "ncclSend": [vp, sz, i, i, vp, vp],
                    "ncclRecv": [vp, sz, i, i, vp, vp],
                    "ncclGroupStart": [],
                    "ncclGroupEnd": [],
                    "ncclGetVersion": [ctypes.POINTER(i)],
                }.items():
                    f = getattr(lib, fn)
                    f.argtypes = args
                    f.restype = i
                lib.ncclGetErrorString.argtypes = [i]
                lib.ncclGetErrorString.restype = ctypes.c_char_p
                _lib = lib
        if _lib is None:
            raise NcclError(_lib_error)
        return _lib


def nccl_unavailable_reason():
    """None when NCCL can be loaded here, else why not."""
    try:
        _load()
    except NcclError as exc:
        return str(exc)
    return None


def nccl_version() -> int:
    v = ctypes.c_int(0)
    _check(_load().ncclGetVersion(ctypes.byref(v)), "ncclGetVersion")
    return v.value


def _check(result: int, what: str) -> None:
    if result != 0:
        msg = _load().ncclGetErrorString(result)
        raise NcclError(f"{what}: NCCL error {result} ({msg.decode() if msg else 'unknown'})")


def nccl_unique_id() -> bytes:
    """A fresh 128-byte id; made on one rank and shared with all before construction."""
    uid = _UniqueId()
    _check(_load().ncclGetUniqueId(ctypes.byref(uid)), "ncclGetUniqueId")
    # Not uid.internal: a c_char field reads back only up to the first NUL byte.
    return ctypes.string_at(ctypes.addressof(uid), 128)


class NcclCommunicator:
    """One rank of an NCCL group on the current CUDA device."""

    kind = "nccl"

    def __init__(self, rank: int, size: int, unique_id: bytes, *, timeout=None):
        if not (isinstance(size, int) and size >= 1):
            raise ValueError(f"size: expected a positive integer, got {size!r}")
        if not (isinstance(rank, int) and 0 <= rank < size):
            raise ValueError(f"rank: expected an integer in [0, {size}), got {rank!r}")
        if not isinstance(unique_id, (bytes, bytearray)) or len(unique_id) != 128:
            raise ValueError(f"unique_id: expected 128 bytes from nccl_unique_id(), got {type(unique_id).__name__}")
        lib = _load()
        cp = _device.cupy()
        self.rank, self.size = rank, size
        self.device = cp.cuda.Device().id
        # NCCL's own waits have no deadline; `timeout` is kept for interface parity and
        # documented as advisory (NCCL_TIMEOUT-style watchdogs belong to the caller).
        self.timeout = timeout
        self._wire_bytes = 0
        uid = _UniqueId()
        ctypes.memmove(ctypes.addressof(uid), bytes(unique_id), 128)
        comm = ctypes.c_void_p()
        _check(lib.ncclCommInitRank(ctypes.byref(comm), size, uid, rank), "ncclCommInitRank")
        self._comm = comm

    @classmethod
    def from_communicator(cls, host_comm, **kwargs):
        """Builds the NCCL group over the ranks of a host communicator (its rank and size),
        sharing the unique id through the host communicator's broadcast."""
        buf = np.zeros(128, np.uint8)
        if host_comm.rank == 0:
            buf[:] = np.frombuffer(nccl_unique_id(), np.uint8)
        host_comm._broadcast(buf, 0)
        return cls(host_comm.rank, host_comm.size, buf.tobytes(), **kwargs)

    @classmethod
    def from_mpi(cls, mpi_comm=None, **kwargs):
        """One rank per MPI process (mpi4py; COMM_WORLD by default), the unique id broadcast
        over MPI. Pick the GPU first (e.g. ``cupy.cuda.Device(local_rank).use()``)."""
        if mpi_comm is None:
            from mpi4py import MPI

            mpi_comm = MPI.COMM_WORLD
        rank, size = mpi_comm.Get_rank(), mpi_comm.Get_size()
        uid = mpi_comm.bcast(nccl_unique_id() if rank == 0 else None, root=0)
        return cls(rank, size, uid, **kwargs)

    # -- plumbing --------------------------------------------------------------------------
    def close(self) -> None:
        if getattr(self, "_comm", None) is not None and self._comm.value:
            _check(_load().ncclCommDestroy(self._comm), "ncclCommDestroy")
            self._comm = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    @property
    def wire_bytes(self) -> int:
        """Bytes this rank has handed to NCCL so far (send buffers)."""
        return self._wire_bytes

    def _stream(self) -> int:
        return _device.cupy().cuda.get_current_stream().ptr

    def _arrays(self, **arrays):
        cp = _device.cupy()
        for name, x in arrays.items():
            if not isinstance(x, cp.ndarray):
                raise TypeError(f"{name}: expected a CuPy array, got {type(x).__module__}.{type(x).__name__}")
            if x.device.id != self.device:
                raise ValueError(f"{name}: expected an array on device {self.device} (this communicator's), "
                                 f"got device {x.device.id}")
            if not x.flags.c_contiguous:
                raise ValueError(f"{name}: expected a C-contiguous array, got strides {x.strides}")

    @staticmethod
    def _type(x) -> int:
        try:
            return _NCCL_TYPES[np.dtype(x.dtype)]
        except KeyError:
            raise TypeError(f"x: expected one of (f32, f64, f16, bf16, s8, u8, s32, s64), "
                            f"got {_dtypes.short_name(x.dtype)}") from None

    @staticmethod
    def _op(op) -> int:
        if op not in _OPS:
            raise ValueError(f"op: expected one of {tuple(_OPS)}, got {op!r}")
        return _OPS[op]

    # -- the communicator interface (aicc_kernels.collective) -------------------------------------
    def barrier(self) -> None:
        cp = _device.cupy()
        token = cp.zeros(1, np.int32)
        self._allreduce(token, token, "sum", None)
        cp.cuda.get_current_stream().synchronize()

    def _allreduce(self, x, out, op, compression):
        self._arrays(x=x, out=out)
        if compression in ("fp16", "bf16"):
            self._allreduce_16bit(x, out, op, compression)
            return
        if compression == "int8":
            self._allreduce_int8(x, out, op)
            return
        if compression is not None:
            raise ValueError(f"compression: expected None, 'fp16', 'bf16' or 'int8', got {compression!r}")
        self._wire_bytes += x.nbytes
        # Float avg as on the CPU: sum, then one division (ncclAvg pre-scales, which rounds
        # differently); integer avg is NCCL's.
        float_avg = op == "avg" and np.dtype(x.dtype).kind == "f" and np.dtype(x.dtype) != np.float64
        _check(_load().ncclAllReduce(x.data.ptr, out.data.ptr, x.size, self._type(x),
                                     self._op("sum" if float_avg else op), self._comm, self._stream()),
               "ncclAllReduce")
        if float_avg and self.size > 1:
            from . import cuda as _cuda_backend

            _cuda_backend._ext.divide_inplace(_cuda_backend._code(x.dtype), out.data.ptr, self.size, out.size,
                                              self._stream())

    def _allreduce_16bit(self, x, out, op, compression):
        """f32 data sent as f16 / bf16 (one rounding), reduced by NCCL in that type, widened
        back. The 16-bit buffer is uint16 storage: CuPy has no bfloat16 dtype."""
        from . import cuda as _cuda_backend

        ext = _cuda_backend._ext
        cp = _device.cupy()
        wire, nccl_type = ("f16", 6) if compression == "fp16" else ("bf16", 9)
        stream = self._stream()
        n = x.size
        tmp = cp.empty(n, np.uint16)
        ext.convert(_cuda_backend._code(x.dtype), x.data.ptr, ext.DTYPES[wire], tmp.data.ptr, n, stream)
        float_avg = op == "avg"
        self._wire_bytes += tmp.nbytes
        _check(_load().ncclAllReduce(tmp.data.ptr, tmp.data.ptr, n, nccl_type, self._op("sum" if float_avg else op),
                                     self._comm, stream), "ncclAllReduce")
        if float_avg and self.size > 1:
            ext.divide_inplace(ext.DTYPES[wire], tmp.data.ptr, self.size, n, stream)
        ext.convert(ext.DTYPES[wire], tmp.data.ptr, _cuda_backend._code(out.dtype), out.data.ptr, n, stream)

    def _allreduce_int8(self, x, out, op):
        """The CPU collectives' INT8 algorithm: quantize 256-value blocks; all-to-all so that
        rank j holds every rank's blocks of slice j; dequantize and reduce them in f32 in
        rank order (avg: one division); requantize the reduced slice once; all-gather the
        reduced slices and dequantize. Wire traffic ~ 2 (n - 1) / n of the int8 data."""
        from . import cuda as _cuda_backend

        if op not in ("sum", "avg"):
            raise ValueError(f"op: expected 'sum' or 'avg' with int8 compression, got {op!r}")
        n = x.size
        if n == 0:
            return
        ext = _cuda_backend._ext
        f32 = ext.DTYPES["f32"]
        cp = _device.cupy()
        lib = _load()
        stream = self._stream()
        block = INT8_BLOCK
        chunk = -(-(-(-n // block)) // self.size)  # blocks per rank's slice
        slice_len = chunk * block
        padded_len = slice_len * self.size

        # 1. quantize the zero-padded input (padding only ever forms zero blocks or joins
        #    the last block as zeros, which change no block maximum).
        xpad = cp.zeros(padded_len, dtype=x.dtype)
        xpad[:n] = x.reshape(-1)
        q = cp.empty(padded_len, np.int8)
        s = cp.empty(chunk * self.size, np.float32)
        ext.quantize_int8_blocks(_cuda_backend._code(x.dtype), xpad.data.ptr, padded_len, block, q.data.ptr,
                                 s.data.ptr, stream)
        # 2. all-to-all: slice `peer` of every rank goes to rank `peer`.
        recv_q = cp.empty((self.size, slice_len), np.int8)
        recv_s = cp.empty((self.size, chunk), np.float32)
        comm = self._comm
        _check(lib.ncclGroupStart(), "ncclGroupStart")
        try:
            for peer in range(self.size):
                _check(lib.ncclSend(q.data.ptr + peer * slice_len, slice_len, 0, peer, comm, stream), "ncclSend")
                _check(lib.ncclRecv(recv_q[peer].data.ptr, slice_len, 0, peer, comm, stream), "ncclRecv")
                _check(lib.ncclSend(s.data.ptr + peer * chunk * 4, chunk, 7, peer, comm, stream), "ncclSend")
                _check(lib.ncclRecv(recv_s[peer].data.ptr, chunk, 7, peer, comm, stream), "ncclRecv")
        finally:
            _check(lib.ncclGroupEnd(), "ncclGroupEnd")
        self._wire_bytes += (self.size - 1) * (slice_len + 4 * chunk)
        # 3. reduce this rank's slice in f32, in rank order, and requantize it once.
        acc = cp.zeros(slice_len, np.float32)
        for r in range(self.size):
            ext.dequantize_int8_blocks(f32, recv_q[r].data.ptr, recv_s[r].data.ptr, slice_len, block,
                                       acc.data.ptr, True, stream)
        if op == "avg":
            ext.divide_inplace(f32, acc.data.ptr, self.size, slice_len, stream)
        mine_q = cp.empty(slice_len, np.int8)
        mine_s = cp.empty(chunk, np.float32)
        ext.quantize_int8_blocks(f32, acc.data.ptr, slice_len, block, mine_q.data.ptr, mine_s.data.ptr, stream)
        # 4. all-gather the reduced slices and dequantize the whole vector.
        all_q = cp.empty(padded_len, np.int8)
        all_s = cp.empty(chunk * self.size, np.float32)
        self._all_gather(mine_q, all_q)
        self._all_gather(mine_s, all_s)
        result = cp.empty(padded_len, np.float32)
        ext.dequantize_int8_blocks(f32, all_q.data.ptr, all_s.data.ptr, padded_len, block, result.data.ptr, False,
                                   stream)
        out[...] = result[:n].reshape(out.shape).astype(out.dtype)

    def _reduce_scatter(self, x, out, offsets, op):
        """offsets: size+1 element offsets into x.ravel(); rank r gets x[offsets[r]:offsets[r+1]]
        reduced. NCCL needs equal parts: unequal splits go through one allreduce."""
        self._arrays(x=x, out=out)
        counts = np.diff(np.asarray(offsets, dtype=np.int64))
        flat = x.reshape(-1)
        if (counts == counts[0]).all() and int(offsets[0]) == 0 and int(offsets[-1]) == flat.size:
            self._wire_bytes += x.nbytes
            _check(_load().ncclReduceScatter(flat.data.ptr, out.data.ptr, int(counts[0]), self._type(x),
                                             self._op(op), self._comm, self._stream()), "ncclReduceScatter")
            return
        full = _device.cupy().empty_like(flat)
        self._allreduce(flat, full, op, None)
        out.reshape(-1)[...] = full[int(offsets[self.rank]):int(offsets[self.rank + 1])]

    def _all_gather(self, x, out):
        self._arrays(x=x, out=out)
        if out.size != x.size * self.size:
            raise ValueError(f"out: expected {x.size * self.size} elements ({self.size} x {x.size}), got {out.size}")
        self._wire_bytes += x.nbytes
        _check(_load().ncclAllGather(x.data.ptr, out.data.ptr, x.size, self._type(x), self._comm, self._stream()),
               "ncclAllGather")

    def _broadcast(self, buf, root):
        self._arrays(buf=buf)
        if not (0 <= root < self.size):
            raise ValueError(f"root: expected a rank in [0, {self.size}), got {root}")
        if self.rank == root:
            self._wire_bytes += buf.nbytes
        _check(_load().ncclBroadcast(buf.data.ptr, buf.data.ptr, buf.size, self._type(buf), root, self._comm,
                                     self._stream()), "ncclBroadcast")

    # -- direct use ------------------------------------------------------------------------------
    def allreduce(self, x, op="sum", *, compression=None, out=None):
        out = _device.cupy().empty_like(x) if out is None else out
        self._allreduce(x, out, op, compression)
        return out

    def reduce_scatter(self, x, op="sum", *, out=None):
        n = x.size
        if n % self.size:
            raise ValueError(f"x: expected a size divisible by {self.size} ranks, got {n}")
        out = _device.cupy().empty(n // self.size, x.dtype) if out is None else out
        self._reduce_scatter(x, out, [i * (n // self.size) for i in range(self.size + 1)], op)
        return out

    def all_gather(self, x, *, out=None):
        out = _device.cupy().empty((self.size,) + tuple(x.shape), x.dtype) if out is None else out
        self._all_gather(x, out)
        return out

    def broadcast(self, x, root=0):
        self._broadcast(x, root)
        return x

    def __repr__(self) -> str:
        return f"NcclCommunicator(rank={self.rank}, size={self.size}, device={self.device})"
