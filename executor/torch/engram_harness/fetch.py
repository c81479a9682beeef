"""The Engram table in host memory (pinned where a GPU is) and its fetch: a step's keys
deduplicated, the distinct rows gathered on the host by the CPU threads, copied to the device
on a side stream. A table smaller than the plan's (the host cannot hold it) serves key mod its
rows; the sizes are reported.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch


class HostTable:
    """rows x row_dim values of the plan's table dtype (bf16), filled with a seeded pattern: a
    64 MiB random block repeated (filling GiBs from a generator would take minutes)."""

    def __init__(self, rows: int, row_dim: int, pin: bool, seed: int = 7):
        self.rows, self.row_dim = rows, row_dim
        self.data = torch.empty((rows, row_dim), dtype=torch.bfloat16, pin_memory=pin)
        g = torch.Generator()
        g.manual_seed(seed)
        block_rows = max(1, min(rows, (64 << 20) // (2 * row_dim)))
        block = (torch.rand((block_rows, row_dim), generator=g) * 2 - 1).to(torch.bfloat16)
        for start in range(0, rows, block_rows):
            n = min(block_rows, rows - start)
            self.data[start:start + n].copy_(block[:n])

    @property
    def bytes(self) -> int:
        return self.rows * self.row_dim * 2


@dataclass
class Fetched:
    distinct: torch.Tensor   # the step's distinct global keys (host), sorted
    inverse: torch.Tensor    # on the device: each lookup's row in `rows`
    rows: torch.Tensor       # on the device: [distinct, row_dim]
    ready: object = None     # CUDA event the consumer's stream waits on (None on the CPU)
    issue_s: float = 0.0     # host clock: handed over, deduplicated, gathered, copy enqueued
    dedup_s: float = 0.0
    gather_s: float = 0.0
    done_s: float = 0.0


class Fetcher:
    """One Engram layer's fetch path, with its own staging (pinned) and device buffers, sized
    for the largest step."""

    def __init__(self, table: HostTable, max_lookups: int, device: torch.device):
        self.table, self.device = table, device
        self.cuda = device.type == "cuda"
        rd = table.row_dim
        self.staging = torch.empty((max_lookups, rd), dtype=torch.bfloat16, pin_memory=self.cuda)
        self.inv_staging = torch.empty(max_lookups, dtype=torch.int64, pin_memory=self.cuda)
        if self.cuda:
            self.rows_dev = torch.empty((max_lookups, rd), dtype=torch.bfloat16, device=device)
            self.inv_dev = torch.empty(max_lookups, dtype=torch.int64, device=device)
            self.stream = torch.cuda.Stream(device=device)

    def fetch(self, keys: torch.Tensor, clock0: float) -> Fetched:
        t0 = time.perf_counter()
        distinct, inverse = torch.unique(keys, sorted=True, return_inverse=True)
        t1 = time.perf_counter()
        n, m = distinct.numel(), keys.numel()
        rows = torch.remainder(distinct, self.table.rows) if self.table.rows else distinct
        torch.index_select(self.table.data, 0, rows, out=self.staging[:n])
        t2 = time.perf_counter()
        if not self.cuda:
            f = Fetched(distinct, inverse, self.staging[:n])
        else:
            self.inv_staging[:m].copy_(inverse)
            with torch.cuda.stream(self.stream):
                self.rows_dev[:n].copy_(self.staging[:n], non_blocking=True)
                self.inv_dev[:m].copy_(self.inv_staging[:m], non_blocking=True)
                ev = torch.cuda.Event()
                ev.record(self.stream)
            f = Fetched(distinct, self.inv_dev[:m], self.rows_dev[:n], ev)
        f.issue_s, f.dedup_s, f.gather_s = t0 - clock0, t1 - t0, t2 - t1
        f.done_s = time.perf_counter() - clock0
        return f
