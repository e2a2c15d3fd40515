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
