# Install rules and the CMake package (find_package(aicc_kernels CONFIG) -> aicc_kernels::core).
#
# In a wheel (scikit-build-core) everything goes under the package directory, the way
# pybind11 ships its CMake files: aicc_kernels/{lib,include,share/cmake/aicc_kernels};
# `python -m aicc_kernels --cmake-dir` prints the last one. A plain `cmake --install`
# uses the usual GNU layout.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

if(SKBUILD)
  set(AICC_INSTALL_LIBDIR aicc_kernels/lib)
  set(AICC_INSTALL_INCLUDEDIR aicc_kernels/include)
  set(AICC_INSTALL_CMAKEDIR aicc_kernels/share/cmake/aicc_kernels)
else()
  set(AICC_INSTALL_LIBDIR ${CMAKE_INSTALL_LIBDIR})
  set(AICC_INSTALL_INCLUDEDIR ${CMAKE_INSTALL_INCLUDEDIR})
  set(AICC_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/aicc_kernels)
endif()

add_library(aicc_kernels::core ALIAS aicc_core)
set_target_properties(aicc_core PROPERTIES EXPORT_NAME core)
target_include_directories(aicc_core PUBLIC $<INSTALL_INTERFACE:${AICC_INSTALL_INCLUDEDIR}>)

install(TARGETS aicc_core EXPORT aicc_kernelsTargets
  ARCHIVE DESTINATION ${AICC_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${AICC_INSTALL_LIBDIR})
install(DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/csrc/include/aicc
  DESTINATION ${AICC_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")
install(EXPORT aicc_kernelsTargets NAMESPACE aicc_kernels:: DESTINATION ${AICC_INSTALL_CMAKEDIR})

configure_package_config_file(${CMAKE_CURRENT_SOURCE_DIR}/cmake/aicc_kernelsConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/aicc_kernelsConfig.cmake
  INSTALL_DESTINATION ${AICC_INSTALL_CMAKEDIR}
  PATH_VARS AICC_INSTALL_INCLUDEDIR)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/aicc_kernelsConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/aicc_kernelsConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/aicc_kernelsConfigVersion.cmake
  DESTINATION ${AICC_INSTALL_CMAKEDIR})
