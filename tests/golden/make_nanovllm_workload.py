#!/usr/bin/env python3
"""Regenerates tests/golden/data/nanovllm_bench_seed0.json with CPython's own `random`.

The draws are nano-vLLM's bench.py, verbatim, with the paper's 512 sequences:
    seed(0)
    prompt_token_ids = [[randint(0, 10000) for _ in range(randint(100, 1024))] for _ in range(512)]
    max_tokens = [randint(100, 1024) for _ in range(512)]
Run on purpose only (the output is committed): python3 tests/golden/make_nanovllm_workload.py
"""
import json
import pathlib
from random import randint, seed

seed(0)
num_seqs = 512
prompt_token_ids = [[randint(0, 10000) for _ in range(randint(100, 1024))] for _ in range(num_seqs)]
max_tokens = [randint(100, 1024) for _ in range(num_seqs)]

out = {
    "generator": "tests/golden/make_nanovllm_workload.py (CPython random, nano-vLLM bench.py draws)",
    "num_seqs": num_seqs,
    "prompt_lens": [len(p) for p in prompt_token_ids],
    "max_tokens": max_tokens,
    "first_prompts": prompt_token_ids[:2],
    "last_prompt": prompt_token_ids[-1],
    "sum_of_all_prompt_ids": sum(sum(p) for p in prompt_token_ids),
}
path = pathlib.Path(__file__).parent / "data" / "nanovllm_bench_seed0.json"
path.write_text(json.dumps(out) + "\n")
print(f"wrote {path}")
