#!/usr/bin/python3
"""Figure for `engramsim trace fit --plot DIR`: unique rows per head of the real corpus and of
the synthetic continuation of its fit slice against tokens (left), and the continuation's
relative error (right)."""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(path, out_dir):
    with open(path) as f:
        rep = json.load(f)
    v = rep["validation"]
    fit = v["held_out_from_token"]
    x = [c / fit for c in v["checkpoints"]]
    fig, (ax, err) = plt.subplots(1, 2, figsize=(10.4, 4.2))
    for o in v["orders"]:
        line, = ax.loglog(v["checkpoints"], o["real_unique_rows_per_head"], "o-",
                          label=f"held-out text, order {o['order']}")
        ax.loglog(v["checkpoints"], o["synthetic_unique_rows_per_head"], "s--",
                  color=line.get_color(), label=f"synthetic, order {o['order']}")
        err.semilogx(x, [100 * e for e in o["relative_error"]], "s--", color=line.get_color(),
                     label=f"order {o['order']}")
    ax.axvline(fit, color="0.6", lw=1)
    ax.set_xlabel("tokens (fit slice, then held out)")
    ax.set_ylabel("unique rows per head")
    ax.set_title(f"Synthetic continuation vs text ({rep['corpus']})", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    err.axhspan(-10, 10, color="0.92", label="within 10%")
    err.axhline(0, color="0.5", lw=1)
    err.set_xlabel("tokens / fitted size")
    err.set_ylabel("synthetic vs real unique rows (%)")
    err.set_title("Forecast error on the held-out text", fontsize=10)
    err.grid(True, which="both", alpha=0.3)
    err.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(f"{out_dir}/synthetic_fit.png", dpi=120)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
