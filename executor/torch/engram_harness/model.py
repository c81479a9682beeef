"""A dense GQA Transformer in the Qwen3 form the step model prices (RMSNorm, fused q/k/v, per-head
q/k RMSNorm, RoPE theta 1e6, attention over a paged KV cache, SwiGLU; final norm and LM head
over each sampling sequence's last token, argmax), seeded random weights, and Engram modules
(docs/ENGRAM.md section 1, steps 5-7: key and value projections, the gate, the short
convolution with per-request history). Eager PyTorch ops, as the paper's Python engine runs
them; decode steps can be replayed from CUDA graphs (engine.py).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
EPS = 1e-6
ROPE_THETA = 1e6


def matmul_weights(model: dict) -> int:
    """Values in the matrices a decode step multiplies by: q/k/v, o, gate/up and down per layer,
    and the LM head (the norms are vectors and not counted)."""
    H, L, I, V = (int(model[k]) for k in ("hidden", "layers", "intermediate", "vocab"))
    q, kv = int(model["n_heads"]) * int(model["head_dim"]), int(model["n_kv_heads"]) * int(model["head_dim"])
    return L * (H * (q + 2 * kv) + q * H + 3 * I * H) + V * H


def rms_norm(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + EPS)).to(x.dtype) * w


class Backbone:
    """Weights and the per-layer ops; the KV cache is the engine's (PagedKV)."""

    def __init__(self, model: dict, device, dtype: torch.dtype, seed: int = 1):
        self.H = int(model["hidden"])
        self.L = int(model["layers"])
        self.nh = int(model["n_heads"])
        self.nkv = int(model["n_kv_heads"])
        self.d = int(model["head_dim"])
        self.I = int(model["intermediate"])
        self.V = int(model["vocab"])
        self.tied = bool(model.get("tied_embeddings", True))
        self.device, self.dtype = torch.device(device), dtype
        g = torch.Generator(device=self.device)
        g.manual_seed(seed)

        def uniform(shape, bound):
            t = torch.empty(shape, device=self.device, dtype=torch.float32)
            t.uniform_(-bound, bound, generator=g)
            return t.to(dtype)

        q, kv = self.nh * self.d, self.nkv * self.d
        in_h = 1.0 / math.sqrt(self.H)
        self.embed = uniform((self.V, self.H), math.sqrt(3.0))
        self.lm_head = self.embed if self.tied else uniform((self.V, self.H), math.sqrt(3.0) * in_h)
        self.layers = []
        for _ in range(self.L):
            self.layers.append({
                "attn_norm": torch.ones(self.H, device=self.device, dtype=dtype),
                "qkv": uniform((q + 2 * kv, self.H), math.sqrt(3.0) * in_h),
                "q_norm": torch.ones(self.d, device=self.device, dtype=dtype),
                "k_norm": torch.ones(self.d, device=self.device, dtype=dtype),
                "o": uniform((self.H, q), math.sqrt(3.0 / q) * 0.5),
                "mlp_norm": torch.ones(self.H, device=self.device, dtype=dtype),
                "gate_up": uniform((2 * self.I, self.H), math.sqrt(3.0) * in_h),
                "down": uniform((self.H, self.I), math.sqrt(3.0 / self.I) * 0.5),
            })
        self.final_norm = torch.ones(self.H, device=self.device, dtype=dtype)
        half = self.d // 2
        self.inv_freq = 1.0 / (ROPE_THETA ** (torch.arange(0, half, device=self.device,
                                                            dtype=torch.float32) / half))

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embed[ids % self.V]

    def rope(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """x [T, heads, d] rotated by position (rotate-half form, as Qwen3)."""
        f = pos.float()[:, None] * self.inv_freq[None, :]  # [T, d/2]
        cos, sin = f.cos()[:, None, :], f.sin()[:, None, :]
        xf = x.float()
        x1, x2 = xf[..., : self.d // 2], xf[..., self.d // 2:]
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).to(x.dtype)

    def qkv(self, i: int, h: torch.Tensor, pos: torch.Tensor):
        W = self.layers[i]
        x = rms_norm(h, W["attn_norm"])
        qkv = x @ W["qkv"].t()
        q, k, v = qkv.split([self.nh * self.d, self.nkv * self.d, self.nkv * self.d], dim=-1)
        T = h.shape[0]
        q = rms_norm(q.reshape(T, self.nh, self.d), W["q_norm"])
        k = rms_norm(k.reshape(T, self.nkv, self.d), W["k_norm"])
        return self.rope(q, pos), self.rope(k, pos), v.reshape(T, self.nkv, self.d)

    def attn_out_mlp(self, i: int, h: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
        W = self.layers[i]
        h = h + attn.reshape(h.shape[0], -1) @ W["o"].t()
        x = rms_norm(h, W["mlp_norm"])
        gu = x @ W["gate_up"].t()
        gate, up = gu.split([self.I, self.I], dim=-1)
        return h + (F.silu(gate) * up) @ W["down"].t()

    def logits(self, last: torch.Tensor) -> torch.Tensor:
        return rms_norm(last, self.final_norm) @ self.lm_head.t()


def _softmax_attend(q, k, v, mask):
    """q [..., G, Q, d] against k, v [..., S, d] (heads broadcast), mask [..., Q, S] True=keep.
    The products in the cache's dtype (fp32 accumulation), the softmax in fp32."""
    scale = 1.0 / math.sqrt(q.shape[-1])
    s = (q @ k.transpose(-1, -2)).float() * scale
    s = s.masked_fill(~mask, float("-inf"))
    return torch.softmax(s, dim=-1).to(v.dtype) @ v


class PagedKV:
    """K and V in blocks of `block` tokens, [layers][blocks + 1][block][kv heads][d]; the last
    block is scratch for padded batch rows. Requests hold block tables in the scheduler's order."""

    def __init__(self, layers, blocks, block, nkv, d, device, dtype):
        self.block, self.blocks = block, blocks
        self.k = torch.zeros((layers, blocks + 1, block, nkv, d), device=device, dtype=dtype)
        self.v = torch.zeros_like(self.k)
        self.scratch = blocks
        self.free = list(range(blocks - 1, -1, -1))
        self.tables: dict[int, list[int]] = {}

    def ensure(self, request: int, tokens: int):
        t = self.tables.setdefault(request, [])
        need = -(-tokens // self.block)
        while len(t) < need:
            if not self.free:
                raise RuntimeError(f"KV cache: no free block for request {request} "
                                   f"({self.blocks} blocks); the plan's steps need more")
            t.append(self.free.pop())

    def release(self, request: int):
        self.free.extend(reversed(self.tables.pop(request, [])))

    def slots(self, request: int, first: int, count: int) -> list[int]:
        t = self.tables[request]
        return [t[p // self.block] * self.block + p % self.block for p in range(first, first + count)]

    def padded_table(self, request: int, width: int) -> list[int]:
        """The request's block table, padded to `width` with the scratch block."""
        t = self.tables[request]
        return t + [self.scratch] * (width - len(t))

    def write(self, layer: int, slots: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
        nkv, d = k.shape[-2], k.shape[-1]
        self.k[layer].view(-1, nkv, d).index_copy_(0, slots, k)
        self.v[layer].view(-1, nkv, d).index_copy_(0, slots, v)

    def gather(self, layer: int, request: int, tokens: int):
        blocks = torch.tensor(self.tables[request][: -(-tokens // self.block)],
                              device=self.k.device, dtype=torch.long)
        nkv, d = self.k.shape[-2], self.k.shape[-1]
        return (self.k[layer][blocks].reshape(-1, nkv, d)[:tokens],
                self.v[layer][blocks].reshape(-1, nkv, d)[:tokens])


def prefill_attention(q, k, v, first: int):
    """One slice's queries [T, nh, d] at positions first.. against keys [first + T, nkv, d]."""
    T, nh, d = q.shape
    S, nkv = k.shape[0], k.shape[1]
    G = nh // nkv
    if q.is_cuda and first == 0 and hasattr(F, "scaled_dot_product_attention"):
        # A whole prompt: PyTorch's fused causal attention (flash or memory-efficient).
        o = F.scaled_dot_product_attention(q.transpose(0, 1)[None],
                                           k.repeat_interleave(G, 1).transpose(0, 1)[None],
                                           v.repeat_interleave(G, 1).transpose(0, 1)[None],
                                           is_causal=True)
        return o[0].transpose(0, 1).reshape(T, nh * d)
    qh = q.reshape(T, nkv, G, d).permute(1, 2, 0, 3)  # [nkv, G, T, d]
    kh, vh = k.permute(1, 0, 2)[:, None], v.permute(1, 0, 2)[:, None]  # [nkv, 1, S, d]
    qpos = torch.arange(first, first + T, device=q.device)[:, None]
    mask = torch.arange(S, device=q.device)[None, :] <= qpos  # [T, S]
    out = _softmax_attend(qh, kh, vh, mask)  # [nkv, G, T, d]
    return out.permute(2, 0, 1, 3).reshape(T, nh * d)


# The paged decode kernel the engine chose (triton_attention.paged_decode once checked on the GPU);
# None: the gathering path below.
PAGED_DECODE = None


def decode_attention(q, kcache, vcache, tables, lens, block):
    """Decode: q [B, nh, d], one query each, against its sequence's pages: tables [B, maxb]
    block ids, lens [B] tokens (its own included)."""
    if PAGED_DECODE is not None and q.is_cuda:
        return PAGED_DECODE(q, kcache, vcache, tables, lens, block)
    return gathered_decode_attention(q, kcache, vcache, tables, lens, block)


def gathered_decode_attention(q, kcache, vcache, tables, lens, block):
    """The pages gathered into one tensor per sequence, then attended (a copy a fused paged
    attention kernel does not make)."""
    B, nh, d = q.shape
    nkv = kcache.shape[-2]
    G = nh // nkv
    k = kcache[tables].reshape(B, -1, nkv, d).permute(0, 2, 1, 3)[:, :, None]  # [B, nkv, 1, S, d]
    v = vcache[tables].reshape(B, -1, nkv, d).permute(0, 2, 1, 3)[:, :, None]
    S = k.shape[-2]
    mask = (torch.arange(S, device=q.device)[None, :] < lens[:, None])[:, None, None, None, :]
    qh = q.reshape(B, nkv, G, 1, d)
    out = _softmax_attend(qh, k, v, mask)  # [B, nkv, G, 1, d]
    return out.reshape(B, nh * d)


class EngramModule:
    """One Engram layer's module: e [T, d_mem] -> h + SiLU(conv(RMSNorm(alpha * v))) + alpha * v."""

    def __init__(self, engram: dict, hidden: int, device, dtype, seed: int):
        if int(engram.get("hc_mult", 1)) != 1:
            raise ValueError(f"engram.hc_mult: {engram['hc_mult']}; the harness serves a dense "
                             "backbone without hyper-connections (set engram.hc_mult 1)")
        self.H, self.dm = hidden, int(engram["d_mem"])
        self.kernel, self.dil = int(engram["kernel_size"]), int(engram["dilation"])
        self.window = (self.kernel - 1) * self.dil
        self.signed_sqrt = bool(engram["signed_sqrt_gate"])
        self.short_conv = bool(engram["short_conv"])
        g = torch.Generator(device=torch.device(device))
        g.manual_seed(seed)
        b = math.sqrt(3.0 / self.dm)
        self.w_kv = torch.empty((2 * hidden, self.dm), device=device).uniform_(-b, b, generator=g).to(dtype)
        self.norm_h = torch.ones(hidden, device=device, dtype=dtype)
        self.norm_k = torch.ones(hidden, device=device, dtype=dtype)
        self.conv_norm = torch.ones(hidden, device=device, dtype=dtype)
        # The paper zero-initialises the taps; random ones make the convolution's arithmetic real.
        self.conv_w = torch.empty((hidden, self.kernel), device=device).uniform_(-0.5, 0.5, generator=g).to(dtype)

    def gate(self, h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        kv = e.to(h.dtype) @ self.w_kv.t()
        k, v = kv[:, : self.H], kv[:, self.H:]
        s = (rms_norm(h, self.norm_h).float() * rms_norm(k, self.norm_k).float()).sum(-1)
        s = s / math.sqrt(self.H)
        if self.signed_sqrt:
            s = torch.sign(s) * torch.sqrt(torch.clamp(s.abs(), min=1e-6))
        return (torch.sigmoid(s)[:, None] * v.float()).to(h.dtype)

    def conv(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., window + T, hidden] (history first) -> SiLU(conv) of the last T positions."""
        xn = rms_norm(x, self.conv_norm).float()
        T = x.shape[-2] - self.window
        y = torch.zeros(x.shape[:-2] + (T, self.H), device=x.device, dtype=torch.float32)
        for j in range(self.kernel):
            y = y + xn[..., j * self.dil: j * self.dil + T, :] * self.conv_w[:, j].float()
        return F.silu(y).to(x.dtype)
