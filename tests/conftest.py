import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import aicc_kernels as ak

SUPPRESSED = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture]

# The backend fixture is function-scoped on purpose: it only selects a backend and ISA,
# which is the same for every generated example.
# Bounded example counts and no per-example deadline: the suite's time stays predictable on
# a 2-core CI machine. AICC_HYPOTHESIS_PROFILE=thorough for a longer local run.
settings.register_profile("ci", max_examples=40, deadline=None,
                          suppress_health_check=SUPPRESSED)
settings.register_profile("thorough", max_examples=400, deadline=None,
                          suppress_health_check=SUPPRESSED)
settings.register_profile("asan", max_examples=15, deadline=None,
                          suppress_health_check=SUPPRESSED)
settings.load_profile(os.environ.get("AICC_HYPOTHESIS_PROFILE", "ci"))


def _isa_paths():
    try:
        from aicc_kernels import _aicc_cpu
    except ImportError:
        return []
    # The detected path, every lower vector path (an AVX-512 machine also tests the AVX2
    # kernels that AVX2-only CPUs run), and portable.
    order = ["avx512", "avx2", "portable"]
    detected = _aicc_cpu.detected_isa()
    return order[order.index(detected):] if detected in order else ["portable"]


# cuda: tensor cores where the GPU has them ("auto"), then the CUDA-core / dp4a fallbacks.
BACKEND_PARAMS = [pytest.param(("cpu", isa), id=f"cpu-{isa}") for isa in _isa_paths()] + [
    pytest.param(("cuda", "auto"), id="cuda"), pytest.param(("cuda", "simt"), id="cuda-simt")]


@pytest.fixture(params=BACKEND_PARAMS)
def backend(request):
    """Each backend under test, by name: the CPU backend once per ISA path this machine
    has (AVX2 and portable on x86-64), and CUDA where a GPU is present (once per kernel
    path: tensor cores, then the SIMT / dp4a fallbacks)."""
    name, isa = request.param
    if name == "cuda":
        if "cuda" not in ak.backends.list() or not ak.backends.get("cuda").available:
            reason = "not built" if "cuda" not in ak.backends.list() else ak.backends.get("cuda").unavailable_reason
            pytest.skip(f"no CUDA device: cuda backend unavailable ({reason})")
        from aicc_kernels.backends import cuda as cuda_backend

        cuda_backend.set_path(isa)
        try:
            yield name
        finally:
            cuda_backend.set_path("auto")
        return
    if not ak.backends.get("cpu").available:
        pytest.skip(f"cpu backend unavailable: {ak.backends.get('cpu').unavailable_reason}")
    from aicc_kernels import _aicc_cpu

    previous = _aicc_cpu.active_isa()
    _aicc_cpu.set_isa(isa)
    try:
        yield name
    finally:
        _aicc_cpu.set_isa(previous)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
