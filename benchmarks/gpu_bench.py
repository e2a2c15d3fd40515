"""GPU benchmarks: our CUDA kernels next to the vendor libraries, measured in the same run.

    python benchmarks/gpu_bench.py gemm [--sizes 1024 4096] [--json benchmarks/results/gpu_gemm.json]
    python benchmarks/gpu_bench.py conv                 # ResNet-50-like layers vs cuDNN (through torch, if it has CUDA)
    mpirun -n 8 python benchmarks/gpu_bench.py allreduce   # busbw, one GPU per rank (mpi4py bootstrap)

gemm: f32 and f16 (CuPy has no bf16 arrays) TFLOPS of ak.gemm against cupy.matmul
(cuBLAS), and INT8 TOPS of ak.qgemm against our own f16 (the issue's 1.6x target) and,
when available, cuBLASLt's int8 through torch._int_mm.
allreduce: algbw = bytes / time, busbw = algbw * 2(n-1)/n (nccl-tests), for our NCCL
communicator plain and with int8 / fp16 compression.

Every figure: warm-up, then the median of repeats, each call followed by a stream
synchronize (aicc_kernels.bench.record.time_call). Exits with a message and status 2
where no GPU is usable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

import aicc_kernels as ak
from aicc_kernels.bench.record import make_result, time_call


def _sync_call(cp, fn):
    def call():
        fn()
        cp.cuda.get_current_stream().synchronize()
    return call


def bench_gemm(cp, sizes, repeats):
    rng = np.random.default_rng(0)
    rows = []
    for n in sizes:
        shape = f"M=N=K={n}"
        flops = 2.0 * n * n * n
        for dtype in (np.float32, np.float16):
            a = cp.asarray(rng.standard_normal((n, n)).astype(dtype))
            # B as [N, K] (weights layout, trans_b=True): the tensor-core kernel's native
            # operand order, so no transposed copy is timed; cuBLAS gets the same view.
            bt = cp.asarray(rng.standard_normal((n, n)).astype(dtype))
            name = "f32" if dtype == np.float32 else "f16"
            for impl, fn in (("aicc", lambda: ak.gemm(a, bt, trans_b=True, backend="cuda")),
                             ("cublas", lambda: cp.matmul(a, bt.T))):
                s = time_call(_sync_call(cp, fn), repeats=repeats, warmup=2)
                rows.append(make_result("gemm", impl, name, shape, 1, s, flops, "TFLOPS"))
        a8 = cp.asarray(rng.integers(-128, 128, (n, n)).astype(np.int8))
        b8 = cp.asarray(rng.integers(-128, 128, (n, n)).astype(np.int8))
        # Includes the packing pass (u8 shift / K padding / row sums) every call.
        s = time_call(_sync_call(cp, lambda: ak.qgemm(a8, b8, trans_b=True, backend="cuda")), repeats=repeats,
                      warmup=2)
        rows.append(make_result("qgemm", "aicc", "s8s8s32", shape, 1, s, flops, "TOPS"))
        try:
            import torch

            if torch.cuda.is_available():
                ta = torch.as_tensor(a8, device="cuda")
                tb = torch.as_tensor(b8, device="cuda").t()
                s = time_call(_sync_call(cp, lambda: torch._int_mm(ta, tb)), repeats=repeats, warmup=2)
                rows.append(make_result("qgemm", "cublaslt(torch)", "s8s8s32", shape, 1, s, flops, "TOPS"))
        except Exception as exc:  # noqa: BLE001 - an optional peer
            print(f"gpu_bench: torch int8 peer unavailable ({exc})", file=sys.stderr)
    return rows


def bench_conv(cp, repeats):
    try:
        import torch
        have_torch = torch.cuda.is_available()
    except ImportError:
        have_torch = False
    rng = np.random.default_rng(0)
    rows = []
    layers = [(32, 56, 56, 64, 64, 3, 1), (32, 28, 28, 128, 128, 3, 1), (32, 14, 14, 256, 256, 3, 1),
              (32, 56, 56, 256, 64, 1, 1), (32, 7, 7, 512, 512, 3, 1)]
    for n, h, w, c, k, r, stride in layers:
        for dtype in (np.float32, np.float16):
            x = cp.asarray(rng.standard_normal((n, h, w, c)).astype(dtype))
            wt = cp.asarray(rng.standard_normal((k, r, r, c)).astype(dtype))
            pad = r // 2
            p = (h + 2 * pad - r) // stride + 1
            flops = 2.0 * n * k * c * r * r * p * p
            shape = f"N{n} {h}x{w}x{c}->{k} {r}x{r}/{stride}"
            name = "f32" if dtype == np.float32 else "f16"
            fn = lambda: ak.conv2d(x, wt, stride=stride, padding=pad, layout="NHWC", backend="cuda")  # noqa: E731
            rows.append(make_result("conv2d", "aicc", name, shape, 1,
                                    time_call(_sync_call(cp, fn), repeats=repeats), flops, "TFLOPS"))
            if have_torch:
                tx = torch.as_tensor(x, device="cuda").permute(0, 3, 1, 2)
                tw = torch.as_tensor(wt, device="cuda").permute(0, 3, 1, 2)
                tx = tx.contiguous(memory_format=torch.channels_last)
                tw = tw.contiguous(memory_format=torch.channels_last)
                tfn = lambda: torch.nn.functional.conv2d(tx, tw, stride=stride, padding=pad)  # noqa: E731
                rows.append(make_result("conv2d", "cudnn(torch)", name, shape, 1,
                                        time_call(_sync_call(cp, tfn), repeats=repeats), flops, "TFLOPS"))
    return rows


def bench_allreduce(cp, repeats):
    from aicc_kernels.backends import cuda_collective as cc

    try:
        from mpi4py import MPI
        rank = MPI.COMM_WORLD.Get_rank()
    except ImportError:
        MPI, rank = None, 0
    cp.cuda.Device(rank % cp.cuda.runtime.getDeviceCount()).use()
    if MPI is not None:
        comm = cc.NcclCommunicator.from_mpi()
    else:
        comm = cc.NcclCommunicator(0, 1, cc.nccl_unique_id())
    size = comm.size
    rows = []
    for nbytes in (1 << 20, 16 << 20, 256 << 20):
        x = cp.ones(nbytes // 4, np.float32)
        out = cp.empty_like(x)
        for compression in (None, "fp16", "int8"):
            fn = lambda: comm._allreduce(x, out, "sum", compression)  # noqa: E731
            s = time_call(_sync_call(cp, fn), repeats=repeats, warmup=2)
            r = make_result("allreduce", "nccl" if compression is None else f"aicc+{compression}", "f32",
                            f"{nbytes >> 20}MiB x{size} ranks", size, s, float(nbytes), "GB/s")
            r.extra["busbw_GBps"] = r.throughput * (2 * (size - 1) / size if size > 1 else 0.0)
            rows.append(r)
    comm.close()
    return rows if rank == 0 else []


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["gemm", "conv", "allreduce"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json", default=None, help="write the rows here (default: benchmarks/results/gpu_<what>.json)")
    args = parser.parse_args(argv)
    backend = ak.backends.get("cuda")
    if not backend.available:
        print(f"gpu_bench: no usable GPU here, nothing to measure ({backend.unavailable_reason})")
        return 2
    import cupy as cp

    if args.what == "gemm":
        rows = bench_gemm(cp, args.sizes, args.repeats)
    elif args.what == "conv":
        rows = bench_conv(cp, args.repeats)
    else:
        rows = bench_allreduce(cp, args.repeats)
    if not rows:
        return 0
    print(f"{'op':<10}{'impl':<18}{'dtype':<9}{'shape':<28}{'ms':>9}{'throughput':>12}")
    for r in rows:
        print(f"{r.op:<10}{r.impl:<18}{r.dtype:<9}{r.shape:<28}{r.seconds * 1e3:9.3f}{r.throughput:10.2f} {r.unit}"
              + (f"  busbw {r.extra['busbw_GBps']:.1f} GB/s" if "busbw_GBps" in r.extra else ""))
    path = args.json or os.path.join(os.path.dirname(__file__), "results", f"gpu_{args.what}.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump([r.to_dict() for r in rows], f, indent=1)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
