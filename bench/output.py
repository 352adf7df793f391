"""How every bench writes: progress lines, numbers and durations, text and Markdown tables, its files.

Tables: `text_table` for the console, `markdown_table` for docs; the first
`left` columns are names (left-aligned), the rest numbers (right-aligned).
`emit` prints a bench's console tables and writes its `--json` and
`--markdown` files.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any


def progress(message: str) -> None:
    """A progress line on stderr (bench_suite's parent forwards these from a workload's process)."""
    print(f"  > {message}", file=sys.stderr, flush=True)


def step(index: int, total: int, label: str, started: float) -> None:
    """`[i/n] label (elapsed m:ss)` on stderr, as a bench starts its next piece of work."""
    elapsed = fmt_duration(time.perf_counter() - started)
    print(f"[{index}/{total}] {label} (elapsed {elapsed})", file=sys.stderr, flush=True)


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def fmt_duration(seconds: float) -> str:
    """m:ss"""
    seconds = max(0, round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]

    def line(cells):
        return "  ".join(
            c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        )

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    aligns = ["---" if i < left else "---:" for i in range(len(headers))]
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(aligns) + "|"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(out)


def code_span(text: str) -> str:
    """`text` as Markdown code on one line, so compiler messages (`<{...}>`, `*`) show verbatim."""
    text = text.replace("\n", " ")
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def emit(report: dict[str, Any], results: Any, args: argparse.Namespace,
         text: Callable, as_json: Callable, markdown: Callable) -> None:
    """The console tables and the total time, then the --json and --markdown files where asked for.

    `text`, `as_json` and `markdown` each render `(report, results)` to a string.
    """
    print(text(report, results), end="")
    estimated = report.get("estimated_seconds")
    print(f"total {report['total_seconds']:.0f} s" + (f" (estimated {estimated} s)" if estimated else ""),
          file=sys.stderr)
    for path, render in ((args.json, as_json), (args.markdown, markdown)):
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(report, results))
            print(f"wrote {path}", file=sys.stderr)
