#!/usr/bin/python3
"""Figure for `engramsim trace fit --plot DIR`: unique rows per head of the real corpus and of
the fitted synthetic generator against tokens, with the fitted (held-in) part shaded."""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(path, out_dir):
    with open(path) as f:
        rep = json.load(f)
    v = rep["validation"]
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for o in v["orders"]:
        line, = ax.loglog(v["checkpoints"], o["real_unique_rows_per_head"], "o-",
                          label=f"real text, order {o['order']}")
        ax.loglog(v["checkpoints"], o["synthetic_unique_rows_per_head"], "s--",
                  color=line.get_color(), label=f"synthetic, order {o['order']}")
    ax.axvspan(v["checkpoints"][0], v["held_out_from_token"], color="0.9", label="fitted slice")
    ax.set_xlabel("tokens")
    ax.set_ylabel("unique rows per head")
    ax.set_title(f"Synthetic generator vs held-out text ({rep['corpus']})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(f"{out_dir}/synthetic_fit.png", dpi=120)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
