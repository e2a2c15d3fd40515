"""The CUDA reduction kernels and the NCCL communicator (GPU only; skipped with the reason
elsewhere). Integer-valued floats make every sum exact, so results compare bit for bit."""

import numpy as np
import pytest

import aicc_kernels as ak


@pytest.fixture
def cuda():
    backend = ak.backends.get("cuda")
    if not backend.available:
        pytest.skip(f"no CUDA device: cuda backend unavailable ({backend.unavailable_reason})")
    import cupy as cp

    from aicc_kernels.backends import cuda as ck

    return cp, ck._ext


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("op", ["sum", "max", "min"])
@pytest.mark.parametrize("n", [1, 255, 100_003])
def test_reduce_inplace(cuda, dtype, op, n):
    cp, ext = cuda
    rng = np.random.default_rng(n)
    a = rng.integers(-1000, 1000, n).astype(dtype)
    b = rng.integers(-1000, 1000, n).astype(dtype)
    if n > 2:
        a[1], b[2] = np.nan, np.inf
    expected = {"sum": np.add, "max": np.maximum, "min": np.minimum}[op](a.astype(np.float32), b).astype(dtype)
    da, db = cp.asarray(a), cp.asarray(b)
    ext.reduce_inplace(ext.DTYPES[np.dtype(dtype).name.replace("float", "f")], ["sum", "max", "min"].index(op),
                       da.data.ptr, db.data.ptr, n, cp.cuda.get_current_stream().ptr)
    np.testing.assert_array_equal(cp.asnumpy(da), expected)  # NaN positions equal too


@pytest.mark.parametrize("n", [1, 256, 1000, 65_537])
def test_int8_block_quantization(cuda, n):
    cp, ext = cuda
    rng = np.random.default_rng(n)
    x = (rng.standard_normal(n) * 10).astype(np.float32)
    if n > 256:
        x[:256] = 0.0  # an all-zero block: scale 0, q 0
    if n > 600:
        x[600] = np.inf  # a non-finite block: NaN scale, q 0
    blocks = -(-n // 256)
    dx = cp.asarray(x)
    q = cp.empty(n, np.int8)
    s = cp.empty(blocks, np.float32)
    stream = cp.cuda.get_current_stream().ptr
    ext.quantize_int8_blocks(ext.DTYPES["f32"], dx.data.ptr, n, 256, q.data.ptr, s.data.ptr, stream)
    pad = np.zeros(blocks * 256, np.float32)
    pad[:n] = x
    blk = pad.reshape(blocks, 256)
    finite = np.isfinite(blk).all(axis=1)
    amax = np.where(finite, np.abs(np.where(np.isfinite(blk), blk, 0)).max(axis=1), 0).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(amax > 0, np.float32(127) / amax, np.float32(0)).astype(np.float32)
    ref_q = np.where(finite[:, None], np.clip(np.rint(blk * inv[:, None]), -127, 127), 0)
    np.testing.assert_array_equal(cp.asnumpy(q), ref_q.astype(np.int8).reshape(-1)[:n])
    ref_s = np.where(finite, amax / np.float32(127), np.nan).astype(np.float32)
    np.testing.assert_array_equal(cp.asnumpy(s), ref_s)


def test_nccl_single_rank_allreduce(cuda):
    cp, _ = cuda
    from aicc_kernels.backends import cuda_collective as cc

    reason = cc.nccl_unavailable_reason()
    if reason:
        pytest.skip(reason)
    comm = cc.NcclCommunicator(0, 1, cc.nccl_unique_id())
    try:
        x = np.arange(-500, 4599, dtype=np.float32)
        for op in ("sum", "avg", "max", "min"):
            np.testing.assert_array_equal(cp.asnumpy(comm.allreduce(cp.asarray(x), op)), x)
        got = cp.asnumpy(comm.allreduce(cp.asarray(x), compression="int8"))
        bound = np.repeat(np.abs(np.pad(x, (0, -len(x) % 256))).reshape(-1, 256).max(1) / 127 / 2, 256)[: len(x)]
        # Half a quantization step, plus the f32 roundings of the requantization (tiny).
        assert (np.abs(got - x) <= bound * 1.001).all()
        np.testing.assert_array_equal(cp.asnumpy(comm.all_gather(cp.asarray(x[:7])))[0], x[:7])
        np.testing.assert_array_equal(cp.asnumpy(comm.reduce_scatter(cp.asarray(x[:10]))), x[:10])
        b = cp.asarray(x[:5])
        np.testing.assert_array_equal(cp.asnumpy(comm.broadcast(b, root=0)), x[:5])
    finally:
        comm.close()
