"""The serving loop: the plan's steps, one by one, as a nano-vLLM-class engine runs them
(continuous batching as the project's scheduler decided, paged KV cache, a host sync per step),
with the Engram layers' fetches run by the config's prefetch schedule:
  none            the host gathers at the Engram layer, on the compute thread;
  layer-ahead:K   at the start of layer K (K = 0: the step start) the keys go to the layer's
                  fetch thread; at the Engram layer the compute waits for its rows.
Decode steps can be replayed from CUDA graphs captured per batch size, split at each Engram
layer (the rows arrive between graph pieces), as nano-vLLM's decode graphs are.
"""
from __future__ import annotations

import concurrent.futures as cf
import time
from dataclasses import dataclass, field

import torch

from .fetch import Fetched, Fetcher, HostTable
from .hashing import EngramHasher, rows_digest
from . import model
from .model import (Backbone, EngramModule, PagedKV, decode_attention, prefill_attention,
                    DTYPES)
from .plan import PlanStep, Slice, StepPlan


def parse_schedule(text: str) -> int | None:
    """None for `none`, K for `layer-ahead:K` (`layer-ahead` = 0)."""
    if text == "none":
        return None
    if text == "layer-ahead":
        return 0
    if text.startswith("layer-ahead:") and text[len("layer-ahead:"):].isdigit():
        return int(text[len("layer-ahead:"):])
    raise ValueError(f"sim.schedule: '{text}'; the harness runs none, layer-ahead, layer-ahead:K")


def peak_held(plan: StepPlan) -> tuple[int, int]:
    """The most KV blocks, and the most requests, the plan's steps hold at once (the cache and
    the convolution histories the harness allocates). A request holds both from its first
    scheduled step to its last token or its preemption; nano-vLLM can hold more running
    requests than a decode step takes (max_num_seqs bounds a step, not the running set)."""
    bs = int(plan.scheduler["kv_block_size"])
    held: dict[int, int] = {}
    peak = peak_reqs = 0
    for step in plan.steps:
        for r in step.preempted:
            held.pop(r, None)
        for s in step.slices:
            held[s.request] = max(held.get(s.request, 0), -(-(s.first + s.count) // bs))
        peak = max(peak, sum(held.values()))
        peak_reqs = max(peak_reqs, len(held))
        for s in step.slices:
            if s.sample and s.first + s.count == len(plan.prompts[s.request]) + len(plan.outputs[s.request]) - 1:
                held.pop(s.request, None)
    return peak, peak_reqs


@dataclass
class StepMeta:
    """A step's slices as every layer reads them (Engine._step_meta)."""
    off: list  # each slice's first row in the step's token rows
    dec: list  # the decode slices' indices
    dec_rows: torch.Tensor | None = None  # their rows
    tables: torch.Tensor | None = None    # their block tables, padded with the scratch block
    lens: torch.Tensor | None = None      # their lengths, the new token included
    dec_conv_slots: torch.Tensor | None = None  # their convolution histories (with Engram)


@dataclass
class StepRecord:
    index: int
    prefill: bool
    tokens: int
    seqs: int
    start_s: float = 0.0
    schedule_s: float = 0.0
    end_s: float = 0.0
    engram: list = field(default_factory=list)  # per Engram layer: dict of times


@dataclass
class RunResult:
    engram: bool
    steps: list
    first_token_step: list  # per request: the step (position in the plan) that sampled it
    last_token_step: list
    output_tokens: int
    outputs: dict  # request -> sampled ids (for tests)
    logits: dict   # (step, request) -> logits row, when kept (tests)
    rows_checked: int = 0
    rows_mismatch: list = field(default_factory=list)


class Engine:
    def __init__(self, plan: StepPlan, device: str = "cpu", dtype: str | None = None,
                 schedule: str | None = None, table_rows: int | None = None,
                 gather_threads: int | None = None, cuda_graphs: bool = False, seed: int = 1,
                 keep_logits: bool = False, graphs_on_cpu: bool = False):
        """cuda_graphs: decode steps from CUDA graphs on a GPU; graphs_on_cpu (tests): the same
        pieces and buffers on the CPU, each "graph" rerunning its piece (graphs.RerunGraph)."""
        self.plan = plan
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.dtype = DTYPES[dtype or plan.model["dtype"]]
        simc = plan.config.get("sim", {})
        self.schedule_name = schedule or simc.get("schedule", "layer-ahead:0")
        self.ahead = parse_schedule(self.schedule_name)
        self.keep_logits = keep_logits
        sc = plan.scheduler
        self.block = int(sc["kv_block_size"])
        self.blocks, self.max_held = peak_held(plan)
        if self.cuda:
            self._check_device_memory()
        self.bb = Backbone(plan.model, self.device, self.dtype, seed)
        self.attention_path = "gathered"  # decode: pages gathered, then attended
        self.attention_note = None
        model.PAGED_DECODE = None
        if self.cuda:
            from . import triton_attention
            self.attention_note = triton_attention.self_check(
                model.gathered_decode_attention, self.dtype, self.device,
                self.bb.nh, self.bb.nkv, self.bb.d, self.block)
            if self.attention_note is None:
                model.PAGED_DECODE = triton_attention.paged_decode
                self.attention_path = "triton-paged"
        self.kv = PagedKV(self.bb.L, self.blocks, self.block, self.bb.nkv, self.bb.d, self.device, self.dtype)
        self.max_seqs = int(sc["max_num_seqs"])
        self.max_tokens = max(st_tokens(s) for s in plan.steps)
        self.engram_layers: list[int] = []
        if plan.engram:
            e = plan.engram
            self.engram_layers = list(map(int, e["layer_ids"]))
            if max(self.engram_layers) >= self.bb.L:
                raise ValueError(f"engram.layer_ids: {self.engram_layers} reach past the backbone's "
                                 f"{self.bb.L} layers")
            self.hasher = EngramHasher(e, "cpu")
            self.modules = [EngramModule(e, self.bb.H, self.device, self.dtype, seed + 100 + i)
                            for i in range(len(self.engram_layers))]
            total = int(e["total_rows"])
            self.table = HostTable(min(total, table_rows) if table_rows else total,
                                   int(e["row_dim"]), pin=self.cuda)
            self.table_rows_plan = total
            heads = int(e["heads_per_layer"])
            self.heads = heads
            self.fetchers = [Fetcher(self.table, self.max_tokens * heads, self.device)
                             for _ in self.engram_layers]
            self.threads = gather_threads or int(simc.get("gather_threads", 1) or 1)
            self.pool = cf.ThreadPoolExecutor(max_workers=len(self.engram_layers),
                                              thread_name_prefix="engram-fetch")
            window = self.modules[0].window
            # Per running request, each module's last `window` gated values (the conv history).
            self.conv_state = [torch.zeros((self.max_held + 1, window, self.bb.H), device=self.device,
                                           dtype=self.dtype) for _ in self.engram_layers]
        self.keys: dict[int, list[torch.Tensor]] = {}
        self.slot_of: dict[int, int] = {}
        self.free_slots = list(range(self.max_held - 1, -1, -1))
        self.graphs = None
        if cuda_graphs and (self.cuda or graphs_on_cpu):
            from .graphs import DecodeGraphs
            self.graphs = DecodeGraphs(self)
        if self.plan.engram:
            torch.set_num_threads(max(1, self.threads))

    def _check_device_memory(self):
        """Weights and the KV cache the plan needs against the GPU's free memory, before either
        is allocated (the activations and graphs need the rest)."""
        m = self.plan.model
        b = torch.finfo(self.dtype).bits // 8
        L, H = int(m["layers"]), int(m["hidden"])
        kv = int(m["n_kv_heads"]) * int(m["head_dim"])
        untied_embedding = 0 if m.get("tied_embeddings", True) else int(m["vocab"]) * H
        weights = b * (model.matmul_weights(m) + untied_embedding)
        kv_bytes = 2 * b * L * (self.blocks + 1) * self.block * kv
        free, total = torch.cuda.mem_get_info(self.device)
        if weights + kv_bytes > 0.9 * free:
            raise RuntimeError(
                f"GPU memory: weights {weights / 2**30:.1f} GiB + the KV cache the plan's steps hold "
                f"at their peak ({self.blocks} blocks of {self.block} tokens, {kv_bytes / 2**30:.1f} GiB) "
                f"exceed 90% of the {free / 2**30:.1f} GiB free; plan for a GPU with more memory "
                f"(the config's hardware) or fewer sequences")

    # ---- per-request state -------------------------------------------------------------
    def _slot(self, r: int) -> int:
        if r not in self.slot_of:
            self.slot_of[r] = self.free_slots.pop()
            for st in getattr(self, "conv_state", []):
                st[self.slot_of[r]].zero_()
        return self.slot_of[r]

    def _release(self, r: int, forget_keys: bool):
        self.kv.release(r)
        if r in self.slot_of:
            self.free_slots.append(self.slot_of.pop(r))
        if forget_keys:
            self.keys.pop(r, None)

    def _keys(self, r: int) -> list[torch.Tensor]:
        if r not in self.keys:
            canon = self.hasher.canonical(torch.tensor(self.plan.sequence(r), dtype=torch.int64))
            self.keys[r] = [self.hasher.keys(j, canon).reshape(-1) for j in range(len(self.engram_layers))]
        return self.keys[r]

    def reset(self):
        for r in list(self.kv.tables):
            self.kv.release(r)
        self.keys.clear()
        self.slot_of.clear()
        self.free_slots = list(range(self.max_held - 1, -1, -1))

    # ---- one step ----------------------------------------------------------------------
    def _inputs(self, step: PlanStep):
        ids, pos, slots = [], [], []
        for s in step.slices:
            self.kv.ensure(s.request, s.first + s.count)
            ids.extend(self.plan.token(s.request, p) for p in range(s.first, s.first + s.count))
            pos.extend(range(s.first, s.first + s.count))
            slots.extend(self.kv.slots(s.request, s.first, s.count))
        dev = self.device
        return (torch.tensor(ids, dtype=torch.long, device=dev),
                torch.tensor(pos, dtype=torch.long, device=dev),
                torch.tensor(slots, dtype=torch.long, device=dev))

    def _step_keys(self, step: PlanStep, j: int) -> torch.Tensor:
        h = self.heads
        return torch.cat([self._keys(s.request)[j][s.first * h:(s.first + s.count) * h]
                          for s in step.slices])

    def _engram(self, j: int, step: PlanStep, h: torch.Tensor, f: Fetched, meta: "StepMeta") -> torch.Tensor:
        mod = self.modules[j]
        e = f.rows[f.inverse].reshape(h.shape[0], mod.dm)
        g = mod.gate(h, e)
        if not mod.short_conv:
            return h + g
        out = torch.empty_like(g)
        state = self.conv_state[j]
        W, off = mod.window, meta.off
        if meta.dec:
            rows, slots = meta.dec_rows, meta.dec_conv_slots
            x = torch.cat([state[slots], g[rows][:, None, :]], dim=1)  # [B, W + 1, H]
            out[rows] = mod.conv(x)[:, 0] + g[rows]
            state[slots] = x[:, 1:]
        for i, s in enumerate(step.slices):
            if s.decode:
                continue
            slot = self._slot(s.request)
            x = torch.cat([state[slot], g[off[i]:off[i] + s.count]], dim=0)  # [W + T, H]
            out[off[i]:off[i] + s.count] = mod.conv(x) + g[off[i]:off[i] + s.count]
            state[slot] = x[-W:]
        return h + out

    def _step_meta(self, step: PlanStep, use_engram: bool) -> "StepMeta":
        """What every layer of the step needs about its slices, built once a step."""
        off = offsets(step)
        dec = [x for x, s in enumerate(step.slices) if s.decode]
        meta = StepMeta(off, dec)
        if dec:
            dev = self.device
            reqs = [step.slices[x].request for x in dec]
            mb = max(len(self.kv.tables[r]) for r in reqs)
            meta.dec_rows = torch.tensor([off[x] for x in dec], device=dev)
            meta.tables = torch.tensor([self.kv.padded_table(r, mb) for r in reqs], device=dev)
            meta.lens = torch.tensor([step.slices[x].first + 1 for x in dec], device=dev)
            if use_engram:
                meta.dec_conv_slots = torch.tensor([self._slot(r) for r in reqs], device=dev)
        return meta

    def _attention(self, i: int, step: PlanStep, q, k, v, slots, meta: "StepMeta"):
        self.kv.write(i, slots, k, v)
        out = torch.empty((q.shape[0], q.shape[1] * q.shape[2]), device=q.device, dtype=q.dtype)
        if meta.dec:
            out[meta.dec_rows] = decode_attention(q[meta.dec_rows], self.kv.k[i], self.kv.v[i],
                                                  meta.tables, meta.lens, self.block)
        for x, s in enumerate(step.slices):
            if s.decode:
                continue
            a, b = meta.off[x], meta.off[x] + s.count
            if s.first == 0:
                kk, vv = k[a:b], v[a:b]
            else:
                kk, vv = self.kv.gather(i, s.request, s.first + s.count)
            out[a:b] = prefill_attention(q[a:b], kk, vv, s.first)
        return out

    def _issue(self, j: int, step: PlanStep, clock0: float, background: bool):
        keys = self._step_keys(step, j)
        if background:
            return self.pool.submit(self.fetchers[j].fetch, keys, clock0)
        return self.fetchers[j].fetch(keys, clock0)

    def run_step(self, step: PlanStep, engram: bool, clock0: float, rec: StepRecord, result: RunResult,
                 served: bool = True):
        """One step. served=False (the warm-up): eagerly, and nothing recorded or checked."""
        t0 = time.perf_counter()
        rec.start_s = t0 - clock0
        for r in step.preempted:  # freed while the scheduler chose this step
            self._release(r, forget_keys=False)
        ids, pos, slots = self._inputs(step)
        use_engram = engram and bool(self.engram_layers)
        rec.schedule_s = time.perf_counter() - t0
        fetched: dict[int, Fetched] = {}
        waits: dict[int, tuple] = {}
        graphed = served and self.graphs is not None and all(s.decode for s in step.slices)
        if graphed:
            sampled = self.graphs.run(step, ids, pos, slots, use_engram, clock0, waits, fetched)
        else:
            sampled = self._sample(step, self.forward_eager(step, ids, pos, slots, use_engram,
                                                            clock0, waits, fetched))
        ids_out = sampled.tolist()  # the host sync of every step
        rec.end_s = time.perf_counter() - clock0
        for j, f in fetched.items():
            w = waits[j]
            rec.engram.append({"layer": self.engram_layers[j], "issue_s": f.issue_s, "dedup_s": f.dedup_s,
                               "gather_s": f.gather_s, "ready_s": f.done_s,
                               "wait_start_s": w[0], "stall_s": w[1](), "distinct": f.distinct.numel()})
        if served:
            self._finish(step, ids_out, rec, result, fetched if use_engram else {})

    def forward_eager(self, step, ids, pos, slots, use_engram, clock0, waits, fetched):
        """The step's hidden states, op by op; fetches issued and waited for by the schedule."""
        pending: dict[int, object] = {}
        meta = self._step_meta(step, use_engram)
        h = self.bb.embed_tokens(ids)
        for i in range(self.bb.L):
            if use_engram:
                for j, el in enumerate(self.engram_layers):
                    if self.ahead is not None and min(self.ahead, el) == i:
                        pending[j] = self._issue(j, step, clock0, background=True)
                if i in self.engram_layers:
                    j = self.engram_layers.index(i)
                    fetched[j], waits[j] = self._wait(j, step, pending, clock0)
                    h = self._engram(j, step, h, fetched[j], meta)
            q, k, v = self.bb.qkv(i, h, pos)
            attn = self._attention(i, step, q, k, v, slots, meta)
            h = self.bb.attn_out_mlp(i, h, attn)
        return h

    def _wait(self, j, step, pending, clock0):
        """The Engram layer's rows: fetched now (schedule none) or waited for. Returns them and
        (host time the wait began, a callable giving the stall once the step has synced)."""
        w0 = time.perf_counter()
        if j in pending:
            f = pending.pop(j).result()
        else:
            f = self._issue(j, step, clock0, background=False)
        host_wait = time.perf_counter() - w0
        if f.ready is None:
            return f, (w0 - clock0, lambda: host_wait)
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        torch.cuda.current_stream().wait_event(f.ready)
        b.record()
        # The stall: the host's wait for the gather (the GPU drains what was launched before),
        # plus the GPU's wait for the copy.
        return f, (w0 - clock0, lambda: host_wait + a.elapsed_time(b) / 1e3)

    def _sample(self, step: PlanStep, h: torch.Tensor) -> torch.Tensor:
        off = offsets(step)
        last = torch.tensor([off[x] + s.count - 1 for x, s in enumerate(step.slices) if s.sample],
                            device=h.device, dtype=torch.long)
        logits = self.bb.logits(h[last])
        if self.keep_logits:
            self._last_logits = logits.float().cpu()
        return logits.argmax(-1)

    def _finish(self, step, ids_out, rec, result, fetched):
        k = 0
        for x, s in enumerate(step.slices):
            if not s.sample:
                continue
            r = s.request
            if self.keep_logits:
                result.logits[(step.index, r)] = self._last_logits[k]
            result.outputs.setdefault(r, []).append(ids_out[k])
            k += 1
            P, O = len(self.plan.prompts[r]), len(self.plan.outputs[r])
            produced = s.first + s.count - P  # index of the output token sampled
            if produced == 0 and result.first_token_step[r] < 0:
                result.first_token_step[r] = len(result.steps)
            if s.first + s.count == P + O - 1:
                result.last_token_step[r] = len(result.steps)
                self._release(r, forget_keys=True)
        for j, f in fetched.items():  # the rows against the plan's (not timed)
            want = step.rows[j]
            got = {"distinct": f.distinct.numel(), "digest": rows_digest(f.distinct)}
            result.rows_checked += 1
            if got["distinct"] != want["distinct"] or got["digest"] != int(want["digest"]):
                result.rows_mismatch.append({"step": step.index, "layer": self.engram_layers[j],
                                             "plan": want, "harness": got})

    def serve(self, engram: bool = True, progress=None) -> RunResult:
        self.reset()
        n = len(self.plan.prompts)
        result = RunResult(engram, [], [-1] * n, [-1] * n,
                           sum(len(o) for o in self.plan.outputs), {}, {})
        if self.cuda:
            torch.cuda.synchronize()
        clock0 = time.perf_counter()
        for k, step in enumerate(self.plan.steps):
            rec = StepRecord(step.index, step.prefill, st_tokens(step), len(step.slices))
            self.run_step(step, engram, clock0, rec, result)
            result.steps.append(rec)
            if progress:
                progress(k + 1, len(self.plan.steps))
        return result

    def warmup(self, engram: bool = True):
        """Untimed: one prefill with the shape of the plan's largest step (as nano-vLLM's warm-up
        sizes every buffer at its peak), its requests then dropped; then the decode graphs."""
        big = max(self.plan.steps, key=st_tokens)
        warm = PlanStep(big.index, True, [Slice(s.request, 0, s.first + s.count, False, True)
                                          for s in big.slices], [], None)
        n = len(self.plan.prompts)
        try:
            self.run_step(warm, engram, time.perf_counter(),
                          StepRecord(warm.index, True, st_tokens(warm), len(warm.slices)),
                          RunResult(engram, [], [-1] * n, [-1] * n, 0, {}, {}), served=False)
        finally:
            self.reset()
        if self.graphs is not None:
            self.graphs.capture()


def st_tokens(step: PlanStep) -> int:
    return sum(s.count for s in step.slices)


def offsets(step: PlanStep) -> list[int]:
    out, a = [], 0
    for s in step.slices:
        out.append(a)
        a += s.count
    return out



def metrics(run: RunResult, plan: StepPlan) -> dict:
    """The metrics of `engramsim run` over the run's busy clock: each step from its start to its
    host sync, back to back (the untimed row check between steps left out)."""
    clock, ends = 0.0, []
    stall = 0.0
    for rec in run.steps:
        clock += rec.end_s - rec.start_s
        ends.append(clock)
        stall += sum(x["stall_s"] for x in rec.engram)
    ttft = [ends[k] for k in run.first_token_step if k >= 0]
    tpot = []
    for r, (a, b) in enumerate(zip(run.first_token_step, run.last_token_step)):
        O = len(plan.outputs[r])
        if a >= 0 and b >= 0 and O > 1:
            tpot.append((ends[b] - ends[a]) / (O - 1))
    steps = run.steps
    dec = [r.end_s - r.start_s for r in steps if not r.prefill]
    pre = [r.end_s - r.start_s for r in steps if r.prefill]
    return {
        "throughput_tok_per_s": run.output_tokens / clock if clock > 0 else 0.0,
        "makespan_s": clock,
        "steps": len(steps),
        "prefill_steps": len(pre),
        "mean_step_s": clock / len(steps) if steps else 0.0,
        "mean_decode_step_s": sum(dec) / len(dec) if dec else 0.0,
        "mean_prefill_step_s": sum(pre) / len(pre) if pre else 0.0,
        "ttft_mean_s": sum(ttft) / len(ttft) if ttft else 0.0,
        "tpot_mean_s": sum(tpot) / len(tpot) if tpot else 0.0,
        "stall_s": stall,
        "output_tokens": run.output_tokens,
    }
