"""Collectives: communicators and their selection.

    comm = ak.collective.init()          # "auto": mpi under mpirun/srun, shm under
                                         # `python -m aicc_kernels.launch`, else one rank
    y = ak.allreduce(x, comm=comm)       # comm=None uses the communicator init() made

Kinds: "thread" (ranks are threads: run_threads / thread_group), "shm" (processes on one
host, POSIX shared memory), "mpi" (mpi4py), "single" (a group of one). docs/COLLECTIVES.md
describes the algorithms, the failure semantics and the error bounds.
"""

from __future__ import annotations

import os
import threading

from .communicator import (DEFAULT_TIMEOUT, Communicator, NativeCommunicator, resolve_oneshot_bytes,
                           resolve_slot_bytes, resolve_timeout)
from .errors import CollectiveError
from .threads import current as _current_thread_comm
from .threads import run_threads, thread_group

KINDS = ("auto", "thread", "shm", "mpi", "single")
# Environment variables that say "this process was started by an MPI launcher".
_MPI_ENV = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MV2_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")
_lock = threading.Lock()
_default = None


def detect_kind() -> str:
    """The kind "auto" resolves to here."""
    if _current_thread_comm() is not None:
        return "thread"
    if os.environ.get("AICC_LAUNCH_JOB"):
        return "shm"
    if any(os.environ.get(v) for v in _MPI_ENV) or int(os.environ.get("SLURM_NTASKS", "1") or 1) > 1:
        return "mpi"
    return "single"


def _env_int(name):
    value = os.environ.get(name)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected an integer set by aicc_kernels.launch, got {value!r}") from None


def init(kind: str = "auto", *, timeout=None, slot_bytes=None, oneshot_bytes=None) -> Communicator:
    """Returns this rank's communicator and makes it the default of the ops (comm=None).

    timeout: seconds every wait may take (default: AICC_COLLECTIVE_TIMEOUT, else 300;
    float("inf") or >= 1e9: no deadline, a dead process is still noticed).
    slot_bytes / oneshot_bytes: shm transport tuning, the same on every rank (defaults:
    AICC_SHM_SLOT_BYTES / AICC_SHM_ONESHOT_BYTES, else 1 MiB / 64 KiB; slot_bytes from
    64 KiB to 1 GiB, oneshot_bytes >= 0).
    Calling init again with the same kind returns the same communicator (a shm job is
    joined once per process).
    """
    global _default
    if not isinstance(kind, str) or kind not in KINDS:
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    resolved = detect_kind() if kind == "auto" else kind
    tout = resolve_timeout(timeout)
    slot_bytes = resolve_slot_bytes(slot_bytes)
    oneshot_bytes = resolve_oneshot_bytes(oneshot_bytes)
    if resolved == "thread":
        comm = _current_thread_comm()
        if comm is None:
            raise ValueError("kind: expected 'thread' only inside ak.collective.run_threads (or use thread_group), "
                             "got a call from a thread that is not a rank")
        if timeout is not None:
            comm.timeout = tout
        return comm
    with _lock:
        if _default is not None and _default.kind == resolved:
            if timeout is not None:
                _default.timeout = tout
            return _default
        if resolved == "single":
            comm = thread_group(1, timeout=tout, slot_bytes=slot_bytes, oneshot_bytes=oneshot_bytes, kind="single")[0]
        elif resolved == "shm":
            from .. import _aicc_cpu

            job = os.environ.get("AICC_LAUNCH_JOB")
            if not job:
                raise ValueError("kind: expected 'shm' only in a process started by `python -m aicc_kernels.launch`, "
                                 "got no AICC_LAUNCH_JOB in the environment")
            native = _aicc_cpu.join_shm(job, _env_int("AICC_LAUNCH_RANK"), _env_int("AICC_LAUNCH_SIZE"), tout,
                                        int(slot_bytes), int(oneshot_bytes))
            comm = NativeCommunicator(native, "shm")
        else:
            try:
                from .mpi import MpiCommunicator

                comm = MpiCommunicator(timeout=tout)
            except ImportError as exc:
                raise ValueError(f"kind: 'mpi' needs mpi4py and an MPI library, got ImportError: {exc}") from None
        _default = comm
        return comm


def default_communicator() -> Communicator:
    """The communicator the ops use for comm=None: the calling thread's rank inside
    run_threads, else the one init() returned (init("auto") on first use)."""
    comm = _current_thread_comm()
    if comm is not None:
        return comm
    return _default if _default is not None else init()


__all__ = ["init", "Communicator", "CollectiveError", "run_threads", "thread_group", "default_communicator",
           "detect_kind", "KINDS", "DEFAULT_TIMEOUT"]
