"""The torch.distributed backend "aicc": collectives against gloo in the same processes,
DDP with "aicc" vs "gloo", the compression hook, and a killed rank.

The tests start 2-rank jobs of this file (run as a script, a scenario per run): under
our launcher (python -m aicc_kernels.launch) and, like torchrun, with only RANK /
WORLD_SIZE / MASTER_ADDR / MASTER_PORT set.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

if __name__ == "__main__":  # a rank of a job the tests start
    import torch
else:
    torch = pytest.importorskip("torch", reason="torch is not installed (pip install 'aicc-kernels[torch]')")

HERE = os.path.abspath(__file__)
TIMEOUT_S = 10.0  # the collective deadline these jobs use


# ---- the worker (this file run as a script) ---------------------------------------------------
def _small_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                               torch.nn.Linear(8 * 6 * 6, 5))


def _train(model, group, steps=3, hook=None):
    from torch.nn.parallel import DistributedDataParallel as DDP

    ddp = DDP(model, process_group=group)
    if hook is not None:
        ddp.register_comm_hook(group, hook)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
    rank = torch.distributed.get_rank()
    for step in range(steps):
        g = torch.Generator().manual_seed(100 * step + rank)  # different data per rank
        x = torch.randn(4, 3, 6, 6, generator=g)
        loss = ddp(x).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


def _scenario_collectives(out):
    import torch.distributed as dist

    import aicc_kernels.torch  # noqa: F401

    dist.init_process_group("aicc", timeout=__import__("datetime").timedelta(seconds=TIMEOUT_S))
    rank, size = dist.get_rank(), dist.get_world_size()
    gloo = dist.new_group(backend="gloo")
    res = {"backend": dist.get_backend(), "transport": dist.group.WORLD.transport
           if hasattr(dist.group.WORLD, "transport") else None}
    # Integer-valued floats: the exact sum does not depend on the reduction order.
    for dtype in (torch.float32, torch.bfloat16, torch.float16, torch.float64, torch.int32, torch.int64):
        for op in ("SUM", "AVG", "MAX", "MIN"):
            if op == "AVG" and not dtype.is_floating_point:
                continue
            base = (torch.arange(37) % 11 - 5 + 3 * rank).to(dtype)
            a, g = base.clone(), base.clone()
            dist.all_reduce(a, op=getattr(dist.ReduceOp, op))
            dist.all_reduce(g, op=getattr(dist.ReduceOp, op), group=gloo)
            res[f"allreduce {dtype} {op}"] = bool(torch.equal(a, g))
    x = torch.arange(size * 6, dtype=torch.float32) + rank
    out_a, out_g = torch.empty(6), torch.empty(6)
    dist.reduce_scatter_single(out_a, x)
    dist.reduce_scatter_single(out_g, x, group=gloo)
    res["reduce_scatter_single"] = bool(torch.equal(out_a, out_g))
    parts = list(x.clone().reshape(size, 6).unbind(0))
    dist.reduce_scatter(out_a, parts)
    res["reduce_scatter"] = bool(torch.equal(out_a, out_g))
    y = torch.full((3, 2), float(rank), dtype=torch.bfloat16)
    ga, gg = torch.empty(size * 3, 2, dtype=torch.bfloat16), torch.empty(size * 3, 2, dtype=torch.bfloat16)
    dist.all_gather_single(ga, y)
    dist.all_gather_single(gg, y, group=gloo)
    res["all_gather_single bf16"] = bool(torch.equal(ga, gg))
    lst = [torch.empty(3, 2, dtype=torch.bfloat16) for _ in range(size)]
    dist.all_gather(lst, y)
    res["all_gather"] = bool(torch.equal(torch.cat(lst), gg))
    b = torch.full((5,), float(rank + 7))
    dist.broadcast(b, src=1)
    res["broadcast"] = bool(torch.equal(b, torch.full((5,), 8.0)))
    nc = torch.arange(12, dtype=torch.float32).reshape(3, 4).t()  # non-contiguous, in place
    dist.all_reduce(nc)
    res["allreduce non-contiguous"] = bool(torch.equal(nc, 2 * torch.arange(12, dtype=torch.float32).reshape(3, 4).t()))
    dist.barrier()
    try:
        dist.all_reduce(torch.ones(2), op=dist.ReduceOp.PRODUCT)
        res["product refused"] = False
    except ValueError as exc:
        res["product refused"] = "ReduceOp" in str(exc)
    # Mismatched dtypes across ranks: an error on every rank, and the group stays usable.
    try:
        dist.all_reduce(torch.ones(4, dtype=torch.float32 if rank == 0 else torch.float64))
        res["mismatch raises"] = False
    except Exception as exc:  # noqa: BLE001 - CollectiveError
        res["mismatch raises"] = "mismatch" in str(exc)
    # DDP: the same parameters as with gloo after a few steps (f32; same data, same order).
    p_aicc = _train(_small_model(), dist.group.WORLD)
    p_gloo = _train(_small_model(), gloo)
    res["ddp max diff"] = max(float((a - g).abs().max()) for a, g in zip(p_aicc, p_gloo))
    # DDP with our converted modules still matches (our kernels forward/backward + our allreduce).
    import aicc_kernels.torch as akt

    p_conv = _train(akt.convert(_small_model()), dist.group.WORLD)
    res["ddp converted max diff"] = max(float((a - g).abs().max()) for a, g in zip(p_conv, p_gloo))
    p_hook = _train(_small_model(), dist.group.WORLD, hook=akt.compression_hook("bf16"))
    res["ddp bf16 hook max diff"] = max(float((a - g).abs().max()) for a, g in zip(p_hook, p_gloo))
    p_int8 = _train(_small_model(), dist.group.WORLD, hook=akt.compression_hook("int8"))
    res["ddp int8 hook max diff"] = max(float((a - g).abs().max()) for a, g in zip(p_int8, p_gloo))
    dist.destroy_process_group()
    _write(out, rank, res)


def _scenario_dead_rank(out):
    import torch.distributed as dist

    import aicc_kernels.torch  # noqa: F401

    dist.init_process_group("aicc", timeout=__import__("datetime").timedelta(seconds=TIMEOUT_S))
    rank = dist.get_rank()
    dist.all_reduce(torch.ones(8))
    if rank == 1:
        os.kill(os.getpid(), 9)
    t0 = time.monotonic()
    res = {}
    try:
        dist.all_reduce(torch.ones(1 << 20))
        res["raised"] = False
    except Exception as exc:  # noqa: BLE001 - CollectiveError expected
        res["raised"] = True
        res["type"] = type(exc).__name__
        res["message"] = str(exc)
    res["seconds"] = time.monotonic() - t0
    _write(out, rank, res)


def _scenario_dead_rank_ddp(out):
    import datetime

    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    import aicc_kernels.torch  # noqa: F401

    dist.init_process_group("aicc", timeout=datetime.timedelta(seconds=TIMEOUT_S))
    rank = dist.get_rank()
    # broadcast_buffers=False and two good steps (the second forward broadcasts the rebuilt
    # bucket order): the next forward has no collective, so the failure must come from the
    # gradient allreduce that DDP's reducer issues inside backward.
    ddp = DDP(_small_model(), broadcast_buffers=False)
    for _ in range(2):
        ddp(torch.randn(2, 3, 6, 6)).sum().backward()
    if rank == 1:
        os.kill(os.getpid(), 9)
    t0 = time.monotonic()
    res = {"phase": "forward"}
    try:
        loss = ddp(torch.randn(2, 3, 6, 6)).sum()
        res["phase"] = "backward"
        loss.backward()
        res["raised"] = False
    except Exception as exc:  # noqa: BLE001 - the reducer re-raises our CollectiveError's message
        res["raised"] = True
        res["type"] = type(exc).__name__
        res["message"] = str(exc)
    res["seconds"] = time.monotonic() - t0
    _write(out, rank, res)


def _write(out, rank, res):
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump(res, f)


if __name__ == "__main__":
    {"collectives": _scenario_collectives, "dead_rank": _scenario_dead_rank,
     "dead_rank_ddp": _scenario_dead_rank_ddp}[sys.argv[1]](sys.argv[2])
    sys.exit(0)


# ---- the tests ---------------------------------------------------------------------------------
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", AICC_NUM_THREADS="1", AICC_COLLECTIVE_TIMEOUT="")
    env.pop("AICC_LAUNCH_JOB", None)
    # No source directory on PYTHONPATH: the ranks run this interpreter, which imports the
    # installed package (a source python/ first on the path has no built extension, CI's case).
    return env


def _run_launcher(scenario, out, timeout=240):
    cmd = [sys.executable, "-m", "aicc_kernels.launch", "-n", "2", "--bind", "none", "--grace", "30", HERE,
           scenario, str(out)]
    return subprocess.run(cmd, env=_env(), timeout=timeout, capture_output=True, text=True)


def _run_torchrun_style(scenario, out, timeout=240):
    """Two processes with only torch's env:// variables, as torchrun starts them."""
    port = _free_port()
    procs = []
    for rank in range(2):
        env = dict(_env(), RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=str(port))
        procs.append(subprocess.Popen([sys.executable, HERE, scenario, str(out)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = []
    for p in procs:
        try:
            outputs.append(p.communicate(timeout=timeout)[0])
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
    return [p.returncode for p in procs], outputs


def _results(out, ranks=(0, 1)):
    return {r: json.load(open(out / f"rank{r}.json")) for r in ranks}


def _check_collectives(res):
    for rank, r in res.items():
        assert r["backend"] == "aicc"
        assert r["transport"] == "shm"
        failed = [k for k, v in r.items() if isinstance(v, bool) and not v]
        assert not failed, f"rank {rank}: {failed}"
        assert r["ddp max diff"] <= 1e-5, r
        assert r["ddp converted max diff"] <= 1e-4, r
        # bf16 / int8 wire formats: close to the f32 run, not equal (lr 0.1, 3 steps).
        assert r["ddp bf16 hook max diff"] <= 1e-3, r
        assert r["ddp int8 hook max diff"] <= 3e-3, r


def test_collectives_and_ddp_under_our_launcher(tmp_path):
    proc = _run_launcher("collectives", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _check_collectives(_results(tmp_path))


def test_collectives_and_ddp_torchrun_style(tmp_path):
    codes, outputs = _run_torchrun_style("collectives", tmp_path)
    assert codes == [0, 0], "\n".join(outputs)
    _check_collectives(_results(tmp_path))


def test_killed_rank_raises_within_the_timeout(tmp_path):
    codes, outputs = _run_torchrun_style("dead_rank", tmp_path)
    assert codes[1] == -9, outputs[1]
    assert codes[0] == 0, outputs[0]
    r = _results(tmp_path, ranks=(0,))[0]
    assert r["raised"], r
    assert r["type"] == "CollectiveError", r
    assert "rank 1" in r["message"] and "died" in r["message"], r
    assert r["seconds"] < TIMEOUT_S, r


def test_killed_rank_fails_ddp_backward_within_the_timeout(tmp_path):
    codes, outputs = _run_torchrun_style("dead_rank_ddp", tmp_path)
    assert codes[1] == -9, outputs[1]
    assert codes[0] == 0, outputs[0]
    r = _results(tmp_path, ranks=(0,))[0]
    assert r["raised"] and r["phase"] == "backward", r
    assert "rank 1" in r["message"] and "died" in r["message"], r
    assert r["seconds"] < TIMEOUT_S, r


def test_init_without_env_is_a_clear_error():
    code = ("import os, torch.distributed as dist, aicc_kernels.torch\n"
            "for v in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'): os.environ.pop(v, None)\n"
            "try:\n    dist.init_process_group('aicc')\nexcept Exception as e:\n    print(type(e).__name__, e)\n")
    proc = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "environment variable" in proc.stdout and ("RANK" in proc.stdout or "MASTER_ADDR" in proc.stdout), \
        proc.stdout


def test_backend_is_registered():
    import torch.distributed as dist

    import aicc_kernels.torch  # noqa: F401

    assert dist.Backend.AICC == "aicc"
    assert "AICC" in dist.Backend._plugins
