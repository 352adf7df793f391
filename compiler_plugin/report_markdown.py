"""report.md: the artifact's report (`mlirforge.report.report_data`) as GitHub-readable markdown.

The same content as the HTML report. Untrusted text (rationales, reasons)
is escaped: no HTML, no table breaks, one line per cell.
"""

from __future__ import annotations

import html
from typing import Any

from mlirforge.report_format import (
    CATEGORIES,
    CATEGORY_HELP,
    e2e_line,
    finite,
    fmt_speedup,
    fmt_us,
    fmt_x,
    why_line,
)


def _md(text: Any) -> str:
    """Untrusted text for a markdown table cell or line: no HTML, no table breaks, one line."""
    s = "" if text is None else str(text)
    s = html.escape(s, quote=False).replace("|", "\\|").replace("`", "\\`")
    return " ".join(s.split())


def _md_code(text: Any) -> str:
    s = " ".join(("" if text is None else str(text)).split()).replace("`", "'").replace("|", "\\|")
    return f"`{s}`" if s else ""


def _md_rows(rows: list[dict]) -> list[str]:
    if not rows:
        return ["_No candidates._"]
    out = ["| # | id | candidate | proposer | outcome | speedup (95% CI) | why |", "|---:|---|---|---|---|---|---|"]
    for r in rows:
        who = r["proposer"] + (f" ({r['model']})" if r.get("model") else "")
        outcome = r["category"] + (" ★" if r.get("winner") else "") + (" (cached)" if r.get("cached") else "")
        out.append(f"| {r['index'] + 1} | {_md_code(r['id'])} | {_md(r['describe'])} | {_md(who)} | {_md(outcome)} "
                   f"| {_md(fmt_speedup(r))} | {_md(why_line(r))} |")
    notes = [r for r in rows if r.get("rationale") or r.get("parent")]
    if notes:
        out += ["", "<details><summary>Rationales</summary>", ""]
        for r in notes:
            parent = f" (refines {_md_code(r['parent'])})" if r.get("parent") else ""
            out.append(f"- #{r['index'] + 1} {_md_code(r['id'])}{parent}: {_md(r.get('rationale'))}")
        out += ["", "</details>"]
    return out


def _md_counts(counts: dict) -> str:
    parts = [f"{n} {c}" for c, n in counts.items() if n]
    return ", ".join(parts) or "none"


def render_markdown(data: dict) -> str:
    """report.md: the same content as the HTML report, as GitHub-readable markdown."""
    lines = ["# mlirforge optimisation report", ""]
    lines.append(f"**End to end:** {_md(e2e_line(data))}")
    e = data.get("end_to_end")
    if e and e.get("reason"):
        lines += ["", f"> {_md(e['reason'])}"]
    lines += [
        "",
        f"- Search: {data['evaluations']} candidates evaluated in {finite(data['seconds']) or 0:.1f} s"
        + (" (interrupted)" if data.get("interrupted") else ""),
        f"- Outcomes: {_md_counts(data['counts'])}",
        (f"- Acceptance: the speedup's 95% CI lower bound must reach {finite(data['threshold']):.2f}× "
         f"(min gain {100 * finite(data['min_gain']):.0f}%)"),
        f"- Built with: driver {_md_code(data['driver'])}, flags {_md_code(' '.join(data['flags'])) or '(none)'}",
    ]
    if data["kernels"]:
        lines += ["", "## Kernels (hottest first)", "",
                  "| kernel | root | calls | share | baseline | accepted | result |", "|---|---|---:|---:|---:|---:|---|"]
        for k in data["kernels"]:
            share = finite(k.get("share"))
            lines.append(f"| [{_md_code(k['hash'])}](#kernel-{k['hash']}) | {_md(k['root'])} | {k['calls']} "
                         f"| {'' if share is None else f'{100 * share:.0f}%'} | {fmt_us(k['baseline_us'])} "
                         f"| {fmt_us(k['accepted_us'])} | {_md(k['outcome'])} |")
    m = data["module"]
    lines += ["", "## Module-wide candidates", ""]
    if m.get("winner"):
        lines += [f"Best: {_md(m['winner'])} ({'kept' if m['kept'] else 'not kept'})", ""]
    lines += _md_rows(m["candidates"])
    for k in data["kernels"]:
        lines += ["", f"## Kernel {k['hash']}", ""]
        lines.append(f"{_md(k['root'])} {_md_code(k['name'])}, {k['calls']} call(s); baseline {fmt_us(k['baseline_us'])}"
                     + (f", accepted {fmt_us(k['accepted_us'])} ({fmt_x(k['speedup'])})" if k["kept"] else ""))
        lines += ["", f"**Result:** {_md(k['outcome'])}"]
        if (k.get("in_model_profile") or {}).get("why"):
            lines += ["", f"**In the model:** {_md(k['in_model_profile']['why'])}"]
        if k.get("from_cache"):
            lines.append("(from the rewrite cache)")
        lines.append("")
        lines += _md_rows(k["candidates"])
    if data["dropped"]:
        lines += ["", "## Dropped at composition", ""]
        lines += [f"- {_md_code(d['kernel'])} {_md(d['candidate'])} ({fmt_x(d['speedup'])} alone): {_md(d['why'])}"
                  for d in data["dropped"]]
    lines += ["", "## Outcome categories", ""]
    lines += [f"- **{c}**: {CATEGORY_HELP[c]}" for c in CATEGORIES]
    return "\n".join(lines) + "\n"
