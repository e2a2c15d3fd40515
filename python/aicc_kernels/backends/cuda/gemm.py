"""GEMM and INT8 GEMM kernels of the CUDA backend (csrc/cuda/gemm*.cu), with the kernel
signatures of the op layer (aicc_kernels.ops.gemm)."""

from __future__ import annotations

import numpy as np

from ... import _dtypes
from ._runtime import (_ACT, _check_device, _code, _cp, _device_vector, _elem_strides, _ext, _finish, _k_major,
                       _mma_ok, _out_target, _stream)

def _gemm(a, b, c, out, *, alpha=1.0, beta=0.0, bias=None, activation=None):
    _check_device(a=a, b=b, out=out, c=c if beta != 0.0 else None)
    m, k = a.shape
    n = b.shape[1]
    stream = _stream()
    c_ptr, c_rs, c_cs = 0, 0, 0
    if beta != 0.0:
        c32 = c if c.dtype == np.float32 else c.astype(np.float32)
        c32, (c_rs, c_cs) = _elem_strides(c32)
        c_ptr = c32.data.ptr
    bias_dev = _device_vector(bias, n, np.float32) if bias is not None else None
    bias_ptr = bias_dev.data.ptr if bias_dev is not None else 0
    target, ldo = _out_target(out)
    args = (float(alpha), float(beta), c_ptr, c_rs, c_cs, bias_ptr, _ACT[activation], target.data.ptr, ldo,
            _code(out.dtype), stream)
    if a.dtype in (_dtypes.float16, _dtypes.bfloat16) and k > 0 and _mma_ok():
        # Both come back with K = round_up(k, 8): used as is only when k is already a multiple.
        a_op, lda, kp = _k_major(a, 8)
        bt_op, ldb, _ = _k_major(b.T, 8)
        _ext.gemm_f16_mma(_code(a.dtype), a_op.data.ptr, lda, bt_op.data.ptr, ldb, m, n, kp, *args)
    else:
        a_s, (a_rs, a_cs) = _elem_strides(a)
        b_s, (b_rs, b_cs) = _elem_strides(b)
        _ext.gemm_simt(_code(a.dtype), a_s.data.ptr, a_rs, a_cs, b_s.data.ptr, b_rs, b_cs, m, n, k, *args)
    _finish(target, out)


def _pack_int8(x, rows, k, rs, cs, kp, is_u8, stream):
    cp = _cp()
    packed = cp.empty((rows, kp), dtype=np.int8)
    sums = cp.empty((rows,), dtype=np.int32)
    _ext.pack_s8_rows(x.data.ptr, is_u8, rs, cs, rows, k, kp, packed.data.ptr, sums.data.ptr, stream)
    return packed, sums


def _qgemm(a, b, out, *, a_zero_point=0, b_zero_point=0, scale=None, bias=None, out_zero_point=0,
           activation=None):
    _check_device(a=a, b=b, out=out)
    m, k = a.shape
    n = b.shape[1]
    stream = _stream()
    kp = -(-max(k, 1) // 16) * 16
    is_u8 = a.dtype == np.uint8
    a8, rowsum_a = _pack_int8(a, m, k, a.strides[0], a.strides[1], kp, is_u8, stream)
    # Bt[j, kk] = b[kk, j]: row stride = b's column stride.
    bt8, colsum_b = _pack_int8(b, n, k, b.strides[1], b.strides[0], kp, False, stream)
    za = int(a_zero_point) - (128 if is_u8 else 0)  # the zero point in the packed (shifted) domain
    zb = _device_vector(b_zero_point, n, np.int32)
    bias_dev = _device_vector(bias, n, np.int32) if bias is not None else None
    scale_dev = _device_vector(scale, n, np.float32) if scale is not None else None
    target, ldo = _out_target(out)
    _ext.qgemm_s8(a8.data.ptr, bt8.data.ptr, m, n, kp, k, rowsum_a.data.ptr, colsum_b.data.ptr, za,
                  zb.data.ptr, bias_dev.data.ptr if bias_dev is not None else 0,
                  scale_dev.data.ptr if scale_dev is not None else 0, int(out_zero_point),
                  activation == "relu", target.data.ptr, ldo, _code(out.dtype), _mma_ok(), stream)
    _finish(target, out)
