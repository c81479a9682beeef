#!/usr/bin/env bash
# Checks that a change leaves every output byte for byte as it was, apart from provenance fields.
#
#   scripts/check-identical-outputs.sh [BASE_REF]
#
# Builds BASE_REF (default: 8a0b51d, the commit before the plan was cut into stages, issue 18) in
# a git worktree under /tmp and the working tree in its own build folder, runs the same commands
# with both binaries, and compares every file they write:
#   - study run paper-table4 --json (the Table 4 JSON) and study run paper-table4 -o DIR
#   - every other study of `study list`: study run NAME -o DIR -j JOBS (the sweeps: results.json,
#     the CSV with units)
#   - run CONFIG -o DIR --timeline --json for run configs covering dense-4b, the table on NVMe with
#     a DRAM and an HBM cache (warm-up), tensor parallelism 2 on h100-sxm, data parallelism 2,
#     remote-dram with 2 memory nodes, a corpus workload, a synthetic workload, no Engram, MoE/MLA
#   - sweep with two axes (-o DIR, results.json and CSV)
# Provenance is removed before comparing: the JSON keys "producer" and "commit" (who built the
# binary: version and git commit) and the command's timing lines on stderr and in the text
# table ("simulator wall time", sweep progress). These are the only fields that differ between
# two runs of one build (found by diffing two such runs; see docs/timing.md, "The plan's
# stages"). Prints one verdict per file and exits 1 on any difference (2: a build or run failed).
#
# Environment: JOBS (build and sweep parallelism, default 2), NEW_BUILD (the working tree's build
# folder, default build-identical), OUT (where outputs go, default a fresh /tmp folder),
# QUICK=1 (skip the studies other than paper-table4: minutes instead of tens of minutes),
# BASE_BIN (an engramsim binary already built from the base: no worktree is built), NEW_BIN
# (likewise for the new side; BASE_BIN = NEW_BIN shows what differs between two runs of one build).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BASE_REF=${1:-8a0b51d}
JOBS=${JOBS:-2}
NEW_BUILD=${NEW_BUILD:-build-identical}
BASE_SHA=$(git rev-parse --verify "$BASE_REF^{commit}")
BASE_TREE=/tmp/engramsim-base-$BASE_SHA
OUT=${OUT:-$(mktemp -d /tmp/engramsim-identity.XXXXXX)}
CMAKE_ARGS=(-DCMAKE_BUILD_TYPE=Release -DENGRAMSIM_ENABLE_CUDA=OFF -DENGRAMSIM_BUILD_BENCHMARKS=OFF)

build() {  # build SOURCE_DIR BUILD_DIR [extra cmake args]: the engramsim binary only
    local src=$1 dir=$2
    shift 2
    if [ ! -f "$dir/CMakeCache.txt" ]; then
        nice -n 10 cmake -S "$src" -B "$dir" "${CMAKE_ARGS[@]}" "$@" >/dev/null
    fi
    nice -n 10 cmake --build "$dir" -j "$JOBS" --target engramsim >/dev/null
}

if [ -z "${BASE_BIN:-}" ]; then
    if [ ! -d "$BASE_TREE" ]; then
        git worktree add --detach "$BASE_TREE" "$BASE_SHA" >/dev/null
    fi
    echo "base:  $BASE_SHA ($BASE_TREE/build-cmp)"
    build "$BASE_TREE" "$BASE_TREE/build-cmp" -DENGRAMSIM_BUILD_TESTS=OFF || exit 2
    BASE_BIN=$BASE_TREE/build-cmp/cli/engramsim
else
    echo "base:  $BASE_BIN (given)"
fi
if [ -z "${NEW_BIN:-}" ]; then
    echo "new:   the working tree ($ROOT/$NEW_BUILD)"
    build "$ROOT" "$ROOT/$NEW_BUILD" || exit 2
    NEW_BIN=$ROOT/$NEW_BUILD/cli/engramsim
else
    echo "new:   $NEW_BIN (given)"
fi
echo "outputs: $OUT"

# Run configs: each a document covering one path through the plan.
CONFIGS=$OUT/configs
mkdir -p "$CONFIGS"
cat >"$CONFIGS/nvme-dram-cache.json" <<'EOF'
{"backbone": "dense-4b", "engram": "paper-offload-100b", "workload": "handbook-en",
 "sim": {"table": "nvme", "mechanism": "nvme", "schedule": "layer-ahead:0"},
 "placement": {"dram_capacity": "256MiB", "hbm_capacity": "16MiB", "policy": "s3fifo",
               "dram_policy": "lru", "tiers": "exclusive", "warmup_requests": 16}}
EOF
cat >"$CONFIGS/nvme-static.json" <<'EOF'
{"backbone": "dense-4b", "engram": "paper-offload-100b", "workload": "handbook-en",
 "sim": {"table": "nvme", "mechanism": "nvme", "nvme_queueing": "linear"},
 "placement": {"dram_capacity": "0", "hbm_capacity": "64MiB", "policy": "static"}}
EOF
cat >"$CONFIGS/tp2.json" <<'EOF'
{"backbone": "dense-8b", "engram": "paper-offload-100b",
 "hardware": {"base": "h100-sxm", "gpu": {"count": 2}},
 "sim": {"tensor_parallel": 2, "hashing": "gpu"}}
EOF
cat >"$CONFIGS/dp2.json" <<'EOF'
{"backbone": "dense-4b", "engram": "paper-offload-100b",
 "hardware": {"base": "h100-sxm", "gpu": {"count": 2}},
 "sim": {"data_parallel": 2, "fetch_queue": "fifo"}}
EOF
cat >"$CONFIGS/remote-dram.json" <<'EOF'
{"backbone": "dense-4b", "engram": "paper-offload-100b",
 "sim": {"table": "remote-dram", "mechanism": "remote-gather", "memory_nodes": 2,
         "schedule": "layer-ahead:0"}}
EOF
cat >"$CONFIGS/corpus-uva.json" <<'EOF'
{"backbone": "dense-4b", "engram": "paper-offload-100b", "workload": "handbook-en",
 "sim": {"mechanism": "uva", "schedule": "none"}}
EOF
cat >"$CONFIGS/no-engram.json" <<'EOF'
{"backbone": "dense-4b"}
EOF
cat >"$CONFIGS/moe.json" <<'EOF'
{"backbone": "moe-27b", "engram": {"base": "engram-27b"}, "workload": "handbook-en"}
EOF

run_all() {  # run_all BINARY DIR
    local bin=$1 dir=$2
    mkdir -p "$dir"
    (
        cd "$dir"
        "$bin" study run paper-table4 --json >table4.json 2>table4.stderr
        "$bin" study run paper-table4 -o study-paper-table4 >study-paper-table4.stdout 2>&1
        if [ "${QUICK:-0}" != 1 ]; then
            for s in $("$bin" study list | awk 'f && $1 != "" {print $1} /^---/ {f=1}'); do
                [ "$s" = paper-table4 ] && continue
                "$bin" study run "$s" -o "study-$s" -j "$JOBS" >"study-$s.stdout" 2>"study-$s.stderr"
            done
        fi
        "$bin" trace fit --tokens bundled:handbook-en-US -o synthetic-model.json >/dev/null 2>&1
        cat >"$CONFIGS/synthetic.json.$$" <<EOF
{"backbone": "dense-4b", "engram": "paper-offload-100b",
 "workload": {"kind": "synthetic", "num_requests": 64, "synthetic_model": "$dir/synthetic-model.json"}}
EOF
        for c in dense-4b "$CONFIGS"/*.json "$CONFIGS/synthetic.json.$$"; do
            local name
            name=$(basename "$c" .json)
            name=${name%.json.$$}
            "$bin" run "$c" -o "run-$name" --timeline --json >"run-$name.json" 2>"run-$name.stderr"
            "$bin" run "$c" >"run-$name.table" 2>&1
        done
        rm -f "$CONFIGS/synthetic.json.$$"
        "$bin" sweep dense-4b --axis sim.mechanism=cpu-gather,uva \
            --axis sim.schedule=layer-ahead:0,layer-ahead:1 -o sweep -j "$JOBS" \
            >sweep.stdout 2>sweep.stderr
    ) || { echo "FAILED: a command of $bin (outputs in $dir)"; exit 2; }
}

echo "running the base binary..."
run_all "$BASE_BIN" "$OUT/base"
echo "running the new binary..."
run_all "$NEW_BIN" "$OUT/new"

# Compare: provenance removed (JSON keys producer and commit at any depth; wall-time lines of the
# text outputs and stderr), then byte for byte.
python3 - "$OUT/base" "$OUT/new" <<'EOF'
import json, os, re, sys
base, new = sys.argv[1], sys.argv[2]
PROVENANCE_KEYS = {"producer", "commit"}
WALL = re.compile(r"wall time")
PROGRESS = re.compile(r"\d+(\.\d+)? s\b")  # stderr only: sweep progress with seconds

def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if k not in PROVENANCE_KEYS}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v

def normalized(path, data, other_root):
    if path.endswith(".json"):
        try:
            doc = json.loads(data)
        except ValueError:
            return data
        # Same layout as the file (indent and key order kept), minus provenance; the synthetic
        # model's path names the output folder.
        text = json.dumps(strip(doc), indent=2, ensure_ascii=False)
        return text.replace(other_root, "<out>").encode()
    text = data.decode("utf-8", "replace").replace(other_root, "<out>")
    lines = [l for l in text.splitlines()
             if not WALL.search(l) and not (path.endswith(".stderr") and PROGRESS.search(l))]
    return "\n".join(lines).encode()

files = set()
for root in (base, new):
    for d, _, names in os.walk(root):
        for n in names:
            files.add(os.path.relpath(os.path.join(d, n), root))
bad = 0
for rel in sorted(files):
    a, b = os.path.join(base, rel), os.path.join(new, rel)
    if not os.path.exists(a) or not os.path.exists(b):
        print(f"MISSING    {rel} ({'base' if not os.path.exists(a) else 'new'} lacks it)")
        bad += 1
        continue
    da, db = open(a, "rb").read(), open(b, "rb").read()
    if da == db:
        print(f"identical  {rel}")
    elif normalized(rel, da, base) == normalized(rel, db, new):
        print(f"identical  {rel} (provenance removed)")
    else:
        print(f"DIFFERENT  {rel}")
        bad += 1
print(f"{len(files)} files, {bad} different")
sys.exit(1 if bad else 0)
EOF
