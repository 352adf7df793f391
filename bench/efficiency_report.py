"""The search-efficiency bench's tables: the kernels and their sweeps, and each search's curve.

`render_text` for the console, `render_markdown` for docs/benchmarks.md,
`to_json` for every evaluation of every curve.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from efficiency_runs import KernelResult
from output import fmt, markdown_table, text_table


def at(values: Sequence[Any], n: int) -> Any:
    """The curve's value after n evaluations (its last value if it stopped earlier)."""
    if not values:
        return None
    return values[min(n, len(values)) - 1]


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def checkpoints(total: int) -> list[int]:
    points = [p for p in (1, 2, 4, 8, 12, 16, 24, 32, 48, 64) if p < total]
    return [*points, total]


def kernel_summary_rows(results: Sequence[KernelResult]) -> list[list[str]]:
    rows = []
    for r in results:
        if r.error:
            rows.append([r.spec, "-", "-", "-", f"error: {r.error}", "-", "-"])
            continue
        accepted = sum(e.accepted for e in r.sweep)
        sweep_s = sum(e.seconds for e in r.sweep)
        rows.append(
            [
                r.spec,
                f"{r.root.removeprefix('linalg.')} {' '.join('x'.join(map(str, s)) for s in r.shapes)}",
                fmt(r.baseline_us, ".1f"),
                f"{r.swept}/{r.space_size} ({sweep_s:.0f} s)",
                f"{accepted}",
                f"{r.optimum:.3f}x" if r.optimum else "none verified",
                r.optimum_candidate or "-",
            ]
        )
    return rows


KERNEL_HEADERS = [
    "kernel",
    "root, inputs",
    "baseline us",
    "swept (time)",
    "accepted",
    "optimum",
    "optimum candidate",
]


def curve_table(r: KernelResult) -> tuple[list[str], list[list[str]]]:
    searches = [c for c in r.curves if c.name != "random" and c.status == "ok" and c.best]
    longest = max([len(c.evaluations) for c in searches] + [1])
    points = checkpoints(longest)
    headers = ["search", *[f"{p} ev" for p in points], "patience stop"]
    rows = []
    for c in r.curves:
        if c.status != "ok" or not c.best:
            rows.append(
                [
                    c.name,
                    f"{c.status}: {c.error or 'no evaluations'}",
                    *[""] * (len(points) - 1),
                    "-",
                ]
            )
            continue
        cells = []
        for p in points:
            cell = f"{at(c.best, p):.3f}x ({pct(at(c.fraction, p))})"
            if p > len(c.best):
                cell += " exhausted" if c.exhausted else " stopped"
            cells.append(cell)
        rows.append([c.name, *cells, str(c.patience_stop) if c.patience_stop else "-"])
    return headers, rows


def render_text(report: dict[str, Any], results: Sequence[KernelResult]) -> str:
    parts = [
        f"search efficiency: {report['settings']['description']}",
        "== kernels\n" + text_table(KERNEL_HEADERS, kernel_summary_rows(results)),
    ]
    for r in results:
        if not r.error:
            parts.append(
                f"== {r.spec}: best verified speedup (% of the optimum's gain) after N evaluations\n"
                + text_table(*curve_table(r))
            )
    return "\n\n".join(parts) + "\n"


def render_markdown(
    report: dict[str, Any], results: Sequence[KernelResult], heading: str = "##"
) -> str:
    s = report["settings"]
    out = [
        f"{heading} Search efficiency: % of the sweep's optimum reached vs evaluations",
        "",
        f"- {s['description']}",
        (
            "- Optimum: the best *verified* speedup (equivalent, CI lower bound >= 1 + min_gain) that the sweep "
            "measured; timing is noisy, so it is a measured optimum, and a search may exceed it (100%+)."
        ),
        (
            "- Cells: best verified speedup after N evaluations (1.000x while none is verified), and in brackets "
            "the fraction of the optimum's gain, (best - 1) / (optimum - 1). `exhausted`: the proposer had "
            "nothing more to propose. *random*: expected curve of random orders of the sweep's own verdicts. "
            "*patience stop*: the evaluation after which `Search` would have stopped (2 rounds without a better "
            "verified rewrite); the curves go on to show what more evaluations would have bought."
        ),
        f"- Total: {report['total_seconds']:.0f} s",
        "",
        markdown_table_kernels(results),
    ]
    for r in results:
        if not r.error:
            out += ["", f"{heading}# {r.spec} (`{r.name}`)", "", markdown_table(*curve_table(r))]
    return "\n".join(out) + "\n"


def markdown_table_kernels(results: Sequence[KernelResult]) -> str:
    return markdown_table(KERNEL_HEADERS, kernel_summary_rows(results), left=2)


def to_json(report: dict[str, Any], results: Sequence[KernelResult]) -> str:
    from mlirforge.llm_rewrite.types import json_safe

    data = {**report, "kernels": [dataclasses.asdict(r) for r in results]}
    return json.dumps(json_safe(data), indent=1, allow_nan=False) + "\n"
