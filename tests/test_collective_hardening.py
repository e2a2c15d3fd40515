"""Collectives under abuse: absurd tuning values (D2), segments planted or named by another
user (D3, D4), shapes that differ with equal counts (D5), infinite timeouts (D6), and a
launcher killed while its ranks start (D9). Multi-process cases run under deadlines."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

import aicc_kernels as ak
from aicc_kernels.collective import CollectiveError

_ext = pytest.importorskip("aicc_kernels._aicc_cpu", reason="the C++ extension is not built")
HAVE_SHM = Path("/dev/shm").is_dir()
needs_shm = pytest.mark.skipif(not HAVE_SHM, reason="no /dev/shm: POSIX shared memory is not available here")
WORKER = str(Path(__file__).with_name("collective_worker.py"))
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
OTHER_UID = 65534  # nobody
as_second_uid = pytest.mark.skipif(not IS_ROOT, reason="needs root to act as a second user (os.setuid in a child)")


def launch(n, *args, env=None, job=None, timeout=120):
    cmd = [sys.executable, "-m", "aicc_kernels.launch", "-n", str(n)]
    if job:
        cmd += ["--job-id", job]
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout, env=full_env)


def as_user(uid, fn):
    """Runs fn() in a forked child with uid/gid `uid`; raises if it failed."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgid(uid)
            os.setuid(uid)
            fn()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the second-user step failed"


def job_id(tag):
    return f"harden_{tag}_{os.getpid()}_{uuid.uuid4().hex[:8]}"


# -- D2: slot_bytes / AICC_SHM_SLOT_BYTES bounds ----------------------------------------

def _allreduce_ones(c):
    return ak.allreduce(np.ones(16, np.float32), comm=c)


@pytest.mark.parametrize("slot", [2**61, 2**62, 2**63 - 1, 2**31, (1 << 30) + 1, 65535, 0, -1])
def test_slot_bytes_out_of_range_is_a_value_error(slot):
    with pytest.raises(ValueError, match=rf"^slot_bytes: expected 65536 to 1073741824 bytes, got {slot}$"):
        ak.collective.run_threads(3, _allreduce_ones, slot_bytes=slot)


def test_slot_bytes_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="^slot_bytes: expected an integer number of bytes, got float"):
        ak.collective.run_threads(2, _allreduce_ones, slot_bytes=1e6)
    with pytest.raises(TypeError, match="^oneshot_bytes: expected an integer"):
        ak.collective.run_threads(2, _allreduce_ones, oneshot_bytes="64k")
    with pytest.raises(ValueError, match="^oneshot_bytes: expected >= 0 bytes, got -5"):
        ak.collective.run_threads(2, _allreduce_ones, oneshot_bytes=-5)


def test_slot_bytes_at_the_bounds_work():
    for slot in (65536, 1 << 20):
        out = ak.collective.run_threads(2, _allreduce_ones, slot_bytes=slot)
        assert all(np.array_equal(y, np.full(16, 2, np.float32)) for y in out)


def test_cpp_layer_checks_slot_bytes_too():
    with pytest.raises(ValueError, match="^slot_bytes: expected 65536 to 1073741824 bytes, got 2305843009213693952"):
        _ext.thread_group(3, 1.0, 2**61, 0)
    with pytest.raises(ValueError, match="^oneshot_bytes: expected a number of bytes >= 0, got -1"):
        _ext.thread_group(3, 1.0, 65536, -1)


@pytest.mark.parametrize("value,message", [
    ("2305843009213693952", "AICC_SHM_SLOT_BYTES: expected 65536 to 1073741824 bytes, got 2305843009213693952"),
    ("lots", "AICC_SHM_SLOT_BYTES: expected a whole number of bytes, got 'lots'"),
])
def test_slot_bytes_env_is_named(monkeypatch, value, message):
    monkeypatch.setenv("AICC_SHM_SLOT_BYTES", value)
    with pytest.raises(ValueError) as info:
        ak.collective.init("single")
    assert str(info.value) == message


@needs_shm
def test_slot_bytes_env_under_the_launcher_fails_every_rank_cleanly():
    p = launch(3, WORKER, "battery", env={"AICC_SHM_SLOT_BYTES": str(2**61)})
    assert p.returncode == 1, p.stdout + p.stderr
    assert "ValueError: AICC_SHM_SLOT_BYTES: expected 65536 to 1073741824 bytes, got 2305843009213693952" in p.stderr
    assert "Segmentation" not in p.stderr and "SIGSEGV" not in p.stderr


# -- D6: infinite and huge timeouts -------------------------------------------------------

@pytest.mark.parametrize("timeout", [float("inf"), 1e10, 1e300, 2**70])
def test_huge_timeout_means_no_deadline_thread(timeout):
    def body(c):
        if c.rank == 1:
            time.sleep(0.3)  # the other rank waits: with an overflowed deadline it failed at once
        return ak.allreduce(np.ones(8, np.float32), comm=c)

    out = ak.collective.run_threads(2, body, timeout=timeout)
    assert all(np.array_equal(y, np.full(8, 2, np.float32)) for y in out)


def test_timeout_setter_accepts_inf_and_rejects_nonsense():
    comms = ak.collective.thread_group(1)
    comms[0].timeout = float("inf")
    assert comms[0].timeout == float("inf")
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="^timeout: expected a positive number of seconds"):
            comms[0].timeout = bad
    with pytest.raises(TypeError, match="^timeout: expected a number of seconds"):
        comms[0].timeout = "10"


@pytest.mark.parametrize("value", ["0", "-3", "nan"])
def test_bad_timeout_env_is_named(monkeypatch, value):
    monkeypatch.setenv("AICC_COLLECTIVE_TIMEOUT", value)
    with pytest.raises(ValueError, match="^AICC_COLLECTIVE_TIMEOUT: expected a positive number of seconds"):
        ak.collective.run_threads(2, _allreduce_ones)


@needs_shm
@pytest.mark.parametrize("value", ["inf", "1e10"])
def test_huge_timeout_env_under_the_launcher(value):
    p = launch(2, WORKER, "mismatch", env={"AICC_COLLECTIVE_TIMEOUT": value}, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("USABLE") == 2


# -- D5: shapes, not only counts ----------------------------------------------------------

SHAPE_MESSAGES = {
    "allreduce": "rank 0 called allreduce(op=sum, dtype=f32, count=6, shape=(2, 3)), "
                 "rank 1 called allreduce(op=sum, dtype=f32, count=6, shape=(3, 2))",
    "reduce_scatter": "rank 0 called reduce_scatter(op=sum, dtype=f32, count=12, shape=(3, 4)), "
                      "rank 1 called reduce_scatter(op=sum, dtype=f32, count=12, shape=(4, 3))",
    "all_gather": "rank 0 called all_gather(dtype=f32, count=6, shape=(2, 3)), "
                  "rank 1 called all_gather(dtype=f32, count=6, shape=(3, 2))",
    "broadcast": "rank 0 called broadcast(dtype=f32, count=6, shape=(2, 3), root=0), "
                 "rank 1 called broadcast(dtype=f32, count=6, shape=(3, 2), root=0)",
}


def _check_shape_lines(stdout, size):
    for name, expected in SHAPE_MESSAGES.items():
        lines = [line for line in stdout.splitlines() if line.startswith("SHAPE") and f" {name}: " in line]
        assert len(lines) == size, (name, stdout)
        for line in lines:
            assert line.endswith(expected), line
    assert "ACCEPTED" not in stdout
    assert stdout.count("USABLE") == size


def test_shape_mismatch_every_collective_thread():
    sys.path.insert(0, str(Path(WORKER).parent))
    try:
        import collective_worker
    finally:
        sys.path.pop(0)

    def body(c):
        lines = []
        for name, call in collective_worker.shape_mismatch_calls(c):
            try:
                call()
                lines.append(f"ACCEPTED rank {c.rank} {name}")
            except CollectiveError as exc:
                lines.append(f"SHAPE rank {c.rank} {name}: {exc}")
        assert np.all(ak.allreduce(np.ones(4, np.float32), comm=c) == c.size)
        lines.append(f"USABLE rank {c.rank}")
        return lines

    out = ak.collective.run_threads(2, body)
    _check_shape_lines("\n".join(sum(out, [])), 2)


def test_same_shape_high_rank_arrays_still_work_and_differences_past_six_dims_are_caught():
    shape = (1, 2, 1, 3, 1, 2, 2, 1)

    def body(c):
        y = ak.allreduce(np.ones(shape, np.float32), comm=c)
        other = shape if c.rank == 0 else shape[:-2] + (1, 2)
        with pytest.raises(CollectiveError, match=r"shape=\(1, 2, 1, 3, 1, \.\.\.\) \[8-d\]"):
            ak.allreduce(np.ones(other, np.float32), comm=c)
        return y

    for y in ak.collective.run_threads(2, body):
        assert y.shape == shape and np.all(y == 2)


@needs_shm
def test_shape_mismatch_every_collective_shm():
    p = launch(2, WORKER, "shape_mismatch", timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    _check_shape_lines(p.stdout, 2)


@pytest.mark.mpi
def test_shape_mismatch_every_collective_mpi():
    pytest.importorskip("mpi4py", reason="mpi4py is not installed")
    mpirun = shutil.which("mpirun") or shutil.which("mpiexec")
    if mpirun is None:
        pytest.skip("no MPI launcher (mpirun/mpiexec) on PATH")
    cmd = [mpirun, "-n", "2"]
    probe = subprocess.run([mpirun, "--version"], capture_output=True, text=True)
    if "Open MPI" in probe.stdout + probe.stderr:
        cmd[1:1] = ["--allow-run-as-root", "--oversubscribe"]
    p = subprocess.run(cmd + [sys.executable, WORKER, "shape_mismatch"], capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stdout + p.stderr
    _check_shape_lines(p.stdout, 2)


# -- D3: a segment planted by another user ------------------------------------------------

def _plant(job, mode, size_bytes):
    path = f"/dev/shm/aicc_{job}"

    def make():
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, mode)
        os.fchmod(fd, mode)  # umask would narrow it
        os.ftruncate(fd, size_bytes)
        os.close(fd)
    return path, make


def _expected_bytes(size, slot=1 << 20):
    """The region size join_shm expects, taken from a real job's layout error message."""
    job = job_id("probe")
    path, make = _plant(job, 0o600, 4096)
    make()
    try:
        with pytest.raises(CollectiveError, match=r"expected (\d+)") as info:
            _ext.join_shm(job, 1, size, 2.0, slot, 65536)
        import re
        return int(re.search(r"expected (\d+)", str(info.value)).group(1))
    finally:
        os.unlink(path)


@needs_shm
@as_second_uid
def test_rank_refuses_segment_planted_by_another_uid():
    job = job_id("d3")
    path, make = _plant(job, 0o666, _expected_bytes(2))
    as_user(OTHER_UID, make)
    try:
        assert os.stat(path).st_uid == OTHER_UID
        t0 = time.monotonic()
        with pytest.raises(CollectiveError) as info:
            _ext.join_shm(job, 1, 2, 5.0, 1 << 20, 65536)
        assert time.monotonic() - t0 < 2.0  # refused at once, not after the timeout
        assert f"is owned by uid {OTHER_UID} with mode 0666" in str(info.value)
        assert "refusing a segment planted by someone else" in str(info.value)
        # The same through the launcher: rank 0 cannot create it, rank 1 must not attach.
        p = launch(2, WORKER, "battery", job=job, timeout=60)
        assert p.returncode != 0
        assert "another job uses this id" in p.stderr
        assert "refusing a segment planted by someone else" in p.stderr
        assert "checks OK" not in p.stdout
        assert os.stat(path).st_uid == OTHER_UID  # the launcher does not delete what it does not own
    finally:
        os.unlink(path)


@needs_shm
def test_rank_refuses_own_segment_with_a_wider_mode():
    job = job_id("d3mode")
    path, make = _plant(job, 0o644, _expected_bytes(2))
    make()
    try:
        with pytest.raises(CollectiveError, match=f"owned by uid {os.geteuid()} with mode 0644"):
            _ext.join_shm(job, 1, 2, 5.0, 1 << 20, 65536)
    finally:
        os.unlink(path)


# -- D4: the launcher validates the job id before using it as a path -----------------------

@needs_shm
@pytest.mark.parametrize("second_user", [pytest.param(True, marks=as_second_uid), False])
def test_launcher_rejects_path_traversal_job_id(tmp_path, second_user):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    d = job_id("d4")
    planted = Path(f"/dev/shm/aicc_{d}")
    if second_user:
        as_user(OTHER_UID, lambda: os.mkdir(planted))
    else:
        planted.mkdir()
    try:
        job = f"{d}/../../..{victim}"
        p = launch(1, WORKER, "battery", job=job, timeout=60)
        assert p.returncode == 2, p.stdout + p.stderr
        assert "--job-id: expected 1-200 characters from [A-Za-z0-9_-], got " in p.stderr
        assert victim.read_text() == "precious"
    finally:
        planted.rmdir()


@pytest.mark.parametrize("job", ["", "a b", "x" * 201, "a/b", "..", "é"])
def test_launcher_rejects_bad_job_ids(job):
    p = launch(1, "-c", "pass", job=job or None, timeout=60) if job else None
    if p is not None:
        assert p.returncode == 2 and "--job-id" in p.stderr
    from aicc_kernels.launch import segment_path

    with pytest.raises(ValueError, match="^job: expected 1-200 characters"):
        segment_path(job)


# -- D9: no segment outlives its job, even when the launcher is SIGKILLed ------------------

@needs_shm
def test_launcher_sigkilled_while_ranks_start_leaves_no_segment(tmp_path):
    job = job_id("d9")
    seg = Path(f"/dev/shm/aicc_{job}")
    script = tmp_path / "slow_start.py"
    script.write_text(textwrap.dedent("""
        import os, time
        import aicc_kernels as ak
        if os.environ["AICC_LAUNCH_RANK"] != "0":
            time.sleep(60)  # still starting when the launcher dies
        ak.collective.init(timeout=60)
    """))
    proc = subprocess.Popen([sys.executable, "-m", "aicc_kernels.launch", "-n", "2", "--job-id", job, str(script)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not seg.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "rank 0 never created the segment"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 15
        while seg.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not seg.exists(), "the segment outlived its job"
    finally:
        if proc.poll() is None:
            proc.kill()
        if seg.exists():
            seg.unlink()


@needs_shm
def test_normal_job_end_leaves_no_segment_and_no_reaper_unlink_of_a_reused_id(tmp_path):
    job = job_id("d9ok")
    p = launch(2, WORKER, "mismatch", job=job, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert not Path(f"/dev/shm/aicc_{job}").exists()
    # The id is free for a new job right away: the first job's reaper said goodbye and
    # removes nothing later.
    p = launch(2, WORKER, "mismatch", job=job, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
