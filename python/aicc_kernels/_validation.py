"""Argument checks shared by every op. Messages follow one pattern, the contract of
docs/SEMANTICS.md: "<argument>: expected <what>, got <what>"."""

from __future__ import annotations

import operator

import numpy as np

from . import _device, _dtypes

ACTIVATIONS = (None, "relu", "gelu")


def describe(x) -> str:
    if isinstance(x, np.ndarray):
        return f"array of shape {x.shape} and dtype {_dtypes.short_name(x.dtype)}"
    return f"{type(x).__name__} {x!r}" if np.isscalar(x) or x is None else type(x).__name__


def as_array(x, name: str) -> np.ndarray:
    """x as an ndarray without copying when it already is one; TypeError for non-numeric input."""
    if isinstance(x, np.ndarray):
        arr = x
    elif _device.is_device_array(x):
        try:
            arr = _device.as_device_array(x)  # CuPy or DeviceArray view, zero copy
        except (ImportError, TypeError):
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. a bfloat16 DLPack tensor (CuPy has no bf16)
            raise TypeError(f"{name}: expected a CUDA array CuPy can view, got {type(x).__name__} ({exc})") from None
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # noqa: BLE001 - any conversion failure is a type error here
            raise TypeError(f"{name}: expected an array, got {type(x).__name__} ({exc})") from None
    if arr.dtype != _dtypes.bfloat16 and arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    return arr


def float_out_choices(in_dtype) -> str:
    """The output dtypes a float op allows for inputs of in_dtype, as words: "f32" for f32
    inputs (not "f32 or f32"), else "<in> or f32"."""
    name = _dtypes.short_name(in_dtype)
    return name if name == "f32" else f"{name} or f32"


#: Geometry arguments (stride, padding, dilation) beyond this are refused: the kernels index
#: with int64, and an extent past 2^31 could only describe an output no machine can hold.
GEOMETRY_MAX = 2**31 - 1


def check_ndim(arr: np.ndarray, name: str, ndim) -> None:
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if arr.ndim not in allowed:
        want = " or ".join(f"{d}-D" for d in allowed)
        raise ValueError(f"{name}: expected a {want} array, got {arr.ndim}-D shape {arr.shape}")


def check_dtype(arr: np.ndarray, name: str, allowed) -> None:
    allowed = tuple(np.dtype(d) for d in allowed)
    if arr.dtype not in allowed:
        names = ", ".join(_dtypes.short_name(d) for d in allowed)
        raise TypeError(f"{name}: expected dtype in ({names}), got {_dtypes.short_name(arr.dtype)}")


def is_choice(value, choices) -> bool:
    """value is one of `choices` (strings and None). Compared by type first: `array in
    tuple` would compare elementwise and raise an error that names nothing."""
    return (value is None or isinstance(value, str)) and value in choices


def check_activation(activation, allowed=ACTIVATIONS) -> None:
    if not is_choice(activation, allowed):
        raise ValueError(f"activation: expected one of {allowed}, got {activation!r}")


def as_int(value, name: str, *, minimum=None, maximum=None) -> int:
    try:
        result = operator.index(value)
    except TypeError:
        if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iu":
            result = int(value)
        else:
            raise TypeError(f"{name}: expected an integer, got {describe(value)}") from None
    if minimum is not None and result < minimum or maximum is not None and result > maximum:
        lo = "-inf" if minimum is None else minimum
        hi = "inf" if maximum is None else maximum
        raise ValueError(f"{name}: expected an integer in [{lo}, {hi}], got {result}")
    return result


def as_flag(value, name: str) -> bool:
    """A bool argument (trans_a, ...): True/False or NumPy bools; anything else is refused
    rather than judged by truthiness (an array's truth value is an error naming nothing)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name}: expected True or False, got {describe(value)}")


def as_float(value, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a real number, got {describe(value)}") from None


def check_out(out, name: str, shape, dtype, inputs=()) -> np.ndarray:
    """Validates a caller-supplied output: right shape and dtype, writeable, and not
    overlapping any input (aliasing would let the kernel read what it already wrote)."""
    device = _device.is_device_array(out)
    if device:
        out = _device.as_device_array(out)
    elif not isinstance(out, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray or a device array, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {out.shape}")
    if out.dtype != np.dtype(dtype):
        raise TypeError(
            f"{name}: expected dtype {_dtypes.short_name(dtype)}, got {_dtypes.short_name(out.dtype)}")
    if not device and not out.flags.writeable:
        raise ValueError(f"{name}: expected a writeable array, got a read-only one")
    for input_name, arr in inputs:
        if arr is not None and out.size and _overlaps(out, arr):
            raise ValueError(f"{name}: expected memory not overlapping {input_name}, got an overlapping array")
    return out


def _overlaps(x, y) -> bool:
    if _device.is_device_array(x) or _device.is_device_array(y):
        # Host vs device never overlap; two device arrays by their byte ranges (conservative).
        return (_device.is_device_array(x) and _device.is_device_array(y)
                and _device.device_overlaps(_device.as_device_array(x), _device.as_device_array(y)))
    if not np.may_share_memory(x, y):
        return False
    try:
        return bool(np.shares_memory(x, y, max_work=10_000))
    except np.exceptions.TooHardError if hasattr(np, "exceptions") else np.TooHardError:
        return True  # could not prove disjointness: refuse rather than risk it
