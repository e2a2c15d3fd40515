"""The argument-layer fuzz target (tests/fuzz_arguments.py) in a subprocess with a deadline:
a crash (SIGSEGV, abort) or a hang fails this test and the log names the example that was
running, instead of taking the whole suite down. AICC_FUZZ_EXAMPLES sets the examples per
op (default 600: 13 ops, about a minute on the 2-core CI machine)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("aicc_kernels._aicc_cpu", reason="the C++ extension is not built")

TARGET = str(Path(__file__).with_name("fuzz_arguments.py"))
DEADLINE_S = 240


def test_argument_layer_fuzz_target(tmp_path):
    examples = int(os.environ.get("AICC_FUZZ_EXAMPLES", "600"))
    log = tmp_path / "fuzz.log"
    env = dict(os.environ)
    for name in ("AICC_NUM_THREADS", "AICC_COLLECTIVE_TIMEOUT", "AICC_SHM_SLOT_BYTES", "AICC_SHM_ONESHOT_BYTES"):
        env.pop(name, None)
    try:
        p = subprocess.run([sys.executable, TARGET, "--examples", str(examples), "--log", str(log)],
                           capture_output=True, text=True, timeout=DEADLINE_S, env=env)
    except subprocess.TimeoutExpired:
        last = log.read_text().splitlines()[-1:] if log.exists() else []
        pytest.fail(f"the fuzz target hung past {DEADLINE_S} s; last example: {last}")
    if p.returncode < 0:
        last = log.read_text().splitlines()[-1:] if log.exists() else []
        pytest.fail(f"the fuzz target crashed ({signal.Signals(-p.returncode).name}); last example: {last}")
    assert p.returncode == 0, p.stdout[-6000:] + p.stderr[-3000:]
    summary = re.search(r"fuzz: examples=(\d+) results=(\d+) errors=(\d+) seconds=([\d.]+)", p.stdout)
    assert summary, p.stdout
    total, results, errors = (int(summary.group(i)) for i in (1, 2, 3))
    print(p.stdout)  # per-op counts and times, shown with -s / in CI logs
    assert total >= 13 * examples  # more when hypothesis shrank a failure
    # The oracle must have compared real results, not only errors.
    assert results >= total // 20 and errors >= total // 4
