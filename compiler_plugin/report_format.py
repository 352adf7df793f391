"""The report's shared vocabulary: outcome categories, and how its numbers and reasons are written.

`mlirforge.report` sorts every candidate into one category (`classify`);
`mlirforge.report_markdown` and `mlirforge.report_html` render them with the
same words and number formats. Missing and non-finite numbers render as "–".
"""

from __future__ import annotations

import math
from typing import Any

from mlirforge.llm_rewrite.settings import DEFAULT_MIN_GAIN  # noqa: F401  (the report's fallback bar)

ACCEPTED = "accepted"
NOT_FASTER = "not faster"
WRONG = "wrong results"
CRASHED = "timed out/crashed"
BUILD_FAILED = "build failed"
INVALID = "invalid"
CATEGORIES = (ACCEPTED, NOT_FASTER, WRONG, CRASHED, BUILD_FAILED, INVALID)
"""Every candidate falls in exactly one, decided by the first stage of the cascade that failed."""

CATEGORY_HELP = {
    ACCEPTED: "equivalent and significantly faster (CI lower bound cleared the threshold)",
    NOT_FASTER: "equivalent, but the speedup's CI lower bound missed the threshold",
    WRONG: "built, but its outputs differ from the original's on some input distribution",
    CRASHED: "built, but the worker timed out or crashed before a result",
    BUILD_FAILED: "passed the checks, but IREE could not compile it",
    INVALID: "rejected before a build: does not parse or verify, wrong signature, illegal flags or tiles",
}


def finite(x: Any) -> float | None:
    """A number for arithmetic and plots, or None (missing, NaN, inf, or not a number)."""
    if isinstance(x, bool) or not isinstance(x, int | float | str):
        return None
    try:
        f = float(x)
    except ValueError:
        return None
    return f if math.isfinite(f) else None


def fmt_g(x: Any) -> str:
    if x is None:
        return "?"
    if isinstance(x, float):
        return f"{x:.3g}"
    return str(x)


def fmt_x(x: Any, digits: int = 3) -> str:
    f = finite(x)
    if f is None:
        return "–" if x is None else f"{x}×"
    return f"{f:.{digits}f}×"


def fmt_us(x: Any) -> str:
    f = finite(x)
    return "–" if f is None else f"{f:,.1f} µs"


def fmt_ci(row: dict) -> str:
    lo, hi = finite(row.get("ci_low")), finite(row.get("ci_high"))
    if lo is None or hi is None:
        return ""
    return f"{lo:.3f}–{hi:.3f}"


def fmt_speedup(row: dict) -> str:
    if row.get("speedup") is None:
        return "–"
    ci = fmt_ci(row)
    return fmt_x(row["speedup"]) + (f" (CI {ci})" if ci else "")


def why_line(row: dict) -> str:
    """Why a candidate was rejected (or accepted), in one line."""
    text = row.get("detail") or row.get("reason") or ""
    if row.get("retimed_after"):
        text += f" [re-timed after a near miss of {fmt_x(row['retimed_after'].get('speedup'))}]"
    return text


def e2e_line(data: dict) -> str:
    e = data.get("end_to_end")
    if e is None:
        return "not verified (nothing was composed or the search failed); the unoptimised program is used"
    if e.get("speedup") is None:
        return f"{'kept' if e['accepted'] else 'not kept'}: {e.get('reason') or e.get('category')}"
    ci = fmt_ci(e)
    return (f"{fmt_x(e['speedup'])}" + (f" (95% CI {ci})" if ci else "")
            + (", kept" if e["accepted"] else ", not kept: the unoptimised program is used"))
