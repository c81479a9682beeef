#!/usr/bin/env bash
# Installs the Debian packages EngramSim builds and tests with. Idempotent: installs only what
# is missing, and runs `apt-get update` only when something is. Needs root for the install.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libsimgrid-dev            # timing simulation engine (SimGrid S4U)
  libboost-graph-dev        # topology and operator DAGs
  nlohmann-json3-dev        # configs and results
  libcli11-dev              # the engramsim command line
  libgtest-dev libgmock-dev # tests
  libbenchmark-dev          # benchmarks
  libzstd-dev zlib1g-dev    # trace compression and block checksums
  libabsl-dev               # flat hash maps for the synthetic generator's n-gram state
  python3-matplotlib        # plots
  python3-numpy             # regenerating golden NumPy vectors on purpose
  libopenmpi-dev openmpi-bin  # sweeps across MPI ranks (mpirun -n N engramsim sweep ...)
  libopenblas-dev           # the real executor's GEMMs (engramsim execute; docs/executor.md)
  python3-torch             # the PyTorch harness's CPU tests (executor/torch; docs/torch_harness.md)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: not root; run as root or install: apt-get install ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
