#!/usr/bin/env bash
# Configures and builds EngramSim in Release into ./build (CUDA kernels too when nvcc exists).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release ${ENGRAMSIM_CMAKE_ARGS:-} >/dev/null
cmake --build build -j "$(nproc)"
