"""python3 -m engram_harness.bench PLAN [-o bench.json]: the engine's decode step against the
same GEMMs alone, in the same run (the plain baseline the harness's speed is judged by).

For each batch size, a decode step of that many of the plan's requests (each at position 255 of
its sequence, or its last) through the engine's eager ops without Engram, and the step's GEMMs
alone on the same weights (q/k/v, o, gate/up, down per layer, and the LM head): medians over
repeats, the GEMMs' share of the step, their FLOP rate and weight-read rate.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from . import engine as E
from .model import matmul_weights
from .plan import PlanStep, Slice, load


def _sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _median(fn, dev, reps):
    fn()
    _sync(dev)
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        _sync(dev)
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def gemm_flops(model: dict, batch: int) -> int:
    """2 x batch x (every weight matrix's size) for one decode step: the closed form."""
    return 2 * batch * matmul_weights(model)


def run(plan_path: str, device: str, batches: list[int], reps: int) -> dict:
    plan = load(plan_path)
    eng = E.Engine(plan, device, table_rows=1)
    dev, bb = eng.device, eng.bb
    rows = []
    for B in batches:
        if B > len(plan.prompts):
            continue
        eng.reset()
        slices = [Slice(r, min(255, len(plan.sequence(r)) - 1), 1, True, True) for r in range(B)]
        try:
            for s in slices:
                eng.kv.ensure(s.request, s.first + 1)
        except RuntimeError:
            continue  # the plan's peak cache cannot hold this batch
        step = PlanStep(0, False, slices, [], None)
        ids, pos, slots = eng._inputs(step)

        def engine_step():
            h = eng.forward_eager(step, ids, pos, slots, False, time.perf_counter(), {}, {})
            return eng._sample(step, h)

        x = torch.randn((B, bb.H), device=dev).to(eng.dtype)
        a = torch.randn((B, bb.nh * bb.d), device=dev).to(eng.dtype)
        m = torch.randn((B, bb.I), device=dev).to(eng.dtype)

        def gemms():
            for W in bb.layers:
                x @ W["qkv"].t()
                a @ W["o"].t()
                x @ W["gate_up"].t()
                m @ W["down"].t()
            return x @ bb.lm_head.t()

        t_step = _median(engine_step, dev, reps)
        t_gemm = _median(gemms, dev, reps)
        flops = gemm_flops(plan.model, B)
        wbytes = flops // (2 * B) * torch.finfo(eng.dtype).bits // 8
        rows.append({"batch": B, "step_s": t_step, "gemms_s": t_gemm, "gemm_share": t_gemm / t_step,
                     "gemm_tflop_per_s": flops / t_gemm / 1e12, "gemm_weight_read_GB_per_s": wbytes / t_gemm / 1e9,
                     "gemm_flops": flops})
    eng.reset()
    return {"schema": "engramsim.torch_harness_bench", "version": 1, "plan": plan_path,
            "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
            "dtype": str(eng.dtype).replace("torch.", ""), "decode_attention": eng.attention_path,
            "context_position": 255, "repeats": reps,
            "units": {"*_s": "seconds (median)", "gemm_share": "GEMMs alone / engine step"},
            "rows": rows}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m engram_harness.bench", description=__doc__)
    ap.add_argument("plan")
    ap.add_argument("-o", "--out")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batches", default="1,16,64,256,512")
    ap.add_argument("--repeats", type=int, default=10)
    a = ap.parse_args(argv)
    res = run(a.plan, a.device, [int(b) for b in a.batches.split(",")], a.repeats)
    print(f"decode step vs its GEMMs alone ({res['device']}, {res['dtype']}, attention {res['decode_attention']})")
    print(f"  {'batch':>6}{'step ms':>10}{'GEMMs ms':>10}{'share':>8}{'TFLOP/s':>10}{'weights GB/s':>14}")
    for r in res["rows"]:
        print(f"  {r['batch']:>6}{r['step_s'] * 1e3:>10.3f}{r['gemms_s'] * 1e3:>10.3f}{r['gemm_share']:>8.2f}"
              f"{r['gemm_tflop_per_s']:>10.2f}{r['gemm_weight_read_GB_per_s']:>14.1f}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
