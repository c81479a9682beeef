#!/usr/bin/env bash
# Prepares, on this (CPU) machine, what the device-only build (kernels/device/) needs and the
# GPU machine's image lacks, in one folder that travels with the device call (its `carry`):
#   include/nlohmann, include/CLI  headers of Debian's nlohmann-json3-dev and libcli11-dev
#   googletest/                    GoogleTest sources from Debian's googletest (/usr/src)
#   benchmark/                     Google Benchmark sources: Debian's source package `benchmark`,
#                                  the version of the installed libbenchmark-dev (apt-get source
#                                  with a private deb-src list; cached under ~/.cache/engramsim)
#   plans/                         the PyTorch harness's step plans (`engramsim plan --predict`,
#                                  gzip), with the simulator's prediction of each (metrics, every
#                                  step's time), made here before any GPU runs them
#   COMMIT, MANIFEST.txt           the commit (the device tree has no .git) and what came from where
# Then prints the device call (command, carry, timeout); see docs/device.md.
#
#   scripts/device-bundle.sh [--dir DIR] [--call-only]
#       DIR: default build-device-bundle (ignored by git; must be inside the checkout to travel)
#       --call-only: print the device call and nothing else (the bundle is not rebuilt)
# Needs the Debian packages of scripts/install-deps.sh, Debian's registry the first time, and
# the engramsim build (build/cli/engramsim, or $ENGRAMSIM) for the plans.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
dir=build-device-bundle
call_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=$2; shift 2 ;;
    --call-only) call_only=1; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "device-bundle: unknown argument $1" >&2; exit 2 ;;
  esac
done
say() { [ "$call_only" = 1 ] || echo "device-bundle: $*" >&2; }

# The device call. Every step of kernels/device_check.sh has its own budget inside 560 s; the
# call's limit leaves room for the machine's copy of the tree.
rel=$(realpath -m --relative-to="$root" "$dir")
device_command="kernels/device_check.sh --bundle $rel"
device_timeout=595
print_call() {
  cat <<CALL
device call (one run, on the GPU machine, in the repository root):
  command:   $device_command
  carry:     ["$rel"]
  timeout_s: $device_timeout
CALL
}
if [ "$call_only" = 1 ]; then print_call; exit 0; fi

case "$rel" in ../*|/*) echo "device-bundle: $dir is outside the checkout; it could not travel" >&2; exit 2 ;; esac
if [ -e "$dir" ] && [ -n "$(ls -A "$dir")" ] && [ ! -f "$dir/MANIFEST.txt" ]; then
  echo "device-bundle: $dir exists and is not a bundle (no MANIFEST.txt); not touching it" >&2
  exit 2
fi
git check-ignore -q "$rel/" 2>/dev/null || say "warning: $rel is not ignored by git; it would travel as part of the tree"

need() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" ||
    { echo "device-bundle: Debian package $1 is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }
}
need nlohmann-json3-dev; need libcli11-dev; need googletest; need libbenchmark-dev

rm -rf "$dir"
mkdir -p "$dir/include"
cp -r /usr/include/nlohmann /usr/include/CLI "$dir/include/"

# GoogleTest: the library alone (no gmock, samples, tests or docs).
mkdir -p "$dir/googletest"
cp -r /usr/src/googletest/googletest/{CMakeLists.txt,cmake,include,src} "$dir/googletest/"
cp /usr/share/doc/googletest/copyright "$dir/googletest/COPYRIGHT.debian"

# Google Benchmark: Debian ships no sources in a binary package, so take its source package,
# the same version as libbenchmark-dev, verified by apt against the signed Sources index.
bver=$(dpkg-query -W -f='${Version}' libbenchmark-dev)
upstream=${bver%-*}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/engramsim/debian-src
tarball=$cache/benchmark_${upstream}.orig.tar.gz
if [ ! -s "$tarball" ]; then
  say "fetching Debian's source package benchmark=$bver (apt-get source, private deb-src list)"
  mkdir -p "$cache/lists/partial" "$cache/dl" "$cache/parts" "$cache/apt-cache/archives/partial"
  # Debian's own entries of this machine's apt sources, as deb-src (deb822 and one-line forms).
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && grep -q "debian" "$f" && sed 's/^Types: deb$/Types: deb-src/' "$f"
  done >"$cache/parts/debian-src.sources"
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    sed -n 's/^deb \(.*debian.*\)/deb-src \1/p' >"$cache/sources.list" || true
  apt_opts=(-o "Dir::Etc::SourceList=$cache/sources.list" -o "Dir::Etc::SourceParts=$cache/parts"
            -o "Dir::State::Lists=$cache/lists" -o "Dir::Cache=$cache/apt-cache"
            -o APT::Sandbox::User=root)
  timeout 300 apt-get -qq "${apt_opts[@]}" update >&2
  (cd "$cache/dl" && timeout 300 apt-get -qq "${apt_opts[@]}" source --download-only \
     "benchmark=$bver" >&2)
  mv "$cache/dl/benchmark_${upstream}.orig.tar.gz" "$tarball"
fi
mkdir -p "$dir/benchmark"
tar -xzf "$tarball" -C "$dir/benchmark" --strip-components=1 \
  "benchmark-$upstream/CMakeLists.txt" "benchmark-$upstream/cmake" \
  "benchmark-$upstream/include" "benchmark-$upstream/src" "benchmark-$upstream/LICENSE"

# The harness's plans and the predictions of the same configs (executor/torch/configs; the smoke
# plan is executor/configs/cpu-small.json). Predictions first: they exist before any GPU ran.
bin=${ENGRAMSIM:-$root/build/cli/engramsim}
[ -x "$bin" ] || { echo "device-bundle: $bin is missing (scripts/build.sh builds it; or set ENGRAMSIM)" >&2; exit 1; }
mkdir -p "$dir/plans"
plan_of() {  # NAME CONFIG [--predict]; a plan that cannot be made stops the bundle, saying why
  "$bin" plan "$2" -o "$dir/plans/$1.json" ${3:-} 2>"$dir/plans/$1.log" ||
    { cat "$dir/plans/$1.log" >&2; echo "device-bundle: no plan for $2" >&2; exit 1; }
  rm "$dir/plans/$1.log"
  gzip -9 -f "$dir/plans/$1.json"
}
plan_of tiny executor/torch/configs/tiny.json --predict  # the rehearsal runs every path
plan_of smoke executor/configs/cpu-small.json
for c in executor/torch/configs/table4-*.json; do plan_of "$(basename "$c" .json)" "$c" --predict; done
say "plans: $(ls "$dir/plans" | grep -c '\.json\.gz$') step plans, the Table 4 ones with their predictions ($(du -sh "$dir/plans" | cut -f1))"

commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
[ "$commit" != unknown ] && [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] &&
  commit="$commit-dirty"
echo "$commit" >"$dir/COMMIT"
{
  echo "EngramSim device bundle (scripts/device-bundle.sh), commit $commit, $(date -u +%FT%TZ)"
  echo "include/nlohmann  nlohmann-json3-dev $(dpkg-query -W -f='${Version}' nlohmann-json3-dev) (/usr/include/nlohmann)"
  echo "include/CLI       libcli11-dev $(dpkg-query -W -f='${Version}' libcli11-dev) (/usr/include/CLI)"
  echo "googletest/       googletest $(dpkg-query -W -f='${Version}' googletest) (/usr/src/googletest/googletest)"
  echo "benchmark/        Debian source package benchmark $bver ($(sha256sum "$tarball" | cut -c1-16)...)"
  echo "plans/            engramsim plan [--predict] of executor/torch/configs and executor/configs/cpu-small.json"
} >"$dir/MANIFEST.txt"

say "$(du -sh "$dir" | cut -f1) in $rel ($(find "$dir" -type f | wc -l) files)"
print_call
