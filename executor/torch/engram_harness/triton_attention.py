"""Paged decode attention as one Triton kernel: each program takes one sequence and one KV head,
walks the sequence's blocks through its block table and keeps an online softmax (the pages are
read in place, never gathered). The engine uses it on a GPU only after `self_check` found it equal
to the gathering PyTorch path on random pages; otherwise that path runs and the reason is
reported (docs/torch_harness.md).
"""
from __future__ import annotations

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - the CPU machines have no Triton
    triton = None


if triton is not None:
    @triton.jit
    def _paged_decode_kernel(Q, K, V, Tables, Lens, Out, scale,
                             s_qb, s_qh, s_kb, s_kt, s_kh, s_tb, s_ob, s_oh,
                             BLOCK: tl.constexpr, D: tl.constexpr, G: tl.constexpr,
                             GP: tl.constexpr, TN: tl.constexpr):
        b = tl.program_id(0)
        kvh = tl.program_id(1)
        n = tl.load(Lens + b)
        g = tl.arange(0, GP)
        d = tl.arange(0, D)
        gmask = g < G
        q = tl.load(Q + b * s_qb + (kvh * G + g)[:, None] * s_qh + d[None, :],
                    mask=gmask[:, None], other=0.0)
        m_i = tl.full([GP], float("-inf"), tl.float32)
        l_i = tl.zeros([GP], tl.float32)
        acc = tl.zeros([GP, D], tl.float32)
        for start in range(0, n, TN):
            pos = start + tl.arange(0, TN)
            pmask = pos < n
            blk = tl.load(Tables + b * s_tb + pos // BLOCK, mask=pmask, other=0)
            base = blk.to(tl.int64) * s_kb + (pos % BLOCK) * s_kt + kvh * s_kh
            k = tl.load(K + base[:, None] + d[None, :], mask=pmask[:, None], other=0.0)
            v = tl.load(V + base[:, None] + d[None, :], mask=pmask[:, None], other=0.0)
            s = tl.dot(q, tl.trans(k)).to(tl.float32) * scale
            s = tl.where(pmask[None, :], s, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(s, 1))
            p = tl.exp(s - m_new[:, None])
            alpha = tl.exp(m_i - m_new)
            l_i = l_i * alpha + tl.sum(p, 1)
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v).to(tl.float32)
            m_i = m_new
        out = acc / l_i[:, None]
        tl.store(Out + b * s_ob + (kvh * G + g)[:, None] * s_oh + d[None, :],
                 out.to(Out.dtype.element_ty), mask=gmask[:, None])


def available() -> bool:
    return triton is not None and torch.cuda.is_available()


def paged_decode(q, kcache, vcache, tables, lens, block):
    """q [B, nh, d]; kcache, vcache [blocks, block, nkv, d]; tables [B, maxb]; lens [B]."""
    B, nh, d = q.shape
    nkv = kcache.shape[2]
    G = nh // nkv
    out = torch.empty_like(q)
    GP = max(16, 1 << (G - 1).bit_length())  # tl.dot needs 16 rows or more
    _paged_decode_kernel[(B, nkv)](
        q, kcache, vcache, tables, lens, out, 1.0 / (d ** 0.5),
        q.stride(0), q.stride(1), kcache.stride(0), kcache.stride(1), kcache.stride(2),
        tables.stride(0), out.stride(0), out.stride(1),
        BLOCK=block, D=d, G=G, GP=GP, TN=64)
    return out.reshape(B, nh * d)


def self_check(reference, dtype, device, nh=32, nkv=8, d=128, block=256):
    """None when the kernel equals `reference` (the gathering path) on random pages, else why."""
    if not available():
        return "Triton or a GPU is missing"
    try:
        g = torch.Generator(device=device)
        g.manual_seed(3)
        blocks, B, maxb = 40, 7, 5
        k = torch.randn((blocks, block, nkv, d), generator=g, device=device).to(dtype)
        v = torch.randn((blocks, block, nkv, d), generator=g, device=device).to(dtype)
        q = torch.randn((B, nh, d), generator=g, device=device).to(dtype)
        tables = torch.randperm(blocks, generator=g, device=device)[: B * maxb].reshape(B, maxb)
        lens = torch.tensor([1, 17, 256, 257, 600, 1000, 1280], device=device)
        want = reference(q, k, v, tables, lens, block).float()
        got = paged_decode(q, k, v, tables, lens, block).float()
        torch.cuda.synchronize()
        err = float((want - got).abs().max())
        # tl.dot rounds fp32 inputs to TF32 (and bf16 is bf16): rounding moves outputs of
        # unit-variance inputs by about 1e-3, a wrong page or mask by O(1).
        tol = 2e-2
        return None if err <= tol else f"Triton paged decode differs from the PyTorch path by {err:.3g}"
    except Exception as e:  # noqa: BLE001 - any failure means: do not use it
        return f"Triton paged decode failed: {type(e).__name__}: {e}"
