#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, ENGRAMSIM_FUZZ=ON, clang with ASan + UBSan) into
# build-fuzz/ and runs each for N CPU-minutes over a working copy of its seed corpus.
#
#   scripts/fuzz.sh [--minutes N] [--smoke] [--parallel P] [--no-build] [TARGET...]
#
#   --minutes N   CPU-minutes per target (default 10; fractions allowed). On a busy machine a run
#                 takes longer than that in wall time: the fuzzer is restarted on its working
#                 corpus until the target has had N minutes of CPU (user + sys).
#   --smoke       each target about 20 CPU-seconds (for CI)
#   --parallel P  run P targets at a time (default 1)
#   --no-build    use the targets already in build-fuzz/
#   TARGET        fuzz_units, fuzz_config, ... (default: every fuzz/fuzz_*.cpp)
#
# Work files are in build-fuzz/fuzz-work/<target>/ (corpus/, artifacts/, log); the committed seed
# corpus (fuzz/corpus/<target>/) is never grown. Writes build-fuzz/fuzz-work/summary.md (CPU
# seconds, execs, final cov/ft, corpus size, crashes per target) and exits non-zero when a
# target crashed, naming the crash file. A crash: minimize it (see fuzz/README.md), save it
# under tests/data/fuzz_regressions/<target>/ and add it to tests/unit/test_fuzz_regressions.cpp.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-fuzz
work=$build/fuzz-work
minutes=10
parallel=1
do_build=1
targets=()
while [ $# -gt 0 ]; do
  case $1 in
    --minutes) minutes=$2; shift 2 ;;
    --smoke) minutes=0.34; shift ;;
    --parallel) parallel=$2; shift 2 ;;
    --no-build) do_build=0; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$root"/fuzz/fuzz_*.cpp; do targets+=("$(basename "$f" .cpp)"); done
fi

# clang and its libFuzzer runtime (Debian packages), installed only when missing.
packages=(clang libclang-rt-14-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "fuzz.sh: installing ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "fuzz.sh: not root; run as root or install: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
"$root"/scripts/install-deps.sh

if [ "$do_build" = 1 ]; then
  nice -n 10 cmake -S "$root" -B "$build" -DENGRAMSIM_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g" \
    -DENGRAMSIM_BUILD_TESTS=OFF -DENGRAMSIM_BUILD_BENCHMARKS=OFF -DENGRAMSIM_ENABLE_CUDA=OFF \
    -DENGRAMSIM_ENABLE_MPI=OFF >/dev/null
  nice -n 10 cmake --build "$build" -j2 --target "${targets[@]}"
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cpu_target=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 }')

# Runs one target until it has used cpu_target CPU-seconds or crashed; writes its result line.
run_target() {
  local t=$1 dir=$work/$1
  local bin=$build/fuzz/$t
  [ -x "$bin" ] || { echo "fuzz.sh: $bin not built" >&2; return 1; }
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp -n "$root/fuzz/corpus/$t/"* "$dir/corpus/" 2>/dev/null || true
  local dict_args=()
  local dict=$root/fuzz/dict/${t#fuzz_}.dict
  [ "$t" = fuzz_sweep ] && dict=$root/fuzz/dict/config.dict
  [ -f "$dict" ] && dict_args=(-dict="$dict")
  local cpu=0 execs=0 cov="" chunk=0 crash="" rc=0
  : >"$dir/log"
  : >"$dir/cpu.log"
  while [ "$cpu" -lt "$cpu_target" ]; do
    local left=$((cpu_target - cpu))
    chunk=$((chunk + 1))
    rc=0
    nice -n 10 /usr/bin/time -f "%U %S" -o "$dir/time" \
      "$bin" "$dir/corpus" -max_total_time=$((left < 5 ? 5 : left)) -timeout=10 \
      -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1 -reload=0 \
      -artifact_prefix="$dir/artifacts/" "${dict_args[@]}" >>"$dir/log" 2>&1 || rc=$?
    local used
    used=$(awk 'END { printf "%d", $1 + $2 + 0.5 }' "$dir/time")
    cpu=$((cpu + used))
    echo "chunk $chunk: $used CPU s, $cpu CPU s in all" >>"$dir/cpu.log"
    execs=$((execs + $(grep -a '^stat::number_of_executed_units:' "$dir/log" | tail -1 | awk '{v = $2} END {print v + 0}')))
    cov=$(grep -aE '^#[0-9]+.*(cov|ft):' "$dir/log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+' || true)
    crash=$(grep -aoE "Test unit written to [^ ]+" "$dir/log" | grep -v slow-unit | tail -1 | sed 's/Test unit written to //' || true)
    if [ -n "$crash" ] || [ "$rc" -ne 0 ]; then break; fi
    [ "$used" -gt 0 ] || break  # no CPU at all: something is wrong, do not spin
  done
  local files
  files=$(find "$dir/corpus" -type f | wc -l)
  local status=ok
  if [ -n "$crash" ]; then status="CRASH $crash"; elif [ "$rc" -ne 0 ]; then status="exit $rc (see $dir/log)"; fi
  printf '| %s | %d | %.1f | %d | %s | %d | %s |\n' "$t" "$cpu" "$(awk -v c="$cpu" 'BEGIN{print c/60}')" \
    "$execs" "${cov:-?}" "$files" "$status" >"$dir/result"
}

mkdir -p "$work"
running=0
for t in "${targets[@]}"; do
  echo "fuzz.sh: $t for $minutes CPU-minutes (log: $work/$t/log)" >&2
  run_target "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$parallel" ]; then wait -n || true; running=$((running - 1)); fi
done
wait || true

{
  echo "| target | CPU s | CPU min | execs | final cov / ft | corpus files | result |"
  echo "|---|---|---|---|---|---|---|"
  for t in "${targets[@]}"; do cat "$work/$t/result" 2>/dev/null || echo "| $t | - | - | - | - | - | no result |"; done
} >"$work/summary.md"
cat "$work/summary.md"
failed=0
for t in "${targets[@]}"; do
  if ! grep -q '| ok |$' "$work/$t/result" 2>/dev/null; then
    echo "fuzz.sh: $t failed: $(awk -F'|' '{print $8}' "$work/$t/result" 2>/dev/null)" >&2
    failed=1
  fi
done
exit $failed
