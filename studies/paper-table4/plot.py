#!/usr/bin/python3
"""Plot the paper-table4 study from its JSON (keys, never column positions).

    engramsim study run paper-table4 --json > table4.json
    /usr/bin/python3 studies/paper-table4/plot.py table4.json [-o table4.png]

Left: predicted overhead next to the paper's, per backbone. Right: the sensitivity of the
predicted overhead to each open assumption (one changed at a time)."""
import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", help="output of engramsim study run paper-table4 --json")
    ap.add_argument("-o", "--out", default="table4.png", help="figure file (png, svg, pdf)")
    args = ap.parse_args()
    with open(args.results) as f:
        data = json.load(f)

    rows = data["rows"]
    backbones = [r["backbone"] for r in rows]
    sens = data.get("sensitivity", [])
    fig, axes = plt.subplots(1, 2 if sens else 1, figsize=(14 if sens else 6, 6),
                             gridspec_kw={"width_ratios": [1, 2.2]} if sens else None)
    ax = axes[0] if sens else axes
    x = range(len(rows))
    w = 0.38
    ax.bar([i - w / 2 for i in x], [r["paper_overhead_pct"] for r in rows], w, label="paper")
    ax.bar([i + w / 2 for i in x], [r["overhead_pct"] for r in rows], w, label="EngramSim")
    for i, r in enumerate(rows):
        ax.errorbar(i - w / 2, r["paper_overhead_pct"], yerr=0.3, color="k", capsize=4)
    ax.set_xticks(list(x), backbones)
    ax.set_ylabel("throughput overhead vs no Engram (%)")
    ax.set_title("Table 4: 100B Engram layer in host DRAM\n(error bar: the 0.3-point target)")
    ax.legend()

    if sens:
        ax = axes[1]
        labels = [f'{s["assumption"]}: {s["value"]}' for s in sens]
        y = range(len(sens))
        h = 0.8 / len(backbones)
        for b, name in enumerate(backbones):
            ax.barh([i + b * h for i in y], [s["overhead_pct"][name] for s in sens], h, label=name)
        for b, r in enumerate(rows):
            ax.axvline(r["paper_overhead_pct"], linestyle="--", color=f"C{b}", linewidth=1)
        ax.set_yticks([i + h / 2 for i in y], labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("predicted overhead (%); dashed: paper")
        ax.set_title("Sensitivity: one assumption changed at a time")
        ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=130)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
