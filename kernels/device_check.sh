#!/usr/bin/env bash
# Device check: on a machine with an NVIDIA GPU, build the CUDA kernels for that GPU, run the
# device tests (CUDA kernels against their CPU references), the CUDA benchmarks (with their
# ceilings: device copy and a cuBLAS GEMM, same run) and `engramsim profile`, and write the
# profiles and a summary. Budget: under 8 minutes on a 16-core host (each step has a timeout).
#
#   kernels/device_check.sh [OUT_DIR]     (default: $OUT if set, else build-device-check/out)
#
# Writes to OUT_DIR: build.log, device_tests.log, bench.json, bench.txt, profile.log,
# profiles/<gpu>/*.json (also copied to profiles/<gpu>/ in the tree), summary.txt.
# Needs the Debian packages of scripts/install-deps.sh already installed (the device machine may
# have no network); exits non-zero when a step fails, after writing what it has.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=${1:-${OUT:-$root/build-device-check/out}}
mkdir -p "$out"
build=$root/build-device-check
status=0
start=$(date +%s)
step() { echo "[device_check $(( $(date +%s) - start ))s] $*" | tee -a "$out/summary.txt" >&2; }

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  step "no NVIDIA GPU visible (nvidia-smi); nothing to check"
  exit 2
fi
nvidia-smi -L | tee -a "$out/summary.txt"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem,memory.total \
  --format=csv | tee -a "$out/summary.txt"

# 1. Build only what the check needs, for this GPU's architecture only (fast compile).
step "configure + build"
jobs=$(nproc)
if ! timeout 240 bash -c "cmake -S '$root' -B '$build' -DCMAKE_BUILD_TYPE=Release \
      -DENGRAMSIM_ENABLE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=native &&
    cmake --build '$build' -j $jobs --target engramsim test_device_hash test_device_engram \
      test_device_moe bench_kernels_cuda" >"$out/build.log" 2>&1; then
  step "BUILD FAILED (see build.log)"; tail -30 "$out/build.log" >&2; exit 1
fi

# 2. Device tests: every CUDA kernel against its CPU reference.
step "device tests"
if ! timeout 120 ctest --test-dir "$build" -L device --output-on-failure -j 4 \
    >"$out/device_tests.log" 2>&1; then
  step "DEVICE TESTS FAILED (see device_tests.log)"; status=1
fi
grep -E "tests passed|Failed|Skipped|SKIPPED" "$out/device_tests.log" | tee -a "$out/summary.txt"

# 3. Benchmarks with their ceilings in the same run.
step "benchmarks"
if ! timeout 150 "$build/kernels/bench_kernels_cuda" --benchmark_min_time=0.2 \
    --benchmark_out="$out/bench.json" --benchmark_out_format=json >"$out/bench.txt" 2>&1; then
  step "BENCHMARKS FAILED (see bench.txt)"; status=1
fi

# 4. Profiles (CUPTI kernel times, L2 flushed, 30 samples per shape).
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr 'A-Z' 'a-z' |
      sed -e 's/[^a-z0-9]\+/-/g' -e 's/^-//' -e 's/-$//')
step "profile -> profiles/$gpu"
if ! timeout 150 "$build/cli/engramsim" profile --samples 30 -o "$out/profiles/$gpu" \
    >"$out/profile.log" 2>&1; then
  step "PROFILE FAILED (see profile.log)"; status=1
fi
if ls "$out/profiles/$gpu"/*.json >/dev/null 2>&1; then
  mkdir -p "$root/profiles/$gpu" && cp "$out/profiles/$gpu"/*.json "$root/profiles/$gpu/"
fi

# 5. Summary: each kernel's rate as a fraction of its ceiling, against the targets.
step "summary"
if command -v python3 >/dev/null 2>&1 && [ -s "$out/bench.json" ]; then
  python3 - "$out/bench.json" <<'EOF' | tee -a "$out/summary.txt"
import json, sys
runs = {b["name"]: b for b in json.load(open(sys.argv[1]))["benchmarks"] if "error_message" not in b}
def rate(prefix, key):
    for name, b in runs.items():
        if name.startswith(prefix):
            return b.get(key)
copy = rate("BM_DeviceCopy", "bytes_per_second")
gemm = rate("BM_CublasDense", "FLOP/s")
print(f"ceilings: device copy {copy/1e9 if copy else float('nan'):.1f} GB/s, "
      f"cuBLAS fp32 GEMM {gemm/1e12 if gemm else float('nan'):.2f} TFLOP/s")
targets = [("BM_Gather/bf16/65536", "bytes_per_second", copy, 0.80),
           ("BM_Gather/fp8_e4m3", "bytes_per_second", copy, 0.80),
           ("BM_Gather/uva_bf16", "bytes_per_second", copy, None),
           ("BM_Gate/", "bytes_per_second", copy, 0.75),
           ("BM_Conv/", "bytes_per_second", copy, 0.75),
           ("BM_GateConvFused/", "bytes_per_second", copy, 0.75),
           ("BM_GroupedGemm/", "FLOP/s", gemm, 0.50)]
for prefix, key, ceiling, target in targets:
    r = rate(prefix, key)
    if r is None or not ceiling:
        print(f"{prefix:28s} not measured"); continue
    frac = r / ceiling
    verdict = "" if target is None else ("  meets" if frac >= target else "  BELOW") + f" target {target:.0%}"
    unit = "GB/s" if key == "bytes_per_second" else "TFLOP/s"
    scale = 1e9 if unit == "GB/s" else 1e12
    print(f"{prefix:28s} {r/scale:9.2f} {unit} = {frac:6.1%} of ceiling{verdict}")
EOF
else
  cat "$out/bench.txt" >>"$out/summary.txt"
fi
grep -E "ceiling|note" "$out/profile.log" | tee -a "$out/summary.txt"
step "done (status $status)"
exit $status
