"""The artifact's report: what the search tried, what it kept, and why everything else was rejected.

    data = report_data(result, comp)   # plain, strict-JSON dict (result: Optimization, comp: Composition)
    render_markdown(data)              # report.md, readable on GitHub (`mlirforge.report_markdown`)
    render_html(data)                  # report.html: one self-contained file, inline CSS and SVG, no
                                       # JavaScript (`mlirforge.report_html`)

This module collects the data: every candidate in exactly one category
(`classify`), per kernel and module-wide, with the composition's outcome.
Candidate rationales and verdict reasons can come from an LLM: they are
untrusted text, escaped everywhere they are rendered.
"""

from __future__ import annotations

from mlirforge.llm_rewrite.types import json_safe
from mlirforge.report_format import (  # noqa: F401 (the categories are part of this module's interface)
    ACCEPTED,
    BUILD_FAILED,
    CATEGORIES,
    CATEGORY_HELP,
    CRASHED,
    DEFAULT_MIN_GAIN,
    INVALID,
    NOT_FASTER,
    WRONG,
    finite,
    fmt_g,
    fmt_x,
)
from mlirforge.report_html import render_html  # noqa: F401 (re-exported)
from mlirforge.report_markdown import render_markdown  # noqa: F401 (re-exported)

DISTRIBUTIONS = {
    "normal": "normal inputs",
    "wide": "wide-magnitude inputs (10^±3)",
    "tiny": "tiny inputs (×1e-6)",
    "large": "large inputs (×1e15)",
    "all_negative": "all-negative inputs (half the rows below -90)",
    "edge": "edge values (±0, ±inf, NaN)",
    "row_scaled": "rows of magnitudes 1e-6 to 1e3 side by side",
    "ties": "inputs with ties (multiples of 0.5 in [-2, 2])",
    "subnormal": "subnormal inputs",
}


def classify(verdict) -> tuple[str, str]:
    """(category, short detail) of one Verdict."""
    if verdict.accepted:
        return ACCEPTED, verdict.reason
    if not verdict.built:
        if verdict.stage in ("parse", "signature"):
            return INVALID, verdict.reason
        return BUILD_FAILED, verdict.reason
    if verdict.equivalent is False:
        e = verdict.equivalence or {}
        dist = e.get("distribution")
        detail = f"wrong on {DISTRIBUTIONS.get(dist, f'{dist} inputs' if dist else 'some inputs')}"
        if e.get("why"):
            detail += f": {e['why']}"
        if e.get("max_error") is not None:
            detail += f" (max error {fmt_g(e.get('max_error'))} > tolerance {fmt_g(e.get('tolerance'))})"
        return WRONG, detail
    if verdict.speedup is not None:
        return NOT_FASTER, verdict.reason
    return CRASHED, verdict.reason or "no result from the worker"


def _candidate_row(index: int, cand, verdict, *, winner: bool = False, cached: bool = False) -> dict:
    category, detail = classify(verdict)
    t = verdict.timing or {}
    e = verdict.equivalence or {}
    wrong = verdict.equivalent is False
    retimed = t.get("retimed_after")
    return {
        "index": index,
        "id": cand.id,
        "kind": cand.kind,
        "describe": cand.describe(),
        "proposer": cand.proposer,
        "model": cand.model,
        "prompt_hash": cand.prompt_hash,
        "parent": cand.parent,
        "rationale": cand.rationale or "",
        "stage": verdict.stage,
        "built": verdict.built,
        "equivalent": verdict.equivalent,
        "accepted": verdict.accepted,
        "reason": verdict.reason,
        "category": category,
        "detail": detail,
        "speedup": t.get("speedup"),
        "ci_low": t.get("ci_low"),
        "ci_high": t.get("ci_high"),
        "baseline_us": t.get("baseline_us"),
        "candidate_us": t.get("candidate_us"),
        "retimed_after": dict(retimed) if isinstance(retimed, dict) else None,
        "distribution": e.get("distribution") if wrong else None,
        "max_error": e.get("max_error") if wrong else None,
        "tolerance": e.get("tolerance") if wrong else None,
        "winner": winner,
        "cached": cached,
    }


def _rows(history, winner, from_cache: bool) -> list[dict]:
    """The candidates tried, in order; a winner taken from the cache (not tried this run) first."""
    rows = []
    tried = any(c is winner[0] for c, _ in history) if winner else False
    if winner is not None and not tried:
        rows.append(_candidate_row(0, winner[0], winner[1], winner=True, cached=from_cache or not history))
    for cand, verdict in history:
        rows.append(_candidate_row(len(rows), cand, verdict, winner=winner is not None and cand is winner[0]))
    return rows


def _counts(rows: list[dict]) -> dict[str, int]:
    counts = {c: 0 for c in CATEGORIES}
    for r in rows:
        if not r.get("cached"):
            counts[r["category"]] += 1
    return counts


def report_data(result, comp) -> dict:
    """Everything the report shows, as a plain strict-JSON dict.

    `result` is an `llm_rewrite.optimize.Optimization` (or a bare `SearchResult`),
    `comp` its `llm_rewrite.compose.Composition`.
    """
    search = getattr(result, "search", result)
    settings = getattr(result, "settings", None)
    min_gain = getattr(settings, "min_gain", None)
    min_gain = DEFAULT_MIN_GAIN if min_gain is None else float(min_gain)

    kept = {k.hash: (c, v) for k, c, v in comp.kept}
    dropped_by_kernel: dict[str, str] = {}
    dropped = []
    for (kernel, cand, verdict), why in comp.dropped:
        dropped_by_kernel.setdefault(kernel.hash, why)
        dropped.append({"kernel": kernel.hash, "kernel_root": kernel.root, "candidate_id": cand.id,
                        "candidate": cand.describe(), "speedup": verdict.speedup, "why": why})

    e2e = comp.verdict
    end_to_end = None
    if e2e is not None:
        t = e2e.timing or {}
        end_to_end = {
            "accepted": e2e.accepted, "stage": e2e.stage, "reason": e2e.reason,
            "category": classify(e2e)[0],
            "speedup": t.get("speedup"), "ci_low": t.get("ci_low"), "ci_high": t.get("ci_high"),
            "baseline_us": t.get("baseline_us"), "candidate_us": t.get("candidate_us"),
        }

    module_winner = search.module_winner
    module_rows = _rows(search.module_history, module_winner, from_cache=True)
    module_kept = module_winner is not None and e2e is not None and e2e.accepted

    total_weight = sum(kr.kernel.weight for kr in search.kernels) or 0.0
    kernels = []
    for kr in sorted(search.kernels, key=lambda r: -r.kernel.weight):
        k = kr.kernel
        rows = _rows(kr.history, kr.winner, kr.from_cache)
        baseline = k.baseline_us
        speedup = accepted_us = None
        if k.hash in kept:
            speedup = kept[k.hash][1].speedup
            if finite(speedup) and finite(baseline) is not None and speedup > 0:
                accepted_us = baseline / speedup
        inside = getattr(comp, "in_model", {}).get(k.hash) or {}
        in_model = inside.get("speedup")
        in_model_text = f", {fmt_x(in_model)} in the model" if in_model is not None else ""
        if k.hash in kept:
            outcome = f"kept: {fmt_x(speedup)} alone{in_model_text} with {kept[k.hash][0].describe()}"
        elif kr.winner is not None and k.hash in dropped_by_kernel:
            outcome = (f"verified {fmt_x(kr.winner[1].speedup)} alone{in_model_text}, dropped at composition: "
                       f"{dropped_by_kernel[k.hash]}")
        elif kr.winner is not None:
            outcome = f"verified {fmt_x(kr.winner[1].speedup)}, not kept"
        elif kr.skipped:
            outcome = f"skipped: {kr.skipped}"
        else:
            outcome = f"no verified rewrite ({len(kr.history)} tried)"
        kernels.append({
            "hash": k.hash, "name": k.name, "root": k.root, "calls": k.calls,
            "sources": list(k.sources or []),
            "baseline_us": baseline,
            "share": (k.weight / total_weight) if total_weight else None,
            "accepted_us": accepted_us,
            "speedup": speedup,
            "in_model_speedup": in_model,
            # Its dispatches in the unoptimised and the optimised model, and why the two speedups differ.
            "in_model_profile": (getattr(comp, "profile", {}) or {}).get(k.hash),
            "in_model_ci": [inside.get("ci_low"), inside.get("ci_high")] if in_model is not None else None,
            "kept": k.hash in kept,
            "winner_id": kr.winner[0].id if kr.winner else None,
            "from_cache": kr.from_cache,
            "skipped": kr.skipped or None,
            "dropped": dropped_by_kernel.get(k.hash),
            "outcome": outcome,
            "candidates": rows,
            "counts": _counts(rows),
        })

    all_rows = module_rows + [r for k in kernels for r in k["candidates"]]
    return json_safe({
        "version": 1,
        "min_gain": min_gain,
        "threshold": 1 + min_gain,
        "evaluations": search.evaluations,
        "seconds": search.seconds,
        "interrupted": search.interrupted,
        "flags": list(comp.flags),
        "driver": comp.driver,
        "end_to_end": end_to_end,
        "module": {
            "winner_id": module_winner[0].id if module_winner else None,
            "winner": module_winner[0].describe() if module_winner else None,
            "kept": module_kept,
            "candidates": module_rows,
            "counts": _counts(module_rows),
        },
        "kernels": kernels,
        "kept": [{"kernel": k.hash, "kernel_root": k.root, "candidate_id": c.id, "candidate": c.describe(),
                  "speedup": v.speedup} for k, c, v in comp.kept],
        "dropped": dropped,
        "counts": _counts(all_rows),
    })
