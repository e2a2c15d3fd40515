"""The CUDA backend (csrc/cuda/, through the _aicc_cuda extension), for CuPy arrays and
any array exposing ``__cuda_array_interface__`` or a CUDA DLPack capsule.

Registered whenever the package is importable. It is *available* only when the extension
was built, the CUDA runtime finds a device, and CuPy is installed; otherwise
`unavailable_reason` says which of these failed (e.g. the runtime's own error string,
"cudaErrorInsufficientDriver: ..." on a machine without a driver).

Stream semantics: every kernel is enqueued on CuPy's *current* stream
(``cupy.cuda.get_current_stream()``) of the current device, and the call returns without
synchronizing, as CuPy operations do. Temporaries (packed INT8 operands, padded copies)
come from CuPy's memory pool on that stream, so stream ordering keeps them alive long
enough. Results are CuPy arrays. All arrays of one call must live on the current device;
host arrays mixed with device arrays, or arrays on another device, raise TypeError /
ValueError naming the argument.

Kernel choice (docs/CUDA.md): f16/bf16 GEMM on tensor cores (mma.sync) on sm_80+, the
SIMT tiled kernel otherwise and for f32; INT8 GEMM on mma.sync m16n8k32 on sm_80+, dp4a
below.
"""

from __future__ import annotations

from ... import _device, _dtypes
from .. import register
from ..base import Backend
from ..reference import FLOAT_GEMM_COMBOS, QGEMM_COMBOS
from . import conv as _conv
from ._runtime import _code, _cp, _ext, get_path, set_path, unavailable_reason  # noqa: F401  (public surface)
from .gemm import _gemm, _qgemm

_UNPROBED = object()


class CudaBackend(Backend):
    """Device "cuda": takes and returns CuPy arrays (module docstring: stream semantics).

    Availability is probed on first use of `unavailable_reason` / `available`, not at
    import: the probe initializes the CUDA driver, after which a forked child process can
    no longer use CUDA, so importing aicc_kernels must not do it."""

    _reason = _UNPROBED

    @property
    def unavailable_reason(self):
        if self._reason is _UNPROBED:
            self._reason = unavailable_reason()
        return self._reason

    @unavailable_reason.setter
    def unavailable_reason(self, value):
        self._reason = value

    def accepts(self, array) -> bool:
        return _device.is_device_array(array)

    def empty(self, shape, dtype):
        cp = _cp()
        try:
            return cp.empty(shape, dtype=dtype)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"out: expected a dtype CuPy can allocate, got {_dtypes.short_name(dtype)} "
                            f"({exc}); pass out= as a DLPack array of that dtype") from None

    def asarray(self, array):
        return _cp().asarray(array)


backend = CudaBackend("cuda", "cuda", {
    "gemm": {combo: _gemm for combo in FLOAT_GEMM_COMBOS},
    "qgemm": {combo: _qgemm for combo in QGEMM_COMBOS},
}, unavailable_reason=_UNPROBED,
    description="CUDA kernels: mma.sync tensor cores (sm_80+), SIMT / dp4a fallbacks, NCCL collectives")

_conv.register_into(backend)
register(backend)
