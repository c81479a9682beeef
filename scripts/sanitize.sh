#!/usr/bin/env bash
# Builds EngramSim with sanitizers and runs the CPU test suite under them (docs/sanitizers.md).
#
#   scripts/sanitize.sh asan [ctest args]   ASan + LeakSanitizer + UBSan, build-asan/, whole CPU suite
#   scripts/sanitize.sh tsan [ctest args]   ThreadSanitizer, build-tsan/, the threaded tests
#
# Extra arguments go to ctest (`scripts/sanitize.sh asan -L unit`); for tsan they replace the
# default selection, the threaded tests (ENGRAMSIM_THREADED_TESTS in tests/CMakeLists.txt, whose
# test suites are listed below), and only those are built. CUDA and the benchmarks are off: device code is not
# instrumented and the benchmarks are not tests. Set ENGRAMSIM_CMAKE_ARGS to pass more options
# to CMake (-DCMAKE_CXX_COMPILER=clang++), JOBS for the build's parallelism (default: nproc).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

kind=${1:-}
case "$kind" in
  asan) sanitize="address,undefined" ;;
  tsan) sanitize="thread" ;;
  *) echo "usage: $0 asan|tsan [ctest args]" >&2; exit 2 ;;
esac
shift
dir=build-$kind
jobs=${JOBS:-$(nproc)}

cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DENGRAMSIM_SANITIZE="$sanitize" \
  -DENGRAMSIM_ENABLE_CUDA=OFF -DENGRAMSIM_BUILD_BENCHMARKS=OFF ${ENGRAMSIM_CMAKE_ARGS:-} >/dev/null
if [ "$kind" = asan ]; then
  cmake --build "$dir" -j "$jobs"
else
  cmake --build "$dir" -j "$jobs" --target engramsim_threaded_tests
fi

# Findings fail the process: halt on the first error, a non-zero exit, and (UBSan) a stack.
supp=$root/scripts/sanitizers
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$supp/ubsan.supp"
if [ "$kind" = asan ]; then
  export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:abort_on_error=0:strict_string_checks=1:check_initialization_order=1:detect_stack_use_after_return=0"
  export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
  if [ $# -eq 0 ]; then
    # The mpirun ranks of SweepMpi: Open MPI keeps its per-process state past MPI_Finalize, in
    # components it has dlclose'd by then (their stacks end in "<unknown module>", which no
    # suppression can name). LeakSanitizer is off for those tests alone; ASan and UBSan stay on.
    ctest --test-dir "$dir" --output-on-failure -j "$jobs" -LE device -E '^SweepMpi\.'
    ASAN_OPTIONS="${ASAN_OPTIONS/detect_leaks=1/detect_leaks=0}" \
      ctest --test-dir "$dir" --output-on-failure -j "$jobs" -LE device -R '^SweepMpi\.'
  else
    ctest --test-dir "$dir" --output-on-failure -j "$jobs" -LE device "$@"
  fi
else
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$supp/tsan.supp"
  # The GoogleTest suites of ENGRAMSIM_THREADED_TESTS (tests/CMakeLists.txt).
  threaded='HostFetch|HostValidation|BlockIo|NvmeReadRate|NvmeCurveDepths|PlacementReplay|PlacementCli|ValidateCli|Sweep|SweepCli|SolveCli|SweepMpi|DramRowCache|ExecutorDramCache|Executor'
  # The executor's GEMMs run in OpenBLAS, which is not instrumented: on the calling thread only,
  # so every thread TSan sees is the project's own (the prefetchers, the gather and read teams).
  export OPENBLAS_NUM_THREADS=1
  if [ $# -eq 0 ]; then set -- -R "^($threaded)\\."; fi
  ctest --test-dir "$dir" --output-on-failure -j "$jobs" -LE device "$@"
fi
