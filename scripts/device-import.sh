#!/usr/bin/env bash
# Imports a device check's archive (kernels/device_check.sh's device-check-<gpu>.tar.gz, brought
# back from the GPU machine's $OUT): the profiles into profiles/<gpu>/, the summary next to them
# (device-check.md, device-check.json), and its tables into docs/device.md between that GPU's
# markers (added, or replaced on a new run). See docs/device.md.
#
#   scripts/device-import.sh ARCHIVE [--root DIR]     (DIR: another checkout; default this one)
set -euo pipefail
[ $# -ge 1 ] || { sed -n '2,7p' "$0" >&2; exit 2; }
exec python3 "$(dirname "$0")/../kernels/device/device_results.py" import "$@"
