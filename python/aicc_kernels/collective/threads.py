"""The thread communicator: N ranks as threads of one process, over the same C++
algorithms as shm (process memory instead of a shared segment).

    results = ak.collective.run_threads(4, fn, *args)   # fn(comm, *args) on 4 threads
    comms = ak.collective.thread_group(4)               # or drive the ranks yourself

Inside run_threads, `ak.collective.init()` (kind "auto" or "thread") and the ops' default
`comm=None` resolve to the calling thread's rank. An exception in one rank aborts the
group: the other ranks' waits raise CollectiveError naming it, and run_threads re-raises
the original exception.
"""

from __future__ import annotations

import threading

from .communicator import (DEFAULT_ONESHOT_BYTES, DEFAULT_SLOT_BYTES, NativeCommunicator, resolve_oneshot_bytes,
                           resolve_slot_bytes, resolve_timeout)
from .errors import CollectiveError

class _Local(threading.local):
    comm = None  # a class default: reading it never raises (getattr with a default costs ~1 us)


_local = _Local()


def current():
    """The calling thread's communicator inside run_threads, else None."""
    return _local.comm


def thread_group(size: int, *, timeout=None, slot_bytes: int = DEFAULT_SLOT_BYTES,
                 oneshot_bytes: int = DEFAULT_ONESHOT_BYTES, kind: str = "thread"):
    """`size` communicators sharing one in-process region; give rank r to thread r."""
    from .. import _aicc_cpu
    from .._validation import as_int

    size = as_int(size, "size", minimum=1, maximum=64)
    natives = _aicc_cpu.thread_group(size, resolve_timeout(timeout), resolve_slot_bytes(slot_bytes),
                                     resolve_oneshot_bytes(oneshot_bytes))
    return [NativeCommunicator(n, kind) for n in natives]


def run_threads(size: int, fn, *args, timeout=None, slot_bytes: int = DEFAULT_SLOT_BYTES,
                oneshot_bytes: int = DEFAULT_ONESHOT_BYTES):
    """Runs fn(comm, *args) on `size` threads, one rank each; returns the results by rank."""
    comms = thread_group(size, timeout=timeout, slot_bytes=slot_bytes, oneshot_bytes=oneshot_bytes)
    results = [None] * size
    errors = [None] * size

    def body(rank):
        _local.comm = comms[rank]
        try:
            results[rank] = fn(comms[rank], *args)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller below
            errors[rank] = exc
            comms[rank].abort(f"rank {rank} raised {type(exc).__name__}: {exc}")
        finally:
            _local.comm = None

    threads = [threading.Thread(target=body, args=(r,), name=f"aicc-rank-{r}", daemon=True) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failed = [e for e in errors if e is not None]
    if failed:
        # The rank that failed first is the one whose error is not a consequence of the abort.
        primary = next((e for e in failed if not isinstance(e, CollectiveError)), failed[0])
        raise primary
    return results
