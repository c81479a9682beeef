#!/usr/bin/python3
"""Regenerates tests/golden/data/numpy_extra.json with Debian's NumPy (python3-numpy).

These vectors complement the shared numpy_default_rng.json: they exercise the paths that file
does not reach often, namely Lemire rejection in both the 64-bit and the 32-bit draw (bounds
just above 2^62 and 2^31 reject about a quarter / half of all draws), the 32-bit buffer carried
across calls (a 32-bit draw leaves half of a 64-bit output for the next call), SeedSequence pool
and state words, and seeds of one, two and three 32-bit words.

Run on purpose only (the output is committed): /usr/bin/python3 tests/golden/make_numpy_extra.py
"""
import json
import pathlib

import numpy as np

SEEDS = [0, 3, 10007, 2**32 - 1, 2**32, 2**63 + 12345, 2**96 + 7]
# (high, size) draws made one after another from the same generator, int64 dtype, low 0.
SEQUENCE = [(2**31 + 1, 5), (2**62 + 1, 6), (1000, 3), (2**32, 1), (3, 4), (2**62 + 1, 2),
            (46562462954750, 3), (2**31 + 1, 1)]

cases = []
for seed in SEEDS:
    ss = np.random.SeedSequence(seed)
    rng = np.random.default_rng(seed)
    draws = []
    for high, size in SEQUENCE:
        values = rng.integers(0, high, size=size, dtype=np.int64)
        draws.append({"high": str(high), "values": [str(int(v)) for v in values]})
    cases.append({
        "seed": str(seed),
        "pool": [int(w) for w in ss.pool],
        "state_u32": [int(w) for w in ss.generate_state(8, np.uint32)],
        "sequence": draws,
    })

out = {
    "numpy_version": np.__version__,
    "generator": "tests/golden/make_numpy_extra.py",
    "note": "integers(0, high, size, dtype=int64) drawn in sequence from one default_rng(seed)",
    "cases": cases,
}
path = pathlib.Path(__file__).parent / "data" / "numpy_extra.json"
path.write_text(json.dumps(out, indent=1) + "\n")
print(f"wrote {path}")
