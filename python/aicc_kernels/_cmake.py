"""Where the C++ package lives inside the installed Python package (the pybind11 way):

    cmake -Daicc_kernels_DIR="$(python -m aicc_kernels --cmake-dir)" ..
    find_package(aicc_kernels CONFIG REQUIRED)
    target_link_libraries(mytarget PRIVATE aicc_kernels::core)
"""

from __future__ import annotations

import os
from typing import List


def _package_dirs() -> List[str]:
    # An editable install splits the package: Python sources in the checkout, CMake-installed
    # files (extension, lib/, include/, share/) in the build tree; both are on __path__.
    import aicc_kernels

    return [os.path.abspath(p) for p in getattr(aicc_kernels, "__path__", [os.path.dirname(aicc_kernels.__file__)])]


def _find(*parts: str) -> str:
    for base in _package_dirs():
        path = os.path.join(base, *parts)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(
        f"{'/'.join(parts)}: expected it under the installed aicc_kernels package ({', '.join(_package_dirs())}), "
        "got nothing there: this build did not install the C++ package (built without scikit-build-core?)")


def get_cmake_dir() -> str:
    """The directory holding aicc_kernelsConfig.cmake (pass it as aicc_kernels_DIR)."""
    return _find("share", "cmake", "aicc_kernels")


def get_include() -> str:
    """The directory holding aicc/*.h."""
    return _find("include")


def get_library_dir() -> str:
    """The directory holding the static core library (libaicc_core.a)."""
    return _find("lib")
