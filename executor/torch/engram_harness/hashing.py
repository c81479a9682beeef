"""Engram's multiplicative-XOR N-gram hash in PyTorch, bit-exact with the project's C++ hashing
(traces/ngram_hash.h) and with engram_demo_v1.py: the parameters (canonical map, pad,
multipliers, primes, offsets) come from the step plan, so nothing random is drawn here.

For Engram layer l, order n and position t over canonical ids x (positions before the sequence
start read the canonical pad):
    mix_n(t) = (x_t m_0) xor (x_{t-1} m_1) xor ... xor (x_{t-n+1} m_{n-1})      (int64, exact)
and head k of order n reads local row mix_n(t) mod p_{l,n,k}; the global key adds the layer's
base and the head's offset. A token's keys are ordered by order, then head.
"""
from __future__ import annotations

import torch

MASK64 = (1 << 64) - 1


def _i64(u: int) -> int:
    """An unsigned 64-bit constant as the signed int64 torch stores."""
    return u - (1 << 64) if u >= (1 << 63) else u


class EngramHasher:
    def __init__(self, engram: dict, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.n = int(engram["max_ngram_size"])
        self.k = int(engram["n_head_per_ngram"])
        self.heads = int(engram["heads_per_layer"])
        self.pad = int(engram["pad_canonical"])
        self.compress = torch.tensor(engram["compress_map"], dtype=torch.int64, device=self.device)
        self.layers = []
        for layer in engram["layers"]:
            mult = [int(m) for m in layer["multipliers"]]
            primes = torch.tensor([p for order in layer["primes"] for p in order], dtype=torch.int64,
                                  device=self.device)  # [orders * K]
            offs = torch.tensor(layer["head_offsets"], dtype=torch.int64, device=self.device)
            self.layers.append((mult, primes, offs + int(layer["base"])))

    def canonical(self, raw: torch.Tensor) -> torch.Tensor:
        if raw.numel() and int(raw.max()) >= self.compress.numel():
            raise ValueError(f"token id {int(raw.max())} outside the compression map "
                             f"({self.compress.numel()} raw ids)")
        return self.compress[raw.to(self.device, torch.int64)]

    def keys(self, layer: int, canonical: torch.Tensor) -> torch.Tensor:
        """Global keys [T, heads] of every position of one sequence's canonical ids [T]."""
        mult, primes, base = self.layers[layer]
        T = canonical.numel()
        padded = torch.cat([torch.full((self.n - 1,), self.pad, dtype=torch.int64, device=self.device),
                            canonical.to(torch.int64)])
        mixes = []
        mix = torch.zeros(T, dtype=torch.int64, device=self.device)
        for j in range(self.n):
            # x_{t-j}: the padded stream shifted by j
            x = padded[self.n - 1 - j: self.n - 1 - j + T]
            mix = mix ^ (x * mult[j])
            if j >= 1:
                mixes.append(mix)  # order j + 1
        stacked = torch.stack(mixes, dim=1)  # [T, orders]
        per_head = stacked.repeat_interleave(self.k, dim=1)  # [T, orders * K]
        return torch.remainder(per_head, primes) + base


def splitmix64(x: torch.Tensor) -> torch.Tensor:
    """SplitMix64's finaliser on int64 tensors (wrapping arithmetic, logical shifts)."""
    def shr(v, s):
        return (v >> s) & ((1 << (64 - s)) - 1)
    x = x + _i64(0x9E3779B97F4A7C15)
    x = (x ^ shr(x, 30)) * _i64(0xBF58476D1CE4E5B9)
    x = (x ^ shr(x, 27)) * _i64(0x94D049BB133111EB)
    return x ^ shr(x, 31)


def rows_digest(distinct: torch.Tensor) -> int:
    """sim::rows_digest: the sum mod 2^64 of splitmix64 over distinct global rows."""
    if distinct.numel() == 0:
        return 0
    return int(splitmix64(distinct.to(torch.int64)).sum().item()) & MASK64
