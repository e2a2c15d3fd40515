#!/usr/bin/env python3
"""aicc_kernels.torch against the plain paths, each pair measured in the same process run
(medians of repeats, 2 threads by default). JSON to benchmarks/results/torch_integration.json.

    python benchmarks/torch_integration.py overhead     # torch.ops.aicc.matmul vs ak.matmul, 64x64 f32
    python benchmarks/torch_integration.py allreduce    # dist.all_reduce 25.6M f32, "aicc" vs "gloo", 2 ranks
    python benchmarks/torch_integration.py resnet50     # converted ResNet-50 vs native: forward + training step
    python benchmarks/torch_integration.py all

ResNet-50 is built here (torchvision's architecture: Bottleneck [3, 4, 6, 3], batch norm,
random weights), channels_last, f32; torchvision itself does not import beside the CPU torch.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve()


def _median_time(fn, repeats, inner=1, warmup=1):
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t0) / inner)
    return statistics.median(samples), samples


def _threads(n):
    import torch

    import aicc_kernels as ak

    ak.set_num_threads(n)
    torch.set_num_threads(n)


# ---- operator overhead ------------------------------------------------------------------------
def overhead(args):
    import numpy as np
    import torch

    import aicc_kernels as ak
    import aicc_kernels.torch  # noqa: F401

    _threads(args.threads)
    rows = []
    for n in (64,):
        a = torch.randn(n, n)
        b = torch.randn(n, n)
        an, bn = a.numpy(), b.numpy()
        calls = {
            "ak.matmul (NumPy)": lambda: ak.matmul(an, bn),
            "torch.ops.aicc.matmul": lambda: torch.ops.aicc.matmul(a, b),
            "ak.gemm (NumPy)": lambda: ak.gemm(an, bn),
            "torch.matmul": lambda: torch.matmul(a, b),
        }
        t = {}
        # Interleaved rounds, so a load change on the shared machine hits every call alike.
        per = {k: [] for k in calls}
        for _ in range(args.repeats):
            for name, fn in calls.items():
                per[name].append(_median_time(fn, 1, inner=2000, warmup=200)[0])
        for name in calls:
            t[name] = statistics.median(per[name])
            rows.append({"bench": "overhead", "shape": f"{n}x{n}x{n} f32", "impl": name, "threads": args.threads,
                         "seconds": t[name], "samples": per[name]})
        ratio = t["torch.ops.aicc.matmul"] / t["ak.matmul (NumPy)"]
        print(f"{n}x{n} f32, {args.threads} threads: " + ", ".join(f"{k} {v * 1e6:.1f} us" for k, v in t.items()))
        print(f"  torch.ops.aicc.matmul / ak.matmul = {ratio:.2f}x (target <= 1.5x)")
        rows.append({"bench": "overhead", "ratio torch.ops.aicc.matmul / ak.matmul": ratio})
        assert np.allclose(torch.ops.aicc.matmul(a, b).numpy(), an @ bn, rtol=1e-4, atol=1e-4)
    return rows


# ---- dist.all_reduce, aicc vs gloo ----------------------------------------------------------------
def _allreduce_rank(out_path, numel, repeats):
    import datetime

    import torch
    import torch.distributed as dist

    import aicc_kernels.torch  # noqa: F401

    dist.init_process_group("aicc", timeout=datetime.timedelta(seconds=300))
    gloo = dist.new_group(backend="gloo")
    rank = dist.get_rank()
    x = torch.full((numel,), float(rank + 1))
    import aicc_kernels as ak

    comm = dist.group.WORLD.comm
    xn = x.numpy()
    # "ak.allreduce" is our collective on the same memory without torch: the process group
    # should add nothing to it (no copies, one call).
    calls = {"aicc": lambda: dist.all_reduce(x), "gloo": lambda: dist.all_reduce(x, group=gloo),
             "ak.allreduce": lambda: ak.allreduce(xn, comm=comm, out=xn)}
    per = {k: [] for k in calls}
    for fn in calls.values():  # warm-up: first touch, connection setup
        fn()
    for _ in range(repeats):
        for name, fn in calls.items():
            x.fill_(float(rank + 1))
            dist.barrier(group=gloo if name == "gloo" else None)
            t0 = time.perf_counter()
            fn()
            per[name].append(time.perf_counter() - t0)
            assert float(x[0]) == 3.0 and float(x[-1]) == 3.0, float(x[0])
    if rank == 0:
        json.dump(per, open(out_path, "w"))
    dist.destroy_process_group()


def allreduce(args):
    import tempfile

    out = pathlib.Path(tempfile.mkdtemp()) / "allreduce.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "aicc_kernels.launch", "-n", "2", "--bind", args.bind, str(HERE), "_allreduce_rank", str(out),
           str(args.numel), str(args.repeats)]
    subprocess.run(cmd, env=env, check=True)
    per = json.load(open(out))
    rows = []
    med = {k: statistics.median(v) for k, v in per.items()}
    nbytes = args.numel * 4
    for name, s in med.items():
        busbw = nbytes / s * 2 * (2 - 1) / 2 / 1e9
        rows.append({"bench": "allreduce", "shape": f"{args.numel} f32 x 2 ranks, bind {args.bind}", "impl": name,
                     "seconds": s,
                     "busbw_GBps": busbw, "samples": per[name]})
        print(f"{'dist.all_reduce' if name != 'ak.allreduce' else ''} {args.numel} f32 ({nbytes / 2**20:.0f} MiB), 2 ranks, backend {name}: "
              f"{s * 1e3:.1f} ms (busbw {busbw:.2f} GB/s)")
    ratio = med["gloo"] / med["aicc"]
    wrapper = med["aicc"] / med["ak.allreduce"]
    print(f"  gloo / aicc = {ratio:.2f}x (target >= 2x); dist aicc / ak.allreduce = {wrapper:.2f}x")
    rows.append({"bench": "allreduce", "ratio gloo / aicc": ratio, "ratio aicc / ak.allreduce": wrapper})
    return rows


# ---- ResNet-50 -----------------------------------------------------------------------------------
def resnet50(args):
    import copy

    import torch

    import aicc_kernels.torch as akt
    from aicc_kernels.bench.resnet50_train import resnet50_model

    _threads(args.threads)
    torch.manual_seed(0)
    native = resnet50_model().to(memory_format=torch.channels_last)
    ours = akt.convert(native)
    print(ours.aicc_report)
    rows = []
    x = torch.randn(args.batch, 3, 224, 224).contiguous(memory_format=torch.channels_last)
    native.eval()
    ours.eval()
    with torch.no_grad():
        diff = (ours(x) - native(x)).abs().max().item() / native(x).abs().max().item()
        t = {}
        per = {"native": [], "aicc": []}
        for _ in range(args.repeats):
            for name, m in (("native", native), ("aicc", ours)):
                per[name].append(_median_time(lambda: m(x), 1, warmup=1)[0])
    for name, s in per.items():
        t[name] = statistics.median(s)
        rows.append({"bench": "resnet50 forward", "shape": f"N={args.batch} 224x224 f32 channels_last eval",
                     "impl": name, "threads": args.threads, "seconds": t[name], "img_per_s": args.batch / t[name],
                     "samples": s})
    print(f"ResNet-50 forward N={args.batch} channels_last f32, {args.threads} threads: native {t['native']:.3f} s, "
          f"converted {t['aicc']:.3f} s -> {t['native'] / t['aicc']:.2f}x native speed (max rel diff {diff:.1e})")

    # Training step: forward + backward + SGD, train-mode batch norm, the same data for both.
    native_tr = copy.deepcopy(native).train()
    ours_tr = akt.convert(native_tr)
    xb = x[: args.train_batch]
    target = torch.randint(0, 1000, (args.train_batch,))
    steps = {}
    for name, m in (("native", native_tr), ("aicc", ours_tr)):
        opt = torch.optim.SGD(m.parameters(), lr=1e-3)

        def step(m=m, opt=opt):
            loss = torch.nn.functional.cross_entropy(m(xb), target)
            opt.zero_grad()
            loss.backward()
            opt.step()

        steps[name] = step
    per = {"native": [], "aicc": []}
    for name in steps:
        steps[name]()  # warm-up
    for _ in range(args.repeats):
        for name, fn in steps.items():
            per[name].append(_median_time(fn, 1, warmup=0)[0])
    for name, s in per.items():
        t[name] = statistics.median(s)
        rows.append({"bench": "resnet50 training step", "shape": f"N={args.train_batch} 224x224 f32 channels_last",
                     "impl": name, "threads": args.threads, "seconds": t[name], "samples": s})
    print(f"ResNet-50 training step N={args.train_batch}: native {t['native']:.3f} s, converted {t['aicc']:.3f} s "
          f"-> {t['native'] / t['aicc']:.2f}x native speed")
    return rows


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_allreduce_rank":
        _allreduce_rank(argv[1], int(argv[2]), int(argv[3]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("overhead", "allreduce", "resnet50", "all"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats (default: 9 / 7 / 3)")
    ap.add_argument("--numel", type=int, default=25_600_000)
    ap.add_argument("--bind", choices=("none", "core"), default="none",
                    help="allreduce: the launcher's rank binding (docs/COLLECTIVES.md: bound ranks have lower "
                         "latency, unbound ones more bandwidth on a loaded machine)")
    ap.add_argument("--batch", type=int, default=8, help="ResNet-50 forward batch")
    ap.add_argument("--train-batch", type=int, default=4)
    ap.add_argument("--json", default=str(HERE.parent / "results" / "torch_integration.json"))
    a = ap.parse_args(argv)
    rows = []
    for what, default_repeats in (("overhead", 9), ("allreduce", 7), ("resnet50", 3)):
        if a.what in (what, "all"):
            ns = argparse.Namespace(**vars(a))
            ns.repeats = a.repeats or default_repeats
            rows += globals()[what](ns)
    path = pathlib.Path(a.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(path.read_text()) if path.exists() else {}
    old[a.what] = {"command": " ".join(["python"] + sys.argv), "results": rows}
    path.write_text(json.dumps(old, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
