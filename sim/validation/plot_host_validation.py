#!/usr/bin/python3
"""Figure for `engramsim validate host-fetch --plot DIR` (host_fetch_validation.png): per thread
count, each fetch's measured host work (dedup + gather) against the simulator's prediction (log-log, prefill and
decode apart, the identity and +-10% lines), and the summed error per phase."""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(path, out_dir):
    with open(path) as f:
        data = json.load(f)
    cols = {c: i for i, c in enumerate(data["fetch_columns"])}
    runs = data["runs"]
    fig, axes = plt.subplots(1, len(runs), figsize=(5.2 * len(runs), 4.6), squeeze=False)
    for ax, run in zip(axes[0], runs):
        mine = [f for f in data["fetches"] if f[cols["threads"]] == run["threads"]]
        for prefill, colour, name in ((0, "tab:blue", "decode"), (1, "tab:orange", "prefill")):
            pts = [f for f in mine if f[cols["prefill"]] == prefill]
            if not pts:
                continue
            err = run["by_phase"][name]["host_error_pct"]
            ax.scatter([1e3 * f[cols["measured_host_s"]] for f in pts],
                       [1e3 * f[cols["predicted_host_s"]] for f in pts], s=6, alpha=0.5,
                       color=colour, label=f"{name}: {len(pts)} fetches, sum {err:+.1f}%")
        lo = min(1e3 * min(f[cols["measured_host_s"]], f[cols["predicted_host_s"]])
                 for f in mine)
        hi = max(1e3 * max(f[cols["measured_host_s"]], f[cols["predicted_host_s"]])
                 for f in mine)
        xs = [lo / 1.5, hi * 1.5]
        ax.plot(xs, xs, "k-", lw=0.8, label="predicted = measured")
        ax.plot(xs, [x * 1.1 for x in xs], "k:", lw=0.8, label="+-10%")
        ax.plot(xs, [x / 1.1 for x in xs], "k:", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("measured host work per fetch: dedup + gather (ms)")
        ax.set_ylabel("predicted by the simulator's fetch model (ms)")
        ax.set_title(f"{run['threads']} gather thread(s): total {run['host_error_pct']:+.1f}%",
                     fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    cal = data["calibration"]
    fig.suptitle(f"host fetch on {data['machine'].get('cpu', 'this machine')}: calibrated "
                 f"{cal['row_latency_s'] * 1e9:.0f} ns row latency, "
                 f"{cal['outstanding_per_thread']:.1f} rows in flight per thread", fontsize=9)
    fig.tight_layout()
    fig.savefig(f"{out_dir}/host_fetch_validation.png", dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
