#!/usr/bin/python3
"""Figures for `engramsim replay --plot DIR`: reads replay.json by key, writes PNGs.

    mrc.png         miss ratio of the HBM cache against its capacity (rows and bytes), with --mrc
    hit_ratio.png   HBM hit ratio per layer at each --capacity of the run
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def human_bytes(b):
    for unit in ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]:
        if abs(b) < 1024 or unit == "PiB":
            return f"{b:.3g} {unit}"
        b /= 1024


def main(replay_path, out_dir):
    with open(replay_path) as f:
        rp = json.load(f)
    source = rp["input"]["source"]

    if "mrc" in rp:
        m = rp["mrc"]
        pts = sorted(m["points"], key=lambda p: p["capacity_rows"])
        xs = [p["capacity_rows"] for p in pts]
        ys = [p["miss_ratio"] for p in pts]
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        ax.plot(xs, ys, marker="." if len(xs) <= 40 else None)
        ax.set_xlabel("HBM cache capacity (rows)")
        ax.set_ylabel("miss ratio (requests)")
        ax.set_ylim(0, 1.02)
        ax.set_title(f"Miss-ratio curve, {m['policy']} ({m['method']})", fontsize=10)
        ax.grid(True, alpha=0.3)
        row_bytes = rp["input"]["row_bytes"]
        if row_bytes:
            top = ax.secondary_xaxis("top", functions=(lambda r: r * row_bytes,
                                                       lambda b: b / row_bytes))
            top.set_xlabel("capacity (bytes)")
            ticks = ax.get_xticks()
            top.set_xticks([t * row_bytes for t in ticks if t >= 0])
            top.set_xticklabels([human_bytes(t * row_bytes) for t in ticks if t >= 0],
                                fontsize=7)
        fig.text(0.01, 0.01, source, fontsize=6, alpha=0.7)
        fig.tight_layout()
        fig.savefig(f"{out_dir}/mrc.png", dpi=120)

    runs = rp.get("runs", [])
    if runs:
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        labels = [r["hbm_capacity"] for r in runs]
        n_layers = len(runs[0]["layers"])
        width = 0.8 / max(1, n_layers + 1)
        for j in range(n_layers + 1):
            vals, name = [], "all layers"
            for r in runs:
                t = r["total"] if j == n_layers else r["layers"][j]
                vals.append(t["hbm_object_hit_ratio"])
                if j < n_layers and r["layers"][j].get("layer_id") is not None:
                    name = f"layer {r['layers'][j]['layer_id']}"
            ax.bar([i + j * width for i in range(len(runs))], vals, width=width, label=name)
        ax.set_xticks([i + width * n_layers / 2 for i in range(len(runs))])
        ax.set_xticklabels(labels)
        ax.set_xlabel("HBM cache capacity")
        ax.set_ylabel("HBM hit ratio")
        ax.set_title(f"HBM hits, {rp['tiers']['policy']}", fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=8)
        fig.text(0.01, 0.01, source, fontsize=6, alpha=0.7)
        fig.tight_layout()
        fig.savefig(f"{out_dir}/hit_ratio.png", dpi=120)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
