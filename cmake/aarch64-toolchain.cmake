# Cross-compiling toolchain for aarch64 Linux with Debian's g++-aarch64-linux-gnu
# (tools/test-aarch64.sh uses it; the binaries run under qemu-aarch64).
#   cmake -S . -B build/aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-toolchain.cmake
# AICC_AARCH64_TRIPLE selects another GNU triple prefix (e.g. a vendor toolchain).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
if(NOT AICC_AARCH64_TRIPLE)
  set(AICC_AARCH64_TRIPLE aarch64-linux-gnu)
endif()
set(CMAKE_C_COMPILER ${AICC_AARCH64_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${AICC_AARCH64_TRIPLE}-g++)
# Debian's multiarch cross sysroot: libraries and headers of the target only.
set(CMAKE_FIND_ROOT_PATH /usr/${AICC_AARCH64_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# How CMake (ctest, try_run) runs target binaries on this host.
find_program(AICC_QEMU_AARCH64 qemu-aarch64)
if(AICC_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${AICC_QEMU_AARCH64};-L;/usr/${AICC_AARCH64_TRIPLE})
endif()
