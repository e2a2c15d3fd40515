"""The Communicator interface every kind implements, and the C++-backed kinds.

A communicator is one rank of a group. The public ops (aicc_kernels.ops.collective)
validate arguments and hand contiguous arrays to the communicator's private methods:

    _allreduce(x, out, op, compression)     op: "sum" | "avg" | "max" | "min"
    _reduce_scatter(x, out, offsets, op)     offsets: size+1 element offsets into x.ravel()
    _all_gather(x, out)
    _broadcast(buf, root)                    in place
"""

from __future__ import annotations

import os

OPS = {"sum": 0, "avg": 1, "max": 2, "min": 3}
COMPRESSIONS = {None: 0, "fp16": 1, "bf16": 2, "int8": 3}

DEFAULT_TIMEOUT = 300.0
#: Per-rank staging buffer (one pipeline chunk) of the shm / thread transport.
DEFAULT_SLOT_BYTES = 1 << 20
#: Allreduce messages up to this many wire bytes use the one-shot algorithm.
DEFAULT_ONESHOT_BYTES = 64 << 10
#: slot_bytes bounds (the region holds 2 * (size + 1) slots; the C++ layer checks the same).
MIN_SLOT_BYTES = 1 << 16
MAX_SLOT_BYTES = 1 << 30
#: A timeout of this many seconds or more (float("inf") included) means no deadline.
NO_DEADLINE_SECONDS = 1e9


def resolve_bytes(value, name: str, env: str, default: int, minimum: int, maximum=None) -> int:
    """A byte count from the argument `name`, else the environment variable `env`, else
    `default`; the error names whichever of the two the value came from."""
    import operator

    source = name
    if value is None:
        text = os.environ.get(env)
        if not text:
            return default
        source = env
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError(f"{env}: expected a whole number of bytes, got {text!r}") from None
    elif isinstance(value, bool):
        raise TypeError(f"{name}: expected an integer number of bytes, got bool")
    else:
        try:
            value = operator.index(value)
        except TypeError:
            raise TypeError(f"{name}: expected an integer number of bytes, got {type(value).__name__}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"{minimum} to {maximum}" if maximum is not None else f">= {minimum}"
        raise ValueError(f"{source}: expected {bound} bytes, got {value}")
    return value


def resolve_slot_bytes(value=None) -> int:
    return resolve_bytes(value, "slot_bytes", "AICC_SHM_SLOT_BYTES", DEFAULT_SLOT_BYTES, MIN_SLOT_BYTES,
                         MAX_SLOT_BYTES)


def resolve_oneshot_bytes(value=None) -> int:
    return resolve_bytes(value, "oneshot_bytes", "AICC_SHM_ONESHOT_BYTES", DEFAULT_ONESHOT_BYTES, 0)


def resolve_timeout(timeout) -> float:
    """init(timeout=...) wins, then AICC_COLLECTIVE_TIMEOUT (seconds), then 300 s.
    float("inf") (or any value >= NO_DEADLINE_SECONDS) means no deadline."""
    source = "timeout"
    if timeout is None:
        env = os.environ.get("AICC_COLLECTIVE_TIMEOUT")
        if env:
            source = "AICC_COLLECTIVE_TIMEOUT"
            try:
                timeout = float(env)
            except ValueError:
                raise ValueError(f"AICC_COLLECTIVE_TIMEOUT: expected seconds, got {env!r}") from None
        else:
            timeout = DEFAULT_TIMEOUT
    if isinstance(timeout, (bool, str, bytes)):
        raise TypeError(f"timeout: expected a number of seconds, got {type(timeout).__name__} {timeout!r}")
    try:
        timeout = float(timeout)
    except (TypeError, ValueError, OverflowError):
        raise TypeError(f"timeout: expected a number of seconds, got {timeout!r}") from None
    if not timeout > 0:
        raise ValueError(f"{source}: expected a positive number of seconds (inf: no deadline), got {timeout}")
    return timeout


class Communicator:
    """One rank of a group: `rank`, `size`, `kind` ("thread" | "shm" | "mpi" | "single")."""

    kind = "?"

    def __init__(self, rank: int, size: int, timeout: float):
        self.rank = rank
        self.size = size
        self._timeout = timeout

    @property
    def timeout(self) -> float:
        """Deadline, in seconds, of every wait inside a collective."""
        return self._timeout

    @timeout.setter
    def timeout(self, seconds) -> None:
        self._timeout = resolve_timeout(seconds)

    def barrier(self) -> None:
        raise NotImplementedError

    @property
    def wire_bytes(self) -> int:
        """Bytes this rank has put on the transport so far (staging writes / MPI sends)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"Communicator(rank={self.rank}, size={self.size}, kind={self.kind!r})"


class NativeCommunicator(Communicator):
    """A rank of the C++ transport: POSIX shared memory ("shm") or process memory
    ("thread", "single")."""

    def __init__(self, native, kind: str):
        super().__init__(native.rank, native.size, native.timeout)
        self._native = native
        self.kind = kind

    @Communicator.timeout.setter
    def timeout(self, seconds) -> None:
        self._timeout = resolve_timeout(seconds)
        self._native.timeout = self._timeout

    @property
    def wire_bytes(self) -> int:
        return self._native.wire_bytes

    def barrier(self) -> None:
        self._native.barrier()

    def abort(self, why: str) -> None:
        """Fails every rank's current and next wait with CollectiveError(why)."""
        self._native.abort(why)

    def _allreduce(self, x, out, op, compression):
        self._native.allreduce(x, out, OPS[op], COMPRESSIONS[compression])

    def _reduce_scatter(self, x, out, offsets, op):
        self._native.reduce_scatter(x, out, offsets, OPS[op])

    def _all_gather(self, x, out):
        self._native.all_gather(x, out)

    def _broadcast(self, buf, root):
        self._native.broadcast(buf, root)
