#!/usr/bin/python3
"""Row ids per second of Engram hashing written as NumPy array code, the way the reference demo
(engram_demo_v1.py) computes it: canonical ids by table lookup, the shifted copies of each
sequence padded at its start, one multiply-XOR mix per N-gram order, one modulo per head
(docs/ENGRAM.md section 1, written from that specification). It times the paper-offload-100b shape
(orders 2 and 3, 8 heads each: 16 row ids per token) at a decode step of 512 sequences and at a
full prefill of 16,384 tokens, one thread. The rate is the assumption of the `hashing: NumPy as
the demo` row of `engramsim study run paper-table4` (sim.hash_rate_per_thread)."""
import time

import numpy as np

VOCAB = 99043          # canonical ids (DeepSeek-V3 map)
RAW_VOCAB = 128815
ORDERS = 3             # max_ngram_size
HEADS = 8
PAD = 2


def make_hasher(seed=0):
    rng = np.random.default_rng(seed)
    half = max(1, (np.iinfo(np.int64).max // VOCAB) // 2)
    mult = rng.integers(0, half, size=ORDERS, dtype=np.int64) * 2 + 1
    primes = [[78125003 + 2 * (o * HEADS + k) for k in range(HEADS)] for o in range(ORDERS - 1)]
    compress = rng.integers(0, VOCAB, size=RAW_VOCAB, dtype=np.int64)

    def hash_ids(raw):  # raw: [batch, tokens] -> [batch, tokens, 16] row ids
        x = compress[raw]
        t = x.shape[1]
        shifted = [x] + [np.pad(x, ((0, 0), (k, 0)), constant_values=PAD)[:, :t]
                         for k in range(1, ORDERS)]
        mix = shifted[0] * mult[0]
        rows = []
        for n in range(2, ORDERS + 1):
            mix = np.bitwise_xor(mix, shifted[n - 1] * mult[n - 1])
            rows += [mix % p for p in primes[n - 2]]
        return np.stack(rows, axis=2)

    return hash_ids


def main():
    hash_ids = make_hasher()
    rng = np.random.default_rng(1)
    # A decode step needs each sequence's new token with the 2 before it (its trigram); only
    # the new token's row ids are used. A full prefill hashes every token.
    for name, shape, used_tokens in (
            ("decode step, 512 sequences (3 tokens each, 1 used)", (512, 3), 512),
            ("full prefill, 16,384 tokens", (1, 16384), 16384)):
        raw = rng.integers(0, RAW_VOCAB, size=shape)
        hash_ids(raw)
        reps = 50
        start = time.perf_counter()
        for _ in range(reps):
            hash_ids(raw)
        per_call = (time.perf_counter() - start) / reps
        ids = used_tokens * (ORDERS - 1) * HEADS
        print(f"{name}: {per_call * 1e6:,.0f} us per call, {ids / per_call / 1e6:,.1f}M row ids/s")


if __name__ == "__main__":
    main()
