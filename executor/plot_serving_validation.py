#!/usr/bin/python3
"""Figure for `engramsim validate serving --plot DIR` (serving_validation.png): left, each
config's step times, predicted against measured (log-log, the identity and +-10% lines); right,
each config's overhead against no Engram, predicted and measured (the measured band over the
alternating pairs as an error bar)."""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(path, out_dir):
    with open(path) as f:
        data = json.load(f)
    cases = data["cases"]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 5))
    lo, hi = float("inf"), 0.0
    for c in cases:
        p = [1e3 * s[0] for s in c["step_times"]]
        m = [1e3 * s[1] for s in c["step_times"]]
        e = c["step_error_pct"]["abs_p50"]
        ax.scatter(m, p, s=5, alpha=0.5, label=f"{c['name']} (|err| p50 {e:.0f}%)")
        lo, hi = min(lo, min(p + m)), max(hi, max(p + m))
    xs = [lo / 1.5, hi * 1.5]
    ax.plot(xs, xs, "k-", lw=0.8)
    ax.plot(xs, [x * 1.1 for x in xs], "k:", lw=0.8)
    ax.plot(xs, [x / 1.1 for x in xs], "k:", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("measured step time (ms)")
    ax.set_ylabel("predicted step time (ms)")
    ax.set_title("Steps: simulator vs executor")
    ax.legend(fontsize=6)
    names = [c["name"] for c in cases]
    pred = [c["overhead_vs_no_engram_pct"]["predicted"] for c in cases]
    meas = [c["overhead_vs_no_engram_pct"]["measured"] for c in cases]
    # The band of the runs the measured overhead is the median of: the interleaved executions
    # (or, without them, the separate pairs).
    runs = [c["overhead_vs_no_engram_pct"].get("measured_interleaved") or
            c["overhead_vs_no_engram_pct"]["measured_runs"] for c in cases]
    err = [[m - min(r) for m, r in zip(meas, runs)], [max(r) - m for m, r in zip(meas, runs)]]
    x = range(len(cases))
    bx.bar([i - 0.2 for i in x], pred, 0.4, label="predicted")
    bx.bar([i + 0.2 for i in x], meas, 0.4, yerr=err, capsize=2, label="measured (median and band of its runs)")
    bx.set_xticks(list(x))
    bx.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
    bx.set_ylabel("overhead vs no Engram (%)")
    bx.set_title("Overhead")
    bx.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(f"{out_dir}/serving_validation.png", dpi=130)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
