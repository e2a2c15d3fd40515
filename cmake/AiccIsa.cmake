# Compiler flags of every kernel file, from its name suffix: the one table of ISA flags.
#
# A CPU kernel file is named <what>_<suffix>.cc; the suffix says which instructions its code
# uses, and so which flags it is compiled with. Everything else is compiled for the baseline
# of the target (no -march=native anywhere: an installed wheel runs on any x86-64, and each
# kernel is reached only through the runtime registry, csrc/cpu/config/).
#
# A file whose suffix looks like an ISA name but is not in the table is a configure error,
# never a silent build without flags.

set(_aicc_x86_avx2 -mavx2 -mfma -mf16c)
set(_aicc_x86_avx512 ${_aicc_x86_avx2} -mavx512f -mavx512bw -mavx512vl -mavx512dq)
# GCC 12 reports -Wmaybe-uninitialized (or, once inlined, -Wuninitialized) on the `__Y` inside
# its own AVX-512 intrinsics (the _mm*_undefined_* placeholder of masked, convert and extract
# intrinsics, GCC bug 105593): thousands of lines per build that bury real warnings. Off for the
# AVX-512 files on GCC < 13 only.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  list(APPEND _aicc_x86_avx512 -Wno-maybe-uninitialized -Wno-uninitialized)
endif()

# suffix -> flags (x86-64 builds)
set(AICC_ISA_SUFFIXES avx2 avx512 avx512vnni avx512bf16)
set(AICC_ISA_FLAGS_avx2 ${_aicc_x86_avx2})
set(AICC_ISA_FLAGS_avx512 ${_aicc_x86_avx512})
set(AICC_ISA_FLAGS_avx512vnni ${_aicc_x86_avx512} -mavx512vnni)
set(AICC_ISA_FLAGS_avx512bf16 ${_aicc_x86_avx512} -mavx512bf16)

# suffix -> flags (aarch64 builds). The baseline is armv8-a, where NEON (Advanced SIMD) is
# architectural: _neon files need no flag. dotprod (sdot/udot) is optional from armv8.2-a,
# i8mm (smmla/usmmla/usdot) and bf16 (bfdot/bfmmla) from armv8.2-a as extensions (mandatory in
# armv8.6-a); each file is compiled for exactly the extensions its registry entry requires.
set(AICC_ARM_ISA_SUFFIXES neon dotprod i8mm armbf16)
set(AICC_ISA_FLAGS_neon "")
set(AICC_ISA_FLAGS_dotprod -march=armv8.2-a+dotprod)
set(AICC_ISA_FLAGS_i8mm -march=armv8.2-a+i8mm)
set(AICC_ISA_FLAGS_armbf16 -march=armv8.2-a+bf16)

# The pattern of names that claim an ISA suffix (checked against the table).
set(_aicc_isa_like "_(avx|amx|sse|neon|sve|dotprod|i8mm|armbf16)[a-z0-9]*\\.cc$")

# aicc_apply_isa_flags(<list var of sources> <is x86>): sets COMPILE_OPTIONS on each kernel
# file and removes the files of other architectures from the list (an x86-64 build leaves out
# the aarch64 suffixes, an aarch64 build the x86 ones; any other target keeps only the
# portable files). <is x86> false means aarch64 when CMAKE_SYSTEM_PROCESSOR says so.
function(aicc_apply_isa_flags sources_var is_x86)
  set(is_aarch64 OFF)
  if(NOT is_x86 AND CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
    set(is_aarch64 ON)
  endif()
  set(kept)
  foreach(src ${${sources_var}})
    get_filename_component(name ${src} NAME)
    if(NOT name MATCHES "${_aicc_isa_like}")
      list(APPEND kept ${src})
      continue()
    endif()
    string(REGEX MATCH "_([a-z0-9]+)\\.cc$" _m ${name})
    set(suffix ${CMAKE_MATCH_1})
    if(suffix IN_LIST AICC_ISA_SUFFIXES)
      if(is_x86)
        set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "${AICC_ISA_FLAGS_${suffix}}")
        list(APPEND kept ${src})
      endif()
    elseif(suffix IN_LIST AICC_ARM_ISA_SUFFIXES)
      if(is_aarch64)
        if(AICC_ISA_FLAGS_${suffix})
          set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "${AICC_ISA_FLAGS_${suffix}}")
        endif()
        list(APPEND kept ${src})
      endif()
    else()
      message(FATAL_ERROR "aicc_kernels: ${src}: the ISA suffix '_${suffix}' is not in cmake/AiccIsa.cmake; "
                          "add it with its compiler flags (known: ${AICC_ISA_SUFFIXES} ${AICC_ARM_ISA_SUFFIXES})")
    endif()
  endforeach()
  set(${sources_var} ${kept} PARENT_SCOPE)
endfunction()
