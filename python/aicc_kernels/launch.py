"""Starts a shared-memory collective job on this host, like torchrun:

    python -m aicc_kernels.launch -n 4 script.py [args...]
    python -m aicc_kernels.launch -n 4 -m package.module [args...]

Each rank is a child process with AICC_LAUNCH_JOB / AICC_LAUNCH_RANK / AICC_LAUNCH_SIZE
(and RANK / WORLD_SIZE / LOCAL_RANK / LOCAL_WORLD_SIZE / MASTER_ADDR / MASTER_PORT for
torch.distributed) in its environment; ak.collective.init() then joins the job's segment.

The job ends as one: when a rank exits with an error (an uncaught exception, a signal),
the launcher gives the others `--grace` seconds (their waits fail with a CollectiveError
naming the dead rank within ~10 ms), then SIGTERM, then SIGKILL, and exits with the
first failing rank's status. Rank r is bound to the r-th allowed core unless the job is
oversubscribed (--bind none to disable). Children die with the launcher (PR_SET_PDEATHSIG).

No shared-memory segment outlives its job: the ranks unlink the segment's name as soon as
all have mapped it; before that, the launcher removes it when the job ends, and a small
reaper process removes it if the launcher itself is killed (SIGKILL included) while the
ranks are still starting.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
import uuid


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _child_setup(cpu):
    """Runs in the child between fork and exec: die with the launcher, and bind to one core."""
    def setup():
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except Exception:  # noqa: BLE001 - best effort on non-Linux systems
            pass
        if cpu is not None:
            try:
                os.sched_setaffinity(0, {cpu})
            except (AttributeError, OSError):
                pass
    return setup


def _binding(nproc: int, mode: str):
    """Core per rank, like Open MPI's default (--bind-to core for small jobs): ranks that spin
    on shared flags must not be stacked on one core by the scheduler. No binding when there
    are more ranks than cores (oversubscribed) or with --bind none."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return [None] * nproc
    if mode == "none" or nproc > len(cpus):
        return [None] * nproc
    return [cpus[r] for r in range(nproc)]


#: What join_shm accepts: the id becomes part of a file name under /dev/shm.
JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")


def segment_path(job: str) -> str:
    if not JOB_ID.fullmatch(job):
        raise ValueError(f"job: expected 1-200 characters from [A-Za-z0-9_-], got {job!r}")
    return f"/dev/shm/aicc_{job}"


def _remove_segment(path: str) -> None:
    """Unlinks the job's segment name if it is ours: a file another user planted under the
    job's name (rank 0 then failed with "File exists") is not the launcher's to delete."""
    try:
        st = os.lstat(path)
        if stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid():
            os.unlink(path)
    except OSError:
        pass


def _start_reaper(path: str):
    """Forks a process that unlinks `path` if the launcher dies without saying goodbye.

    The ranks unlink the segment once all of them have mapped it; a launcher killed
    before that (SIGKILL cannot be caught) takes its ranks with it (PR_SET_PDEATHSIG) and
    would leave the segment behind. The reaper sits in its own session, blocked on a pipe
    only the launcher holds open: end of file without the launcher's "done" byte means the
    launcher died, and the reaper removes the name. Returns the pipe's write end."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the reaper: no Python-level cleanup of the launcher's state, only os.* calls
        try:
            os.close(w)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):  # do not hold the launcher's stdout/stderr pipes open
                os.dup2(null, fd)
            os.setsid()
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            if os.fork() != 0:  # detach: the launcher need not reap us, init will
                os._exit(0)
            message = b""
            while True:
                chunk = os.read(r, 16)
                if not chunk:
                    break
                message += chunk
            if message != b"done":
                _remove_segment(path)
        finally:
            os._exit(0)
    os.close(r)
    os.waitpid(pid, 0)  # the intermediate child exits at once
    return w


def _status(code: int) -> str:
    return f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aicc_kernels.launch", description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--nproc", type=int, required=True, help="number of ranks")
    parser.add_argument("--grace", type=float, default=5.0,
                        help="seconds the other ranks get to report a failed rank before they are terminated")
    parser.add_argument("--job-id", default=None, help="job id (default: a fresh unique id)")
    parser.add_argument("--bind", choices=("core", "none"), default=os.environ.get("AICC_LAUNCH_BIND", "core"),
                        help="bind rank r to the r-th allowed core (default: AICC_LAUNCH_BIND, else core; "
                             "skipped when oversubscribed)")
    parser.add_argument("-m", dest="module", default=None, help="run a module instead of a script")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="script.py [args...] (or the module's args)")
    ns = parser.parse_args(argv)
    if ns.nproc < 1 or ns.nproc > 64:
        parser.error(f"-n: expected 1 to 64 ranks, got {ns.nproc}")
    if ns.module is None and not ns.args:
        parser.error("expected a script to run")
    job = ns.job_id or f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
    if not JOB_ID.fullmatch(job):
        # The id names a file under /dev/shm, and the launcher removes that file at the end:
        # an id like "x/../../victim" would make it delete someone else's file.
        parser.error(f"--job-id: expected 1-200 characters from [A-Za-z0-9_-], got {job!r}")
    segment = segment_path(job)
    reaper = _start_reaper(segment)
    command = [sys.executable] + (["-m", ns.module] + ns.args if ns.module else ns.args)
    port = _free_port()
    procs = []
    cpus = _binding(ns.nproc, ns.bind)
    for rank in range(ns.nproc):
        env = dict(os.environ, AICC_LAUNCH_JOB=job, AICC_LAUNCH_RANK=str(rank), AICC_LAUNCH_SIZE=str(ns.nproc),
                   RANK=str(rank), WORLD_SIZE=str(ns.nproc), LOCAL_RANK=str(rank),
                   LOCAL_WORLD_SIZE=str(ns.nproc), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        procs.append(subprocess.Popen(command, env=env, preexec_fn=_child_setup(cpus[rank])))

    stop = {"signal": None}

    def forward(signum, _frame):
        stop["signal"] = signum

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    first_failure = None  # (rank, code)
    reported = set()  # ranks whose failure was printed
    failed_at = None
    terminated_at = None
    try:
        while True:
            codes = [p.poll() for p in procs]
            for rank, code in enumerate(codes):
                if code in (None, 0) or rank in reported:
                    continue
                reported.add(rank)
                # Every failed rank is named, not only the first one seen: the rank that raised
                # first may finish exiting after a peer that saw it go and failed at once.
                if first_failure is None:
                    first_failure = (rank, code)
                    failed_at = time.monotonic()
                    print(f"[aicc launch] rank {rank} failed ({_status(code)}); ending job {job}", file=sys.stderr,
                          flush=True)
                elif terminated_at is None:
                    print(f"[aicc launch] rank {rank} failed ({_status(code)})", file=sys.stderr, flush=True)
            if all(c is not None for c in codes):
                break
            now = time.monotonic()
            if stop["signal"] is not None and failed_at is None:
                failed_at = now - ns.grace
                first_failure = first_failure or (-1, 128 + stop["signal"])
            if failed_at is not None and terminated_at is None and now - failed_at >= ns.grace:
                for p in procs:
                    if p.poll() is None:
                        p.terminate()
                terminated_at = now
            if terminated_at is not None and now - terminated_at >= 2.0:
                for p in procs:
                    if p.poll() is None:
                        p.kill()
            time.sleep(0.02)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        _remove_segment(segment)
        os.write(reaper, b"done")  # every rank is gone and the name removed: nothing to reap
        os.close(reaper)
    if first_failure is None:
        return 0
    code = first_failure[1]
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main())
