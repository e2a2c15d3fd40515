"""Runs every CUDA kernel once against the NumPy reference and prints a table.

    python benchmarks/gpu_smoke.py            # exit status 0: all pass; 1: a mismatch; 2: no GPU

Both paths run: "auto" (tensor cores on sm_80+) and "simt" (CUDA-core / dp4a fallbacks),
through the public ops where CuPy can hold the dtype, and through the extension directly
for bf16 (CuPy has no bfloat16 arrays: the bf16 bits travel as uint16). Float results are
checked with the project's tolerance table, INT8 bit-exactly. Sizes are small primes and
odd shapes so every tile edge, K tail and padding path is hit.
"""

from __future__ import annotations

import sys
import time

import numpy as np

import aicc_kernels as ak
from aicc_kernels import _dtypes
from aicc_kernels.testing.tolerance import check_gemm, compare_exact

ROWS = []


def record(name, path, shape, problem, seconds):
    ROWS.append((name, path, shape, "ok" if problem is None else f"FAIL: {problem}", seconds))


def run(name, path, shape, fn):
    t0 = time.perf_counter()
    try:
        problem = fn()
    except Exception as exc:  # noqa: BLE001 - a smoke run reports every failure and goes on
        problem = f"{type(exc).__name__}: {exc}"
    record(name, path, shape, problem, time.perf_counter() - t0)


def main() -> int:
    backend = ak.backends.get("cuda")
    if not backend.available:
        print(f"gpu_smoke: no usable GPU here, nothing to run ({backend.unavailable_reason})")
        return 2
    import cupy as cp

    from aicc_kernels.backends import cuda as ck

    ext = ck._ext
    dev = cp.cuda.Device()
    cc = ext.compute_capability(dev.id)
    print(f"device {dev.id}: sm_{cc}, {cp.cuda.runtime.getDeviceProperties(dev.id)['name'].decode()}, "
          f"runtime {ext.runtime_version()}, driver {ext.driver_version()}")
    rng = np.random.default_rng(7)

    def gemm_case(dtype, m, n, k, trans_b=False, out_dtype=None, act=None, beta=0.0, bias=False):
        a = rng.standard_normal((m, k)).astype(dtype)
        b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
        c = rng.standard_normal((m, n)).astype(np.float32) if beta else None
        bv = rng.standard_normal(n).astype(np.float32) if bias else None

        def fn():
            out = ak.gemm(cp.asarray(a), cp.asarray(b), None if c is None else cp.asarray(c), beta=beta,
                          trans_b=trans_b, bias=None if bv is None else cp.asarray(bv), activation=act,
                          out_dtype=out_dtype, backend="cuda")
            ref = ak.reference.gemm(a, b, c, beta=beta, trans_b=trans_b, bias=bv, activation=act,
                                    out_dtype=out_dtype)
            bb = b.T if trans_b else b
            return check_gemm(cp.asnumpy(out), ref, a, bb, c, alpha=1.0, beta=beta, bias=bv, activation=act)
        return fn

    def bf16_raw(m, n, k, simt):
        a = rng.standard_normal((m, k)).astype(_dtypes.bfloat16)
        b = rng.standard_normal((k, n)).astype(_dtypes.bfloat16)
        da = cp.asarray(a.view(np.uint16))
        db = cp.asarray(b.view(np.uint16))
        out = cp.zeros((m, n), np.uint16)

        def fn():
            args = (1.0, 0.0, 0, 0, 0, 0, 0, out.data.ptr, n, ext.DTYPES["bf16"], cp.cuda.get_current_stream().ptr)
            if simt:
                ext.gemm_simt(ext.DTYPES["bf16"], da.data.ptr, k, 1, db.data.ptr, n, 1, m, n, k, *args)
            else:
                bt = cp.ascontiguousarray(db.T)
                ext.gemm_f16_mma(ext.DTYPES["bf16"], da.data.ptr, k, bt.data.ptr, k, m, n, k, *args)
            got = cp.asnumpy(out).view(_dtypes.bfloat16)
            ref = ak.reference.gemm(a, b)
            return check_gemm(got, ref, a, b, None)
        return fn

    def qgemm_case(a_dtype, m, n, k, out_dtype, per_channel):
        info = np.iinfo(a_dtype)
        a = rng.integers(info.min, info.max + 1, (m, k)).astype(a_dtype)
        b = rng.integers(-128, 128, (k, n)).astype(np.int8)
        za = int(info.max) if a_dtype == np.uint8 else -3
        zb = rng.integers(-128, 128, n).astype(np.int32) if per_channel else 5
        scale = None if out_dtype == np.int32 else (rng.random(n).astype(np.float32) * 1e-3 + 1e-5)
        bias = rng.integers(-1000, 1000, n).astype(np.int32)
        ozp = 7 if out_dtype in (np.int8, np.uint8) else 0
        kw = dict(a_zero_point=za, b_zero_point=zb, scale=scale, bias=bias, out_zero_point=ozp, out_dtype=out_dtype)

        def fn():
            out = ak.qgemm(cp.asarray(a), cp.asarray(b), backend="cuda", **kw)
            return compare_exact(cp.asnumpy(out), ak.reference.qgemm(a, b, **kw))
        return fn

    for path in ("auto", "simt"):
        ck.set_path(path)
        tag = path if path == "simt" or cc < 80 else "mma"
        if path == "auto":  # f32 has one path
            run("gemm f32", "simt", "131x67x257", gemm_case(np.float32, 131, 67, 257, act="gelu", bias=True))
            run("gemm f32 beta,trans_b", "simt", "64x128x8",
                gemm_case(np.float32, 64, 128, 8, trans_b=True, beta=0.5))
        run("gemm f16->f16", tag, "257x131x512", gemm_case(np.float16, 257, 131, 512))
        run("gemm f16->f32 K%8!=0", tag, "97x61x37", gemm_case(np.float16, 97, 61, 37, out_dtype=np.float32))
        run("gemm f16 trans_b relu bias", tag, "128x256x64",
            gemm_case(np.float16, 128, 256, 64, trans_b=True, act="relu", bias=True))
        run("gemm bf16 (raw)", tag, "131x97x200", bf16_raw(131, 97, 200, simt=path == "simt" or cc < 80))
        for a_dtype in (np.uint8, np.int8):
            for out_dtype in (np.int32, np.int8, np.uint8, np.float32):
                run(f"qgemm {_dtypes.short_name(a_dtype)}s8->{_dtypes.short_name(out_dtype)}",
                    "mma" if tag == "mma" else "dp4a", "67x131x300",
                    qgemm_case(a_dtype, 67, 131, 300, out_dtype, per_channel=out_dtype != np.int32))
        run("qgemm u8 255 x -128 (no saturation)", "mma" if tag == "mma" else "dp4a", "7x19x1024",
            lambda: compare_exact(
                cp.asnumpy(ak.qgemm(cp.full((7, 1024), 255, np.uint8), cp.full((1024, 19), -128, np.int8),
                                    backend="cuda")),
                np.full((7, 19), 255 * -128 * 1024, np.int32)))
    ck.set_path("auto")

    conv_cases(cp, rng, run)
    reduction_cases(cp, rng, ext, run)
    nccl_case(cp, rng, run)

    width = max(len(r[0]) for r in ROWS) + 2
    print(f"{'kernel':<{width}}{'path':<7}{'shape':<18}{'ms':>9}  result")
    for name, path, shape, result, seconds in ROWS:
        print(f"{name:<{width}}{path:<7}{shape:<18}{seconds * 1e3:9.1f}  {result}")
    failed = [r for r in ROWS if r[3].startswith("FAIL")]
    print(f"{len(ROWS) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def conv_cases(cp, rng, run):
    def close(got, ref, depth, dtype):
        # Conv tolerance: the GEMM rule with K = the reduction depth (SEMANTICS.md).
        ref64 = np.asarray(ref, np.float64)
        tol = 2.0 * (depth + 2) * np.finfo(np.float32).eps * (np.abs(ref64).max() + 1.0) * 8 \
            + np.finfo(dtype).eps * np.abs(ref64)
        bad = np.abs(np.asarray(got, np.float64) - ref64) > tol
        return None if not bad.any() else f"{int(bad.sum())} elements beyond tolerance"

    for layout in ("NHWC", "NCHW"):
        for dtype in (np.float32, np.float16):
            for groups, c, k in ((1, 13, 17), (2, 8, 6), (8, 8, 16)):
                n, h, w, r, s = 2, 11, 9, 3, 3
                x = rng.standard_normal((n, h, w, c) if layout == "NHWC" else (n, c, h, w)).astype(dtype)
                wt = rng.standard_normal((k, r, s, c // groups) if layout == "NHWC"
                                         else (k, c // groups, r, s)).astype(dtype)
                bias = rng.standard_normal(k).astype(np.float32)
                kw = dict(stride=(2, 1), padding=((1, 2), (0, 1)), dilation=(1, 2), groups=groups, layout=layout)
                name = "depthwise" if groups == c else f"g={groups}"
                depth = r * s * c // groups

                def fwd(x=x, wt=wt, bias=bias, kw=kw, dtype=dtype, depth=depth):
                    got = ak.conv2d(cp.asarray(x), cp.asarray(wt), cp.asarray(bias), activation="relu",
                                    backend="cuda", **kw)
                    ref = ak.reference.conv2d(x, wt, bias, activation="relu", **kw)
                    return close(cp.asnumpy(got), ref, depth, dtype)

                run(f"conv2d {name} {layout} {_dtypes.short_name(dtype)}", "simt", f"{n}x{h}x{w}x{c}->{k}", fwd)
                y = ak.reference.conv2d(x, wt, **kw)
                gy = rng.standard_normal(y.shape).astype(dtype)

                def bwd_data(x=x, wt=wt, gy=gy, kw=kw, dtype=dtype):
                    got = ak.conv2d_backward_data(cp.asarray(gy), cp.asarray(wt), x.shape, backend="cuda", **kw)
                    ref = ak.reference.conv2d_backward_data(gy, wt, x.shape, **kw)
                    return close(cp.asnumpy(got), ref, gy.size, dtype)

                def bwd_weight(x=x, wt=wt, gy=gy, kw=kw, dtype=dtype):
                    got = ak.conv2d_backward_weight(cp.asarray(x), cp.asarray(gy), wt.shape, backend="cuda", **kw)
                    ref = ak.reference.conv2d_backward_weight(x, gy, wt.shape, **kw)
                    return close(cp.asnumpy(got), ref, gy.size, dtype)

                run(f"conv2d_backward_data {name} {layout} {_dtypes.short_name(dtype)}", "simt", "", bwd_data)
                run(f"conv2d_backward_weight {name} {layout} {_dtypes.short_name(dtype)}", "simt", "", bwd_weight)
        for x_dtype in (np.uint8, np.int8):
            info = np.iinfo(x_dtype)
            x = rng.integers(info.min, info.max + 1, (2, 9, 7, 12) if layout == "NHWC" else (2, 12, 9, 7)).astype(x_dtype)
            wt = rng.integers(-128, 128, (10, 3, 3, 6) if layout == "NHWC" else (10, 6, 3, 3)).astype(np.int8)
            kw = dict(x_zero_point=int(info.max) // 2, w_zero_point=rng.integers(-128, 128, 10).astype(np.int32),
                      scale=np.float32(0.01), out_zero_point=3, out_dtype=np.uint8, stride=1, padding=1, groups=2,
                      layout=layout, bias=rng.integers(-500, 500, 10).astype(np.int32))

            def qfwd(x=x, wt=wt, kw=kw):
                got = ak.qconv2d(cp.asarray(x), cp.asarray(wt), backend="cuda", **kw)
                return compare_exact(cp.asnumpy(got), ak.reference.qconv2d(x, wt, **kw))

            run(f"qconv2d {_dtypes.short_name(x_dtype)}s8->u8 {layout}", "simt", "2x9x7x12->10", qfwd)


def reduction_cases(cp, rng, ext, run):
    stream = cp.cuda.get_current_stream().ptr
    n = 100_003
    for dtype in (np.float32, np.float16):
        for op, name, fn in ((0, "sum", np.add), (1, "max", np.maximum), (2, "min", np.minimum)):
            a = rng.integers(-50, 50, n).astype(dtype)
            b = rng.integers(-50, 50, n).astype(dtype)

            def red(a=a, b=b, op=op, fn=fn, dtype=dtype):
                da, db = cp.asarray(a), cp.asarray(b)
                ext.reduce_inplace(ext.DTYPES[_dtypes.short_name(dtype)], op, da.data.ptr, db.data.ptr, n, stream)
                return compare_exact(cp.asnumpy(da), fn(a, b).astype(dtype))

            run(f"reduce_inplace {name} {_dtypes.short_name(dtype)}", "simt", str(n), red)
    x = rng.standard_normal(n).astype(np.float32)
    x[:256] = 0.0

    def quant():
        dx = cp.asarray(x)
        blocks = -(-n // 256)
        q = cp.empty(n, np.int8)
        s = cp.empty(blocks, np.float32)
        ext.quantize_int8_blocks(ext.DTYPES["f32"], dx.data.ptr, n, 256, q.data.ptr, s.data.ptr, stream)
        pad = np.zeros(blocks * 256, np.float32)
        pad[:n] = x
        amax = np.abs(pad.reshape(blocks, 256)).max(1)
        with np.errstate(divide="ignore"):
            inv = np.where(amax > 0, np.float32(127) / amax.astype(np.float32), np.float32(0)).astype(np.float32)
        ref_q = np.clip(np.rint(pad.reshape(blocks, 256) * inv[:, None]), -127, 127).astype(np.int8).reshape(-1)[:n]
        problem = compare_exact(cp.asnumpy(q), ref_q) or compare_exact(cp.asnumpy(s), (amax / np.float32(127)).astype(np.float32))
        if problem:
            return problem
        out = cp.zeros(n, np.float32)
        ext.dequantize_int8_blocks(ext.DTYPES["f32"], q.data.ptr, s.data.ptr, n, 256, out.data.ptr, False, stream)
        err = np.abs(cp.asnumpy(out) - x).max()
        return None if err <= np.abs(x).max() / 127 else f"dequantization error {err}"

    run("int8 block quantize/dequantize", "simt", str(n), quant)


def nccl_case(cp, rng, run):
    from aicc_kernels.backends import cuda_collective as cc

    reason = cc.nccl_unavailable_reason()
    if reason:
        ROWS.append(("nccl allreduce", "-", "-", f"skipped ({reason})", 0.0))
        return
    comm = cc.NcclCommunicator(0, 1, cc.nccl_unique_id())
    x = rng.integers(-100, 100, 4099).astype(np.float32)
    for compression in (None, "fp16", "bf16", "int8"):
        def fn(compression=compression):
            got = cp.asnumpy(comm.allreduce(cp.asarray(x), compression=compression))
            if compression is None:
                return compare_exact(got, x)
            err = np.abs(got - x).max()
            return None if err <= np.abs(x).max() / 100 else f"error {err}"

        run(f"nccl allreduce 1 rank ({compression})", "nccl", "4099", fn)
    comm.close()


if __name__ == "__main__":
    sys.exit(main())
