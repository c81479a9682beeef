#!/usr/bin/python3
"""Figure for a solve study (`engramsim study run NAME --plot`, solve_study.png): for every
combination of the listed keys, the last value of the solved key where each target holds (the
Engram table's size in GB where the runs report it), as grouped bars, one per target; a
combination where no value holds shows no bar, one where the whole range holds is hatched."""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def text(v):
    if isinstance(v, dict) and "name" in v:
        return v["name"]
    return v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))


def measure(point, in_bytes):
    """A point's Engram table in GB when the runs report it, else its x."""
    if in_bytes:
        return point["summary"]["table_bytes"] / 1e9
    return point["x"]


def value_of(answer, in_bytes):
    """(the last value where the target holds, hatched?) or (None, False)."""
    held = [p for p in answer.get("points", []) if p["holds"]]
    if not held:
        return None, False
    last = max(held, key=lambda p: p["x"])
    return measure(last, in_bytes), answer["answer"].startswith("holds over")


def main(path, out_dir):
    with open(path) as f:
        s = json.load(f)
    rows = s["rows"]
    targets = s["targets"]
    in_bytes = all("summary" in p and "table_bytes" in p["summary"]
                   for r in rows for t in r["answers"] for p in t["answer"]["points"] if p["holds"])
    # One panel per value of the first listed key; each bar group labelled by the others' values.
    keys = list(rows[0]["combination"].keys()) if rows else []
    facet = keys[0] if keys else None
    panels = []
    for r in rows:
        v = text(r["combination"][facet]) if facet else ""
        if v not in panels:
            panels.append(v)
    per_panel = max(1, len(rows) // max(1, len(panels)))
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(8, 0.5 * per_panel * len(targets)), 3.2 * len(panels)),
                             squeeze=False)
    width = 0.8 / len(targets)
    for ax, panel in zip(axes[:, 0], panels):
        mine = [r for r in rows if not facet or text(r["combination"][facet]) == panel]
        for k, target in enumerate(targets):
            xs, ys, hatch = [], [], []
            for i, r in enumerate(mine):
                v, h = value_of(r["answers"][k]["answer"], in_bytes)
                if v is not None:
                    xs.append(i + (k - (len(targets) - 1) / 2) * width)
                    ys.append(v)
                    hatch.append(h)
            bars = ax.bar(xs, ys, width, label=target)
            for b, h in zip(bars, hatch):
                if h:
                    b.set_hatch("//")
        labels = [" ".join(text(r["combination"][k]) for k in keys[1:]) for r in mine]
        ax.set_xticks(range(len(mine)))
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=6)
        ax.set_yscale("log")
        ax.set_title(f"{facet} = {panel}" if facet else "", fontsize=9)
        ax.set_ylabel("table (GB)" if in_bytes else s["vary"].split("=")[0], fontsize=8)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"engramsim study {s['study']}: the largest "
                 + ("Engram table" if in_bytes else s["vary"].split("=")[0])
                 + " where each target holds (hatched: to the range's end; no bar: nowhere)\n"
                 + "bars labelled by " + ", ".join(k.split(".")[-1] for k in keys[1:]), fontsize=9)
    fig.tight_layout()
    fig.savefig(f"{out_dir}/solve_study.png", dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
