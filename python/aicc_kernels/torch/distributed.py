"""The torch.distributed backend "aicc": our collectives as a c10d process group.

    import aicc_kernels.torch
    torch.distributed.init_process_group("aicc")      # env:// (torchrun, or our launcher)

Transport, chosen when the group is made (AICC_TORCH_TRANSPORT = auto | shm | mpi):
  shm  every rank on one host: one shared-memory job per process group; rank 0 names it
       through the c10d store, so it works under torchrun as under our launcher.
  mpi  ranks on several hosts: our MPI communicator (mpi4py), under mpirun/srun, with torch's
       ranks equal to MPI's (world-sized groups only).
  auto shm when every rank reports the same host name through the store, else mpi.

Collectives run synchronously in the calling thread and return completed Work objects, so
a failure (a dead rank, a timeout, ranks calling mismatched collectives) raises
CollectiveError from the call itself, within the deadline: AICC_COLLECTIVE_TIMEOUT when
set, else init_process_group(timeout=...).
"""

from __future__ import annotations

import os
import socket
import uuid

import torch
import torch.distributed as dist
from torch._C._distributed_c10d import _create_work_from_future
from torch.futures import Future

from .. import ops as _ak_ops
from ..collective import CollectiveError
from ..collective.communicator import (DEFAULT_ONESHOT_BYTES, DEFAULT_SLOT_BYTES, NativeCommunicator,
                                       resolve_timeout)
from . import _tensors as T

BACKEND_NAME = "aicc"
TRANSPORTS = ("auto", "shm", "mpi")


def _reduce_op(op) -> str:
    for torch_op, name in ((dist.ReduceOp.SUM, "sum"), (dist.ReduceOp.AVG, "avg"), (dist.ReduceOp.MAX, "max"),
                           (dist.ReduceOp.MIN, "min")):
        if op == torch_op:
            return name
    raise ValueError(f"op: expected ReduceOp.SUM, AVG, MAX or MIN for backend 'aicc', got {op}")


def _completed(result) -> "dist.Work":
    fut = Future()
    fut.set_result(result)
    return _create_work_from_future(fut)


def _cpu_tensor(t, name="tensor"):
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if t.device.type != "cpu":
        raise ValueError(f"{name}: expected a CPU tensor for backend 'aicc' (use 'nccl' for CUDA tensors, "
                         f"or a device_id map like 'cpu:aicc,cuda:nccl'), got one on {t.device}")
    T.check_tensor(t, name)
    return t


def _timeout_seconds(timeout) -> float:
    if os.environ.get("AICC_COLLECTIVE_TIMEOUT"):
        return resolve_timeout(None)
    seconds = timeout.total_seconds() if hasattr(timeout, "total_seconds") else timeout
    return resolve_timeout(seconds)


def _env_tuning(name, default):
    text = os.environ.get(name)
    return int(text) if text else default


class AiccProcessGroup(dist.ProcessGroup):
    """A c10d ProcessGroup whose collectives are ours. `self.comm` is the underlying
    aicc_kernels Communicator (ak.allreduce(x, comm=pg.comm) works on it too)."""

    def __init__(self, store, rank: int, size: int, timeout):
        super().__init__(rank, size)
        self._rank, self._size = rank, size
        seconds = _timeout_seconds(timeout)
        transport = os.environ.get("AICC_TORCH_TRANSPORT", "auto")
        if transport not in TRANSPORTS:
            raise ValueError(f"AICC_TORCH_TRANSPORT: expected one of {TRANSPORTS}, got {transport!r}")
        if transport == "auto":
            store.set(f"aicc/host/{rank}", socket.gethostname())
            hosts = {store.get(f"aicc/host/{r}").decode() for r in range(size)}
            transport = "shm" if len(hosts) == 1 else "mpi"
        self.transport = transport
        if transport == "shm":
            from .. import _aicc_cpu

            if rank == 0:
                store.set("aicc/shm_job", f"torch-{os.getpid()}-{uuid.uuid4().hex[:12]}")
            job = store.get("aicc/shm_job").decode()
            native = _aicc_cpu.join_shm(job, rank, size, seconds,
                                        _env_tuning("AICC_SHM_SLOT_BYTES", DEFAULT_SLOT_BYTES),
                                        _env_tuning("AICC_SHM_ONESHOT_BYTES", DEFAULT_ONESHOT_BYTES))
            self.comm = NativeCommunicator(native, "shm")
        else:
            try:
                from ..collective.mpi import MpiCommunicator
            except ImportError as exc:
                raise ValueError(f"AICC_TORCH_TRANSPORT: 'mpi' (ranks on several hosts) needs mpi4py, got "
                                 f"ImportError: {exc}") from None
            self.comm = MpiCommunicator(timeout=seconds)
            if (self.comm.rank, self.comm.size) != (rank, size):
                raise ValueError(f"rank: expected torch's rank/size to equal MPI's (the mpi transport serves "
                                 f"world-sized groups started by mpirun), got torch {rank}/{size}, "
                                 f"MPI {self.comm.rank}/{self.comm.size}")

    # --- identity -----------------------------------------------------------------------
    def getBackendName(self):
        return BACKEND_NAME

    @property
    def name(self):  # noqa: D401 - matches ProcessGroup.name()
        return BACKEND_NAME

    def size(self):
        return self._size

    def rank(self):
        return self._rank

    def __repr__(self):
        return f"AiccProcessGroup(rank={self._rank}, size={self._size}, transport={self.transport!r})"

    # --- collectives --------------------------------------------------------------------
    def _in_place(self, t, name, fn):
        """Runs fn(numpy view) on t's memory; a non-contiguous t goes through one copy."""
        _cpu_tensor(t, name)
        if t.is_contiguous():
            fn(T.as_array(t))
        else:
            tmp = t.contiguous()
            fn(T.as_array(tmp))
            t.copy_(tmp)

    def allreduce(self, tensors, opts=None):
        op = _reduce_op(opts.reduceOp if opts is not None else dist.ReduceOp.SUM)
        for i, t in enumerate(tensors):
            self._in_place(t, f"tensors[{i}]", lambda x: _ak_ops.allreduce(x, op, comm=self.comm, out=x))
        return _completed(tensors)

    def allreduce_coalesced(self, tensors, opts=None):
        return self.allreduce(tensors, opts)

    def broadcast(self, tensors, opts=None):
        root = opts.rootRank if opts is not None else 0
        for i, t in enumerate(tensors):
            self._in_place(t, f"tensors[{i}]", lambda x: _ak_ops.broadcast(x, root, comm=self.comm))
        return _completed(tensors)

    def barrier(self, opts=None):
        self.comm.barrier()
        return _completed([])

    def all_gather_single(self, output, input, opts=None):  # noqa: A002 - c10d's parameter name
        _cpu_tensor(input, "input")
        _cpu_tensor(output, "output")
        if output.numel() != input.numel() * self._size or output.dtype != input.dtype:
            raise ValueError(f"output: expected {input.numel() * self._size} elements of {input.dtype} "
                             f"(size x input), got {output.numel()} of {output.dtype}")
        x = T.as_array(input.contiguous()).reshape(-1)
        if output.is_contiguous():
            _ak_ops.all_gather(x, comm=self.comm, out=T.as_array(output).reshape(-1))
        else:
            tmp = torch.empty(output.shape, dtype=output.dtype)
            _ak_ops.all_gather(x, comm=self.comm, out=T.as_array(tmp).reshape(-1))
            output.copy_(tmp)
        return _completed([output])

    _allgather_base = all_gather_single

    def allgather(self, output_lists, inputs, opts=None):
        for i, (outs, t) in enumerate(zip(output_lists, inputs)):
            _cpu_tensor(t, f"input_tensors[{i}]")
            if len(outs) != self._size:
                raise ValueError(f"output_tensors[{i}]: expected {self._size} tensors (one per rank), got {len(outs)}")
            flat = torch.empty(self._size * t.numel(), dtype=t.dtype)
            self.all_gather_single(flat, t)
            for r, o in enumerate(outs):
                o.copy_(flat[r * t.numel():(r + 1) * t.numel()].reshape(o.shape))
        return _completed(output_lists)

    def reduce_scatter_single(self, output, input, opts=None):  # noqa: A002
        op = _reduce_op(opts.reduceOp if opts is not None else dist.ReduceOp.SUM)
        _cpu_tensor(input, "input")
        _cpu_tensor(output, "output")
        if input.numel() != output.numel() * self._size or output.dtype != input.dtype:
            raise ValueError(f"input: expected {output.numel() * self._size} elements of {output.dtype} "
                             f"(size x output), got {input.numel()} of {input.dtype}")
        # Rank r's part is row r of the input seen as [size, numel(output)].
        x = T.as_array(input.contiguous()).reshape(self._size, -1)
        if output.is_contiguous():
            _ak_ops.reduce_scatter(x, op, comm=self.comm, out=T.as_array(output).reshape(1, -1))
        else:
            part = torch.empty_like(output, memory_format=torch.contiguous_format)
            _ak_ops.reduce_scatter(x, op, comm=self.comm, out=T.as_array(part).reshape(1, -1))
            output.copy_(part)
        return _completed([output])

    _reduce_scatter_base = reduce_scatter_single

    def reduce_scatter(self, outputs, input_lists, opts=None):
        for i, (out, parts) in enumerate(zip(outputs, input_lists)):
            if len(parts) != self._size:
                raise ValueError(f"input_list[{i}]: expected {self._size} tensors (one per rank), got {len(parts)}")
            for r, p in enumerate(parts):
                _cpu_tensor(p, f"input_list[{i}][{r}]")
                if p.numel() != out.numel() or p.dtype != out.dtype:
                    raise ValueError(f"input_list[{i}][{r}]: expected {out.numel()} elements of {out.dtype}, "
                                     f"got {p.numel()} of {p.dtype}")
            self.reduce_scatter_single(out, torch.cat([p.reshape(-1) for p in parts]), opts)
        return _completed(outputs)

    def _unsupported(self, what):
        raise NotImplementedError(f"backend 'aicc' implements allreduce, reduce_scatter, all_gather, broadcast and "
                                  f"barrier; {what} is not one of them (use a 'gloo' group for it)")

    def send(self, *args, **kwargs):
        self._unsupported("send")

    def recv(self, *args, **kwargs):
        self._unsupported("recv")

    def gather(self, *args, **kwargs):
        self._unsupported("gather")

    def scatter(self, *args, **kwargs):
        self._unsupported("scatter")

    def alltoall_base(self, *args, **kwargs):
        self._unsupported("all_to_all")


def _create(store, rank, size, timeout):
    return AiccProcessGroup(store, rank, size, timeout)


if not hasattr(dist.Backend, BACKEND_NAME.upper()):
    dist.Backend.register_backend(BACKEND_NAME, _create, devices=["cpu"])

__all__ = ["AiccProcessGroup", "BACKEND_NAME", "CollectiveError"]
