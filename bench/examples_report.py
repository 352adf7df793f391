"""bench_examples' tables: per example every system's figures and what fell back; the per-call overhead.

`render_text` for the console, `render_markdown` for docs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from machine import cpu_text, versions_text
from output import code_span, fmt, markdown_table, text_table
from systems import Timing

if TYPE_CHECKING:  # bench_examples imports this module: no import back at run time
    from bench_examples import ExampleResult, OverheadResult

LEFT = 2  # name-like columns; numbers are right-aligned
EXAMPLE_HEADERS = [
    "system", "ran as", "compile s", "check", "max abs err", "median us", "p10-p90 us", "x eager"
]
OVERHEAD_HEADERS = ["system", "compile s", "median us", "p10-p90 us"]


def spread(t: Timing | None) -> str:
    return "-" if t is None else f"{t.p10_us:.1f}-{t.p90_us:.1f}"


def example_rows(example: ExampleResult) -> list[list[str]]:
    rows = []
    for r in example.systems:
        t = r.timing
        rows.append([
            r.name,
            r.ran_as or "-",
            fmt(r.compile_s, ".2f"),
            "ERROR" if r.error else ("ok" if r.ok else "FAIL"),
            fmt(r.max_abs_error, ".2e"),
            fmt(t and t.median_us, ".1f"),
            spread(t),
            fmt(t and t.speedup, ".2f"),
        ])
    return rows


def overhead_rows(o: OverheadResult) -> list[list[str]]:
    return [
        ["eager", "-", f"{o.eager.median_us:.1f}", spread(o.eager)],
        [
            "mlirforge",
            f"{o.mlirforge_compile_s:.2f}",
            f"{o.mlirforge.median_us:.1f}",
            spread(o.mlirforge),
        ],
    ]


def fallback_lines(example: ExampleResult) -> list[str]:
    """Per mlirforge system, what ran where; indented lines under it give the messages."""
    lines = []
    for r in example.systems:
        if r.error:
            lines.append(f"{r.name}: the first call raised {r.error}")
        elif r.stats_delta is not None:
            d = r.stats_delta
            lines.append(
                f"{r.name}: graphs compiled {d['graphs_compiled']:g}, "
                f"partitions {d['partitions_compiled']:g}, eager graphs {d['eager_graphs']:g}, "
                f"module cache hits {d['module_cache_hits']:g}, "
                f"IREE calls per call {r.iree_calls_per_call}"
            )
        lines.extend(f"    warning: {m}" for m in r.fallback_warnings)
        lines.extend(f"    reproducer from stage {e}" for e in r.compiler_errors)
    return lines


def timing_text(settings: dict[str, Any]) -> str:
    return (
        f"{settings['rounds']} interleaved rounds x {settings['inner']} calls after "
        f"{settings['warmup']} warm-up calls; compile = first call, cold on-disk caches; "
        "x eager = eager median / system median"
    )


def example_title(ex: ExampleResult) -> str:
    shapes = ", ".join("x".join(map(str, s)) for s in ex.input_shapes)
    return f"{ex.name} ({ex.path}, inputs {shapes})"


def overhead_title(o: OverheadResult, settings: dict[str, Any]) -> str:
    return f"per-call overhead: {o.description}, {settings['overhead_inner']} calls per round"


def overhead_note(o: OverheadResult) -> str:
    return f"mlirforge - eager: {o.mlirforge.median_us - o.eager.median_us:.1f} us per call"


def render_text(
    report: dict[str, Any], examples: list[ExampleResult], overhead: OverheadResult
) -> str:
    machine, settings = report["machine"], report["settings"]
    parts = [
        "\n".join([
            f"date      {machine['date']}",
            f"cpu       {cpu_text(machine)}",
            f"versions  {versions_text(machine['versions'])}",
            f"timing    {timing_text(settings)}",
        ])
    ]
    for ex in examples:
        parts.append(f"== {example_title(ex)}\n" + text_table(EXAMPLE_HEADERS, example_rows(ex), left=LEFT))
        parts.append("\n".join(fallback_lines(ex)))
    table = text_table(OVERHEAD_HEADERS, overhead_rows(overhead), left=1)
    parts.append(f"== {overhead_title(overhead, settings)}\n{table}\n{overhead_note(overhead)}")
    return "\n\n".join(p for p in parts if p) + "\n"


def render_markdown(
    report: dict[str, Any], examples: list[ExampleResult], overhead: OverheadResult
) -> str:
    machine, settings = report["machine"], report["settings"]
    out = [
        "## Benchmark: examples/ under eager, TorchInductor and mlirforge",
        "",
        f"- Date: {machine['date']}",
        f"- CPU: {cpu_text(machine)}",
        f"- Versions: {versions_text(machine['versions'])}",
        f"- Timing: `mlirforge.timing.interleaved_times`, {timing_text(settings)}",
    ]
    for ex in examples:
        table = markdown_table(EXAMPLE_HEADERS, example_rows(ex), left=LEFT)
        out += ["", f"### {example_title(ex)}", "", table]
        notes = fallback_lines(ex)
        if notes:
            out.append("")
            out += [f"  - {code_span(n.strip())}" if n.startswith(" ") else f"- {n}" for n in notes]
    out += [
        "",
        f"### {overhead_title(overhead, settings).capitalize()}",
        "",
        markdown_table(OVERHEAD_HEADERS, overhead_rows(overhead), left=1),
        "",
        overhead_note(overhead),
    ]
    return "\n".join(out) + "\n"
