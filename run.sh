#!/usr/bin/env bash
# Set up (missing Debian packages, Release build) and run the main job on its embedded default.
# Arguments are passed to engramsim: ./run.sh presets, ./run.sh trace hash --help, ...
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
scripts/build.sh
exec build/cli/engramsim "$@"
