#!/usr/bin/python3
"""Figure for `engramsim sweep --plot` and the spec-file studies (sweep.png): overhead against no
Engram (when the sweep has references) and throughput along the first axis, one line per
combination of the middle axes; with three axes or more, one row of panels per value of the last."""
import itertools
import json
import sys
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def text(v):
    return v if isinstance(v, str) else json.dumps(v)


def short(key):
    return key.split(".")[-1]


def main(path, out_dir):
    with open(path) as f:
        res = json.load(f)
    axes = res["sweep"]["axes"]
    points = [p for p in res["points"] if "summary" in p]
    x_axis = axes[0]
    row_axis = axes[-1] if len(axes) >= 3 else None
    line_axes = axes[1:-1] if row_axis else axes[1:]
    rows = row_axis["values"] if row_axis else [None]
    xs = list(range(len(x_axis["values"])))
    panels = [("throughput_tok_per_s", "throughput (output tok/s)")]
    if any("overhead_vs_no_engram_pct" in p["summary"] for p in points):
        panels.insert(0, ("overhead_vs_no_engram_pct", "overhead vs no Engram (%)"))
    fig, plots = plt.subplots(len(rows), len(panels), figsize=(6.0 * len(panels), 4.2 * len(rows)),
                              squeeze=False)
    combos = list(itertools.product(*[a["values"] for a in line_axes])) or [()]
    for r, row_value in enumerate(rows):
        for ax, (key, label) in zip(plots[r], panels):
            for combo in combos:
                want = {a["key"]: c for a, c in zip(line_axes, combo)}
                if row_axis:
                    want[row_axis["key"]] = row_value
                ys = []
                for v in x_axis["values"]:
                    want[x_axis["key"]] = v
                    hit = [p for p in points if all(p["axes"][k] == w for k, w in want.items())]
                    ys.append(hit[0]["summary"].get(key) if hit else None)
                name = ", ".join(f"{short(a['key'])}={text(c)}" for a, c in zip(line_axes, combo))
                ax.plot(xs, [float("nan") if y is None else y for y in ys], "o-", label=name or None)
            ax.set_xticks(xs, [text(v) for v in x_axis["values"]])
            ax.set_xlabel(x_axis["key"])
            ax.set_ylabel(label)
            if row_axis:
                ax.set_title(f"{row_axis['key']} = {text(row_value)}", fontsize=9)
            ax.grid(True, alpha=0.3)
            if line_axes:
                ax.legend(fontsize=7)
    sweep = res["sweep"]
    title = sweep["name"] + (": " + sweep["description"] if sweep["description"] else "")
    fig.suptitle(textwrap.fill(title, 120), fontsize=9)
    fig.tight_layout()
    fig.savefig(f"{out_dir}/sweep.png", dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
