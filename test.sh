#!/usr/bin/env bash
# Set up (missing Debian packages, Release build) and run the whole test suite with CTest.
# Extra arguments go to ctest: ./test.sh -L golden
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
scripts/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)" "$@"
