"""aicc-bench cluster's figures, checked where the truth is known: a fake communicator whose
ranks are threads, with injected delays (one rank computes longer by a known amount, the
collective itself takes a known time once every rank arrived). The step must split into
compute / wait / comm as docs/BENCHMARKS.md says, the imbalance must land in `wait` and not
in the bandwidth, the overlap must hide what it can, and no % of peak may exceed 100."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from hypothesis import given, strategies as st

import aicc_kernels as ak
from aicc_kernels.bench import cli, cluster, report
from aicc_kernels.bench.record import make_result


class FakeGroup:
    """One rank of an in-process group whose ranks are threads.

    Time is virtual (`clock`, `work`), so the injected delays are exact whatever the load of
    the machine: `work(s)` is s seconds of this rank's compute; a barrier ends for every rank
    at the last arrival + `latency`; a collective cannot finish before its last rank arrived,
    and ends `comm_seconds` after that. The overlap test uses real time instead (`real=True`:
    sleeps), because there the collective runs on a second thread of the rank."""

    def __init__(self, shared, rank, comm_seconds, latency=0.0, real=False):
        self.rank, self.size = rank, shared["size"]
        self._s = shared
        self.comm_seconds, self.latency, self.real = comm_seconds, latency, real
        self.now = 0.0

    def clock(self):
        return self.now

    def work(self, seconds):
        self.now += seconds

    def _meet(self, barrier, cost):
        """Every rank resumes at the last arrival + cost (virtual time)."""
        self._s["posted"][self.rank] = self.now
        barrier.wait(timeout=30)
        self.now = max(self._s["posted"]) + cost
        barrier.wait(timeout=30)  # nobody posts again before every rank has read

    def barrier(self):
        if self.real:
            self._s["main"].wait(timeout=30)
        else:
            self._meet(self._s["main"], self.latency)

    def allreduce(self, x, out, compression):
        self._s["log"][self.rank].append(int(x.size))
        if self.real:
            self._s["coll"].wait(timeout=30)
            time.sleep(self.comm_seconds)
        else:
            self._meet(self._s["coll"], self.comm_seconds)
        out[...] = x * self.size

    def gather(self, values):
        self._s["slots"][self.rank] = list(values)
        self._s["main"].wait(timeout=30)
        result = np.array(self._s["slots"], np.float64)
        self._s["main"].wait(timeout=30)  # nobody overwrites a slot before every rank has read them all
        return result


def run_ranks(size, fn, comm_seconds, **kw):
    """fn(group) on `size` thread ranks; returns each rank's result and the allreduce log."""
    shared = {"size": size, "main": threading.Barrier(size), "coll": threading.Barrier(size),
              "slots": [None] * size, "posted": [0.0] * size, "log": [[] for _ in range(size)]}
    results, errors = [None] * size, []

    def body(r):
        try:
            results[r] = fn(FakeGroup(shared, r, comm_seconds, **kw))
        except BaseException as e:  # surfaced below; the barriers are broken so nobody hangs
            errors.append(e)
            shared["main"].abort()
            shared["coll"].abort()

    threads = [threading.Thread(target=body, args=(r,)) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    if errors:
        raise errors[0]
    return results, shared["log"]


BASE, SLOW, COMM, LAT = 0.030, 0.080, 0.020, 0.001   # seconds: compute, the slow rank's extra, collective, barrier


def _steps(size, slow_rank, extra, steps=3):
    grads = np.ones(1000, np.float32)

    def fn(group):
        out = np.empty_like(grads)
        mine = BASE + (extra if group.rank == slow_rank else 0.0)
        return cluster.time_steps(group, lambda: group.work(mine), grads, out, None, steps, clock=group.clock)

    results, log = run_ranks(size, fn, COMM, latency=LAT)
    assert all(len(entries) == steps for entries in log)
    # Every rank gathered the same per-rank parts.
    for r in results[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(results[0], r))
    return results[0]


@pytest.mark.parametrize("size, slow_rank", [(2, 1), (2, 0), (3, 1), (5, 4)])
def test_imbalance_lands_in_wait_not_in_comm(size, slow_rank):
    for parts in _steps(size, slow_rank, SLOW):
        s = cluster.breakdown(parts)
        assert s["compute"] == pytest.approx(BASE + SLOW)   # the slowest rank's compute
        assert s["wait"] == pytest.approx(SLOW + LAT)        # the fastest rank waited for it (+ the barrier)
        assert s["sync"] == pytest.approx(LAT)
        assert s["comm"] == pytest.approx(COMM)              # the collective alone: no imbalance in it
        assert s["step"] == pytest.approx(BASE + SLOW + LAT + COMM)
        assert s["step"] == pytest.approx(s["compute"] + s["sync"] + s["comm"], abs=1e-12)
        # Each rank's own three parts add up to the step (the ranks leave the collective
        # together); for a fast rank they are its compute + wait + comm.
        assert parts.sum(axis=1) == pytest.approx([s["step"]] * size)
        fast = [r for r in range(size) if r != slow_rank]
        assert parts[fast, 0] + s["wait"] + s["comm"] == pytest.approx([s["step"]] * len(fast))
        # busbw from comm is the collective's; timing from the end of each rank's compute
        # (the old figure) divided the bytes by SLOW + COMM on a fast rank: 5x too low here.
        nbytes = 8e6
        assert cluster.busbw(nbytes, s["comm"], size) == pytest.approx(nbytes / COMM / 1e9 * 2 * (size - 1) / size)
        old = parts[fast[0], 1] + parts[fast[0], 2]
        assert cluster.busbw(nbytes, old, size) < 0.25 * cluster.busbw(nbytes, s["comm"], size)


def test_balanced_ranks_wait_only_the_barrier():
    med = cluster.medians([cluster.breakdown(p) for p in _steps(2, 1, 0.0)])
    assert med == pytest.approx({"step": BASE + LAT + COMM, "compute": BASE, "wait": LAT, "sync": LAT, "comm": COMM})


def test_breakdown_exact_on_known_parts():
    # rank 0: compute 1.0, waits 0.5; rank 1: compute 1.5, barrier 0.01; comm 0.2 and 0.19.
    parts = np.array([[1.0, 0.51, 0.2], [1.5, 0.01, 0.19]])
    s = cluster.breakdown(parts)
    assert s == pytest.approx({"step": 1.71, "compute": 1.5, "wait": 0.51, "sync": 0.01, "comm": 0.2})


def test_overlap_hides_all_buckets_but_the_last():
    """Real threads and sleeps: GEMM stand-ins of 0.1 s, four bucket allreduces of 0.05 s.
    Without overlap the allreduce adds 0.2 s after the compute; with it, only the last
    bucket's 0.05 s is left (the margins allow for a loaded machine's late wake-ups)."""
    gemm_s, bucket_s, nb = 0.1, 0.05, 4
    grads = np.arange(1001, dtype=np.float32)

    def fn(group):
        out = np.zeros_like(grads)
        buckets = cluster.split_buckets(grads, out, nb)
        parts = cluster.time_overlap_steps(group, [lambda: time.sleep(gemm_s)] * 4, buckets, None, 2)
        return parts, out

    results, log = run_ranks(2, fn, bucket_s, real=True)
    # Every bucket reduced once, in the same order on both ranks, the whole gradient covered.
    assert log[0] == log[1] == [250, 250, 250, 251] * 2
    assert np.array_equal(results[0][1], grads * 2)
    for parts in results[0][0]:
        s = cluster.overlap_breakdown(parts)
        assert s["compute"] >= 4 * gemm_s
        assert bucket_s <= s["exposed"] < bucket_s + 0.075   # vs 4 x 0.05 s not overlapped
        assert s["step"] == pytest.approx(s["compute"] + s["exposed"], abs=1e-12)


@given(buckets=st.integers(1, 40), gemms=st.integers(1, 13))
def test_bucket_schedule(buckets, gemms):
    ready = cluster.bucket_ready_after(buckets, gemms)
    order = [b for k in ready for b in k]
    assert order == list(range(buckets))          # each bucket once, in gradient order
    assert ready[-1] and ready[-1][-1] == buckets - 1


@given(n=st.sampled_from([1, 2, 7, 97, 1000]), buckets=st.integers(1, 20))
def test_split_buckets_covers_the_gradient(n, buckets):
    g = np.arange(n, dtype=np.float32)
    o = np.zeros_like(g)
    parts = cluster.split_buckets(g, o, buckets)
    assert len(parts) == min(n, buckets)
    assert np.array_equal(np.concatenate([x for x, _ in parts]), g)
    assert all(np.shares_memory(x, g) and np.shares_memory(y, o) and x.size == y.size for x, y in parts)
    assert max(x.size for x, _ in parts) - min(x.size for x, _ in parts) <= 1


def _rows():
    solo = make_result("gemm", "aicc", "f32", "M=N=K=8 rank 0 alone", 1, [1.0], 60e9, "GFLOPS", phase="solo")
    agg = make_result("gemm", "aicc", "f32", "M=N=K=8 x2 ranks (aggregate)", 2, [1.0], 100e9, "GFLOPS",
                      phase="concurrent")
    step = make_result("dp_step", "aicc", "f32", "step", 2, [1.0], 90e9, "GFLOPS")
    bw = make_result("allreduce", "aicc", "f32", "1M x2", 2, [1.0], 8e9, "GB/s")
    return report.derive([solo, agg, step, bw], None, [])


def test_percent_of_peak_uses_the_peak_of_the_threads_that_ran():
    rows = _rows()
    cluster.apply_peaks(rows, solo_peak=80.0, aggregate_peak=150.0, ranks=2, threads_per_rank=1)
    pct = {r.r.op + r.r.extra.get("phase", ""): r.pct_of_peak for r in rows}
    assert pct["gemmsolo"] == pytest.approx(75.0)          # 60 / rank 0's peak
    assert pct["gemmconcurrent"] == pytest.approx(100 / 1.5)  # 100 / the peak of both ranks at once
    assert pct["dp_step"] == pytest.approx(60.0)
    assert pct["allreduce"] is None                        # no f32 FMA peak for a bandwidth


def test_percent_above_100_is_refused():
    # The bug: the aggregate of two ranks divided by the one-rank peak.
    with pytest.raises(cluster.PeakExceeded, match=r"x2 ranks \(aggregate\).*125% .*2 rank\(s\) x 1 thread"):
        cluster.apply_peaks(_rows(), solo_peak=80.0, aggregate_peak=80.0, ranks=2, threads_per_rank=1)


needs_collectives = pytest.mark.skipif(
    not hasattr(ak, "allreduce") or not hasattr(getattr(ak, "collective", None), "init")
    or ak._config._ext is None or not hasattr(ak._config._ext, "peak_probe_fp32_fma"),
    reason="needs the collectives and the peak probes of the C++ extension")

ONE_RANK = ["cluster", "--quick", "--params", "3000", "--gemm-size", "32", "--steps", "2", "--compression", "none",
            "--baselines", "none", "--peak-seconds", "0.02"]


@needs_collectives
def test_cli_refuses_a_percent_above_100(monkeypatch, capsys):
    monkeypatch.setattr(cluster, "_probe_fp32", lambda tpr, seconds: 1e-6)  # a peak no GEMM stays under
    assert cli.main(ONE_RANK) == cli.EXIT_ERROR
    out = capsys.readouterr().out
    assert "refused to print" in out and "PeakExceeded" in out


@needs_collectives
def test_cli_one_rank_with_overlap(tmp_path):
    import json

    j = tmp_path / "c.json"
    assert cli.main(ONE_RANK + ["--overlap", "--buckets", "3", "--json", str(j)]) == cli.EXIT_OK
    doc = json.loads(j.read_text())
    (ov,) = doc["cluster"]["overlap"]
    assert ov["buckets"] == 3 and ov["exposed_comm_s"] >= 0 and ov["step_s"] >= ov["compute_s"] > 0
    assert all(r["pct_of_peak"] is None or r["pct_of_peak"] <= 100 for r in doc["results"])


@pytest.mark.parametrize("bad, match", [(["--buckets", "0"], "--buckets"), (["--compression", "fp8"], "--compression"),
                                        (["--params", "0"], "--params")])
@needs_collectives
def test_cli_usage_errors(bad, match, capsys):
    assert cli.main(ONE_RANK + bad) == cli.EXIT_USAGE
    assert match in capsys.readouterr().err


def test_cluster_does_not_import_cli():
    """bench/cli.py and bench/cluster.py share bench/common.py instead of importing each other."""
    code = ("import sys, aicc_kernels.bench.cluster as c, aicc_kernels.bench.common as m; "
            "assert 'aicc_kernels.bench.cli' not in sys.modules, 'cluster imported cli'; "
            "from aicc_kernels.bench import cli; assert cli.finish is m.finish and cli.UsageError is m.UsageError")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
