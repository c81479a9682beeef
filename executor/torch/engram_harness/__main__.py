"""python3 -m engram_harness PLAN.json [-o DIR] [--device cuda] ...: serve a step plan for real
(docs/torch_harness.md). Writes results.json (schema engramsim.torch_harness, version 1),
steps.csv and timeline.json (Perfetto) into DIR, and prints a table."""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import sys
import time

import torch

from . import engine as E
from .plan import PlanError, load

SCHEMA, VERSION = "engramsim.torch_harness", 1


def _progress(label):
    last = [0.0]

    def report(k, n):
        now = time.perf_counter()
        if k == n or now - last[0] > 2:
            last[0] = now
            print(f"\r  {label}: step {k}/{n}", end="\n" if k == n else "", file=sys.stderr, flush=True)
    return report


def step_errors(run, predicted: list) -> dict | None:
    """Each step's predicted time against its measured one (the first Engram run): |error| p50,
    p90 and the mean signed error (the bias), in percent of the measured time."""
    if not predicted or len(predicted) != len(run.steps):
        return None
    err = sorted(abs(100 * (p - (r.end_s - r.start_s)) / (r.end_s - r.start_s))
                 for p, r in zip(predicted, run.steps))
    signed = [100 * (p - (r.end_s - r.start_s)) / (r.end_s - r.start_s) for p, r in zip(predicted, run.steps)]
    q = lambda f: err[min(len(err) - 1, int(f * len(err)))]
    return {"abs_error_p50_pct": q(0.5), "abs_error_p90_pct": q(0.9), "bias_pct": sum(signed) / len(signed),
            "steps": len(err)}


def _write_steps(path, run, predicted=None):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "prefill", "tokens", "seqs", "start_s", "schedule_s", "end_s", "predicted_s",
                    "engram_layer", "issue_s", "dedup_s", "gather_s", "ready_s", "wait_start_s", "stall_s",
                    "distinct_rows"])
        for k, r in enumerate(run.steps):
            base = [r.index, int(r.prefill), r.tokens, r.seqs, f"{r.start_s:.6f}", f"{r.schedule_s:.6f}",
                    f"{r.end_s:.6f}", f"{predicted[k]:.6f}" if predicted else ""]
            if not r.engram:
                w.writerow(base + [""] * 8)
            for x in r.engram:
                w.writerow(base + [x["layer"]] + [f"{x[k]:.6f}" for k in
                                                  ("issue_s", "dedup_s", "gather_s", "ready_s",
                                                   "wait_start_s", "stall_s")] + [x["distinct"]])


def _timeline(run):
    """Chrome trace events (ui.perfetto.dev): the compute thread's steps and stalls, each fetch."""
    ev = [{"ph": "M", "name": "process_name", "pid": 1, "args": {"name": "torch harness (measured)"}},
          {"ph": "M", "name": "thread_name", "pid": 1, "tid": 1, "args": {"name": "compute"}}]
    us = 1e6
    for r in run.steps:
        ev.append({"ph": "X", "pid": 1, "tid": 1, "name": ("prefill" if r.prefill else "decode") + f" {r.index}",
                   "ts": r.start_s * us, "dur": (r.end_s - r.start_s) * us,
                   "args": {"tokens": r.tokens, "seqs": r.seqs}})
        for x in r.engram:
            tid = 10 + x["layer"]
            ev.append({"ph": "X", "pid": 1, "tid": tid, "name": f"fetch L{x['layer']}",
                       "ts": x["issue_s"] * us, "dur": max(0.0, x["ready_s"] - x["issue_s"]) * us,
                       "args": {"distinct_rows": x["distinct"], "dedup_s": x["dedup_s"], "gather_s": x["gather_s"]}})
            if x["stall_s"] > 0:
                ev.append({"ph": "X", "pid": 1, "tid": 1, "name": f"stall L{x['layer']}",
                           "ts": x["wait_start_s"] * us, "dur": x["stall_s"] * us})
    return {"traceEvents": ev, "displayTimeUnit": "ms"}


def read_prediction(path: str) -> dict:
    """The simulator's prediction from `engramsim run CONFIG --json` (results.json of a run)."""
    with open(path) as f:
        r = json.load(f)
    try:
        c, m = r["comparison"], r["metrics"]
        steps = m["steps"]["total"]
        return {"source": os.path.abspath(path), "throughput_tok_per_s": c["throughput_tok_per_s"],
                "no_engram_tok_per_s": c["no_engram_tok_per_s"],
                "overhead_pct": c["overhead_vs_no_engram_pct"],
                "mean_step_s": m["makespan_s"] / steps if steps else None,
                "ttft_mean_s": m["ttft_s"]["mean"], "tpot_mean_s": m["tpot_s"]["mean"],
                "stall_s": m["breakdown_s"]["exposed_fetch_stall"]}
    except (KeyError, TypeError) as e:
        raise PlanError(f"{path}: not the JSON of `engramsim run CONFIG --json` (no {e})") from e


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m engram_harness", description=__doc__)
    ap.add_argument("plan", help="step plan from `engramsim plan CONFIG -o FILE`")
    ap.add_argument("-o", "--out", help="write results.json, steps.csv, timeline.json here")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], help="weights (default: the plan's)")
    ap.add_argument("--schedule", help="none | layer-ahead:K (default: the plan's sim.schedule)")
    ap.add_argument("--table-gib", type=float, default=0.0,
                    help="hold at most this many GiB of table (keys mod its rows); 0: the plan's table")
    ap.add_argument("--gather-threads", type=int, default=0, help="host gather threads (default: the plan's)")
    ap.add_argument("--cuda-graphs", choices=["on", "off"], default="on", help="decode from CUDA graphs (GPU)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each, Engram and baseline alternating")
    ap.add_argument("--no-baseline", action="store_true", help="skip the run without Engram")
    ap.add_argument("--prediction", help="`engramsim run CONFIG --json` of the plan's config, made "
                    "before this run: printed and recorded beside the measurement")
    ap.add_argument("-q", "--quiet", action="store_true")
    a = ap.parse_args(argv)
    try:
        plan = load(a.plan)
        prediction = read_prediction(a.prediction) if a.prediction else plan.prediction
        table_rows = None
        if plan.engram and a.table_gib > 0:
            table_rows = int(a.table_gib * (1 << 30) // (2 * int(plan.engram["row_dim"])))
        if plan.engram:
            need = (table_rows or int(plan.engram["total_rows"])) * 2 * int(plan.engram["row_dim"])
            avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
            if need > 0.8 * avail:
                raise PlanError(f"engram table: {need / 2**30:.1f} GiB does not fit the "
                                f"{avail / 2**30:.1f} GiB of free host memory; pass --table-gib")
        t0 = time.perf_counter()
        eng = E.Engine(plan, a.device, a.dtype, a.schedule, table_rows, a.gather_threads or None,
                       a.cuda_graphs == "on")
        setup_s = time.perf_counter() - t0
        eng.warmup(True)
        warm_s = time.perf_counter() - t0 - setup_s
    except (PlanError, ValueError, RuntimeError, OSError) as e:
        print(f"engram_harness: error: {e}", file=sys.stderr)
        return 2
    runs = {"engram": [], "baseline": []}
    for k in range(a.repeat):
        for kind in (["engram"] + ([] if a.no_baseline or not plan.engram else ["baseline"])):
            r = eng.serve(kind == "engram", None if a.quiet else _progress(f"{kind} run {k + 1}/{a.repeat}"))
            runs[kind].append(r)
    m_e = [E.metrics(r, plan) for r in runs["engram"]]
    m_b = [E.metrics(r, plan) for r in runs["baseline"]]
    overheads = [100.0 * (1 - e["throughput_tok_per_s"] / b["throughput_tok_per_s"]) for e, b in zip(m_e, m_b)]
    mism = [x for r in runs["engram"] for x in r.rows_mismatch]
    res = {
        "schema": SCHEMA, "version": VERSION, "plan": os.path.abspath(a.plan),
        "engramsim": plan.engramsim,
        "device": torch.cuda.get_device_name(eng.device) if eng.cuda else platform.processor() or "cpu",
        "torch": torch.__version__, "python": platform.python_version(),
        "dtype": str(eng.dtype).replace("torch.", ""), "schedule": eng.schedule_name,
        "cuda_graphs": eng.graphs is not None and eng.graphs.disabled_reason is None,
        "cuda_graphs_note": eng.graphs.disabled_reason if eng.graphs else None,
        "cuda_graphs_check_max_abs": eng.graphs.check_max_abs if eng.graphs else None,
        "attention": {"decode": eng.attention_path, "note": eng.attention_note,
                      "prefill": "scaled_dot_product_attention (causal) per prompt on a GPU, else masked softmax"},
        "kv": {"block_size": eng.block, "blocks_plan": int(plan.scheduler["num_kv_blocks"]),
               "blocks_allocated": eng.blocks},
        "table": None if not plan.engram else {
            "rows_plan": eng.table_rows_plan, "rows_held": eng.table.rows, "bytes_held": eng.table.bytes,
            "pinned": eng.cuda, "gather_threads": eng.threads},
        "setup_s": setup_s, "warmup_s": warm_s,
        "units": {"throughput_tok_per_s": "output tokens/s", "*_s": "seconds", "overhead_pct": "%"},
        "engram_runs": m_e, "baseline_runs": m_b,
        "overhead_pct": statistics.median(overheads) if overheads else None,
        "overhead_band_pct": [min(overheads), max(overheads)] if overheads else None,
        "rows_checked": sum(r.rows_checked for r in runs["engram"]),
        "rows_mismatched": len(mism), "rows_mismatch_first": mism[:5],
        "prediction": {k: v for k, v in prediction.items() if k != "step_s"} if prediction else None,
        "step_error": step_errors(runs["engram"][0], (prediction or {}).get("step_s")),
    }
    if eng.cuda:
        res["cuda_max_memory_allocated"] = torch.cuda.max_memory_allocated(eng.device)
        free, total = torch.cuda.mem_get_info(eng.device)
        res["cuda_memory_total"] = total
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "results.json.part"), "w") as f:
            json.dump(res, f, indent=2)
        os.replace(os.path.join(a.out, "results.json.part"), os.path.join(a.out, "results.json"))
        _write_steps(os.path.join(a.out, "steps.csv"), runs["engram"][0], (prediction or {}).get("step_s"))
        with open(os.path.join(a.out, "timeline.json"), "w") as f:
            json.dump(_timeline(runs["engram"][0]), f)
    print(f"engram_harness: {plan.source} on {res['device']} ({res['dtype']}, schedule {res['schedule']}, "
          f"graphs {'on' if res['cuda_graphs'] else 'off'})")
    pred = prediction or {}
    print(f"  {'metric':<34}{'Engram':>14}{'baseline':>14}{'predicted':>14}")
    rows = [("throughput (output tok/s)", "throughput_tok_per_s", 1), ("mean step (ms)", "mean_step_s", 1e3),
            ("mean decode step (ms)", "mean_decode_step_s", 1e3), ("TTFT mean (ms)", "ttft_mean_s", 1e3),
            ("TPOT mean (ms)", "tpot_mean_s", 1e3), ("Engram stall (s)", "stall_s", 1)]
    for label, key, k in rows:
        e = statistics.median(x[key] for x in m_e) * k
        b = statistics.median(x[key] for x in m_b) * k if m_b else float("nan")
        p = pred.get(key)
        print(f"  {label:<34}{e:>14.3f}{b:>14.3f}{'' if p is None else format(p * k, '14.3f')}")
    if overheads:
        p = pred.get("overhead_pct")
        print(f"  overhead vs no Engram: {res['overhead_pct']:.2f}% (runs {min(overheads):.2f} to {max(overheads):.2f})"
              + ("" if p is None else f"; predicted {p:.2f}%"))
    if res["step_error"]:
        se = res["step_error"]
        print(f"  step by step ({se['steps']} steps): |error| p50 {se['abs_error_p50_pct']:.1f}%, "
              f"p90 {se['abs_error_p90_pct']:.1f}%, bias {se['bias_pct']:+.1f}%")
    print(f"  rows: {res['rows_checked']} step-layers checked against the plan, {len(mism)} differ")
    if mism:
        print(f"engram_harness: error: {len(mism)} step-layers read other rows than the plan's "
              f"(first: {mism[0]})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
