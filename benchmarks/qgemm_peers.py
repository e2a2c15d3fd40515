"""INT8 GEMM against its peers, measured in one run: ours (s8/u8 x s8 -> s32, exact) vs
onnxruntime MatMulInteger (u8 x s8, B a constant initializer so MLAS pre-packs it) and
PyTorch's dynamically quantized Linear (f32 in/out, int8 weights), with our f32 GEMM as the
yardstick. Ratios are of medians taken in this run.

    python benchmarks/qgemm_peers.py --sizes 1024 2048 --threads 2 [--isa avx2] [--json PATH]

Ops are counted as 2*M*N*K (docs/BENCHMARKS.md, "How each figure is counted"). "wrong" counts the outputs that differ
from the exact reference on full-range inputs (a=255/-128, b=-128 pairs), where a
saturating int16 route (vpmaddubsw) gives wrong answers.

Fairness on a small shared machine: the peers' worker threads spin after each call by default
(onnxruntime intra-op spinning, OpenMP in torch, OpenBLAS), which steals the cores from whatever
is timed next in the same process. Spinning is turned off for all of them (our own pool spins
only briefly), every case is timed round-robin, and both the median and the best run are shown.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

# Before numpy / torch start their thread pools (see the module docstring).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import aicc_kernels as ak  # noqa: E402
from aicc_kernels.bench.record import make_result, time_call


# --- a MatMulInteger ONNX model, written as raw protobuf (the onnx package is not needed) ---
def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(num: int, value) -> bytes:
    if isinstance(value, int):
        return _varint(num << 3) + _varint(value)
    if isinstance(value, str):
        value = value.encode()
    return _varint(num << 3 | 2) + _varint(len(value)) + value


def _value_info(name: str, elem_type: int, shape) -> bytes:
    dims = b"".join(_field(1, _field(1, d)) for d in shape)
    tensor_type = _field(1, elem_type) + _field(2, dims)
    return _field(1, name) + _field(2, _field(1, tensor_type))


def _initializer(name: str, array: np.ndarray, elem_type: int) -> bytes:
    return (b"".join(_field(1, d) for d in array.shape) + _field(2, elem_type) + _field(8, name)
            + _field(9, np.ascontiguousarray(array).tobytes()))


def matmul_integer_model(m: int, k: int, b: np.ndarray, a_elem: int) -> bytes:
    u8, s8, s32 = 2, 3, 6
    node = (_field(1, "A") + _field(1, "B") + _field(2, "Y") + _field(3, "mmi")
            + _field(4, "MatMulInteger"))
    graph = (_field(1, node) + _field(2, "g") + _field(5, _initializer("B", b, s8))
             + _field(11, _value_info("A", a_elem, (m, k)))
             + _field(12, _value_info("Y", s32, (m, b.shape[1]))))
    opset = _field(1, "") + _field(2, 13)
    return _field(1, 8) + _field(8, opset) + _field(7, graph)


def ort_matmul_integer(a: np.ndarray, b: np.ndarray, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    a_elem = 2 if a.dtype == np.uint8 else 3
    sess = ort.InferenceSession(matmul_integer_model(a.shape[0], a.shape[1], b, a_elem), so,
                                providers=["CPUExecutionProvider"])
    return lambda x: sess.run(None, {"A": x})[0]


def torch_dynamic_linear(b: np.ndarray, threads: int):
    import torch

    torch.set_num_threads(threads)
    k, n = b.shape
    lin = torch.nn.Linear(k, n, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(b.T.astype(np.float32) / 64.0))
    q = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(lin), {torch.nn.Linear}, dtype=torch.qint8)

    def run(x):
        with torch.no_grad():
            return q(x)

    return run


def _our_f32_is_blocked() -> bool:
    """False while ak.gemm is still an unblocked scalar loop (too slow to time at N=2048)."""
    x = np.ones((256, 256), np.float32)
    samples = time_call(lambda: ak.gemm(x, x), repeats=3, warmup=0)
    return 2 * 256**3 / min(samples) > 2e9  # the scalar loop does ~0.5 GFLOPS


def _interleaved(cases, repeats: int, cpu_time: bool = False, calls: int = 1):
    """Times every case once per round (in a random order per round), so load from
    other processes on a shared machine hits all of them alike; returns {name: [seconds per
    round]}. cpu_time: the calling thread's CPU time instead of wall time (single-thread runs
    only, where every library computes on the calling thread): time spent descheduled by other
    processes is then not counted. calls: back-to-back calls per sample (the sample is their
    mean), so small problems are timed in steady state rather than each right after another
    library's call."""
    import time

    for fn in cases.values():
        fn()  # warm-up (packing buffers, thread start, ORT/torch first-call setup)
    samples = {name: [] for name in cases}
    names = list(cases)
    order = np.random.default_rng(0)
    for _ in range(repeats):
        # A fresh order each round: a case that runs right after another library's call finds
        # the caches full of that library's data, and no case should always follow the same one.
        for name in [names[i] for i in order.permutation(len(names))]:
            fn = cases[name]
            if cpu_time:
                t0 = time.thread_time()
                for _ in range(calls):
                    fn()
                samples[name].append((time.thread_time() - t0) / calls)
            else:
                block = (lambda fn=fn: [fn() for _ in range(calls)]) if calls > 1 else fn
                samples[name] += [s / calls for s in time_call(block, repeats=1, warmup=0)]
    return samples


def measure(m: int, k: int, n: int, threads: int, repeats: int, which, isas, cpu_time=False, min_ops=0.0):
    from aicc_kernels import _aicc_cpu

    rng = np.random.default_rng(n)
    ops = 2.0 * m * n * k
    shape = f"M=N=K={n}" if m == n == k else f"M={m},K={k},N={n}"
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    bt = np.ascontiguousarray(b.T)  # [N, K] weights
    a_s8 = rng.integers(-128, 128, (m, k), dtype=np.int8)
    a_u8 = rng.integers(0, 256, (m, k), dtype=np.uint8)
    # Full-range inputs: every product pair saturates int16 in a vpmaddubsw route.
    a_sat = np.full((64, k), 255, np.uint8)
    a_sat_s8 = np.full((64, k), -128, np.int8)
    b_sat = np.full((k, n), -128, np.int8)
    sat_ref = {np.dtype(np.uint8): a_sat.astype(np.int64) @ b_sat.astype(np.int64),
               np.dtype(np.int8): a_sat_s8.astype(np.int64) @ b_sat.astype(np.int64)}
    ak.set_num_threads(threads)
    out = np.empty((m, n), np.int32)
    cases, meta = {}, {}

    def with_isa(isa, fn):
        def run():
            _aicc_cpu.set_isa(isa)
            return fn()
        return run

    if "aicc" in which:
        for isa in isas:
            for name, a, w, tb in (("s8s8s32", a_s8, b, False), ("u8s8s32", a_u8, b, False),
                                   ("s8s8s32_bT", a_s8, bt, True)):
                _aicc_cpu.set_isa(isa)
                x_sat = a_sat if a.dtype == np.uint8 else a_sat_s8
                wrong = int(np.count_nonzero(ak.qgemm(x_sat, b_sat) != sat_ref[a.dtype]))
                key = f"aicc-{isa}:{name}"
                cases[key] = with_isa(isa, lambda a=a, w=w, tb=tb: ak.qgemm(a, w, trans_b=tb, out=out))
                meta[key] = ("qgemm", f"aicc-{isa}", name, "GOPS", wrong)
        af = rng.standard_normal((m, k), dtype=np.float32)
        bf = rng.standard_normal((k, n), dtype=np.float32)
        outf = np.empty((m, n), np.float32)
        if _our_f32_is_blocked():
            cases["aicc:f32"] = lambda: ak.gemm(af, bf, out=outf)
            meta["aicc:f32"] = ("gemm", "aicc", "f32", "GFLOPS", None)
    if "ort" in which:
        try:
            run = ort_matmul_integer(a_u8, b, threads)
            sat = ort_matmul_integer(a_sat, b_sat, threads)
            wrong = int(np.count_nonzero(sat(a_sat) != sat_ref[np.dtype(np.uint8)]))
            cases["onnxruntime:u8s8s32"] = lambda: run(a_u8)
            meta["onnxruntime:u8s8s32"] = ("qgemm", "onnxruntime", "u8s8s32", "GOPS", wrong)
        except ImportError as exc:
            print(f"onnxruntime skipped: {exc}", file=sys.stderr)
    if "torch" in which:
        try:
            import torch

            lin = torch_dynamic_linear(b, threads)
            x = torch.from_numpy(rng.standard_normal((m, k), dtype=np.float32))
            cases["torch:dynamic_int8_linear"] = lambda: lin(x)
            meta["torch:dynamic_int8_linear"] = ("qgemm", "torch", "dynamic_int8_linear", "GOPS", None)
        except ImportError as exc:
            print(f"torch skipped: {exc}", file=sys.stderr)
    samples = _interleaved(cases, repeats, cpu_time, calls=max(1, int(min_ops // ops)))
    if isas:
        _aicc_cpu.set_isa(isas[0])
    return [make_result(op, impl, dtype, shape, threads, samples[key], ops, unit, wrong=wrong)
            for key, (op, impl, dtype, unit, wrong) in meta.items()]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="*", default=[1024, 2048], help="square sizes")
    p.add_argument("--shapes", nargs="*", default=[], help="MxKxN problems, e.g. 128x4096x4096")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--min-ops", type=float, default=0.0,
                   help="time back-to-back calls until a sample holds this many ops (e.g. 2e8: 47 calls "
                        "at 128^3), reporting the mean per call; default: one call per sample")
    p.add_argument("--isa", nargs="+", default=None,
                   help="our ISA paths to time (default: the active one, plus avx2 when that is avx512)")
    p.add_argument("--only", nargs="+", default=["aicc", "ort", "torch"])
    p.add_argument("--cpu-time", action="store_true",
                   help="with --threads 1: time the calling thread's CPU time (robust to a loaded machine)")
    p.add_argument("--json", default=None, help="write the rows here (e.g. benchmarks/results/qgemm_peers.json)")
    args = p.parse_args(argv)
    from aicc_kernels import _aicc_cpu

    active = _aicc_cpu.active_isa()  # AICC_ISA=avx2 limits the run to the AVX2 route
    isas = args.isa or ([active] + (["avx2"] if active == "avx512" else []))
    cpu = ak.config().get("cpu", {})
    print(f"threads={args.threads} isas={isas} clock={'thread CPU time' if args.cpu_time else 'wall'} "
          f"cpu={cpu.get('brand', '?') if isinstance(cpu, dict) else cpu}")
    if args.cpu_time and args.threads != 1:
        p.error("--cpu-time needs --threads 1 (other threads' work would not be counted)")
    all_rows = []
    problems = [(s, s, s) for s in args.sizes] + [tuple(int(x) for x in sh.split("x")) for sh in args.shapes]
    for m, k, n in problems:
        rows = measure(m, k, n, args.threads, args.repeats, args.only, isas, args.cpu_time, args.min_ops)
        all_rows += rows
        by = {(r.impl, r.dtype): r for r in rows}
        for r in rows:
            best = r.work / min(r.samples) / 1e9
            print(f"{r.shape:>22} {r.impl:>14} {r.dtype:>20} median {r.throughput:7.1f} best {best:7.1f} "
                  f"{r.unit:6} wrong={r.wrong}")
        for isa in isas:
            for ours_dtype in ("u8s8s32", "s8s8s32"):  # u8s8: the same operand types as onnxruntime's
                ours = by.get((f"aicc-{isa}", ours_dtype))
                for key in (("onnxruntime", "u8s8s32"), ("torch", "dynamic_int8_linear"), ("aicc", "f32")):
                    if ours and key in by:
                        print(f"{'':>22} ratio aicc-{isa} {ours_dtype} / {key[0]} {key[1]}: median "
                              f"{ours.throughput / by[key].throughput:.2f}x, best "
                              f"{min(by[key].samples) / min(ours.samples):.2f}x")
    if args.json:
        os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
        with open(args.json, "w") as f:
            json.dump([r.to_dict() for r in all_rows], f, indent=1)


if __name__ == "__main__":
    main()
