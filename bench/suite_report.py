"""The suite's tables: a summary of speedups over eager, and per workload every system's figures.

`render_text` for the console, `render_markdown` for docs/benchmarks.md,
`to_json` for every raw number (samples included).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from typing import Any

from machine import cpu_text, versions_text
from output import code_span, fmt, markdown_table, text_table
from suite_results import EAGER, SYSTEM_NAMES, SuiteSystemResult, WorkloadResult
from systems import Timing


def speedup_cell(t: Timing | None) -> str:
    if t is None or t.speedup is None:
        return "-"
    return f"{t.speedup:.2f} ({t.ci_low:.2f}-{t.ci_high:.2f})"


def check_cell(r: SuiteSystemResult) -> str:
    if r.status == "ok":
        return "ok" if r.ok else "FAIL"
    return r.status


DETAIL_HEADERS = [
    "system",
    "check",
    "compile s",
    "peak MiB (proc+children)",
    "median us",
    "p10-p90 us",
    "x eager (95% CI)",
    "GFLOP/s",
    "% fp32 peak",
]


def detail_rows(wl: WorkloadResult) -> list[list[str]]:
    rows = []
    for r in wl.systems:
        t = r.timing
        mem = (
            "-"
            if r.peak_self_mib is None
            else f"{r.peak_self_mib:.0f}+{r.peak_children_mib or 0:.0f}"
        )
        rows.append(
            [
                r.name,
                check_cell(r),
                fmt(r.compile_s, ".2f"),
                mem,
                fmt(t and t.median_us, ".1f"),
                "-" if t is None else f"{t.p10_us:.1f}-{t.p90_us:.1f}",
                speedup_cell(t),
                fmt(t and t.gflops, ".1f"),
                fmt(t and t.peak_fraction and 100 * t.peak_fraction, ".1f"),
            ]
        )
    return rows


def detail_notes(wl: WorkloadResult) -> list[str]:
    notes = []
    if wl.error:
        notes.append(f"workload: {wl.error}")
    for r in wl.systems:
        if r.error and not wl.error:
            notes.append(f"{r.name}: {r.status}: {r.error}")
        if r.ok is False:
            notes.append(f"{r.name}: wrong output: {r.check_message}")
        notes += [f"{r.name}: {n}" for n in dict.fromkeys(r.notes)]
    return notes


def summary_table(results: Sequence[WorkloadResult]) -> tuple[list[str], list[list[str]]]:
    names = [s for s in SYSTEM_NAMES if s != EAGER]
    headers = ["workload", "eager us", *names]
    rows = []
    for wl in results:
        by = {r.name: r for r in wl.systems}
        eager = by.get(EAGER)
        row = [wl.name, fmt(eager and eager.timing and eager.timing.median_us, ".1f")]
        for n in names:
            r = by.get(n)
            if r is None:
                row.append("-")
            elif r.timing is None:
                row.append(r.status if r.status != "ok" else "-")
            else:
                cell = f"{r.timing.speedup:.2f}x" if r.timing.speedup else "-"
                if r.ok is False:
                    cell += " WRONG"
                row.append(cell)
        rows.append(row)
    rows.append(["**geomean**", ""] + [geomean_cell(results, n) for n in names])
    return headers, rows


def geomean_cell(results: Sequence[WorkloadResult], name: str) -> str:
    """Geometric mean of a system's speedups over eager; `(k of n)` when it ran on only some workloads."""
    speedups = [r.timing.speedup for wl in results for r in wl.systems
                if r.name == name and r.timing is not None and r.timing.speedup]
    if not speedups:
        return "-"
    value = math.exp(sum(math.log(s) for s in speedups) / len(speedups))
    partial = f" ({len(speedups)} of {len(results)})" if len(speedups) < len(results) else ""
    return f"**{value:.2f}x**{partial}"


def timing_text(settings: dict[str, Any]) -> str:
    return (
        f"{settings['rounds']} interleaved rounds after {settings['warmup']} warm-up calls (mlirforge systems: at least benchmarking.settle_calls()), calls per "
        f"round chosen so one eager sample lasts ~{settings['sample_ms']:g} ms; x eager = eager median / "
        "system median, 95% CI from a paired bootstrap over rounds"
    )


def workload_title(wl: WorkloadResult) -> str:
    shapes = ", ".join("x".join(map(str, s)) for s in wl.input_shapes)
    inner = f"; {wl.rounds} rounds x {wl.inner} calls" if wl.inner else ""
    other = (
        f"; other processes {100 * wl.other_cpu_share:.0f}% of CPU"
        if wl.other_cpu_share is not None
        else ""
    )
    return f"{wl.name}: {wl.description} (inputs {shapes or '-'}{inner}{other})"


def render_text(report: dict[str, Any], results: Sequence[WorkloadResult]) -> str:
    m = report["machine"]
    parts = [
        "\n".join(
            [
                f"date      {m['date']}",
                f"cpu       {cpu_text(m)}",
                f"fp32 peak {m['cpu']['formula']} ({m['cpu']['fma_source']}; clock from {m['cpu']['clock_source']})",
                f"versions  {versions_text(m['versions'])}",
                f"timing    {timing_text(report['settings'])}",
            ]
        )
    ]
    headers, rows = summary_table(results)
    parts.append("== speedup over eager (median ratio)\n" + text_table(headers, rows))
    for wl in results:
        parts.append(
            f"== {workload_title(wl)}\n" + text_table(DETAIL_HEADERS, detail_rows(wl), left=2)
        )
        notes = detail_notes(wl)
        if notes:
            parts.append("\n".join("  " + n for n in notes))
    return "\n\n".join(parts) + "\n"


def render_markdown(
    report: dict[str, Any], results: Sequence[WorkloadResult], heading: str = "##"
) -> str:
    m, s = report["machine"], report["settings"]
    out = [
        f"{heading} Suite: eager, TorchInductor, iree-turbine and mlirforge",
        "",
        f"- Date: {m['date']}",
        f"- CPU: {cpu_text(m)}",
        f"- fp32 peak: {m['cpu']['formula']} (FMA units: {m['cpu']['fma_source']}; clock: {m['cpu']['clock_source']})",
        f"- Versions: {versions_text(m['versions'])}",
        f"- Timing: `mlirforge.timing.interleaved_times`, {timing_text(s)}",
        f"- Search budget (mlirforge[heuristic], mlirforge[llm-replay]): {s['budget_s']:g} s per workload",
        f"- Total: {report['total_seconds']:.0f} s",
        "",
        f"{heading}# Speedup over eager (median ratio; CI in the per-workload tables)",
        "",
        markdown_table(*summary_table(results)),
    ]
    for wl in results:
        out += [
            "",
            f"{heading}# {workload_title(wl)}",
            "",
            markdown_table(DETAIL_HEADERS, detail_rows(wl), left=2),
        ]
        notes = detail_notes(wl)
        if notes:
            out.append("")
            out += [f"- {code_span(n)}" for n in notes]
    return "\n".join(out) + "\n"


def to_json(report: dict[str, Any], results: Sequence[WorkloadResult]) -> str:
    from mlirforge.llm_rewrite.types import json_safe

    data = {**report, "workloads": [dataclasses.asdict(r) for r in results]}
    return json.dumps(json_safe(data), indent=1, allow_nan=False) + "\n"
