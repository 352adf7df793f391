"""The results of a `bench-problems` run: one record per problem, the table, the totals, the JSON."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from mlirforge.benchmarking import geomean
from mlirforge.llm_rewrite.types import json_safe

STATUSES = ("pass", "mismatch", "fell-back", "error", "timeout", "skipped")


@dataclasses.dataclass
class ProblemResult:
    """Everything measured about one problem; `--json` writes these as they are."""

    problem: str
    path: str
    status: str
    reason: str = ""
    max_abs_error: float | None = None
    eager_us: float | None = None
    mlirforge_us: float | None = None
    speedup: float | None = None
    compile_s: float | None = None
    fallback_ops: list[str] = dataclasses.field(default_factory=list)
    fallback_warnings: list[str] = dataclasses.field(default_factory=list)
    graph_breaks: list[str] = dataclasses.field(default_factory=list)
    stats_delta: dict[str, float] | None = None  # mlirforge.stats() change over the first call
    iree_calls_per_call: int | None = None
    estimate: dict[str, Any] | None = None
    timing: dict[str, Any] | None = None  # rounds, inner, raw samples (µs)
    phase: str | None = None  # the last phase the child reached
    wall_s: float | None = None
    load_avg: float | None = None  # 1-minute load average when it finished: other work skews timings
    stderr_tail: str = ""

    def to_json(self) -> dict[str, Any]:
        return json_safe(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProblemResult:
        known = {f.name for f in dataclasses.fields(cls)}
        fields = {k: v for k, v in data.items() if k in known}
        for key in ("max_abs_error", "speedup"):  # "inf"/"nan" back to floats
            if isinstance(fields.get(key), str):
                fields[key] = float(fields[key])
        return cls(**fields)


@dataclasses.dataclass
class Totals:
    counts: dict[str, int]
    geomean_speedup: float | None  # over passing problems with a timing
    timed_passes: int


def totals(results: list[ProblemResult]) -> Totals:
    counts = {s: sum(r.status == s for r in results) for s in STATUSES}
    speedups = [r.speedup for r in results if r.status == "pass" and r.speedup]
    return Totals(counts, geomean(speedups), len(speedups))


def load_note(results: list[ProblemResult]) -> str | None:
    """A warning when other work competed for the CPU: eager PyTorch's thread pool
    then slows down far more than single-threaded IREE, and speedups mean little."""
    cores = os.cpu_count() or 1
    worst = max((r.load_avg for r in results if r.load_avg is not None), default=None)
    if worst is not None and worst > cores:
        return (f"mlirforge: note: load average reached {worst:.1f} on {cores} cores during the run; "
                "other processes competed for the CPU and the timings are unreliable")
    return None


def _fmt(value: float | None, spec: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):  # "inf" from JSON
        return value
    return format(value, spec)


def progress_line(index: int, total: int, result: ProblemResult) -> str:
    parts = [f"[{index}/{total}]", result.problem, result.status]
    if result.speedup is not None:
        parts.append(f"{result.speedup:.2f}x")
    if result.compile_s is not None:
        parts.append(f"compile {result.compile_s:.1f} s")
    if result.wall_s is not None:
        parts.append(f"({result.wall_s:.1f} s)")
    if result.reason:
        parts.append(f"- {result.reason[:120]}")
    return " ".join(parts)


def format_table(results: list[ProblemResult]) -> list[str]:
    header = ["problem", "status", "max abs err", "eager µs", "mlirforge µs", "speedup", "compile s", "note"]
    rows = [[r.problem, r.status, _fmt(r.max_abs_error, ".2g"), _fmt(r.eager_us, ".1f"),
             _fmt(r.mlirforge_us, ".1f"), "-" if r.speedup is None else f"{r.speedup:.2f}x",
             _fmt(r.compile_s, ".2f"), r.reason[:130]] for r in results]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    numeric = {2, 3, 4, 5, 6}

    def line(cells: list[str]) -> str:
        out = [c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join([*out, cells[-1]]).rstrip()

    return [line(header), line(["-" * w for w in widths] + ["-" * 4]), *(line(r) for r in rows)]


def format_totals(t: Totals, total: int) -> str:
    counts = ", ".join(f"{n} {s}" for s, n in t.counts.items() if n)
    geo = (f"geometric-mean speedup over {t.timed_passes} passing: {t.geomean_speedup:.2f}x"
           if t.geomean_speedup is not None else "no passing problem to average")
    return f"totals: {total} problem{'s' * (total != 1)}: {counts or 'none run'}; {geo}"


def write_json(path: Path, args: argparse.Namespace, options: dict[str, Any],
               results: list[ProblemResult], planned: int, interrupted: bool) -> None:
    t = totals(results)
    data = {
        "directory": str(args.directory), "options": options, "timeout_s": args.timeout_s,
        "max_memory_mb": args.max_memory_mb, "rounds": args.rounds, "filter": args.filter,
        "planned": planned, "interrupted": interrupted, "cpu_count": os.cpu_count(),
        "results": [r.to_json() for r in results],
        "totals": json_safe(dataclasses.asdict(t)),
    }
    path.write_text(json.dumps(data, indent=2) + "\n")
