"""report.html: the artifact's report (`mlirforge.report.report_data`) as one self-contained page.

Inline CSS and SVG plots (speedup per candidate with CI whiskers), no
scripts, no external resources. Every piece of text is escaped.
"""

from __future__ import annotations

import html
import math
from typing import Any

from mlirforge.report_format import (
    ACCEPTED,
    CATEGORIES,
    CATEGORY_HELP,
    DEFAULT_MIN_GAIN,
    finite,
    fmt_ci,
    fmt_speedup,
    fmt_us,
    fmt_x,
    why_line,
)


def _h(text: Any) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def _cat_class(category: str) -> str:
    return "cat-" + "".join(ch if ch.isalnum() else "-" for ch in category)


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1100px;padding:0 16px;color:#1f2328}
h1{font-size:22px;margin:0 0 12px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
.summary{display:flex;flex-wrap:wrap;gap:12px;margin:8px 0}
.tile{border:1px solid #d0d7de;border-radius:6px;padding:8px 14px;min-width:120px}
.tile b{display:block;font-size:22px}.tile span{color:#59636e;font-size:12px}
.good b{color:#1a7f37}.bad b{color:#9a6700}
table{border-collapse:collapse;width:100%;margin:8px 0}
th,td{border:1px solid #d0d7de;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;white-space:nowrap}
td.why{max-width:360px;overflow-wrap:anywhere}td.rat{max-width:280px;overflow-wrap:anywhere;color:#59636e}
.badge{display:inline-block;padding:0 6px;border-radius:9px;color:#fff;background:var(--c);white-space:nowrap;font-size:12px}
.cat-accepted{--c:#1a7f37}.cat-not-faster{--c:#8c959f}.cat-wrong-results{--c:#cf222e}
.cat-timed-out-crashed{--c:#953800}.cat-build-failed{--c:#bc4c00}.cat-invalid{--c:#8250df}
tr.cat-accepted td{background:#dafbe1}tr.cat-wrong-results td{background:#ffebe9}
tr.cat-build-failed td,tr.cat-timed-out-crashed td{background:#fff1e5}tr.cat-invalid td{background:#fbefff}
.bars{max-width:520px}.bar{height:14px;background:#8c959f;margin:2px 0}.bar.acc{background:#1a7f37}
.bars div.lbl{font-size:12px;color:#59636e}
svg.plot{max-width:100%;height:auto;border:1px solid #d0d7de;border-radius:6px;background:#fff}
svg .ax{stroke:#8c959f;stroke-width:1}svg .grid{stroke:#eaeef2}svg text{font-size:10px;fill:#59636e}
svg .one{stroke:#1f2328;stroke-width:1}svg .thr{stroke:#1a7f37;stroke-dasharray:4 3}
svg .mark{stroke:var(--c);fill:var(--c)}svg .key rect{fill:var(--c)}svg .mark line{stroke-width:1.5}svg .mark.win circle{stroke:#1f2328;stroke-width:2}
.legend span{margin-right:12px;font-size:12px}
"""


def _nice_step(span: float) -> float:
    raw = span / 5
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _svg_plot(rows: list[dict], threshold: float, label: str) -> str:
    """Speedup per candidate (in the order tried) with CI whiskers; untimed rejections as markers below."""
    if not rows:
        return ""
    W, H, left, right, top = 720, 266, 52, 16, 12
    bottom = 176  # plot area bottom; the strip below holds the untimed candidates
    strip = 198
    n = len(rows)
    step = (W - left - right) / n
    timed = [r for r in rows if finite(r.get("speedup")) is not None]
    vals = [1.0, threshold]
    for r in timed:
        vals += [v for v in (finite(r.get("ci_low")), finite(r.get("ci_high")), finite(r["speedup"])) if v is not None]
    lo, hi = min(vals), max(vals)
    pad = max(0.02, (hi - lo) * 0.08)
    lo, hi = max(0.0, lo - pad), hi + pad
    tick = _nice_step(hi - lo)
    lo, hi = math.floor(lo / tick) * tick, math.ceil(hi / tick) * tick

    def y(v: float) -> float:
        v = min(max(v, lo), hi)
        return bottom - (v - lo) / (hi - lo) * (bottom - top)

    def x(i: int) -> float:
        return left + (i + 0.5) * step

    out = [(f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" '
            f'height="{H}" role="img" aria-label="{_h(label)}">'), f"<title>{_h(label)}</title>"]
    t = lo
    while t <= hi + tick / 2:
        yy = y(t)
        out.append(f'<line class="grid" x1="{left}" y1="{yy:.1f}" x2="{W - right}" y2="{yy:.1f}"/>'
                   f'<text x="{left - 4}" y="{yy + 3:.1f}" text-anchor="end">{t:.2f}×</text>')
        t += tick
    out.append(f'<line class="ax" x1="{left}" y1="{top}" x2="{left}" y2="{bottom}"/>'
               f'<line class="ax" x1="{left}" y1="{bottom}" x2="{W - right}" y2="{bottom}"/>')
    out.append(f'<line class="one" x1="{left}" y1="{y(1.0):.1f}" x2="{W - right}" y2="{y(1.0):.1f}"/>')
    out.append(f'<line class="thr" x1="{left}" y1="{y(threshold):.1f}" x2="{W - right}" y2="{y(threshold):.1f}"/>'
               f'<text x="{W - right - 2}" y="{y(threshold) - 3:.1f}" text-anchor="end">'
               f'accept: CI low ≥ {threshold:.2f}×</text>')
    out.append(f'<text x="{left - 4}" y="{strip + 3}" text-anchor="end">rejected</text>'
               f'<text x="{left - 4}" y="{strip + 14}" text-anchor="end">untimed</text>')
    every = max(1, math.ceil(n / 24))
    for r in rows:
        i, cx = r["index"], x(r["index"])
        cls = f'mark {_cat_class(r["category"])}' + (" win" if r.get("winner") else "")
        tip = f'#{i + 1} {r["describe"]}: {r["category"]}' + (f' {fmt_speedup(r)}' if r.get("speedup") is not None else "") \
            + (f' ({why_line(r)})' if r["category"] != ACCEPTED else "")
        if finite(r.get("speedup")) is not None:
            s = finite(r["speedup"])
            lo_ci, hi_ci = finite(r.get("ci_low")), finite(r.get("ci_high"))
            whisker = ""
            if lo_ci is not None and hi_ci is not None:
                whisker = (f'<line x1="{cx:.1f}" y1="{y(lo_ci):.1f}" x2="{cx:.1f}" y2="{y(hi_ci):.1f}"/>'
                           f'<line x1="{cx - 3:.1f}" y1="{y(lo_ci):.1f}" x2="{cx + 3:.1f}" y2="{y(lo_ci):.1f}"/>'
                           f'<line x1="{cx - 3:.1f}" y1="{y(hi_ci):.1f}" x2="{cx + 3:.1f}" y2="{y(hi_ci):.1f}"/>')
            out.append(f'<g class="{cls} timed"><title>{_h(tip)}</title>{whisker}'
                       f'<circle cx="{cx:.1f}" cy="{y(s):.1f}" r="3.5"/></g>')
        else:
            d = 3.5
            out.append(f'<g class="{cls} untimed"><title>{_h(tip)}</title>'
                       f'<path d="M{cx - d:.1f} {strip - d:.1f}L{cx + d:.1f} {strip + d:.1f}M{cx - d:.1f} {strip + d:.1f}'
                       f'L{cx + d:.1f} {strip - d:.1f}" stroke-width="2" fill="none"/></g>')
        if i % every == 0:
            out.append(f'<text x="{cx:.1f}" y="{strip + 20}" text-anchor="middle">{i + 1}</text>')
    # a key of the categories shown, in the plot itself (it may be viewed on its own)
    kx = left
    for cat in [c for c in CATEGORIES if any(r["category"] == c for r in rows)]:
        out.append(f'<g class="key {_cat_class(cat)}"><rect x="{kx}" y="{H - 31}" width="8" height="8"/>'
                   f'<text x="{kx + 11}" y="{H - 24}">{_h(cat)}</text></g>')
        kx += 22 + 6 * len(cat)
    out.append(f'<text x="{left}" y="{H - 7}">x: candidate # in the order tried; '
               f'whiskers: 95% CI of the speedup</text>')
    out.append("</svg>")
    return "".join(out)


def _html_rows(rows: list[dict], prefix: str) -> str:
    if not rows:
        return "<p>No candidates.</p>"
    anchors: dict[str, str] = {}
    for r in rows:
        anchors.setdefault(r["id"], f"{prefix}-{r['index'] + 1}")
    out = [('<table><thead><tr><th>#</th><th>candidate</th><th>proposer</th><th>outcome</th>'
            '<th>speedup</th><th>95% CI</th><th>why</th><th>rationale</th></tr></thead><tbody>')]
    for r in rows:
        cat = r["category"]
        who = _h(r["proposer"]) + (f"<br><code>{_h(r['model'])}</code>" if r.get("model") else "")
        parent = ""
        if r.get("parent"):
            ref = anchors.get(r["parent"])
            parent = (f'<br>refines <a href="#{_h(ref)}"><code>{_h(r["parent"])}</code></a>' if ref
                      else f"<br>refines <code>{_h(r['parent'])}</code>")
        tags = (" ★ winner" if r.get("winner") else "") + (" (cached)" if r.get("cached") else "")
        rationale = r.get("rationale") or ""
        if len(rationale) > 160:
            rat = f"<details><summary>{_h(rationale[:120])}…</summary>{_h(rationale)}</details>"
        else:
            rat = _h(rationale)
        out.append(
            f'<tr class="{_cat_class(cat)}" id="{_h(prefix)}-{r["index"] + 1}">'
            f'<td class="num">{r["index"] + 1}</td>'
            f'<td>{_h(r["describe"])}<br><code>{_h(r["id"])}</code> <span class="mono">{_h(r["kind"])}</span>{parent}</td>'
            f"<td>{who}</td>"
            f'<td><span class="badge {_cat_class(cat)}">{_h(cat)}</span>{_h(tags)}<br>'
            f'<span class="mono">stage {_h(r["stage"])}</span></td>'
            f'<td class="num">{_h(fmt_x(r.get("speedup")))}</td><td class="num">{_h(fmt_ci(r))}</td>'
            f'<td class="why">{_h(why_line(r))}</td><td class="rat">{rat}</td></tr>')
    out.append("</tbody></table>")
    return "".join(out)


def _html_bars(k: dict) -> str:
    base, acc = finite(k.get("baseline_us")), finite(k.get("accepted_us"))
    if base is None or base <= 0:
        return ""
    out = ['<div class="bars">', f'<div class="lbl">baseline {_h(fmt_us(base))} per call</div>',
           '<div class="bar" style="width:100%"></div>']
    if acc is not None:
        width = max(1.0, min(100.0, 100 * acc / base))
        out += [f'<div class="lbl">accepted {_h(fmt_us(acc))} per call ({_h(fmt_x(k.get("speedup")))})</div>',
                f'<div class="bar acc" style="width:{width:.1f}%"></div>']
    out.append("</div>")
    return "".join(out)


def _tile(value: str, label: str, cls: str = "") -> str:
    return f'<div class="tile {cls}"><b>{_h(value)}</b><span>{_h(label)}</span></div>'


def render_html(data: dict) -> str:
    """report.html: one self-contained file (inline CSS and SVG, no scripts, no external resources)."""
    threshold = finite(data.get("threshold")) or 1 + DEFAULT_MIN_GAIN
    e = data.get("end_to_end")
    if e is None:
        e2e_tile = _tile("not verified", "end to end (unoptimised program used)", "bad")
    else:
        ci = fmt_ci(e)
        e2e_tile = _tile(fmt_x(e.get("speedup")) if e.get("speedup") is not None else e.get("category", "–"),
                         "end to end" + (f", CI {ci}" if ci else "") + (", kept" if e["accepted"] else ", not kept"),
                         "good" if e["accepted"] else "bad")
    counts = data["counts"]
    p = ['<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
         '<meta name="viewport" content="width=device-width, initial-scale=1">',
         "<title>mlirforge optimisation report</title>", f"<style>{_CSS}</style></head><body>",
         "<h1>mlirforge optimisation report</h1>", '<div class="summary">', e2e_tile,
         _tile(str(data["evaluations"]), "candidates evaluated"),
         _tile(f"{finite(data['seconds']) or 0:.1f} s", "search time" + (" (interrupted)" if data.get("interrupted") else "")),
         _tile(str(len(data["kept"])), "kernel rewrites kept"),
         _tile(str(counts.get(ACCEPTED, 0)), "candidates accepted"), "</div>"]
    if e is not None and e.get("reason"):
        p.append(f"<p><b>End to end:</b> {_h(e['reason'])}</p>")
    p.append(f"<p>Built with driver <code>{_h(data['driver'])}</code> and flags "
             f"<code>{_h(' '.join(data['flags']) or '(none)')}</code>. A candidate is accepted when it is equivalent "
             f"and its speedup's 95% CI lower bound reaches {threshold:.2f}×.</p>")
    if any(counts.values()):
        p.append("<p>Outcomes: " + ", ".join(f'<span class="badge {_cat_class(c)}">{_h(c)}</span> {n}'
                                              for c, n in counts.items() if n) + "</p>")
    if data["kernels"]:
        p.append("<h2>Kernels, hottest first</h2><table><thead><tr><th>kernel</th><th>root</th><th>calls</th>"
                 "<th>share</th><th>baseline</th><th>accepted</th><th>result</th></tr></thead><tbody>")
        for k in data["kernels"]:
            share = finite(k.get("share"))
            p.append(f'<tr><td><a href="#kernel-{_h(k["hash"])}"><code>{_h(k["hash"])}</code></a></td>'
                     f'<td>{_h(k["root"])}</td><td class="num">{_h(k["calls"])}</td>'
                     f'<td class="num">{"" if share is None else f"{100 * share:.0f}%"}</td>'
                     f'<td class="num">{_h(fmt_us(k["baseline_us"]))}</td><td class="num">{_h(fmt_us(k["accepted_us"]))}</td>'
                     f'<td>{_h(k["outcome"])}</td></tr>')
        p.append("</tbody></table>")
    m = data["module"]
    p.append('<section id="module"><h2>Module-wide candidates</h2>')
    if m.get("winner"):
        p.append(f"<p>Best: {_h(m['winner'])} ({'kept' if m['kept'] else 'not kept'})</p>")
    p.append(_svg_plot(m["candidates"], threshold, "speedup of module-wide candidates"))
    p.append(_html_rows(m["candidates"], "module"))
    p.append("</section>")
    for k in data["kernels"]:
        p.append(f'<section id="kernel-{_h(k["hash"])}"><h2>Kernel <code>{_h(k["hash"])}</code> · {_h(k["root"])}</h2>')
        p.append(f'<p><code>{_h(k["name"])}</code>, {_h(k["calls"])} call(s)'
                 + (f'; from {_h(", ".join(k["sources"][:4]))}' if k.get("sources") else "")
                 + (" · from the rewrite cache" if k.get("from_cache") else "") + "</p>")
        p.append(f"<p><b>Result:</b> {_h(k['outcome'])}</p>")
        if (k.get("in_model_profile") or {}).get("why"):
            p.append(f"<p><b>In the model:</b> {_h(k['in_model_profile']['why'])}</p>")
        p.append(_html_bars(k))
        p.append(_svg_plot(k["candidates"], threshold, f"speedup of candidates for kernel {k['hash']}"))
        p.append(_html_rows(k["candidates"], f"k-{k['hash']}"))
        p.append("</section>")
    if data["dropped"]:
        p.append('<section id="dropped"><h2>Dropped at composition</h2><ul>')
        p += [f'<li><code>{_h(d["kernel"])}</code> {_h(d["candidate"])} ({_h(fmt_x(d["speedup"]))} alone): '
              f'{_h(d["why"])}</li>' for d in data["dropped"]]
        p.append("</ul></section>")
    p.append("<h2>Outcome categories</h2><ul>")
    p += [f'<li><span class="badge {_cat_class(c)}">{_h(c)}</span> {_h(CATEGORY_HELP[c])}</li>' for c in CATEGORIES]
    p.append("</ul></body></html>")
    return "\n".join(x for x in p if x) + "\n"
