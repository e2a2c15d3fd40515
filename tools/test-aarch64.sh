#!/usr/bin/env bash
# Cross-compiles the C++ core for aarch64 and runs the registry kernel tests under qemu-user,
# with CPU models that have and lack the optional instructions the aarch64 entries use:
#   -cpu max          neon dotprod i8mm arm_bf16: every aarch64 entry runs (full edge cases)
#   -cpu cortex-a76   neon dotprod:               the i8mm and bf16 entries fall back
#   -cpu cortex-a57   neon (armv8.0):             INT8 falls back to portable, bf16 to f32 NEON
# and proves the fallback runs are real: on cortex-a57 a forced dotprod entry must die of
# SIGILL. Then prints the microkernels' inner-loop instruction counts (tools/aarch64_insn_report.py).
#
#   bash tools/test-aarch64.sh            (run from anywhere; build in build/aarch64)
# Env: AICC_AARCH64_BUILD (build dir), AICC_JOBS (parallel jobs, default 2).
# Installs g++-aarch64-linux-gnu and qemu-user with apt when missing. Exits non-zero on any
# failure; the last line is "aarch64: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
stamp() { echo "=== aarch64 [$(( $(date +%s) - start ))s] $*"; }
triple=aarch64-linux-gnu
build="${AICC_AARCH64_BUILD:-build/aarch64}"
jobs="${AICC_JOBS:-2}"

if ! command -v "$triple-g++" >/dev/null 2>&1 || ! command -v qemu-aarch64 >/dev/null 2>&1; then
  stamp "install the cross compiler and qemu-user"
  SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "g++-$triple" qemu-user
fi

stamp "cross-compile aicc_core + tests/cpp/test_registry_kernels ($("$triple-g++" -dumpfullversion))"
gen=()
command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
cmake -S tests/cpp -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/aarch64-toolchain.cmake" >/dev/null
cmake --build "$build" --target test_registry_kernels -j "$jobs"
bin="$build/test_registry_kernels"
if command -v file >/dev/null 2>&1 && ! file "$bin" | grep -q "ARM aarch64"; then
  echo "aarch64: $bin is not an aarch64 binary" >&2; exit 1
fi

passed=0; failed=0
run() {  # run <cpu> <expected features> [args]: the binary under qemu with that CPU model
  local cpu=$1 feats=$2; shift 2
  stamp "qemu-aarch64 -cpu $cpu ($feats) $*"
  local log rc=0
  log=$(mktemp)
  qemu-aarch64 -L "/usr/$triple" -cpu "$cpu" "$bin" --expect-features="$feats" "$@" | tee "$log" || rc=$?
  local line
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1 || true)
  rm -f "$log"
  if [ -z "$line" ]; then
    echo "aarch64: -cpu $cpu ended without a result line (exit $rc)"
    failed=$((failed + 1))
    return
  fi
  passed=$((passed + $(echo "$line" | cut -d' ' -f1)))
  failed=$((failed + $(echo "$line" | cut -d' ' -f3)))
  if [ "$rc" -ne 0 ] && [ "$(echo "$line" | cut -d' ' -f3)" = 0 ]; then
    echo "aarch64: -cpu $cpu exited $rc"; failed=$((failed + 1))
  fi
}
run max neon,dotprod,i8mm,arm_bf16
run cortex-a76 neon,dotprod --quick
run cortex-a57 neon --quick

stamp "the fallback CPU model really lacks the instructions: a forced dotprod entry on cortex-a57"
rc=0
# (in a child shell whose stderr is dropped: the shell's own "Illegal instruction" notice is expected)
bash -c 'qemu-aarch64 -L "$1" -cpu cortex-a57 "$2" --run-unsupported=s8s8_8x12_dotprod; exit $?' _ "/usr/$triple" "$bin" \
  >/dev/null 2>&1 || rc=$?
if [ "$rc" -eq 132 ]; then  # 128 + SIGILL
  echo "ok: SIGILL"; passed=$((passed + 1))
else
  echo "FAIL: expected SIGILL (exit 132), got exit $rc"; failed=$((failed + 1))
fi

stamp "microkernel instruction counts"
python3 tools/aarch64_insn_report.py "$triple-objdump" "$build" || failed=$((failed + 1))

stamp "done"
echo "aarch64: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
