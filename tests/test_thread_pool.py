"""The thread pool under fork (D1) and its size limits (D7).

Every fork scenario runs in a fresh interpreter under a deadline: a regression hangs the
child, and the deadline turns that into a failure instead of a hung CI job.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import aicc_kernels as ak
from aicc_kernels import _config

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX-only")

DEADLINE_S = 60


def _run(code: str, env=None):
    full_env = dict(os.environ)
    full_env.pop("AICC_NUM_THREADS", None)
    full_env.update(env or {})
    try:
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                              timeout=DEADLINE_S, env=full_env)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"hung for {DEADLINE_S} s (fork deadlock?); output so far: {exc.stdout!r} {exc.stderr!r}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


_PRELUDE = """
import os, sys, threading, time
import numpy as np
import aicc_kernels as ak
ak.set_num_threads(4)        # workers exist even on a 1-core machine
a = np.random.default_rng(0).standard_normal((512, 512)).astype(np.float32)
expected = a.astype(np.float64) @ a.astype(np.float64)
def check(y):
    assert np.allclose(y, expected, rtol=1e-3, atol=1e-2), "wrong result"

def in_child(body):
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            body()
            code = 0
        except BaseException as exc:
            print("child failed:", repr(exc), flush=True)
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, status
"""


def _child_body():
    return ("def body():\n"
            "    assert ak.get_num_threads() == 4\n"
            "    for _ in range(3):\n"
            "        check(ak.matmul(a, a))\n")


@pytest.mark.parametrize("runs", range(3))
def test_bare_fork_after_pool_went_idle_child_computes(runs):
    """The reported hang: workers asleep on the condition variable when the parent forks."""
    _run(_PRELUDE + _child_body() + """
check(ak.matmul(a, a))
time.sleep(0.5)              # the workers stop spinning and sleep on the condition variable
in_child(body)
check(ak.matmul(a, a))       # the parent's pool is untouched
print("ok")
""")


@pytest.mark.parametrize("runs", range(3))
def test_bare_fork_while_pool_is_busy_child_computes(runs):
    """Another thread is inside a kernel (pool mutex held, workers mid-job) at the fork."""
    _run(_PRELUDE + _child_body() + """
b = np.random.default_rng(1).standard_normal((1536, 1536)).astype(np.float32)
stop = threading.Event()
def churn():
    while not stop.is_set():
        ak.matmul(b, b)
t = threading.Thread(target=churn)
t.start()
time.sleep(0.2)
for _ in range(4):
    in_child(body)
stop.set()
t.join()
check(ak.matmul(a, a))
print("ok")
""")


def test_bare_fork_right_after_a_kernel_while_workers_spin():
    _run(_PRELUDE + _child_body() + """
for _ in range(5):
    check(ak.matmul(a, a))   # no sleep: workers are still spinning at the fork
    in_child(body)
print("ok")
""")


def test_multiprocessing_fork_pool_workers_compute():
    """multiprocessing's fork start method (DataLoader workers fork the same way)."""
    out = _run(_PRELUDE + """
import multiprocessing as mp
def work(seed):
    x = np.random.default_rng(seed).standard_normal((256, 384)).astype(np.float32)
    y = ak.matmul(x, x.T)
    return float(np.abs(y - x.astype(np.float64) @ x.T.astype(np.float64)).max()), ak.get_num_threads()

check(ak.matmul(a, a))
time.sleep(0.5)
ctx = mp.get_context("fork")
with ctx.Pool(3) as pool:
    results = pool.map(work, range(12))
assert all(err < 1e-2 and threads == 4 for err, threads in results), results
check(ak.matmul(a, a))
print("ok", len(results))
""")
    assert out.strip() == "ok 12"


# -- D7: thread count limits and AICC_NUM_THREADS parsing ---------------------------------

def test_set_num_threads_bound_is_four_per_core():
    limit = _config.max_threads()
    assert limit == 4 * max(os.cpu_count() or 1, len(os.sched_getaffinity(0)))
    previous = ak.get_num_threads()
    try:
        ak.set_num_threads(limit)
        assert ak.get_num_threads() == limit
        for bad in (limit + 1, 10**9, 2**31, 2**63, 2**80, -1):
            with pytest.raises(ValueError, match=r"^n: expected a thread count from 1 to \d+"):
                ak.set_num_threads(bad)
        assert ak.get_num_threads() == limit
    finally:
        ak.set_num_threads(previous)


@pytest.mark.parametrize("bad", [1.5, "2", None, True])
def test_set_num_threads_wrong_type_names_n(bad):
    with pytest.raises(TypeError, match="^n: expected an integer thread count"):
        ak.set_num_threads(bad)


def test_set_num_threads_zero_restores_the_env_default():
    _run("""
import aicc_kernels as ak
assert ak.get_num_threads() == 3
ak.set_num_threads(1); ak.set_num_threads(0)
assert ak.get_num_threads() == 3, ak.get_num_threads()
""", env={"AICC_NUM_THREADS": "3"})


@pytest.mark.parametrize("value", ["1e3", "2abc", "abc", "-3", "100000", "99999999999999999999", "0x4", "2.0"])
def test_bad_aicc_num_threads_is_a_value_error_naming_it(value):
    out = _run("""
import numpy as np
import aicc_kernels as ak
for call in (ak.get_num_threads, lambda: ak.matmul(np.ones((64, 64), np.float32), np.ones((64, 64), np.float32))):
    try:
        call()
    except ValueError as exc:
        print(exc)
    else:
        raise SystemExit("accepted")
""", env={"AICC_NUM_THREADS": value})
    lines = out.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        assert line.startswith("AICC_NUM_THREADS: expected a whole number of threads from 1 to "), line
        assert repr(value) in line


@pytest.mark.parametrize("value,expected", [("2", 2), (" 3 ", 3), ("0", None), ("", None)])
def test_good_aicc_num_threads(value, expected):
    out = _run("import aicc_kernels as ak, os; print(ak.get_num_threads(), len(os.sched_getaffinity(0)))",
               env={"AICC_NUM_THREADS": value})
    threads, cores = map(int, out.split())
    assert threads == (expected if expected is not None else cores)
