"""PNG plots of the benchmark JSON files (matplotlib, Agg backend: no display needed).

    python bench/plots.py --suite docs/bench_suite.json --efficiency docs/search_efficiency.json --out docs/img

writes

  suite_speedup.png       speedup over eager per workload and system: grouped bars
                          (log scale; 1 = eager) with the 95% bootstrap CI as whiskers;
                          a system with no timing (error, not available, not run) gets a
                          grey "x" on the 1x line.
  search_efficiency.png   per kernel: % of the sweep optimum's gain reached vs
                          evaluations spent, for the heuristic search, the random-order
                          expectation and (if recorded) the replayed LLM search; the
                          point where Search's patience rule stops is marked. Without a
                          verified optimum the panel shows the best verified speedup instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.lines
import matplotlib.pyplot as plt
import matplotlib.ticker

COLORS = {
    "inductor": "#4C72B0",
    "turbine_cpu": "#8172B3",
    "mlirforge": "#DD8452",
    "mlirforge[iree-only]": "#E8B48A",
    "mlirforge[heuristic]": "#C44E52",
    "mlirforge[llm-replay]": "#55A868",
    "heuristic": "#C44E52",
    "llm-replay": "#55A868",
    "random": "#8C8C8C",
}


def _num(x: Any) -> float | None:
    return x if isinstance(x, int | float) else None  # json_safe writes inf/nan as strings


def plot_suite(data: dict[str, Any], out: Path) -> Path:
    workloads = data["workloads"]
    systems = [
        s
        for s in (
            "inductor",
            "turbine_cpu",
            "mlirforge",
            "mlirforge[iree-only]",
            "mlirforge[heuristic]",
            "mlirforge[llm-replay]",
        )
        if any(r["name"] == s for w in workloads for r in w["systems"])
    ]
    groups = [
        ("models", [w for w in workloads if w["group"] == "model"]),
        ("single ops", [w for w in workloads if w["group"] != "model"]),
    ]
    groups = [(title, ws) for title, ws in groups if ws]
    widths = [max(2, len(ws)) for _, ws in groups]
    fig, axes = plt.subplots(
        1,
        len(groups),
        figsize=(2.2 + 1.1 * sum(widths), 4.8),
        squeeze=False,
        gridspec_kw={"width_ratios": widths},
    )
    bar_w = 0.8 / max(1, len(systems))
    lows, highs = [1.0], [1.0]
    for ax, (title, ws) in zip(axes[0], groups):
        for j, system in enumerate(systems):
            for i, w in enumerate(ws):
                r = next((r for r in w["systems"] if r["name"] == system), None)
                x = i - 0.4 + bar_w * (j + 0.5)
                t = r and r.get("timing")
                speedup = t and _num(t.get("speedup"))
                if not speedup:
                    ax.plot([x], [1.0], marker="x", color="#999999", markersize=5, zorder=3)
                    continue
                lo, hi = _num(t.get("ci_low")) or speedup, _num(t.get("ci_high")) or speedup
                lows.append(min(lo, speedup))
                highs.append(max(hi, speedup))
                ax.bar(
                    x,
                    speedup - 1.0 if speedup >= 1 else -(1.0 - speedup),
                    bottom=1.0,
                    width=bar_w,
                    color=COLORS.get(system, "#333333"),
                    label=system if i == 0 else None,
                    hatch="//" if r.get("ok") is False else None,
                    edgecolor="white",
                    linewidth=0.3,
                )
                ax.errorbar(
                    [x],
                    [speedup],
                    yerr=[[speedup - lo], [hi - speedup]],
                    fmt="none",
                    ecolor="black",
                    elinewidth=0.8,
                    capsize=1.5,
                )
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(ws)))
        ax.set_xticklabels(
            [w["name"].replace("matmul_", "mm ") for w in ws], rotation=30, ha="right", fontsize=8
        )
        ax.set_title(title, fontsize=10)
        ax.set_xlim(-0.6, len(ws) - 0.4)
        ax.grid(axis="y", alpha=0.3, which="both")
    lo, hi = min(lows), max(highs)
    for ax in axes[0]:
        ax.set_yscale("log", base=2)
        ax.set_ylim(max(0.02, lo / 1.3), hi * 1.3)
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
    axes[0][0].set_ylabel("speedup over eager PyTorch (log scale)")
    handles, labels = [], []
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    handles.append(matplotlib.lines.Line2D([], [], marker="x", color="#999999", linestyle="none"))
    labels.append("no timing")
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=8, frameon=False)
    cpu = data.get("machine", {}).get("cpu", {})
    footnote = (f"{cpu.get('model_name', '')}, {cpu.get('cores', '?')} cores; whiskers: 95% CI; "
                "x: no timing (error / not available / not run); hatched: wrong output")
    return _save(fig, out / "suite_speedup.png", footnote, (0, 0.03, 1, 0.92))


def plot_efficiency(data: dict[str, Any], out: Path) -> Path:
    kernels = [k for k in data["kernels"] if not k.get("error")]
    n = max(1, len(kernels))
    fig, axes = plt.subplots(1, n, figsize=(4.3 * n, 3.8), squeeze=False)
    for ax, k in zip(axes[0], kernels):
        optimum = _num(k.get("optimum"))
        as_fraction = optimum is not None and optimum > 1.0
        for c in k["curves"]:
            if c["status"] != "ok" or not c["best"]:
                continue
            ys = [(_num(f) or 0) * 100 for f in c["fraction"]] if as_fraction else c["best"]
            xs = list(range(1, len(ys) + 1))
            style = "--" if c["name"] == "random" else "-"
            ax.plot(
                xs,
                ys,
                style,
                color=COLORS.get(c["name"], "#333333"),
                label=c["name"],
                marker=None if c["name"] == "random" else "o",
                markersize=3,
                linewidth=1.5,
            )
            stop = c.get("patience_stop")
            if stop and stop <= len(ys):
                ax.plot(
                    [stop],
                    [ys[stop - 1]],
                    marker="v",
                    color=COLORS.get(c["name"], "#333333"),
                    markersize=9,
                    linestyle="none",
                )
        if as_fraction:
            ax.axhline(100, color="black", linewidth=0.8, linestyle=":")
            ax.set_ylabel("% of the sweep optimum's gain")
            ax.set_title(
                f"{k['spec']}\noptimum {optimum:.3f}x ({k['swept']}/{k['space_size']} swept)",
                fontsize=9,
            )
        else:
            ax.axhline(1.0, color="black", linewidth=0.8, linestyle=":")
            ax.set_ylabel("best verified speedup")
            ax.set_title(
                f"{k['spec']}\nno verified speedup in the sweep ({k['swept']}/{k['space_size']})",
                fontsize=9,
            )
        ax.set_xlabel("evaluations")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    footnote = "triangle: where Search's patience rule would stop"
    return _save(fig, out / "search_efficiency.png", footnote, (0, 0.04, 1, 1))


def _save(fig, path: Path, footnote: str, rect: tuple[float, float, float, float]) -> Path:
    """Write the figure as a PNG with its footnote (bottom right), laid out within `rect`."""
    fig.text(0.99, 0.01, footnote, ha="right", fontsize=7, color="#555555")
    fig.tight_layout(rect=rect)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suite", type=Path, help="bench_suite.py --json output")
    p.add_argument("--efficiency", type=Path, help="bench_search_efficiency.py --json output")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("docs/img"),
        help="directory for the PNGs (default docs/img)",
    )
    args = p.parse_args(argv)
    if not args.suite and not args.efficiency:
        p.error("give --suite and/or --efficiency")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.suite:
        print(f"wrote {plot_suite(json.loads(args.suite.read_text()), args.out)}", file=sys.stderr)
    if args.efficiency:
        print(
            f"wrote {plot_efficiency(json.loads(args.efficiency.read_text()), args.out)}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
