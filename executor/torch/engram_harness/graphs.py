"""Decode steps replayed from CUDA graphs, captured per batch size as nano-vLLM captures them
(1, 2, 4, 8, then every 16 up to max_num_seqs, or to the plan's largest decode batch; a step runs in the smallest that holds it, its
padding rows writing to a scratch KV block and a scratch convolution slot). With Engram the
step is split at each Engram layer: the rows arrive between graph pieces (the host waits for
its gather, the stream for the copy), as a graph cannot wait for a host fetch.

Each mode's graphs (with Engram, without) are checked once against the eager ops on a real step
before they are trusted
(`check`): the step's logits from both, the convolution histories restored in between. A
difference beyond rounding disables the graphs and is reported.
"""
from __future__ import annotations

import functools

import torch

from .model import decode_attention


class RerunGraph:
    """The CPU's stand-in for a captured graph (tests): replay runs the captured piece again, on
    the same static buffers, so the pieces, padding and buffers are checked without a GPU."""

    def __init__(self, fn):
        self.fn = fn

    def replay(self):
        self.fn()


class DecodeGraphs:
    def __init__(self, eng):
        self.e = eng
        bb = eng.bb
        M = eng.max_seqs
        # Buckets up to the largest decode batch the plan has (capturing larger ones costs
        # start-up time for nothing).
        top = max((len(s.slices) for s in eng.plan.steps if all(x.decode for x in s.slices)), default=1)
        self.buckets = sorted({b for b in [1, 2, 4, 8] + list(range(16, M + 1, 16)) + [M] if b <= M})
        self.buckets = [b for b in self.buckets if b < top] + [next(b for b in self.buckets if b >= top)]
        self.maxb = max(-(-len(eng.plan.sequence(r)) // eng.block) for r in range(len(eng.plan.prompts)))
        dev = eng.device
        self.ids = torch.zeros(M, dtype=torch.long, device=dev)
        self.pos = torch.zeros(M, dtype=torch.long, device=dev)
        self.slots = torch.full((M,), eng.kv.scratch * eng.block, dtype=torch.long, device=dev)
        self.tables = torch.full((M, self.maxb), eng.kv.scratch, dtype=torch.long, device=dev)
        self.lens = torch.ones(M, dtype=torch.long, device=dev)
        self.conv_slots = torch.full((M,), eng.max_held, dtype=torch.long, device=dev)  # scratch
        self.h = torch.zeros((M, bb.H), dtype=eng.dtype, device=dev)
        self.logits = torch.zeros((M, bb.V), dtype=torch.float32, device=dev)
        self.e_in = [torch.zeros((M, m.dm), dtype=eng.dtype, device=dev) for m in getattr(eng, "modules", [])]
        self.graphs: dict[tuple[int, bool], list] = {}
        self.pool = None
        self.checked: set[bool] = set()  # the modes (with Engram or not) checked against eager
        self.disabled_reason = None
        self.check_max_abs = None

    def _pieces(self, engram: bool):
        """Layer ranges of the pieces: [0, el_0), [el_0, el_1), ..., [el_last, L)."""
        cuts = list(self.e.engram_layers) if engram else []
        bounds = [0] + cuts + [self.e.bb.L]
        return [(bounds[p], bounds[p + 1]) for p in range(len(bounds) - 1)]

    def _piece(self, B: int, p: int, a: int, b: int, last: bool):
        e, bb = self.e, self.e.bb
        if p == 0:
            self.h[:B] = bb.embed_tokens(self.ids[:B])
        else:
            j = p - 1
            mod = e.modules[j]
            h = self.h[:B]
            g = mod.gate(h, self.e_in[j][:B])
            if mod.short_conv:
                st = e.conv_state[j]
                cs = self.conv_slots[:B]
                x = torch.cat([st[cs], g[:, None, :]], dim=1)
                st[cs] = x[:, 1:]
                g = mod.conv(x)[:, 0] + g
            self.h[:B] = h + g
        h = self.h[:B]
        for i in range(a, b):
            q, k, v = bb.qkv(i, h, self.pos[:B])
            e.kv.write(i, self.slots[:B], k, v)
            attn = decode_attention(q, e.kv.k[i], e.kv.v[i], self.tables[:B], self.lens[:B], e.block)
            h = bb.attn_out_mlp(i, h, attn)
        self.h[:B] = h
        if last:
            self.logits[:B] = bb.logits(h).float()

    def capture(self):
        """All buckets, largest first (their memory pool shared), with and without Engram."""
        modes = [False] + ([True] if self.e.engram_layers else [])
        for engram in modes:
            pieces = self._pieces(engram)
            for B in reversed(self.buckets):
                graphs = []
                for p, (a, b) in enumerate(pieces):
                    last = p == len(pieces) - 1
                    if not self.e.cuda:
                        graphs.append(RerunGraph(functools.partial(self._piece, B, p, a, b, last)))
                        continue
                    s = torch.cuda.Stream()
                    s.wait_stream(torch.cuda.current_stream())
                    with torch.cuda.stream(s):  # warm-up run, as capture requires
                        self._piece(B, p, a, b, last)
                    torch.cuda.current_stream().wait_stream(s)
                    g = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(g, pool=self.pool):
                        self._piece(B, p, a, b, last)
                    if self.pool is None:
                        self.pool = g.pool()
                    graphs.append(g)
                self.graphs[(B, engram)] = graphs
        if self.e.cuda:
            torch.cuda.synchronize()

    def _fill(self, step, ids, pos, slots):
        e = self.e
        B = len(step.slices)
        Bb = next(b for b in self.buckets if b >= B)
        self.ids[:B].copy_(ids)
        self.pos[:B].copy_(pos)
        self.slots[:B].copy_(slots)
        self.slots[B:Bb].fill_(e.kv.scratch * e.block)
        tab = [e.kv.padded_table(s.request, self.maxb) for s in step.slices]
        self.tables[:B].copy_(torch.tensor(tab, dtype=torch.long), non_blocking=False)
        self.tables[B:Bb].fill_(e.kv.scratch)
        self.lens[:B].copy_(torch.tensor([s.first + 1 for s in step.slices], dtype=torch.long))
        self.lens[B:Bb].fill_(1)
        if e.engram_layers:
            self.conv_slots[:B].copy_(torch.tensor([e._slot(s.request) for s in step.slices]))
        self.conv_slots[B:Bb].fill_(e.max_held)
        return B, Bb

    def run(self, step, ids, pos, slots, use_engram, clock0, waits, fetched):
        if self.disabled_reason is None and use_engram not in self.checked:
            self.check(step, ids, pos, slots, use_engram, clock0)
        if self.disabled_reason is not None:
            h = self.e.forward_eager(step, ids, pos, slots, use_engram, clock0, waits, fetched)
            return self.e._sample(step, h)
        logits = self._replay(step, ids, pos, slots, use_engram, clock0, waits, fetched)
        if self.e.keep_logits:
            self.e._last_logits = logits.float().cpu().clone()  # the static buffer is reused
        return logits.argmax(-1)

    def _replay(self, step, ids, pos, slots, use_engram, clock0, waits, fetched):
        e = self.e
        B, Bb = self._fill(step, ids, pos, slots)
        graphs = self.graphs[(Bb, use_engram)]
        pieces = self._pieces(use_engram)
        pending = {}
        for p, (a, b) in enumerate(pieces):
            if p > 0:
                j = p - 1
                fetched[j], waits[j] = e._wait(j, step, pending, clock0)
                f = fetched[j]
                self.e_in[j][:B].copy_(f.rows[f.inverse].reshape(B, -1))
            if use_engram and e.ahead is not None:
                # fetches whose issue layer the host reaches while launching this piece
                for j, el in enumerate(e.engram_layers):
                    if j not in pending and j not in fetched and min(e.ahead, el) < max(b, a + 1):
                        pending[j] = e._issue(j, step, clock0, background=True)
            graphs[p].replay()
        return self.logits[:B]

    def check(self, step, ids, pos, slots, use_engram, clock0):
        """One decode step through the eager ops and through the graphs, the convolution
        histories restored between; their logits must agree to rounding."""
        e = self.e
        saved = [st.clone() for st in getattr(e, "conv_state", [])]
        eager = e.bb.logits(e.forward_eager(step, ids, pos, slots, use_engram, clock0, {}, {})[
            torch.arange(len(step.slices), device=e.device)]).float()
        for st, sv in zip(getattr(e, "conv_state", []), saved):
            st.copy_(sv)
        graph = self._replay(step, ids, pos, slots, use_engram, clock0, {}, {}).clone()
        for st, sv in zip(getattr(e, "conv_state", []), saved):
            st.copy_(sv)
        scale = float(eager.abs().max())
        diff = float((eager - graph).abs().max())
        self.check_max_abs = max(diff, self.check_max_abs or 0.0)
        self.checked.add(use_engram)
        tol = 2e-2 * max(scale, 1.0) if e.dtype != torch.float32 else 1e-4 * max(scale, 1.0)
        if not diff <= tol:
            self.disabled_reason = (f"graph logits differ from eager by {diff:.4g} "
                                    f"(scale {scale:.4g}, tolerance {tol:.3g}); decode ran eagerly")
