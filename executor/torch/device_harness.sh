#!/usr/bin/env bash
# The PyTorch harness on the lent GPU machine: serves the step plans that scripts/device-bundle.sh
# wrote into BUNDLE/plans (made here, beside the simulator's predictions of the same configs,
# before the GPU ran anything), each under its own `timeout`, and writes per plan
# OUT/<plan>/{results.json,steps.csv,timeline.json,run.log} and OUT/summary.md. A plan written
# with --predict carries the simulator's prediction, which the harness prints beside its own.
#
#   executor/torch/device_harness.sh BUNDLE OUT [--set quick|table4] [--budget S] [--rehearse]
#
#   --set quick   (default; the device check's harness step) the smoke plan, then Table 4's
#                 Dense-4B workload with 128 sequences
#   --set table4  Table 4 itself: 512 sequences, Dense-4B then Dense-8B (a second device call)
#   --rehearse    no GPU: the tiny plan on the CPU, so that the step and its files are exercised
# Plans are chosen for the GPU nvidia-smi names (H100 -> the h100-sxm plans, else h200). The
# table is held in pinned host memory up to --table-gib (default 16 GiB; keys mod its rows).
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
bundle=$(realpath -m "${1:?bundle folder}"); out=$(realpath -m "${2:?output folder}"); shift 2
set_name=quick; budget=150; rehearse=0; table_gib=16
while [ $# -gt 0 ]; do
  case "$1" in
    --set) set_name=$2; shift 2 ;;
    --budget) budget=$2; shift 2 ;;
    --table-gib) table_gib=$2; shift 2 ;;
    --rehearse) rehearse=1; shift ;;
    *) echo "device_harness: unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
start=$(date +%s)
summary=$out/summary.md
echo "# PyTorch harness ($set_name)" >"$summary"
py=""
for cand in ${PYTHON:-} python3 /usr/bin/python3; do
  "$cand" -c 'import torch' 2>/dev/null && { py=$cand; break; }
done
if [ -z "$py" ]; then
  echo "PyTorch is not importable here (python3, /usr/bin/python3): nothing served." | tee -a "$summary"; exit 1
fi
"$py" -c 'import torch, sys; print("torch", torch.__version__, "cuda", torch.version.cuda,
      "gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
      "python", sys.version.split()[0])' >"$out/torch.txt" 2>&1
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
case "$gpu" in *H100*) hw=h100-sxm ;; *) hw=h200 ;; esac
args=(--table-gib "$table_gib")
if [ "$rehearse" = 1 ]; then
  plans=(tiny); args=(--device cpu)
elif [ "$set_name" = table4 ]; then
  plans=(table4-dense4b-$hw table4-dense8b-$hw)
else
  plans=(smoke table4-quick-dense4b-$hw)
fi
{ echo; echo "GPU: ${gpu:-none} (plans for $hw); $(cat "$out/torch.txt")"; echo
  echo "| plan | status | seconds | tok/s measured (predicted) | overhead % measured (predicted) | step \|error\| % p50 / p90 | rows checked / differ | decode attention | graphs |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"; } >>"$summary"
fail=0
for p in "${plans[@]}"; do
  plan=$bundle/plans/$p.json.gz
  left=$(( budget - ($(date +%s) - start) ))
  if [ ! -f "$plan" ]; then echo "| $p | no plan in the bundle | | | | | | | |" >>"$summary"; fail=1; continue; fi
  if [ "$left" -lt 20 ]; then echo "| $p | skipped: no time left | | | | | | | |" >>"$summary"; continue; fi
  t0=$(date +%s)
  (cd "$root/executor/torch" && timeout -k 10 "$left" "$py" -m engram_harness "$plan" -o "$out/$p" \
     "${args[@]}") >"$out/$p.log" 2>&1
  rc=$?
  mkdir -p "$out/$p"; mv "$out/$p.log" "$out/$p/run.log"
  secs=$(( $(date +%s) - t0 ))
  case $rc in 0) st=ok ;; 124|137) st=timeout; fail=1 ;; *) st="failed ($rc)"; fail=1 ;; esac
  row=$("$py" - "$out/$p/results.json" <<'PY' 2>/dev/null
import json, sys
r = json.load(open(sys.argv[1]))
e = r["engram_runs"][0]["throughput_tok_per_s"]
p = r.get("prediction") or {}
f = lambda x, d=1: "-" if x is None else f"{x:,.{d}f}"
se = r.get("step_error") or {}
print(f"{f(e)} ({f(p.get('throughput_tok_per_s'))}) | {f(r.get('overhead_pct'), 2)} ({f(p.get('overhead_pct'), 2)}) | "
      f"{f(se.get('abs_error_p50_pct'))} / {f(se.get('abs_error_p90_pct'))} | "
      f"{r['rows_checked']} / {r['rows_mismatched']} | {r['attention']['decode']} | {'on' if r['cuda_graphs'] else 'off'}")
PY
  )
  echo "| $p | $st | $secs | ${row:-no results | | | | |} |" >>"$summary"
  tail -12 "$out/$p/run.log" | sed 's/^/    /' >&2
done
# The engine's decode step against its GEMMs alone, same run (quick set, if time is left).
left=$(( budget - ($(date +%s) - start) ))
bplan=$bundle/plans/table4-quick-dense4b-$hw.json.gz
[ "$rehearse" = 1 ] && bplan=$bundle/plans/tiny.json.gz
if [ "$set_name" = quick ] && [ "$left" -ge 20 ] && [ -f "$bplan" ]; then
  bargs=(); [ "$rehearse" = 1 ] && bargs=(--device cpu --batches 1,4 --repeats 2)
  if (cd "$root/executor/torch" && timeout -k 5 "$left" "$py" -m engram_harness.bench "$bplan" \
        -o "$out/bench.json" "${bargs[@]}") >"$out/bench.log" 2>&1; then
    { echo; echo '```'; cat "$out/bench.log"; echo '```'; } >>"$summary"
  else
    echo "bench: failed or timed out (bench.log)" >>"$summary"; fail=1
  fi
fi
cat "$summary"
exit $fail
