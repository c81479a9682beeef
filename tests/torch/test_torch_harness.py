"""The PyTorch harness (executor/torch/engram_harness) on the CPU: its hash against the golden
vectors, its rows against the C++ plan's digests, its paged engine against a dense reference
forward written here (full causal attention, F.conv1d for the short convolution), with
preemption and chunked prefill, and its prefetch schedules against each other.

Run by CTest (TorchHarness.*) with ENGRAMSIM_BIN set to the engramsim binary; skipped with a
message where PyTorch is not installed (scripts/install-deps.sh installs Debian's python3-torch).
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "executor", "torch"))

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover
    torch = None

if torch is not None:
    from engram_harness import engine as E
    from engram_harness import hashing as Hh
    from engram_harness.model import rms_norm
    from engram_harness.plan import PlanError, load

BIN = os.environ.get("ENGRAMSIM_BIN", os.path.join(ROOT, "build", "cli", "engramsim"))


def tiny_config(layer_ids=(1,), schedule="layer-ahead:0", engine="nano-vllm", num_kv_blocks=-1,
                requests=6, short_conv=True):
    cfg = {
        "backbone": {"base": "dense-4b", "name": "tiny", "hidden_size": 64, "layers": 3,
                     "vocab_size": 1000, "dtype": "fp32",
                     "attention": {"n_heads": 4, "n_kv_heads": 2, "head_dim": 16, "v_head_dim": 16},
                     "mlp": {"intermediate_size": 128}},
        "engram": {"base": "demo-v1", "name": "tiny-engram", "engram_vocab_size": [1009, 2003],
                   "n_embed_per_ngram": 64, "n_head_per_ngram": 4, "layer_ids": list(layer_ids),
                   "hc_mult": 1, "short_conv": short_conv},
        "hardware": "h800-pcie5",
        "workload": {"base": "nano-vllm-512", "name": "tiny", "num_requests": requests,
                     "prompt_len": {"min": 5, "max": 40}, "output_len": {"min": 5, "max": 12}},
        "sim": {"table": "host-dram", "mechanism": "cpu-gather", "schedule": schedule,
                "max_num_seqs": 4, "max_num_batched_tokens": 64, "kv_block_size": 16,
                "num_kv_blocks": num_kv_blocks, "engine": engine},
    }
    return cfg


def make_plan(tmp, cfg, name="plan", *extra):
    cpath = os.path.join(tmp, name + ".config.json")
    ppath = os.path.join(tmp, name + ".json")
    with open(cpath, "w") as f:
        json.dump(cfg, f)
    subprocess.run([BIN, "plan", cpath, "-o", ppath, *extra], check=True, capture_output=True, text=True)
    return load(ppath)


def reference_logits(eng, r: int, length: int, with_engram: bool):
    """The request's first `length` tokens through the same weights, densely: full causal
    attention, the Engram module over the whole sequence (F.conv1d), logits at every position."""
    bb, plan = eng.bb, eng.plan
    seq = torch.tensor(plan.sequence(r)[:length], dtype=torch.long)
    pos = torch.arange(length)
    h = bb.embed_tokens(seq)
    for i in range(bb.L):
        if with_engram and i in eng.engram_layers:
            j = eng.engram_layers.index(i)
            canon = eng.hasher.canonical(seq)
            keys = eng.hasher.keys(j, canon).reshape(-1)
            rows = eng.table.data[torch.remainder(keys, eng.table.rows)].float()
            mod = eng.modules[j]
            e = rows.reshape(length, mod.dm)
            g = mod.gate(h, e)
            if mod.short_conv:
                xn = rms_norm(g, mod.conv_norm).t()[None]  # [1, H, T]
                y = F.conv1d(F.pad(xn, (mod.window, 0)), mod.conv_w[:, None, :], groups=mod.H,
                             dilation=mod.dil)[0].t()
                g = F.silu(y) + g
            h = h + g
        q, k, v = bb.qkv(i, h, pos)
        G = bb.nh // bb.nkv
        kk, vv = k.repeat_interleave(G, dim=1), v.repeat_interleave(G, dim=1)
        s = torch.einsum("thd,shd->hts", q, kk) / math.sqrt(bb.d)
        s = s.masked_fill(torch.triu(torch.ones(length, length, dtype=torch.bool), 1), float("-inf"))
        a = torch.einsum("hts,shd->thd", torch.softmax(s, -1), vv)
        h = bb.attn_out_mlp(i, h, a)
    return bb.logits(h)


@unittest.skipIf(torch is None, "PyTorch is not installed (apt-get install python3-torch); "
                                "the harness's CPU tests are skipped")
class TorchHarness(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="engramsim-torch-")
        torch.manual_seed(0)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def check_against_reference(self, plan, with_engram=True):
        eng = E.Engine(plan, "cpu", keep_logits=True)
        run = eng.serve(with_engram)
        self.assertEqual(run.rows_mismatch, [])
        checked = 0
        refs = {}
        for step in plan.steps:
            for s in step.slices:
                if not s.sample:
                    continue
                r, end = s.request, s.first + s.count
                if r not in refs:
                    full = len(plan.sequence(r)) - 1
                    refs[r] = reference_logits(eng, r, full, with_engram)
                got = run.logits[(step.index, r)]
                want = refs[r][end - 1]
                torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4,
                                           msg=f"step {step.index} request {r} position {end - 1}")
                checked += 1
        self.assertEqual(checked, sum(len(o) for o in plan.outputs))  # every output token
        return run

    def test_hash_matches_golden_vectors(self):
        for name in ("demo_v1_sentence.json", "demo_v1_handbook_en_512.json"):
            with open(os.path.join(ROOT, "tests", "golden", "data", name)) as f:
                g = json.load(f)
            V = g["compressed_vocab_size"]
            layers = []
            for lid, L in g["layers"].items():
                layers.append({"layer_id": int(lid), "multipliers": L["multipliers"], "primes": L["primes"],
                               "head_offsets": [0] * 16, "base": 0, "rows": 0})
            engram = {"max_ngram_size": 3, "n_head_per_ngram": 8, "heads_per_layer": 16,
                      "pad_canonical": g["compressed_pad_id"], "compress_map": list(range(V)),
                      "layers": layers}
            hs = Hh.EngramHasher(engram)
            ids = torch.tensor(g["compressed_ids"])
            for j, (lid, L) in enumerate(g["layers"].items()):
                got = hs.keys(j, ids).tolist()
                self.assertEqual(got, L["row_ids"], f"{name} layer {lid}")

    def test_digest_is_splitmix_sum(self):
        def splitmix(x):
            M = (1 << 64) - 1
            x = (x + 0x9E3779B97F4A7C15) & M
            x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M
            x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M
            return x ^ (x >> 31)
        keys = [0, 1, 2, 12345678901, (1 << 62) + 17, (1 << 63) - 1]
        self.assertEqual(Hh.rows_digest(torch.tensor(keys)), sum(map(splitmix, keys)) % (1 << 64))

    def test_engine_matches_dense_reference(self):
        plan = make_plan(self.tmp.name, tiny_config(), "base")
        self.assertGreater(len(plan.steps), 5)
        run = self.check_against_reference(plan)
        self.assertEqual(run.rows_checked, len(plan.steps))

    def test_two_engram_layers_without_conv_and_the_baseline(self):
        plan = make_plan(self.tmp.name, tiny_config(layer_ids=(0, 2), short_conv=False), "two")
        self.check_against_reference(plan)
        self.check_against_reference(plan, with_engram=False)

    def test_preemption(self):
        plan = make_plan(self.tmp.name, tiny_config(num_kv_blocks=6, requests=8), "preempt")
        self.assertGreater(plan.scheduler["preemptions"], 0)
        self.check_against_reference(plan)

    def test_chunked_prefill(self):
        cfg = tiny_config(engine="vllm-v1", requests=8)
        cfg["sim"]["max_num_batched_tokens"] = 24
        plan = make_plan(self.tmp.name, cfg, "chunked")
        self.assertTrue(any(s.first > 0 and not s.decode for st in plan.steps for s in st.slices))
        self.assertTrue(any(not s.sample for st in plan.steps for s in st.slices))
        self.check_against_reference(plan)

    def test_schedules_compute_the_same(self):
        plan = make_plan(self.tmp.name, tiny_config(layer_ids=(1, 2)), "sched")
        outs = {}
        for sched in ("none", "layer-ahead:0", "layer-ahead:1", "layer-ahead:5"):
            eng = E.Engine(plan, "cpu", schedule=sched, keep_logits=True)
            run = eng.serve(True)
            self.assertEqual(run.rows_mismatch, [])
            outs[sched] = torch.stack([run.logits[k] for k in sorted(run.logits)])
        for sched, x in outs.items():
            self.assertTrue(torch.equal(x, outs["none"]), sched)

    def test_decode_graph_pieces_compute_what_eager_does(self):
        # The CUDA-graph path's host logic (pieces split at each Engram layer, static buffers,
        # padding to the batch-size buckets, scratch KV block and convolution slot) on the CPU:
        # each "graph" reruns its captured piece (graphs.RerunGraph).
        for layers, name in (((1,), "g1"), ((0, 2), "g2")):
            cfg = tiny_config(layer_ids=layers, requests=8)
            cfg["sim"]["max_num_seqs"] = 6  # buckets 1, 2, 4, 6: batches of 3 and 5 are padded
            plan = make_plan(self.tmp.name, cfg, name)
            eager = E.Engine(plan, "cpu", keep_logits=True).serve(True)
            eng = E.Engine(plan, "cpu", keep_logits=True, cuda_graphs=True, graphs_on_cpu=True)
            eng.warmup(True)
            self.assertEqual(eng.graphs.buckets, [1, 2, 4, 6])
            graphed = eng.serve(True)
            self.assertIsNone(eng.graphs.disabled_reason)
            self.assertEqual(eng.graphs.checked, {True})
            self.assertEqual(graphed.rows_mismatch, [])
            sizes = {len(st.slices) for st in plan.steps if all(s.decode for s in st.slices)}
            self.assertTrue(sizes - {1, 2, 4, 6}, "some decode batch is padded")
            self.assertEqual(sorted(graphed.logits), sorted(eager.logits))
            for k in eager.logits:
                torch.testing.assert_close(graphed.logits[k], eager.logits[k], rtol=1e-5, atol=1e-5,
                                           msg=f"{name} step/request {k}")
            base = eng.serve(False)  # the graphs without Engram: one piece
            self.assertEqual(eng.graphs.checked, {True, False})
            ref = E.Engine(plan, "cpu", keep_logits=True).serve(False)
            for k in ref.logits:
                torch.testing.assert_close(base.logits[k], ref.logits[k], rtol=1e-5, atol=1e-5)

    def test_smaller_table_serves_keys_mod_its_rows(self):
        plan = make_plan(self.tmp.name, tiny_config(), "small-table")
        eng = E.Engine(plan, "cpu", table_rows=101, keep_logits=True)
        self.assertEqual(eng.table.rows, 101)
        run = eng.serve(True)
        r = plan.steps[-1].slices[0].request
        ref = reference_logits(eng, r, len(plan.sequence(r)) - 1, True)
        torch.testing.assert_close(run.logits[(plan.steps[-1].index, r)], ref[-1], rtol=1e-4, atol=1e-4)

    def test_rows_that_differ_from_the_plan_are_reported(self):
        plan = make_plan(self.tmp.name, tiny_config(), "tamper")
        plan.steps[2].rows[0]["digest"] ^= 1
        run = E.Engine(plan, "cpu").serve(True)
        self.assertEqual([m["step"] for m in run.rows_mismatch], [plan.steps[2].index])

    def test_bad_plans_are_refused(self):
        plan_path = os.path.join(self.tmp.name, "cut.json")
        make_plan(self.tmp.name, tiny_config(), "whole")
        with open(os.path.join(self.tmp.name, "whole.json")) as f:
            text = f.read()
        with open(plan_path, "w") as f:
            f.write(text[: len(text) // 2])
        with self.assertRaisesRegex(PlanError, "cut short"):
            load(plan_path)
        with open(plan_path, "w") as f:
            json.dump({"schema": "engramsim.execute", "version": 1}, f)
        with self.assertRaisesRegex(PlanError, "engramsim.step_plan"):
            load(plan_path)
        doc = json.loads(text)
        doc["steps"][0]["slices"][0][2] = 10**6
        with open(plan_path, "w") as f:
            json.dump(doc, f)
        with self.assertRaisesRegex(PlanError, r"steps\[0\]\.slices.*outside"):
            load(plan_path)
        doc = json.loads(text)
        doc["prediction"] = {"step_s": [0.1]}
        with open(plan_path, "w") as f:
            json.dump(doc, f)
        with self.assertRaisesRegex(PlanError, "prediction.step_s has 1 steps"):
            load(plan_path)

    def test_bench_counts_the_weights_it_multiplies(self):
        from engram_harness import bench
        make_plan(self.tmp.name, tiny_config(), "bench")
        res = bench.run(os.path.join(self.tmp.name, "bench.json"), "cpu", [1, 3, 99], 2)
        self.assertEqual([r["batch"] for r in res["rows"]], [1, 3])  # 99 > the plan's 6 requests
        bb = E.Engine(load(os.path.join(self.tmp.name, "bench.json")), "cpu", table_rows=1).bb
        weights = sum(W[k].numel() for W in bb.layers for k in ("qkv", "o", "gate_up", "down"))
        weights += bb.lm_head.numel()
        for r in res["rows"]:
            self.assertEqual(r["gemm_flops"], 2 * r["batch"] * weights)
            self.assertGreater(r["step_s"], 0)
            self.assertGreater(r["gemms_s"], 0)

    def test_command_line_writes_results(self):
        plan = make_plan(self.tmp.name, tiny_config(), "cli", "--predict")
        self.assertEqual(len(plan.prediction["step_s"]), len(plan.steps))  # the simulator's, per step
        out = os.path.join(self.tmp.name, "cli-out")
        p = subprocess.run([sys.executable, "-m", "engram_harness", os.path.join(self.tmp.name, "cli.json"),
                            "-o", out, "-q", "--device", "cpu"], cwd=os.path.join(ROOT, "executor", "torch"),
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(os.path.join(out, "results.json")) as f:
            res = json.load(f)
        self.assertEqual(res["schema"], "engramsim.torch_harness")
        self.assertEqual(res["rows_mismatched"], 0)
        self.assertGreater(res["engram_runs"][0]["throughput_tok_per_s"], 0)
        self.assertIsNotNone(res["overhead_pct"])
        self.assertEqual(res["prediction"]["throughput_tok_per_s"], plan.prediction["throughput_tok_per_s"])
        self.assertEqual(res["step_error"]["steps"], len(plan.steps))
        self.assertGreaterEqual(res["step_error"]["abs_error_p90_pct"], res["step_error"]["abs_error_p50_pct"])
        with open(os.path.join(out, "timeline.json")) as f:
            tl = json.load(f)
        self.assertTrue(any(e.get("name", "").startswith("fetch L1") for e in tl["traceEvents"]))
        with open(os.path.join(out, "steps.csv")) as f:
            lines = f.read().splitlines()
        self.assertEqual(len(lines), 1 + len(plan.steps))
        header = lines[0].split(",")
        predicted = [float(l.split(",")[header.index("predicted_s")]) for l in lines[1:]]
        self.assertEqual(predicted, [round(x, 6) for x in plan.prediction["step_s"]])
        bad = subprocess.run([sys.executable, "-m", "engram_harness", os.path.join(self.tmp.name, "nope.json")],
                             cwd=os.path.join(ROOT, "executor", "torch"), capture_output=True, text=True)
        self.assertEqual(bad.returncode, 2)
        self.assertIn("error", bad.stderr)


if __name__ == "__main__":
    if torch is None:
        print("TorchHarness: skipped: PyTorch is not installed (scripts/install-deps.sh installs "
              "Debian's python3-torch)")
        sys.exit(77)
    unittest.main()
