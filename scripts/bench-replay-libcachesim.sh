#!/usr/bin/env bash
# Replays one row-id sequence through libCacheSim and through `engramsim replay --ids` and compares
# exact miss counts, wall time and peak memory (docs/placement.md, "Against libCacheSim, same
# sequences").
#
#   scripts/bench-replay-libcachesim.sh [CAPACITY_ROWS ...]     (default: 20000 200000)
#
# The sequence is exported by engramsim itself (`trace export --format u64` and `--format
# oracleGeneral`, the requests the caches see), or given as IDS=file.u64 (little-endian uint64
# ids; the oracleGeneral copy is then written by the C program below: time 0, size 1, next -1).
# For each capacity, alternating, REPEATS times each:
#   (a) cachesim TRACE oracleGeneral POLICY CAP --ignore-obj-size 1 --num-thread 1, under
#       /usr/bin/time (wall s, max RSS KB); it prints its miss ratio to 4 digits only, so
#   (b) a small C program written here (our code, linked against libCacheSim's library) runs the
#       same loop as cachesim (read_one_req, cache->get, capacity in objects of size 1) and prints
#       exact requests, misses and the loop's seconds;
#   (c) engramsim replay --ids IDS --policy POLICY --capacity CAP --json under /usr/bin/time;
#       misses = runs[0].total.requests - runs[0].total.hbm_hits (the JSON has no misses field);
#   (d) the same replay without --json: its table prints the run's own seconds, which the JSON
#       does not carry. For an id file at one capacity the keys are numbered and replayed in one
#       pass, so that time is the file's numbering and the policy loop together (only the
#       process's start and exit are outside it);
#   (e) engramsim replay --ids IDS --policy POLICY --capacity CAP --mrc (the run and a 100-point
#       exact miss-ratio curve) under /usr/bin/time: its wall against (c)'s.
# Prints a table of medians, writes OUT/results.csv (units in the column names) and exits 1 if
# any miss count differs (2: a prerequisite is missing).
#
# Prerequisites (not installed by this script): /usr/bin/time (Debian package `time`), python3,
# cc, pkg-config, libglib2.0-dev, libzstd-dev; libCacheSim built outside the repository, e.g.
#   mkdir -p /tmp/libcachesim/src && git -C LIBCACHESIM_CLONE archive COMMIT | tar -x -C /tmp/libcachesim/src
#   echo COMMIT > /tmp/libcachesim/COMMIT     # shown in the output
#   cmake -S /tmp/libcachesim/src -B /tmp/libcachesim/build -DCMAKE_BUILD_TYPE=Release -DENABLE_TESTS=OFF
#   cmake --build /tmp/libcachesim/build -j 2  # bin/cachesim and liblibCacheSim.a
# None of libCacheSim's code is in this repository.
#
# Environment: LIBCACHESIM_DIR (src/ and build/ as above, default /tmp/libcachesim), ENGRAMSIM
# (default build/cli/engramsim), OUT (default a fresh /tmp folder), POLICY (lru or sieve, default
# lru), REPEATS (default 3), IDS (an existing .u64 file), ENGRAM and WORKLOAD (preset or config
# file for the export: default demo-v1 and nano-vllm-512, 18.3M requests, 12.2M distinct rows).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
LCS=${LIBCACHESIM_DIR:-/tmp/libcachesim}
ENGRAMSIM=${ENGRAMSIM:-build/cli/engramsim}
[[ $ENGRAMSIM = /* ]] || ENGRAMSIM=$ROOT/$ENGRAMSIM
OUT=${OUT:-$(mktemp -d /tmp/engramsim-vs-libcachesim.XXXXXX)}
POLICY=${POLICY:-lru}
REPEATS=${REPEATS:-3}
CAPS=("$@")
[ ${#CAPS[@]} -gt 0 ] || CAPS=(20000 200000)
CACHESIM=$LCS/build/bin/cachesim
for f in /usr/bin/time "$CACHESIM" "$LCS/build/liblibCacheSim.a" "$LCS/src/libCacheSim/include/libCacheSim.h" "$ENGRAMSIM"; do
    [ -e "$f" ] || { echo "missing: $f (see the prerequisites at the top of $0)" >&2; exit 2; }
done
case $POLICY in lru | sieve) ;; *) echo "POLICY must be lru or sieve" >&2; exit 2 ;; esac
mkdir -p "$OUT"
trap 'echo "failed (exit $?) at line $LINENO; outputs in $OUT" >&2' ERR
LCS_COMMIT=$(cat "$LCS/COMMIT" 2>/dev/null || git -C "$LCS/src" rev-parse HEAD 2>/dev/null || echo unknown)
echo "libCacheSim: $LCS (commit $LCS_COMMIT); engramsim: $ENGRAMSIM ($("$ENGRAMSIM" --version | head -1))"
echo "out: $OUT; policy $POLICY; repeats $REPEATS; host load: $(cut -d' ' -f1-3 /proc/loadavg)"

# (b): the C program. `convert IN.u64 OUT.bin` writes an oracleGeneral copy of a plain id file.
cat >"$OUT/lcs_replay.c" <<'EOF'
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "libCacheSim.h"
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "convert") == 0) {  /* 24-byte records: u32 time, u64 id, u32 size, i64 next */
    struct __attribute__((packed)) { uint32_t time; uint64_t id; uint32_t size; int64_t next; } rec = {0, 0, 1, -1};
    FILE *in = fopen(argv[2], "rb"), *out = fopen(argv[3], "wb");
    if (!in || !out) { perror("convert"); return 2; }
    while (fread(&rec.id, 8, 1, in) == 1) fwrite(&rec, sizeof rec, 1, out);
    return ferror(in) || fclose(out) != 0 ? 2 : 0;
  }
  if (argc != 4) { fprintf(stderr, "usage: %s TRACE.oracleGeneral.bin lru|sieve CAPACITY_OBJECTS\n", argv[0]); return 2; }
  reader_init_param_t rp;  /* as cachesim sets up its reader */
  memset(&rp, 0, sizeof rp);
  rp.ignore_obj_size = true;  /* every object has size 1: capacity in objects */
  rp.ignore_size_zero_req = true;
  rp.obj_id_is_num = true;
  reader_t *reader = open_trace(argv[1], ORACLE_GENERAL_TRACE, &rp);
  common_cache_params_t cp = default_common_cache_params();
  cp.cache_size = strtoull(argv[3], NULL, 10);
  cp.hashpower = 24;  /* cachesim's */
  cache_t *cache = strcmp(argv[2], "lru") == 0 ? LRU_init(cp, NULL) : strcmp(argv[2], "sieve") == 0 ? Sieve_init(cp, NULL) : NULL;
  if (!cache) { fprintf(stderr, "unknown policy %s\n", argv[2]); return 2; }
  request_t *req = new_request();
  unsigned long n_req = 0, n_miss = 0;
  double t0 = now();
  while (read_one_req(reader, req) == 0) {
    n_req++;
    if (!cache->get(cache, req)) n_miss++;
  }
  printf("%lu %lu %.6f\n", n_req, n_miss, now() - t0);  /* requests, misses, loop seconds */
  free_request(req), cache->cache_free(cache), close_reader(reader);
  return 0;
}
EOF
# shellcheck disable=SC2046  # pkg-config's flags are meant to split
cc -O2 -o "$OUT/lcs_replay" "$OUT/lcs_replay.c" -I"$LCS/src/libCacheSim/include" $(pkg-config --cflags glib-2.0) \
    "$LCS/build/liblibCacheSim.a" $(pkg-config --libs glib-2.0) -lzstd -lm -lpthread -ldl

# The sequence, in both formats.
TRACE=$OUT/ids.oracleGeneral.bin
if [ -n "${IDS:-}" ]; then
    "$OUT/lcs_replay" convert "$IDS" "$TRACE"
else
    IDS=$OUT/ids.u64
    for fmt in u64:"$IDS" oracleGeneral:"$TRACE"; do
        "$ENGRAMSIM" trace export --engram "${ENGRAM:-demo-v1}" --workload "${WORKLOAD:-nano-vllm-512}" \
            --format "${fmt%%:*}" -o "${fmt#*:}"
    done
fi

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
timed() {  # timed NAME COMMAND...: stdout to OUT/NAME.out, stderr to OUT/NAME.err, "wall_s rss_kb" to OUT/NAME.time
    local name=$1 && shift
    /usr/bin/time -f '%e %M' -o "$OUT/$name.time" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"
}

CSV=$OUT/results.csv
echo "capacity_rows,requests,misses_libcachesim,misses_engramsim,equal,cachesim_miss_ratio_4_digits,cachesim_wall_s,engramsim_wall_s,wall_ratio_cachesim_over_engramsim,cachesim_max_rss_kb,engramsim_max_rss_kb,libcachesim_loop_s,engramsim_run_s,loop_ratio_libcachesim_over_engramsim,engramsim_mrc_wall_s,mrc_over_replay_wall" >"$CSV"
status=0
for cap in "${CAPS[@]}"; do
    cw=() cr=() ew=() er=() cl=() el=() mw=() lcs_misses=() eng_misses=()
    for ((r = 1; r <= REPEATS; r++)); do
        (cd "$OUT" && timed cachesim "$CACHESIM" "$TRACE" oracleGeneral "$POLICY" "$cap" --ignore-obj-size 1 --num-thread 1)
        read -r w k <"$OUT/cachesim.time" && cw+=("$w") cr+=("$k")
        ratio=$(sed -n 's/.*miss ratio \([0-9.]*\),.*/\1/p' "$OUT/cachesim.out")
        read -r requests m s <<<"$("$OUT/lcs_replay" "$TRACE" "$POLICY" "$cap")"
        lcs_misses+=("$m") cl+=("$s")
        timed engramsim "$ENGRAMSIM" replay --ids "$IDS" --policy "$POLICY" --capacity "$cap" --json
        read -r w k <"$OUT/engramsim.time" && ew+=("$w") er+=("$k")
        eng_misses+=("$(python3 -c 'import json, sys; t = json.load(open(sys.argv[1]))["runs"][0]["total"]; print(t["requests"] - t["hbm_hits"])' "$OUT/engramsim.out")")
        "$ENGRAMSIM" replay --ids "$IDS" --policy "$POLICY" --capacity "$cap" >"$OUT/engramsim-table.out" 2>&1
        el+=("$(sed -n 's/^HBM cache .*(\([0-9.]*\) s,.*/\1/p' "$OUT/engramsim-table.out")")
        timed engramsim-mrc "$ENGRAMSIM" replay --ids "$IDS" --policy "$POLICY" --capacity "$cap" --mrc
        read -r w k <"$OUT/engramsim-mrc.time" && mw+=("$w")
    done
    # Miss counts are deterministic: every repeat must give the same one (else report the spread).
    lm=$(printf '%s\n' "${lcs_misses[@]}" | sort -u | paste -sd/) em=$(printf '%s\n' "${eng_misses[@]}" | sort -u | paste -sd/)
    equal=no
    [ "$lm" = "$em" ] && equal=yes || status=1
    # cachesim's own printed ratio must agree with the C program's exact count (same library, same loop).
    awk -v m="$lm" -v n="$requests" -v p="$ratio" 'BEGIN {exit !(m ~ /^[0-9]+$/ && (m / n - p) ^ 2 <= 0.00005 ^ 2 + 1e-12)}' ||
        echo "warning: capacity $cap: cachesim printed miss ratio $ratio, the C program counts $lm / $requests" >&2
    mcw=$(median "${cw[@]}") mew=$(median "${ew[@]}") mcl=$(median "${cl[@]}") mel=$(median "${el[@]}") mmw=$(median "${mw[@]}")
    echo "$cap,$requests,$lm,$em,$equal,$ratio,$mcw,$mew,$(awk "BEGIN {printf \"%.2f\", $mcw / $mew}"),$(median "${cr[@]}"),$(median "${er[@]}"),$mcl,$mel,$(awk "BEGIN {printf \"%.2f\", $mcl / $mel}"),$mmw,$(awk "BEGIN {printf \"%.2f\", $mmw / $mew}")" >>"$CSV"
done

echo
echo "policy $POLICY, $REPEATS repeat(s), medians; wall and RSS are whole processes (/usr/bin/time); libcachesim_loop = its request loop alone, engramsim_run = numbering and loop (one pass); mrc = engramsim's run plus a 100-point curve, whole process"
column -s, -t <"$CSV"
echo
echo "wrote $CSV"
[ "$status" = 0 ] && echo "misses: identical for every capacity" || echo "misses DIFFER (see the table)" >&2
exit "$status"
