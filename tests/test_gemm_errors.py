"""Bad input to gemm / matmul / qgemm: a clear exception naming the argument, no crash."""

import numpy as np
import pytest

import aicc_kernels as ak

f32 = np.ones((3, 4), np.float32)
w32 = np.ones((4, 5), np.float32)
u8 = np.ones((3, 4), np.uint8)
s8 = np.ones((4, 5), np.int8)


@pytest.mark.parametrize("call, exc, words", [
    (lambda: ak.gemm(np.ones(3, np.float32), w32), ValueError, ["a:", "2-D", "1-D"]),
    (lambda: ak.gemm(f32, np.ones((5, 5), np.float32)), ValueError, ["b:", "4 rows"]),
    (lambda: ak.gemm(f32, w32.astype(np.float16)), TypeError, ["b:", "f32", "f16"]),
    (lambda: ak.gemm(f32.astype(np.float64), w32.astype(np.float64)), TypeError, ["a:", "f64"]),
    (lambda: ak.gemm(np.array([["x"]]), w32), TypeError, ["a:", "numeric"]),
    (lambda: ak.gemm(f32, w32, out=np.empty((3, 4), np.float32)), ValueError, ["out:", "(3, 5)"]),
    (lambda: ak.gemm(f32, w32, out=np.empty((3, 5), np.float16)), TypeError, ["out:", "f16"]),
    (lambda: ak.gemm(f32, w32, out_dtype=np.int8), TypeError, ["out_dtype:"]),
    (lambda: ak.gemm(f32, w32, beta=1.0), ValueError, ["c:", "beta"]),
    (lambda: ak.gemm(f32, w32, bias=np.ones(4, np.float32)), ValueError, ["bias:", "(5,)"]),
    (lambda: ak.gemm(f32, w32, activation="tanh"), ValueError, ["activation:", "tanh"]),
    (lambda: ak.gemm(f32, w32, backend="nope"), ValueError, ["backend:", "nope"]),
    (lambda: ak.matmul(f32, np.ones((3, 5), np.float32)), ValueError, ["b:", "4 rows"]),
    (lambda: ak.matmul(np.ones((2, 3, 4), np.float32), np.ones((3, 4, 5), np.float32)), ValueError, ["b:", "batch"]),
    (lambda: ak.qgemm(u8, s8.astype(np.uint8)), TypeError, ["b:", "s8", "u8"]),
    (lambda: ak.qgemm(f32, s8), TypeError, ["a:", "f32"]),
    (lambda: ak.qgemm(u8, s8, a_zero_point=256), ValueError, ["a_zero_point", "256"]),
    (lambda: ak.qgemm(u8, s8, b_zero_point=np.zeros(4, np.int32)), ValueError, ["b_zero_point", "(5,)"]),
    (lambda: ak.qgemm(u8, s8, out_dtype=np.int8), ValueError, ["scale:", "None"]),
    (lambda: ak.qgemm(u8, s8, out_dtype=np.int8, scale=-1.0), ValueError, ["scale:", "positive"]),
    (lambda: ak.qgemm(u8, s8, scale=0.5), ValueError, ["scale:", "s32"]),
    (lambda: ak.qgemm(u8, s8, bias=np.ones(5, np.float32)), TypeError, ["bias:", "int32"]),
    (lambda: ak.qgemm(u8, s8, activation="gelu"), ValueError, ["activation:"]),
    (lambda: ak.qgemm(u8, s8, out_dtype=np.int16), TypeError, ["out_dtype:"]),
])
def test_bad_input_names_the_argument(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    for word in words:
        assert word in str(info.value), f"{word!r} not in {info.value}"


def test_out_overlapping_an_input_is_refused():
    a = np.ones((4, 4), np.float32)
    with pytest.raises(ValueError, match="out: .*overlapping a"):
        ak.gemm(a, a.copy(), out=a)
    with pytest.raises(ValueError, match="out: .*overlapping b"):
        ak.gemm(a.copy(), a, out=a[:, :])


def test_k_that_could_overflow_int32_is_refused():
    k = 70_000  # 70000 * 255 * 128 > 2**31
    a = np.zeros((1, k), np.uint8)
    b = np.zeros((k, 1), np.int8)
    with pytest.raises(ValueError, match=r"a: expected K <= \d+ .*got K=70000"):
        ak.qgemm(a, b)


def test_read_only_out_is_refused():
    out = np.empty((3, 5), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out: .*writeable"):
        ak.gemm(f32, w32, out=out)


def test_cpp_layer_checks_for_direct_callers():
    from aicc_kernels import _aicc_cpu

    out = np.empty((3, 5), np.float32)
    with pytest.raises(ValueError, match="b: expected 4 rows"):
        _aicc_cpu.gemm(f32, np.ones((5, 5), np.float32), None, out, 1.0, 0.0, None, 0)
    with pytest.raises(ValueError, match="a: expected a 2-D array"):
        _aicc_cpu.gemm(np.ones(3, np.float32), w32, None, out, 1.0, 0.0, None, 0)
    with pytest.raises(ValueError, match="out: expected a writeable"):
        ro = np.empty((3, 5), np.float32)
        ro.flags.writeable = False
        _aicc_cpu.gemm(f32, w32, None, ro, 1.0, 0.0, None, 0)


@pytest.mark.parametrize("bad", ["01", "0\x1b", "f33", "[(", b"\xff"])
def test_garbage_dtype_strings_are_a_type_error_naming_the_argument(bad):
    """Found by the fuzz target: np.dtype("01") raises SyntaxError and np.dtype("0\\x1b") a
    ValueError that names nothing."""
    a = np.ones((2, 2), np.float32)
    with pytest.raises(TypeError, match="^out_dtype: expected a dtype"):
        ak.matmul(a, a, out_dtype=bad)
    with pytest.raises(TypeError, match="^out_dtype: expected a dtype"):
        ak.gemm(a, a, out_dtype=bad)
