#!/usr/bin/env bash
# Device check, made for the lent GPU machine (CUDA 13, CMake, ninja, a host compiler, Python;
# none of Debian's dev packages, no network) and one call of it. In the repository root:
#
#   kernels/device_check.sh --bundle build-device-bundle        (scripts/device-bundle.sh prints
#                                                                 the whole call; docs/device.md)
# Steps, each under `timeout` with its own budget, all inside --budget seconds (default 560):
#   gpu 15 s        nvidia-smi: name, compute capability (the build's architecture), clocks
#   configure 45 s  kernels/device (the device-only build) against the bundle; every Debian
#                   package hidden (CMAKE_DISABLE_FIND_PACKAGE_*, CMAKE_IGNORE_PREFIX_PATH)
#   build 150 s     CUDA kernels, device tests, bench_kernels_cuda, engramsim-device (profiler)
#   tests 60 s      ctest -L device: every CUDA kernel against its CPU reference (JUnit XML)
#   bench 90 s      bench_kernels_cuda: kernels and their same-run ceilings (device copy, cuBLAS)
#   profile 90 s    engramsim-device profile, one run per kernel (45 s each at most): CUPTI
#                   kernel times, NVTX ranges, L2 flushed, the ceilings in each run
#   harness 150 s   the PyTorch harness (executor/torch/device_harness.sh) serves the bundle's
#                   step plans on the GPU: a smoke plan, then Table 4's Dense-4B workload with 128
#                   sequences, each beside the simulator's prediction made before the call
#   30 s kept for the summary and the archive, which are written whatever failed before.
# A step that fails or times out leaves the others' results; the ones that need the build are
# skipped when it failed. Writes into OUT (--out, else $OUT, else build-device-check/out):
#   device-check-<gpu>.tar.gz   logs, bench.json, device_tests.xml, profiles/<gpu>/*.json,
#                               summary.md, summary.json, meta.json (scripts/device-import.sh)
#   summary.md, summary.json    the same summary, readable without unpacking
# and prints summary.md. Exit status 0 when every step passed, 1 otherwise, 2 on bad usage.
#
# --rehearse (scripts/device-rehearsal.sh, here and in CI): no GPU needed. Builds for --arch
# (default 90) with the same configuration, runs the test binaries (they skip, saying why), the
# benchmarks (each reports it has no GPU) and a short CPU profile, so every step and the
# archive are exercised; --jobs limits the build's parallelism and --budget-scale K multiplies
# every step's budget (a 2-core machine builds in minutes what the GPU machine's 16 cores build
# in one; --budget is then the whole, unscaled).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bundle=build-device-bundle
out=${OUT:-}
base=$root/build-device-check
arch=""
rehearse=0
budget_total=560
scale=1
jobs=$(nproc)
usage() { sed -n '2,32p' "$0" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --bundle) bundle=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --build-dir) base=$2; shift 2 ;;
    --arch) arch=$2; shift 2 ;;
    --budget) budget_total=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --budget-scale) scale=$2; shift 2 ;;
    --rehearse) rehearse=1; shift ;;
    -h|--help) usage ;;
    *) echo "device_check: unknown argument $1" >&2; usage ;;
  esac
done
[ -n "$out" ] || out=$base/out
bundle=$(realpath -m "$bundle")
base=$(realpath -m "$base")
build=$base/build
work=$base/work
reserve=30
mkdir -p "$out" "$build"
rm -rf "$work"
mkdir -p "$work"
start=$(date +%s)
elapsed() { echo $(( $(date +%s) - start )); }
note() { echo "[device_check +$(elapsed)s] $*" | tee -a "$work/device_check.log" >&2; }
printf 'step\tstatus\trc\tseconds\tbudget_s\tlog\n' >"$work/steps.tsv"
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$work/steps.tsv"; }

# run_step NAME BUDGET LOG CMD...: CMD under timeout (its budget, or what is left of the whole
# budget less the reserve), output to LOG; records status, exit code and seconds.
run_step() {
  local name=$1 budget=$(( $2 * scale )) logf=$3; shift 3
  local left=$(( budget_total - reserve - $(elapsed) ))
  local t=$(( budget < left ? budget : left ))
  if [ "$t" -lt 5 ]; then
    note "$name: SKIPPED (no time left in the ${budget_total}s budget)"
    record "$name" skipped - 0 "$budget" "$logf"; return 1
  fi
  note "$name (budget ${t}s)"
  local t0 rc status
  t0=$(date +%s)
  STEP_BUDGET=$t timeout -k 10 "$t" "$@" >"$work/$logf" 2>&1
  rc=$?
  case $rc in
    0) status=ok ;;
    124|137) status=timeout ;;
    *) status=failed ;;
  esac
  record "$name" "$status" "$rc" "$(( $(date +%s) - t0 ))" "$t" "$logf"
  [ "$status" = ok ] || { note "$name: ${status^^} (exit $rc; see $logf)"; tail -15 "$work/$logf" >&2; }
  [ "$status" = ok ]
}
skip_step() { record "$1" skipped - 0 "$2" "-"; note "$1: SKIPPED ($3)"; }

# 1. The GPU, and the architecture to build for.
gpu_name="rehearsal (no GPU)"
if [ "$rehearse" = 1 ]; then
  skip_step gpu 15 "rehearsal"
  arch=${arch:-90}
elif run_step gpu 15 gpu.txt bash -c 'nvidia-smi -L && nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total,clocks.max.sm,clocks.max.mem,power.limit --format=csv'; then
  gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
  if [ -z "$arch" ]; then
    cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
    if [[ "$cap" =~ ^[0-9]+$ ]]; then arch=$cap; else arch=native; fi
  fi
else
  gpu_name="no GPU visible"
  arch=${arch:-native}
fi
gpu=$(echo "$gpu_name" | tr 'A-Z' 'a-z' | sed -e 's/[^a-z0-9]\+/-/g' -e 's/^-//' -e 's/-$//')
[ -n "$gpu" ] || gpu=unknown
note "GPU: $gpu_name -> profiles/$gpu, CUDA architecture $arch"

# The commit measured: git's (with -dirty as in the build), or the bundle's where .git did not travel.
if commit=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null); then
  [ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ] && commit="$commit-dirty"
else
  commit=$(cat "$bundle/COMMIT" 2>/dev/null || echo unknown)
fi
cat >"$work/meta.json" <<META
{"schema": "engramsim.device_check", "version": 1, "gpu_name": "$gpu_name", "gpu": "$gpu",
 "cuda_architecture": "$arch", "rehearsal": $([ "$rehearse" = 1 ] && echo true || echo false),
 "commit": "$commit", "bundle_commit": "$(cat "$bundle/COMMIT" 2>/dev/null || echo none)",
 "date_utc": "$(date -u +%FT%TZ)", "host": "$(hostname)", "cpu_cores": $(nproc),
 "budget_s": $budget_total}
META
{ cmake --version | head -1; nvcc --version 2>/dev/null | tail -2 || /usr/local/cuda/bin/nvcc --version | tail -2
  ninja --version 2>/dev/null | sed 's/^/ninja /'; c++ --version | head -1; python3 --version
  cat "$bundle/MANIFEST.txt" 2>/dev/null; } >"$work/toolchain.txt" 2>&1

# 2. Configure the device-only build. Every package the main build takes from Debian is hidden,
# and so is /usr as a prefix: only the bundle and CUDA can satisfy it.
hide=()
for p in nlohmann_json CLI11 GTest benchmark Boost absl ZLIB zstd PkgConfig MPI SimGrid; do
  hide+=("-DCMAKE_DISABLE_FIND_PACKAGE_$p=ON")
done
gen=()
command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
[ -f "$build/CMakeCache.txt" ] && ! grep -q "^CMAKE_GENERATOR:INTERNAL=${gen[1]:-Unix Makefiles}$" "$build/CMakeCache.txt" &&
  rm -rf "$build" && mkdir -p "$build"
built=0
if run_step configure 45 configure.log cmake -S "$root/kernels/device" -B "$build" "${gen[@]}" \
     -DCMAKE_BUILD_TYPE=Release -DENGRAMSIM_BUNDLE="$bundle" -DCMAKE_CUDA_ARCHITECTURES="$arch" \
     -DCMAKE_POLICY_VERSION_MINIMUM=3.5 "-DCMAKE_IGNORE_PREFIX_PATH=/usr;/usr/local" "${hide[@]}"; then
  # 3. Build.
  run_step build 150 build.log cmake --build "$build" -j "$jobs" && built=1
else
  skip_step build 150 "configure failed"
fi

# 4-6. Device tests, benchmarks, profiles: each runs whatever the others did.
if [ "$built" = 1 ]; then
  run_step tests 60 device_tests.log ctest --test-dir "$build" -L device --output-on-failure \
    --output-junit "$work/device_tests.xml" -j 4
  run_step bench 90 bench.txt "$build/bench_kernels_cuda" --benchmark_min_time=0.2 \
    --benchmark_out="$work/bench.json" --benchmark_out_format=json
  # One run per kernel (each with its ceilings and at most 45 s), so that a timeout loses one
  # kernel's profile, not all of them: a run writes its files when it ends.
  kernels=$("$build/engramsim-device" profile --help 2>/dev/null | sed -n 's/.*(default all): //p' | tr -d ',')
  profile_args=(--samples 30)
  [ "$rehearse" = 1 ] && kernels=router_topk && profile_args=(--cpu --samples 2)
  run_step profile 90 profile.log bash -c 'bin=$1 dir=$2 kernels=$3; shift 3; fail=0
    for k in ${kernels:-all}; do
      sel=(--kernels "$k"); [ "$k" = all ] && sel=()
      echo "== $k"; timeout -k 5 45 "$bin" profile "${sel[@]}" "$@" -o "$dir" || { echo "== $k: exit $?"; fail=1; }
    done; exit $fail' _ "$build/engramsim-device" "$work/profiles/$gpu" "$kernels" "${profile_args[@]}"
else
  for s in "tests 60" "bench 90" "profile 90"; do skip_step ${s% *} ${s#* } "no build"; done
fi

# 7. The PyTorch harness (Python and PyTorch only: it needs no build).
harness_args=()
[ "$rehearse" = 1 ] && harness_args=(--rehearse)
run_step harness 150 harness.log bash -c '"$1" "$2" "$3" --budget $(( STEP_BUDGET - 10 )) "${@:4}"' _ \
  "$root/executor/torch/device_harness.sh" "$bundle" "$work/harness" "${harness_args[@]}"

# 8. Summary and archive (the reserve): always.
note "summary + archive"
if command -v python3 >/dev/null 2>&1; then
  timeout 15 python3 "$root/kernels/device/device_results.py" summarize "$work" \
    >>"$work/device_check.log" 2>&1 || note "summary: FAILED (see device_check.log)"
fi
if [ ! -s "$work/summary.md" ]; then
  { echo "# Device check: $gpu_name (no Python summary)"; echo; echo '```'
    column -t -s $'\t' "$work/steps.tsv" 2>/dev/null || cat "$work/steps.tsv"; echo '```'; } >"$work/summary.md"
fi
status=0
awk -F'\t' 'NR>1 && $2!="ok" && !($1=="gpu" && $2=="skipped")' "$work/steps.tsv" | grep -q . && status=1
note "done in $(elapsed)s (status $status)"
archive=$out/device-check-$gpu.tar.gz
tar -czf "$archive" -C "$work" .
limit=$(( 15 * 1024 * 1024 ))
if [ "$(stat -c %s "$archive")" -gt "$limit" ]; then
  # The return limit is 16 MiB a file: keep the ends of the logs and every result.
  for f in "$work"/*.log "$work"/*.txt; do
    [ "$(stat -c %s "$f")" -gt 1048576 ] && tail -c 1048576 "$f" >"$f.tail" && mv "$f.tail" "$f"
  done
  tar -czf "$archive" -C "$work" .
fi
cp "$work/summary.md" "$out/summary.md"
[ -f "$work/summary.json" ] && cp "$work/summary.json" "$out/summary.json"
echo
cat "$work/summary.md"
echo
echo "device_check: wrote $archive ($(du -h "$archive" | cut -f1)) and summary.md / summary.json in $out"
exit $status
