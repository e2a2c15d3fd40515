"""The C++ package: find_package(aicc_kernels CONFIG) + aicc_kernels::core from an installed tree.

A tiny consumer (tests/cmake_consumer) is configured, built and run against the package
installed with the Python wheel (`python -m aicc_kernels --cmake-dir`); a slow test also
installs the core with plain `cmake --install` (GNU layout) and builds the consumer
against that.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import aicc_kernels as ak

ROOT = Path(__file__).resolve().parents[1]
CONSUMER = ROOT / "tests" / "cmake_consumer"

pytestmark = pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("c++") is None,
                                reason="needs cmake and a C++ compiler on PATH")


def _run(cmd, cwd=None):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _build_consumer(tmp_path, package_dir):
    build = tmp_path / "consumer-build"
    _run(["cmake", "-S", str(CONSUMER), "-B", str(build), f"-Daicc_kernels_DIR={package_dir}",
          "-DCMAKE_BUILD_TYPE=Release"])
    _run(["cmake", "--build", str(build)])
    exe = build / "consumer"
    out = _run([str(exe)])
    assert out.stdout.startswith("ok: 13 kernels"), out.stdout
    return build


def test_cmake_dir_points_at_the_package_config():
    try:
        cmake_dir = ak.get_cmake_dir()
    except FileNotFoundError as exc:
        pytest.skip(f"this build did not install the C++ package: {exc}")
    assert (Path(cmake_dir) / "aicc_kernelsConfig.cmake").is_file()
    assert (Path(ak.get_include()) / "aicc" / "backend.h").is_file()
    printed = _run([sys.executable, "-m", "aicc_kernels", "--cmake-dir"]).stdout.strip()
    assert printed == cmake_dir


def test_consumer_builds_against_the_installed_wheel_tree(tmp_path):
    try:
        cmake_dir = ak.get_cmake_dir()
    except FileNotFoundError as exc:
        pytest.skip(f"this build did not install the C++ package: {exc}")
    _build_consumer(tmp_path, cmake_dir)


def test_cxx_backend_library_loads_and_passes_conformance(tmp_path):
    try:
        cmake_dir = ak.get_cmake_dir()
    except FileNotFoundError as exc:
        pytest.skip(f"this build did not install the C++ package: {exc}")
    build = _build_consumer(tmp_path, cmake_dir)
    from aicc_kernels.backends import native
    from aicc_kernels.testing import conformance

    (library,) = build.glob("*consumer_backend.so")
    backend = native.load(library, name="cxx-example-test")
    try:
        assert backend.capabilities() == {"gemm": (("f32", "f32", "f32"),), "qgemm": (("u8", "s8", "s32"),)}
        report = conformance.run("cxx-example-test", max_examples=20)
        passed = {(r.op, r.dtypes) for r in report.results if r.status == "pass"}
        assert passed == {("gemm", "f32/f32/f32"), ("qgemm", "u8/s8/s32")}, conformance.format_table(report)
        assert not report.failed
        # A status from a kernel comes back as the matching Python exception (here the
        # library's qgemm refusing, as C++ callers' argument checks do, a K that could overflow).
        import numpy as np

        a = np.full((1, 70000), 255, np.uint8)
        kernel = backend.kernel("qgemm", ("u8", "s8", "s32"))
        with pytest.raises(ValueError, match="a: expected K small enough that int32 accumulation cannot overflow"):
            kernel(a, np.full((70000, 1), -128, np.int8), np.empty((1, 1), np.int32))
    finally:
        ak.backends.unregister("cxx-example-test")


@pytest.mark.slow
def test_consumer_builds_against_a_plain_cmake_install(tmp_path):
    build, prefix = tmp_path / "core-build", tmp_path / "prefix"
    _run(["cmake", "-S", str(ROOT), "-B", str(build), "-DAICC_CUDA=OFF", "-DCMAKE_BUILD_TYPE=Release",
          f"-DCMAKE_INSTALL_PREFIX={prefix}"])
    _run(["cmake", "--build", str(build), "--target", "aicc_core", "-j", str(min(2, os.cpu_count() or 1))])
    _run(["cmake", "--install", str(build)])
    config = list(prefix.glob("lib*/cmake/aicc_kernels/aicc_kernelsConfig.cmake"))
    assert config, f"no aicc_kernelsConfig.cmake under {prefix}"
    assert (prefix / "include" / "aicc" / "backend.h").is_file()
    _build_consumer(tmp_path, config[0].parent)
