"""The MPI communicator, run for real under mpirun with 1-4 ranks (oversubscribed on a
small machine). Skips, saying why, where mpi4py or an MPI launcher is missing."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("aicc_kernels._aicc_cpu", reason="the C++ extension is not built")
pytest.importorskip("mpi4py", reason="mpi4py is not installed (pip install mpi4py; .ci/run installs it)")
MPIRUN = shutil.which("mpirun") or shutil.which("mpiexec")
if MPIRUN is None:
    pytest.skip("no MPI launcher (mpirun/mpiexec) on PATH; .ci/run installs Open MPI", allow_module_level=True)

WORKER = str(Path(__file__).with_name("collective_worker.py"))


def mpirun(n, *args, timeout=180):
    cmd = [MPIRUN, "-n", str(n)]
    probe = subprocess.run([MPIRUN, "--version"], capture_output=True, text=True)
    if "Open MPI" in probe.stdout + probe.stderr:
        cmd[1:1] = ["--allow-run-as-root", "--oversubscribe"]
    return subprocess.run(cmd + [sys.executable, WORKER, *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.mpi
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_battery_under_mpirun(n):
    p = mpirun(n, "battery")
    assert p.returncode == 0, p.stdout + p.stderr
    assert sorted(re.findall(r"rank \d+/\d+ \w+(?=: \d+ checks OK)", p.stdout)) == [f"rank {r}/{n} mpi" for r in range(n)]


@pytest.mark.mpi
def test_mismatch_is_named_under_mpirun():
    p = mpirun(2, "mismatch")
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("collective mismatch at call #1: rank 0 called allreduce(op=sum, dtype=f32, count=10, shape=(10,)), "
                          "rank 1 called allreduce(op=sum, dtype=f32, count=11, shape=(11,))") == 2


@pytest.mark.mpi
def test_deadline_under_mpirun():
    p = mpirun(2, "timeout", "1.0")
    assert "TIMEOUT rank 0" in p.stdout and "timed out after 1 s in call #1" in p.stdout, p.stdout + p.stderr
