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
# The ci profile is deliberately *not* seeded (derandomize=False): every run draws new
# examples, so CI keeps exploring the input space instead of re-checking one fixed sample;
# that is how a wrong error bound (issue 17, D11) surfaced. The price is that a failure may
# show up on one run only, so print_blob=True prints the @reproduce_failure line, and each
# such failure becomes an explicit @example (a permanent regression case) once fixed.
settings.register_profile("ci", max_examples=40, deadline=None, derandomize=False, print_blob=True,
                          suppress_health_check=SUPPRESSED)
settings.register_profile("thorough", max_examples=400, deadline=None,
                          suppress_health_check=SUPPRESSED)
settings.register_profile("asan", max_examples=15, deadline=None,
                          suppress_health_check=SUPPRESSED)
settings.load_profile(os.environ.get("AICC_HYPOTHESIS_PROFILE", "ci"))


# Features that sit on top of an ISA level's base: masking them at that level selects the
# level's plain kernels (e.g. the f32 AVX-512 kernel for bf16 inputs on a CPU with AVX512_BF16).
EXTENSION_FEATURES = "-avx512_bf16,-avx512_vnni,-avx512_fp16,-avx_vnni,-amx"


def cpu_settings():
    """(id, isa cap, feature mask) settings that together select every registry entry this
    CPU can run, one setting per distinct combination of choices (registry-derived, so a new
    entry is tested without touching this file; test_registry.py checks the coverage)."""
    try:
        from aicc_kernels import _aicc_cpu
    except ImportError:
        return []
    order = ["amx", "avx512", "avx2", "portable"]
    detected = _aicc_cpu.detected_isa()
    levels = order[order.index(detected):] if detected in order else ["portable"]
    candidates = []
    for level in levels:
        candidates.append((level, level, ""))
        if level != "portable":
            candidates.append((f"{level}-base", level, EXTENSION_FEATURES))
    previous = (_aicc_cpu.active_isa(), _aicc_cpu.masked_features())
    settings, seen = [], set()
    try:
        for ident, level, mask in candidates:
            _aicc_cpu.set_isa(level)
            _aicc_cpu.set_cpu_features(mask)
            choice = tuple(sorted((e["family"], e["name"]) for e in _aicc_cpu.registry() if e["chosen"]))
            if choice not in seen:
                seen.add(choice)
                settings.append((ident, level, mask))
    finally:
        _aicc_cpu.set_isa(previous[0])
        _aicc_cpu.set_cpu_features(",".join("-" + f for f in previous[1].split()))
    return settings


CPU_SETTINGS = cpu_settings()


class use_cpu_setting:
    """Context manager: select a cpu_settings() entry, restore the previous one on exit."""

    def __init__(self, level, mask):
        self.level, self.mask = level, mask

    def __enter__(self):
        from aicc_kernels import _aicc_cpu

        self.previous = (_aicc_cpu.active_isa(), _aicc_cpu.masked_features())
        _aicc_cpu.set_isa(self.level)
        _aicc_cpu.set_cpu_features(self.mask)
        return self

    def __exit__(self, *exc):
        from aicc_kernels import _aicc_cpu

        _aicc_cpu.set_isa(self.previous[0])
        _aicc_cpu.set_cpu_features(",".join("-" + f for f in self.previous[1].split()))


# cuda: tensor cores where the GPU has them ("auto"), then the CUDA-core / dp4a fallbacks.
BACKEND_PARAMS = [pytest.param(("cpu", (level, mask)), id=f"cpu-{ident}") for ident, level, mask in CPU_SETTINGS] + [
    pytest.param(("cuda", "auto"), id="cuda"), pytest.param(("cuda", "simt"), id="cuda-simt")]


@pytest.fixture(params=BACKEND_PARAMS)
def backend(request):
    """Each backend under test, by name: the CPU backend once per setting of cpu_settings()
    (together they run every registry entry this CPU can run), and CUDA where a GPU is
    present (once per kernel path: tensor cores, then the SIMT / dp4a fallbacks)."""
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
    with use_cpu_setting(*isa):
        yield name


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def on_threads(counts, fn):
    """[fn() with the kernel thread count set to each of `counts`], the caller's thread count
    restored afterwards (tests of results that must not depend on the thread count)."""
    import aicc_kernels as ak

    previous = ak.get_num_threads()
    try:
        results = []
        for threads in counts:
            ak.set_num_threads(threads)
            results.append(fn())
        return results
    finally:
        ak.set_num_threads(previous)
