#!/usr/bin/python3
"""Figures for `engramsim trace stats --plot DIR`: reads trace_stats.json by key, writes PNGs.

    popularity.png     rank-frequency of rows per layer and N-gram order (log-log), fitted Zipf s
    reuse.png          LRU stack-distance histogram per layer
    decode_unique.png  unique rows per decode step against batch size, with the no-reuse line
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(stats_path, out_dir):
    with open(stats_path) as f:
        st = json.load(f)

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for o in st["orders"]:
        ranks = [p[0] for p in o["popularity"]]
        counts = [p[1] for p in o["popularity"]]
        ax.loglog(ranks, counts, label=f"layer {o['layer_id']}, order {o['order']} "
                                      f"(s = {o['zipf_exponent']:.2f})")
    ax.set_xlabel("row rank")
    ax.set_ylabel("lookups of the row")
    ax.set_title("Row popularity")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(f"{out_dir}/popularity.png", dpi=120)

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    width = 0.8 / max(1, len(st["reuse"]))
    for i, layer in enumerate(st["reuse"]):
        hist = layer["histogram"]
        xs = [b + i * width for b in range(1, len(hist))]
        ax.bar(xs, hist[1:], width=width, label=f"layer {layer['layer_id']} "
                                                 f"(cold reads: {hist[0]:,})")
    n = max(len(layer["histogram"]) for layer in st["reuse"])
    ax.set_xticks(range(1, n))
    ax.set_xticklabels(["0-1"] + [f"2^{k}" for k in range(1, n - 1)], rotation=90, fontsize=7)
    ax.set_xlabel("reuse distance (distinct rows since the previous read)")
    ax.set_ylabel("lookups")
    ax.set_title("Reuse distances")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(f"{out_dir}/reuse.png", dpi=120)

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    batches = [b["batch"] for b in st["decode_batches"]]
    lookups = [b["lookups_per_step_per_layer"] for b in st["decode_batches"]]
    ax.loglog(batches, lookups, "k--", label="lookups (no reuse within a step)")
    for li in range(len(st["reuse"])):
        unique = [b["unique_rows_per_step"][li] for b in st["decode_batches"]]
        ax.loglog(batches, unique, "o-", label=f"unique rows, layer {st['reuse'][li]['layer_id']}")
    ax.set_xlabel("decode batch (requests in lockstep)")
    ax.set_ylabel("rows per step per layer")
    ax.set_title("Rows to fetch per decode step")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(f"{out_dir}/decode_unique.png", dpi=120)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
