#!/usr/bin/python3
"""Figure for `engramsim solve --plot` (solve.png): the metric at every point the solver ran,
against the key solved for, one line per combination of the listed keys; the target's bound as a
dashed line and each boundary's bracket marked."""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def text(v):
    return v if isinstance(v, str) else json.dumps(v)


def main(path, out_dir):
    with open(path) as f:
        s = json.load(f)
    fig, ax = plt.subplots(figsize=(8, 4.8))
    metric = s["units"]["metric"]
    for a in s["answers"]:
        pts = a["points"]
        xs = [p["x"] for p in pts]
        ys = [p["metric"] for p in pts]
        name = ", ".join(f"{k.split('.')[-1]}={text(v)}" for k, v in a["combination"].items()) or "the config"
        (line,) = ax.plot(xs, ys, marker="o", markersize=3, label=name)
        if "holds_at" in a:
            lo, hi = sorted([a["holds_at"]["x"], a["fails_at"]["x"]])
            ax.axvspan(lo, hi, color=line.get_color(), alpha=0.25)
    bound = float(s["target"].split()[-1])
    ax.axhline(bound, color="black", linestyle="--", linewidth=1, label=s["target"])
    if s["range"]["log_scale"]:
        ax.set_xscale("log")
    ax.set_xlabel(f"{s['key']} (base unit)")
    ax.set_ylabel(metric)
    ax.set_title(f"engramsim solve: {s['target']}", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(f"{out_dir}/solve.png", dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
