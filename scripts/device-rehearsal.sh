#!/usr/bin/env bash
# Rehearsal of the device call, on a machine with nvcc and no GPU (here, and in CI as the CTest
# test `device_rehearsal`, label `rehearsal`). It proves that the first lent GPU machine can
# produce numbers from one prepared call:
#   1. scripts/device-bundle.sh makes a bundle (in the rehearsal folder, inside the checkout);
#   2. kernels/device_check.sh --rehearse runs every step against it: configure with every Debian
#      package hidden, compile the device targets with nvcc for sm_90, run the device tests (they
#      skip: no GPU), the benchmarks (each reports no GPU), a short CPU profile, the summary and
#      the archive;
#   3. checks: every header the build read from outside the checkout, the bundle and CUDA belongs
#      to the C/C++ toolchain (dpkg -S over the build's depfiles: libc6-dev, linux-libc-dev,
#      libstdc++, libgcc), the binaries link nothing but CUDA and the C/C++ runtime, no compile
#      line names a Debian include folder; tree + bundle < 64 MiB; the device command
#      < 2000 characters; what lands in $OUT fits the return limits (8 files, 16 MiB each, at
#      most two folders down); scripts/device-import.sh imports the archive into a scratch copy
#      of docs/device.md.
#
#   scripts/device-rehearsal.sh [--dir DIR] [--jobs N]
#       DIR: default build-device-rehearsal (must be inside the checkout); N: build jobs (2)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
dir=$root/build-device-rehearsal
jobs=2
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "device-rehearsal: unknown argument $1" >&2; exit 2 ;;
  esac
done
dir=$(realpath -m "$dir")
case "$dir" in "$root"/*) ;; *) echo "device-rehearsal: $dir must be inside $root" >&2; exit 2 ;; esac
start=$(date +%s)
fails=0
ok() { echo "device-rehearsal: ok    $*"; }
bad() { echo "device-rehearsal: FAIL  $*"; fails=$((fails + 1)); }
mkdir -p "$dir"

# 1. The bundle.
t0=$(date +%s)
if ! scripts/device-bundle.sh --dir "$dir/bundle" >"$dir/bundle.log" 2>&1; then
  cat "$dir/bundle.log"; bad "scripts/device-bundle.sh failed"; exit 1
fi
ok "bundle: $(du -sh "$dir/bundle" | cut -f1) ($(( $(date +%s) - t0 )) s)"

# 2. The device check, rehearsed (budgets scaled for a 2-core machine).
t0=$(date +%s)
rm -rf "$dir/out"
kernels/device_check.sh --rehearse --bundle "$dir/bundle" --build-dir "$dir/check" \
  --out "$dir/out" --arch 90 --jobs "$jobs" --budget 2400 --budget-scale 6 >"$dir/check.log" 2>&1
rc=$?
check_s=$(( $(date +%s) - t0 ))
if [ $rc -eq 0 ]; then ok "kernels/device_check.sh --rehearse: every step passed ($check_s s)"
else tail -40 "$dir/check.log"; bad "kernels/device_check.sh --rehearse exited $rc (see $dir/check.log)"; fi
sed -n '/^| step/,/^$/p' "$dir/out/summary.md" 2>/dev/null | sed 's/^/  /'

# 3a. Headers: everything outside the checkout, the bundle and CUDA comes from the toolchain.
build=$dir/check/build
if [ -f "$build/build.ninja" ]; then
  ninja -C "$build" -t deps | sed -n 's/^ \+//p' | sort -u >"$dir/headers.txt"
  outside=$(grep -vE "^($root/|/usr/local/cuda)" "$dir/headers.txt" | xargs -r realpath -e 2>/dev/null | sort -u)
  n_all=$(wc -l <"$dir/headers.txt")
  n_bundle=$(grep -c "^$dir/bundle/" "$dir/headers.txt")
  owners=$(echo "$outside" | xargs -r dpkg -S 2>&1 | sed 's/: .*//' | tr ',' '\n' | sed 's/^ *//' | sort -u)
  foreign=$(echo "$owners" | grep -vE "^(libc6-dev|linux-libc-dev|libstdc\+\+-[0-9]+-dev|libgcc-[0-9]+-dev|libcrypt-dev|libc6|gcc-[0-9]+|g\+\+-[0-9]+|libgomp1)(:amd64)?$" | grep .)
  if [ -z "$foreign" ] && [ "$n_bundle" -gt 0 ] && [ "$n_all" -gt 100 ]; then
    ok "headers: $n_all read, $n_bundle from the bundle, the rest from the checkout, CUDA and the toolchain ($(echo $owners | tr '\n' ' '))"
  else
    bad "headers from outside the bundle: $(echo "$foreign" | tr '\n' ' ') (list: $dir/headers.txt; bundle headers read: $n_bundle)"
  fi
  if grep -qE -- '-(I|isystem) ?/usr/(include|src|lib)' "$build/compile_commands.json"; then
    bad "a compile line names a Debian include folder: $(grep -oE -- '-(I|isystem) ?/usr/[^ ]*' "$build/compile_commands.json" | sort -u | tr '\n' ' ')"
  else
    ok "compile lines: no -I/-isystem into /usr"
  fi
  libs=$(for b in bench_kernels_cuda engramsim-device test_device_hash test_device_engram test_device_moe; do
           readelf -d "$build/$b" 2>/dev/null | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'; done | sort -u)
  extra=$(echo "$libs" | grep -vE '^(libcudart|libcublas|libcublasLt|libcupti|libnvToolsExt|libstdc\+\+|libm|libgcc_s|libc|libpthread|libdl|librt|ld-linux-x86-64)\.so' | grep .)
  if [ -n "$libs" ] && [ -z "$extra" ]; then ok "libraries: $(echo $libs | tr '\n' ' ')"
  else bad "binaries missing or linking outside CUDA and the C/C++ runtime: ${extra:-none built}"; fi
else
  bad "no Ninja build at $build: cannot check the headers"
fi

# 3b. What travels: the tree (tracked files and untracked ones git does not ignore) + the bundle.
tree_bytes=$(git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -c %s 2>/dev/null |
             awk '{s += $1} END {print s + 0}')
bundle_bytes=$(find "$dir/bundle" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
total=$(( tree_bytes + bundle_bytes ))
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
if [ "$total" -lt $(( 64 * 1048576 )) ]; then
  ok "size: tree $(mib $tree_bytes) + bundle $(mib $bundle_bytes) = $(mib $total) (limit 64 MiB)"
else
  bad "size: tree $(mib $tree_bytes) + bundle $(mib $bundle_bytes) = $(mib $total) >= 64 MiB"
fi

# 3c. The device call as scripts/device-bundle.sh prints it.
call=$(scripts/device-bundle.sh --call-only)
cmd=$(echo "$call" | sed -n 's/^ *command: *//p')
timeout_s=$(echo "$call" | sed -n 's/^ *timeout_s: *//p')
if [ -n "$cmd" ] && [ ${#cmd} -lt 2000 ] && [ "${timeout_s:-0}" -le 600 ] && [ "${timeout_s:-0}" -ge 500 ]; then
  ok "device call: '$cmd' (${#cmd} characters), timeout_s $timeout_s"
else
  bad "device call: '$cmd' (${#cmd} characters), timeout_s ${timeout_s:-?}"
fi

# 3d. What comes back from $OUT: at most 8 files, 16 MiB each, at most two folders down.
n_out=$(find "$dir/out" -type f | wc -l)
big=$(find "$dir/out" -type f -size +16M)
deep=$(find "$dir/out" -mindepth 4 | head -1)
archive=$(ls "$dir"/out/device-check-*.tar.gz 2>/dev/null | head -1)
if [ "$n_out" -le 8 ] && [ -z "$big" ] && [ -z "$deep" ] && [ -n "$archive" ] && [ -s "$dir/out/summary.md" ] &&
   [ -s "$dir/out/summary.json" ]; then
  ok "\$OUT: $n_out files ($(cd "$dir/out" && du -ch -- * | tail -1 | cut -f1)): $(cd "$dir/out" && echo *)"
else
  bad "\$OUT: $n_out files, too big: ${big:-none}, too deep: ${deep:-none}, archive: ${archive:-none}"
fi

# 3e. The import, into a scratch copy of docs/device.md.
if [ -n "$archive" ]; then
  rm -rf "$dir/import" && mkdir -p "$dir/import/docs" && cp docs/device.md "$dir/import/docs/"
  if scripts/device-import.sh "$archive" --root "$dir/import" >"$dir/import.log" 2>&1 &&
     grep -q "device-results rehearsal-no-gpu begin" "$dir/import/docs/device.md" &&
     ls "$dir/import/profiles/rehearsal-no-gpu/"*.json >/dev/null 2>&1 &&
     scripts/device-import.sh "$archive" --root "$dir/import" >>"$dir/import.log" 2>&1 &&
     [ "$(grep -c "device-results rehearsal-no-gpu begin" "$dir/import/docs/device.md")" = 1 ]; then
    ok "scripts/device-import.sh: profiles and docs/device.md section written (and replaced on a second import)"
  else
    cat "$dir/import.log"; bad "scripts/device-import.sh"
  fi
fi

total_s=$(( $(date +%s) - start ))
if [ $fails -eq 0 ]; then
  echo "device-rehearsal: the device call is ready ($total_s s): $cmd"
  exit 0
fi
echo "device-rehearsal: $fails check(s) failed ($total_s s)"
exit 1
