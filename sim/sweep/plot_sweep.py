#!/usr/bin/python3
"""Figure for `engramsim sweep --plot` and the spec-file studies (sweep.png): overhead against no
Engram (when the sweep has references) and throughput along the first axis, one line per
combination of the middle axes; with three axes or more, one row of panels per value of the last.
A sweep of clusters shows the overhead against the table in HBM, throughput per GPU and the
all-to-all's share of the time instead."""
import itertools
import json
import sys
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def text(v):
    if isinstance(v, dict) and "name" in v:  # an inline section: its name
        return v["name"]
    return v if isinstance(v, str) else json.dumps(v)


def short(key):
    return key.split(".")[-1]


def keys_of(axis):
    return axis["keys"] if "keys" in axis else [axis["key"]]


def setting(axis, value):
    """{key: value} of one value of an axis (several keys when they are varied together)."""
    ks = keys_of(axis)
    return dict(zip(ks, value)) if len(ks) > 1 else {ks[0]: value}


def label(axis, value):
    return "/".join(text(v) for v in setting(axis, value).values())


def name(axis):
    return "+".join(keys_of(axis))


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
    if any("per_gpu_tok_per_s" in p["summary"] for p in points):  # clusters: per GPU
        panels = [("per_gpu_tok_per_s", "throughput per GPU (output tok/s)"),
                  ("all_to_all_share", "all-to-all share of GPU 0's time")]
        if any("overhead_vs_table_in_hbm_pct" in p["summary"] for p in points):
            panels.insert(0, ("overhead_vs_table_in_hbm_pct", "overhead vs table in HBM (%)"))
    fig, plots = plt.subplots(len(rows), len(panels), figsize=(6.0 * len(panels), 4.2 * len(rows)),
                              squeeze=False)
    combos = list(itertools.product(*[a["values"] for a in line_axes])) or [()]
    for r, row_value in enumerate(rows):
        for ax, (key, ylabel) in zip(plots[r], panels):
            for combo in combos:
                want = {}
                for a, c in zip(line_axes, combo):
                    want.update(setting(a, c))
                if row_axis:
                    want.update(setting(row_axis, row_value))
                ys = []
                for v in x_axis["values"]:
                    want.update(setting(x_axis, v))
                    hit = [p for p in points if all(p["axes"][k] == w for k, w in want.items())]
                    ys.append(hit[0]["summary"].get(key) if hit else None)
                line = ", ".join(f"{'+'.join(short(k) for k in keys_of(a))}={label(a, c)}"
                                 for a, c in zip(line_axes, combo))
                ax.plot(xs, [float("nan") if y is None else y for y in ys], "o-", label=line or None)
            ticks = [label(x_axis, v) for v in x_axis["values"]]
            if max(len(t) for t in ticks) > 10:  # long (zipped) values: slanted, wrapped
                ax.set_xticks(xs, [textwrap.fill(t, 24) for t in ticks], rotation=30, ha="right",
                              fontsize=7)
            else:
                ax.set_xticks(xs, ticks)
            ax.set_xlabel(name(x_axis))
            ax.set_ylabel(ylabel)
            if row_axis:
                ax.set_title(f"{name(row_axis)} = {label(row_axis, row_value)}", fontsize=9)
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
