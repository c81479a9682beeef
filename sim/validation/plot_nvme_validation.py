#!/usr/bin/python3
"""Figure for `engramsim validate nvme-fetch --plot DIR` (nvme_fetch_validation.png): per queue
depth, each fetch's measured read time against the simulator's prediction under the three
queueing laws (sim.nvme_queueing knee, linear and measured, the last on the calibration's IOPS
curve; log-log, the identity and +-10% lines), and on the right the drive's measured IOPS against
queue depth next to the laws' rates."""
import json
import sys

LAWS = (("predicted_read_s", "tab:blue", "knee", "read_error_pct"),
        ("predicted_read_linear_s", "tab:orange", "linear", "read_error_linear_pct"),
        ("predicted_read_measured_s", "tab:green", "curve", "read_error_measured_pct"))


def curve_rate(curve, q):
    """sim::nvme_read_rate's measured law: depth / rate linear in depth between the points,
    proportional below the first point, flat above the last."""
    (d0, r0), (dn, rn) = curve[0], curve[-1]
    if q <= d0:
        return r0 * q / d0
    if q >= dn:
        return rn
    for (a, ra), (b, rb) in zip(curve, curve[1:]):
        if a < q <= b:
            return q / (a / ra + (q - a) / (b - a) * (b / rb - a / ra))

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(path, out_dir):
    with open(path) as f:
        data = json.load(f)
    cols = {c: i for i, c in enumerate(data["fetch_columns"])}
    runs = data["runs"]
    cal = data["calibration"]
    fig, axes = plt.subplots(1, len(runs) + 1, figsize=(4.6 * (len(runs) + 1), 4.4),
                             squeeze=False)
    for ax, run in zip(axes[0], runs):
        mine = [f for f in data["fetches"] if f[cols["queue_depth"]] == run["queue_depth"]]
        meas = [1e3 * f[cols["measured_read_s"]] for f in mine]
        for key, colour, name, err in LAWS:
            ax.scatter(meas, [1e3 * f[cols[key]] for f in mine], s=10, alpha=0.6, color=colour,
                       label=f"{name}: sum {run[err]:+.1f}%")
        every = meas + [1e3 * f[cols[k]] for f in mine for k, *_ in LAWS]
        xs = [min(every) / 1.5, max(every) * 1.5]
        ax.plot(xs, xs, "k-", lw=0.8, label="predicted = measured")
        ax.plot(xs, [x * 1.1 for x in xs], "k:", lw=0.8, label="+-10%")
        ax.plot(xs, [x / 1.1 for x in xs], "k:", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("measured reads per fetch (ms)")
        ax.set_ylabel("predicted by the nvme model (ms)")
        calibrated = " (a curve depth)" if run.get("on_curve") else ""
        ax.set_title(f"queue depth {run['queue_depth']}{calibrated}: {run['fetches']} fetches",
                     fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    ax = axes[0][-1]
    depths = [d["queue_depth"] for d in cal["iops_at_validated_depths"]]
    ax.plot(depths, [d["iops"] / 1e3 for d in cal["iops_at_validated_depths"]], "ko",
            label="measured at the validated depths")
    curve = [(c["queue_depth"], c["iops"]) for c in cal["iops_curve"]]
    ax.plot([d for d, _ in curve], [r / 1e3 for _, r in curve], "ks", mfc="none",
            label="calibration curve")
    qs = sorted(set(depths + [d for d, _ in curve]))
    grid = [q for q in range(1, max(qs) + 1)]
    lat, iops = cal["read_latency_s"], cal["random_read_iops"]
    ax.plot(grid, [min(iops, q / lat) / 1e3 for q in grid], color="tab:blue", label="knee")
    ax.plot(grid, [q / (lat + (q - 1) / iops) / 1e3 for q in grid], color="tab:orange",
            label="linear")
    ax.plot(grid, [curve_rate(curve, q) / 1e3 for q in grid], color="tab:green",
            label="curve (measured law)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("reads in flight (queue depth)")
    ax.set_ylabel("random 4 KiB-block reads per second (thousands)")
    ax.set_title("the drive's rate and the three laws", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.suptitle(f"nvme fetch on {cal['file']}: {cal['read_latency_s'] * 1e6:.0f} us per read "
                 f"alone, {cal['random_read_iops'] / 1e3:.0f}k IOPS at depth "
                 f"{cal['saturation_depth']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(f"{out_dir}/nvme_fetch_validation.png", dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
