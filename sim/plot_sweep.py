#!/usr/bin/python3
"""Figure for `engramsim sweep --plot` and the spec-file studies: throughput and Engram
overhead against the first axis, one line per combination of the other axes (sweep.png)."""
import itertools
import json
import sys
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def text(v):
    return v if isinstance(v, str) else json.dumps(v)


def main(path, out_dir):
    with open(path) as f:
        res = json.load(f)
    axes = res["sweep"]["axes"]
    points = [p for p in res["points"] if "summary" in p]
    x_axis, rest = axes[0], axes[1:]
    xs = list(range(len(x_axis["values"])))
    has_ref = any("overhead_vs_no_engram_pct" in p["summary"] for p in points)
    panels = [("throughput_tok_per_s", "throughput (output tok/s)")]
    if has_ref:
        panels.insert(0, ("overhead_vs_no_engram_pct", "overhead vs no Engram (%)"))
    fig, plots = plt.subplots(1, len(panels), figsize=(6.0 * len(panels), 4.4), squeeze=False)
    combos = list(itertools.product(*[a["values"] for a in rest])) or [()]
    for ax, (key, label) in zip(plots[0], panels):
        for combo in combos:
            ys = []
            for v in x_axis["values"]:
                want = {x_axis["key"]: v, **{a["key"]: c for a, c in zip(rest, combo)}}
                hit = [p for p in points if all(p["axes"][k] == w for k, w in want.items())]
                ys.append(hit[0]["summary"].get(key) if hit else None)
            name = ", ".join(f"{a['key'].split('.')[-1]}={text(c)}" for a, c in zip(rest, combo))
            ax.plot(xs, [float("nan") if y is None else y for y in ys], "o-", label=name or None)
        ax.set_xticks(xs, [text(v) for v in x_axis["values"]])
        ax.set_xlabel(x_axis["key"])
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        if rest:
            ax.legend(fontsize=7)
    title = res["sweep"]["name"] + (": " + res["sweep"]["description"] if res["sweep"]["description"] else "")
    fig.suptitle(textwrap.fill(title, 120), fontsize=9)
    fig.tight_layout()
    fig.savefig(f"{out_dir}/sweep.png", dpi=120)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
