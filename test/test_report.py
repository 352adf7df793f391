"""The artifact's report (mlirforge.report): data, markdown and HTML, on hand-built search results."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from mlirforge.llm_rewrite.compose import Composition
from mlirforge.llm_rewrite.evaluate import EvalSettings
from mlirforge.llm_rewrite.optimize import Optimization, unoptimized_result
from mlirforge.llm_rewrite.search import KernelResult, SearchResult
from mlirforge.llm_rewrite.types import Candidate, Kernel, TensorSpec, Verdict
from mlirforge.report import (
    ACCEPTED,
    BUILD_FAILED,
    CRASHED,
    INVALID,
    NOT_FASTER,
    WRONG,
    classify,
    render_html,
    render_markdown,
    report_data,
)

EVIL = '<script>alert("pwned")</script> & </td></table><img src=x onerror=alert(1)>'


def kernel(h: str, root: str, baseline: float, calls: int = 1) -> Kernel:
    spec = TensorSpec((4, 4), "f32")
    return Kernel(h, f"kernel_{h}", root, "module {}", [spec, spec], [spec], 4, calls=calls, baseline_us=baseline)


def timed(cand: Candidate, speedup: float, lo: float, hi: float, accepted: bool, base_us: float = 100.0) -> Verdict:
    timing = {"speedup": speedup, "ci_low": lo, "ci_high": hi, "baseline_us": base_us,
              "candidate_us": base_us / speedup, "rounds": 30, "inner": 5, "confidence": 0.95}
    reason = (f"{speedup:.3f}x faster (95% CI lower bound {lo:.3f} >= 1.05)" if accepted
              else f"not significantly faster: {speedup:.3f}x, CI lower bound {lo:.3f} < 1.05")
    return Verdict(cand.id, stage="done" if accepted else "timing", built=True, equivalent=True,
                   accepted=accepted, reason=reason, equivalence={"distributions": ["normal", "edge"]}, timing=timing)


def tiling(h: str, d: int, **kw) -> Candidate:
    return Candidate("tiling", {"distribution": [d, d, 0], "vector_common_parallel": [4, 4, 0],
                                "vector_reduction": [0, 0, 4], "pipeline": "DoubleTilingExpert"}, h, **kw)


def build_scenario() -> tuple[Optimization, Composition]:
    """Every outcome: a kept winner and each kind of rejection, a cached winner dropped at composition,
    a skipped kernel, module-wide flags; the end to end accepted."""
    ka = kernel("aaaa1111", "linalg.matmul", 100.0, calls=2)  # weight 200: hottest
    kb = kernel("bbbb2222", "linalg.generic", 40.0)
    kc = kernel("cccc3333", "linalg.fill", 1.0)

    c_acc = tiling(ka.hash, 32, proposer="llm", model="gpt-test", prompt_hash="p1", rationale="fit L2 panels")
    v_acc = timed(c_acc, 1.25, 1.18, 1.31, True)
    c_slow = tiling(ka.hash, 64, proposer="llm", model="gpt-test", parent=c_acc.id, rationale="bigger tiles")
    v_slow = timed(c_slow, 1.012, 0.97, 1.05, False)
    c_wrong = Candidate("kernel", {"mlir": "func.func @main() { return }"}, ka.hash, proposer="llm",
                        rationale="use maxnum")
    v_wrong = Verdict(c_wrong.id, stage="numerics", built=True, equivalent=False,
                      reason="not equivalent on edge inputs: NaN positions differ (max error 3.5, tolerance 1e-05)",
                      equivalence={"distribution": "edge", "why": "NaN positions differ", "max_error": 3.5,
                                   "tolerance": 1e-05, "seeds": 6})
    c_build = Candidate("pipeline", {"pipeline": "mlirforge-generalize"}, ka.hash, proposer="heuristic")
    v_build = Verdict(c_build.id, stage="build", built=False, reason="build: iree-compile: error: failed to legalize")
    c_invalid = Candidate("kernel", {"mlir": "func.func @main(%a: tensor<2xf32>)"}, ka.hash, proposer="llm",
                          rationale=EVIL)
    v_invalid = Verdict(c_invalid.id, stage="signature", built=False,
                        reason="signature: signature (tensor<2xf32>) differs from the kernel's <evil|reason>")
    c_hang = tiling(ka.hash, 128, proposer="heuristic")
    v_hang = Verdict(c_hang.id, stage="numerics", built=True, reason="timed out after 120 s")
    history_a = [(c_acc, v_acc), (c_slow, v_slow), (c_wrong, v_wrong), (c_build, v_build), (c_invalid, v_invalid),
                 (c_hang, v_hang)]
    kr_a = KernelResult(ka, winner=(c_acc, v_acc), history=history_a)

    c_cached = tiling(kb.hash, 16, proposer="heuristic")
    v_cached = timed(c_cached, 1.10, 1.06, 1.14, True, base_us=40.0)
    kr_b = KernelResult(kb, winner=(c_cached, v_cached), from_cache=True)
    kr_c = KernelResult(kc, skipped="not hot enough")

    m_fast = Candidate("flags", {"iree_flags": ["--iree-llvmcpu-enable-ukernels=all"]}, proposer="heuristic")
    mv_fast = timed(m_fast, 0.98, 0.95, 1.01, False, base_us=500.0)
    m_bad = Candidate("flags", {"iree_flags": ["--evil"]}, proposer="llm")
    mv_bad = Verdict(m_bad.id, stage="parse", reason="parse: flag --evil is not whitelisted")

    search = SearchResult(None, [(m_fast, mv_fast), (m_bad, mv_bad)], [kr_c, kr_b, kr_a],
                          evaluations=8, seconds=42.5)
    e2e = Verdict("model", stage="done", built=True, equivalent=True, accepted=True,
                  reason="1.120x faster (95% CI lower bound 1.080 >= 1.05)",
                  timing={"speedup": 1.12, "ci_low": 1.08, "ci_high": 1.16, "baseline_us": 600.0, "candidate_us": 535.7})
    comp = Composition("module {}", ["--iree-opt-data-tiling"], "local-sync", [(ka, c_acc, v_acc)],
                       [((kb, c_cached, v_cached), "does not pay off in the model: not significantly faster")], e2e)
    result = Optimization(comp, search, "module {}", EvalSettings(min_gain=0.05))
    return result, comp


@pytest.fixture
def scenario():
    return build_scenario()


@pytest.fixture
def data(scenario):
    return report_data(*scenario)


class StrictHTML(HTMLParser):
    """Fails on unbalanced or misnested tags (html.parser itself forgives nearly anything)."""

    VOID = frozenset({"meta", "br", "img", "hr", "input", "link", "circle", "line", "path", "rect"})

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.tags, self.text = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(doc: str) -> StrictHTML:
    p = StrictHTML()
    p.feed(doc)
    p.close()
    assert not p.errors, p.errors
    assert not p.stack, f"unclosed: {p.stack}"
    return p


def test_classify_every_category(scenario):
    result, _ = scenario
    cats = [classify(v)[0] for _, v in result.search.kernels[2].history]
    assert cats == [ACCEPTED, NOT_FASTER, WRONG, BUILD_FAILED, INVALID, CRASHED]
    assert classify(result.search.module_history[1][1])[0] == INVALID
    detail = classify(result.search.kernels[2].history[2][1])[1]
    assert "edge values" in detail and "NaN positions differ" in detail and "3.5" in detail and "1e-05" in detail


def test_data_is_strict_json_and_complete(data):
    text = json.dumps(data, allow_nan=False)  # strict JSON: no NaN/inf
    assert json.loads(text) == data
    assert data["min_gain"] == 0.05 and data["threshold"] == pytest.approx(1.05)
    assert data["evaluations"] == 8 and data["seconds"] == 42.5
    e = data["end_to_end"]
    assert e["accepted"] and e["speedup"] == 1.12 and (e["ci_low"], e["ci_high"]) == (1.08, 1.16)

    # hottest first, whatever order the search listed them in
    assert [k["hash"] for k in data["kernels"]] == ["aaaa1111", "bbbb2222", "cccc3333"]
    a, b, c = data["kernels"]
    assert a["kept"] and a["baseline_us"] == 100.0 and a["accepted_us"] == pytest.approx(80.0)
    assert a["calls"] == 2 and a["root"] == "linalg.matmul" and a["name"] == "kernel_aaaa1111"
    assert a["share"] == pytest.approx(200 / 241)
    rows = a["candidates"]
    assert [r["category"] for r in rows] == [ACCEPTED, NOT_FASTER, WRONG, BUILD_FAILED, INVALID, CRASHED]
    assert [r["index"] for r in rows] == list(range(6))
    assert rows[0]["winner"] and not any(r["winner"] for r in rows[1:])
    assert rows[0]["model"] == "gpt-test" and rows[0]["proposer"] == "llm" and rows[0]["rationale"] == "fit L2 panels"
    assert rows[1]["parent"] == rows[0]["id"]
    assert (rows[1]["speedup"], rows[1]["ci_low"], rows[1]["ci_high"]) == (1.012, 0.97, 1.05)
    assert rows[2]["distribution"] == "edge" and rows[2]["max_error"] == 3.5 and rows[2]["tolerance"] == 1e-05
    assert rows[3]["stage"] == "build" and not rows[3]["built"]
    assert rows[4]["stage"] == "signature" and rows[4]["rationale"] == EVIL
    assert "timed out" in rows[5]["reason"]
    assert a["counts"] == {ACCEPTED: 1, NOT_FASTER: 1, WRONG: 1, CRASHED: 1, BUILD_FAILED: 1, INVALID: 1}

    # cached winner, dropped at composition: shown, not kept, no accepted time
    assert b["from_cache"] and not b["kept"] and b["accepted_us"] is None
    assert b["dropped"].startswith("does not pay off")
    assert "dropped at composition" in b["outcome"]
    assert len(b["candidates"]) == 1 and b["candidates"][0]["cached"] and b["candidates"][0]["winner"]
    assert b["counts"][ACCEPTED] == 0  # not evaluated in this run

    assert c["skipped"] == "not hot enough" and c["candidates"] == [] and "skipped" in c["outcome"]

    assert [r["category"] for r in data["module"]["candidates"]] == [NOT_FASTER, INVALID]
    assert data["dropped"] == [{"kernel": "bbbb2222", "kernel_root": "linalg.generic",
                                "candidate_id": b["candidates"][0]["id"], "candidate": b["candidates"][0]["describe"],
                                "speedup": 1.10, "why": "does not pay off in the model: not significantly faster"}]
    assert data["kept"][0]["kernel"] == "aaaa1111"
    assert data["counts"] == {ACCEPTED: 1, NOT_FASTER: 2, WRONG: 1, CRASHED: 1, BUILD_FAILED: 1, INVALID: 2}


def test_non_finite_numbers_stay_strict_json(scenario):
    result, comp = scenario
    v = result.search.kernels[2].history[2][1]
    v.equivalence["max_error"] = float("nan")
    data = report_data(result, comp)
    json.dumps(data, allow_nan=False)
    assert data["kernels"][0]["candidates"][2]["max_error"] == "nan"
    render_markdown(data)
    parse(render_html(data))


def test_markdown(data):
    md = render_markdown(data)
    assert render_markdown(json.loads(json.dumps(data))) == md  # renders from the stored JSON alone
    assert md.startswith("# mlirforge optimisation report")
    assert "1.120× (95% CI 1.080–1.160), kept" in md
    assert "8 candidates evaluated in 42.5 s" in md
    assert "1.05×" in md  # acceptance threshold from min_gain
    for h in ("aaaa1111", "bbbb2222", "cccc3333"):
        assert f"## Kernel {h}" in md
    assert md.index("## Kernel aaaa1111") < md.index("## Kernel bbbb2222") < md.index("## Kernel cccc3333")
    assert "100.0 µs" in md and "80.0 µs" in md
    for cat in (ACCEPTED, NOT_FASTER, WRONG, BUILD_FAILED, INVALID, CRASHED):
        assert f"| {cat}" in md
    assert "wrong on edge values" in md
    assert "skipped: not hot enough" in md
    assert "## Dropped at composition" in md and "does not pay off in the model" in md
    assert "(cached)" in md
    assert "fit L2 panels" in md and "gpt-test" in md
    # untrusted text: no raw HTML, no broken table rows
    assert "<script>" not in md and "<img" not in md and "&lt;script&gt;" in md
    assert "<evil\\|reason>" not in md and "&lt;evil\\|reason&gt;" in md
    for line in md.splitlines():
        if line.startswith("| ") and "---" not in line:
            cells = re.split(r"(?<!\\)\|", line)
            assert len(cells) - 2 in (7, 6), line  # module/kernel candidate tables and the kernel table: 7 columns


def test_html_is_valid_self_contained_and_escaped(data):
    doc = render_html(data)
    assert doc.startswith("<!DOCTYPE html>")
    p = parse(doc)
    tags = {t for t, _ in p.tags}
    assert "script" not in tags and "img" not in tags and "link" not in tags
    assert not any(k.startswith("on") for _, attrs in p.tags for k in attrs)
    assert "&lt;script&gt;" in doc and "<script" not in doc
    assert "http://" not in doc.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in doc
    text = "".join(p.text)
    assert EVIL in text  # shown as text, intact
    assert "<evil" not in doc and "&lt;evil|reason&gt;" in doc
    assert re.search(r'<b>1\.120×</b><span>end to end, CI 1\.080–1\.160, kept</span>', doc)
    assert re.search(r"<b>8</b><span>candidates evaluated</span>", doc)
    assert re.search(r"<b>42\.5 s</b><span>search time</span>", doc)
    assert len(doc) < 60_000


def test_html_kernel_sections_plots_and_tables(data):
    doc = render_html(data)
    p = parse(doc)
    sections = [a["id"] for t, a in p.tags if t == "section"]
    assert sections == ["module", "kernel-aaaa1111", "kernel-bbbb2222", "kernel-cccc3333", "dropped"]

    def section(name):
        start = doc.index(f'<section id="{name}">')
        return doc[start:doc.index("</section>", start)]

    a = section("kernel-aaaa1111")
    assert "baseline 100.0 µs" in a and "accepted 80.0 µs" in a and "1.250×" in a
    # one timed mark per timed candidate (accepted + not faster), four markers for the untimed ones
    svg = a[a.index("<svg"):a.index("</svg>")]
    assert svg.count('timed"') - svg.count('untimed"') == 2
    assert len(re.findall(r'class="mark [^"]*untimed"', svg)) == 4
    assert len(re.findall(r'class="mark [^"]*\btimed"', svg)) == 2
    for cat in ("cat-wrong-results", "cat-build-failed", "cat-invalid", "cat-timed-out-crashed"):
        assert re.search(rf'class="mark {cat}[^"]*untimed"', svg), cat
    assert re.search(r'class="mark cat-accepted win timed"', svg)
    assert 'class="one"' in svg and 'class="thr"' in svg and "1.05×" in svg
    # threshold line sits above the 1.0 line (smaller y)
    y_one = float(re.search(r'class="one" x1="[\d.]+" y1="([\d.]+)"', svg).group(1))
    y_thr = float(re.search(r'class="thr" x1="[\d.]+" y1="([\d.]+)"', svg).group(1))
    assert y_thr < y_one
    # each timed mark: a point at its speedup and a CI whisker (with caps)
    groups = re.findall(r'<g class="mark [^"]*\btimed">(.*?)</g>', svg)
    assert len(groups) == 2 and all(g.count("<circle") == 1 and g.count("<line") == 3 for g in groups)
    cy = [float(re.search(r'<circle cx="[\d.]+" cy="([\d.]+)"', g).group(1)) for g in groups]
    assert cy[0] < y_thr < cy[1] < y_one  # 1.25x above the threshold; 1.012x between 1.0 and 1.05
    assert "1.250×" in groups[0] and "&lt;" not in groups[0]  # tooltip
    # the table: one row per candidate, coloured by category, reasons shown
    rows = re.findall(r'<tr class="(cat-[a-z-]+)" id="k-aaaa1111-\d+">', a)
    assert rows == ["cat-accepted", "cat-not-faster", "cat-wrong-results", "cat-build-failed", "cat-invalid",
                    "cat-timed-out-crashed"]
    assert "wrong on edge values (±0, ±inf, NaN): NaN positions differ" in a
    assert "failed to legalize" in a and "timed out after 120 s" in a
    assert 'href="#k-aaaa1111-1"' in a  # the refinement links to its parent

    b = section("kernel-bbbb2222")
    assert "from the rewrite cache" in b and "dropped at composition" in b
    assert "baseline 40.0 µs" in b and 'class="bar acc"' not in b  # not kept: no accepted time
    c = section("kernel-cccc3333")
    assert "skipped: not hot enough" in c and "<svg" not in c

    m = section("module")
    svg = m[m.index("<svg"):m.index("</svg>")]
    assert len(re.findall(r'class="mark [^"]*\btimed"', svg)) == 1
    assert len(re.findall(r'class="mark [^"]*untimed"', svg)) == 1
    assert "does not pay off in the model" in section("dropped")


def test_default_min_gain_and_search_result_without_settings(scenario):
    result, comp = scenario
    data = report_data(result.search, comp)  # a bare SearchResult: no settings, so the default 3%
    assert data["min_gain"] == 0.03
    assert "1.03×" in render_html(data)


def test_unoptimized_result_renders():
    """What optimize_model writes when the search failed: nothing tried, nothing verified."""
    result = unoptimized_result("module {}", EvalSettings())
    data = report_data(result, result.composition)
    assert data["end_to_end"] is None and data["kernels"] == [] and data["evaluations"] == 0
    md = render_markdown(data)
    assert "not verified" in md
    doc = render_html(data)
    parse(doc)
    assert "not verified" in doc and "<svg" not in doc


def test_end_to_end_rejected(scenario):
    result, comp = scenario
    comp.verdict = Verdict("model", stage="timing", built=True, equivalent=True,
                           reason="not significantly faster: 1.010x, CI lower bound 0.990 < 1.05",
                           timing={"speedup": 1.01, "ci_low": 0.99, "ci_high": 1.03})
    comp.kept = []
    data = report_data(result, comp)
    assert not data["end_to_end"]["accepted"] and data["end_to_end"]["category"] == NOT_FASTER
    assert not data["kernels"][0]["kept"] and data["kernels"][0]["accepted_us"] is None
    assert "not kept" in render_markdown(data)
    assert "not kept" in render_html(data)


def test_a_kept_kernel_shows_its_speedup_alone_and_in_the_model():
    from mlirforge.llm_rewrite.types import Candidate, Kernel, Stage, TensorSpec, Verdict
    from mlirforge.report import render_html, render_markdown

    k = Kernel("k1", "k1", "linalg.matmul", "module {}", [TensorSpec((4, 4), "f32")], [TensorSpec((4, 4), "f32")], 4,
               baseline_us=100.0)
    c = Candidate("kernel", {"mlir": "x"}, k.hash)
    v = Verdict(c.id, stage=Stage.DONE, built=True, equivalent=True, accepted=True,
                timing={"speedup": 1.69, "ci_low": 1.6, "ci_high": 1.8})
    e2e = Verdict("model", stage=Stage.DONE, built=True, equivalent=True, accepted=True,
                  timing={"speedup": 1.19, "ci_low": 1.17, "ci_high": 1.21})
    search = SearchResult(None, [], [KernelResult(k, (c, v), [(c, v)])], 1, 1.0)
    comp = Composition("module {}", [], "local-sync", [(k, c, v)], [], e2e,
                       {k.hash: {"speedup": 1.21, "ci_low": 1.18, "ci_high": 1.24}})
    data = report_data(search, comp)
    (row,) = data["kernels"]
    assert row["speedup"] == 1.69 and row["in_model_speedup"] == 1.21 and row["in_model_ci"] == [1.18, 1.24]
    assert "1.690× alone, 1.210× in the model" in row["outcome"]
    assert "1.210× in the model" in render_markdown(data) and "1.210× in the model" in render_html(data)


def test_the_summary_never_prints_a_program_against_itself():
    from mlirforge.api import OptimizeSummary

    common = dict(artifact="out", kernels=[], module_candidates=[], evaluations=3, search_seconds=1.0,
                  end_to_end=None, eager_us=500.0, unoptimized_us=900.0, optimized_us=520.0,
                  vs_unoptimized=[1.72, 1.64, 1.78], vs_eager=[0.99, 0.97, 1.02])
    nothing = "\n".join(OptimizeSummary(**common, kept_anything=False).lines())
    assert "vs unoptimised" not in nothing and "the artifact is the unoptimised program" in nothing
    assert "(nothing kept)" in nothing and "0.99x vs eager (95% CI 0.97-1.02)" in nothing
    kept = "\n".join(OptimizeSummary(**common, kept_anything=True).lines())
    assert "1.72x vs unoptimised (95% CI 1.64-1.78)" in kept
    assert "warning" not in kept
    # A busy neighbour while timing is said, not hidden (the quiet case above says nothing).
    busy = "\n".join(OptimizeSummary(**common, kept_anything=True, other_cpu_share=0.4).lines())
    assert "warning      other processes used 40% of the CPU" in busy and "unreliable" in busy
    # A fresh-process check that contradicts the search's verdict is said, not printed as a plain ratio.
    slower = "\n".join(OptimizeSummary(**{**common, "vs_unoptimized": [0.68, 0.64, 0.70]}, kept_anything=True).lines())
    assert "0.68x vs unoptimised" in slower and "the optimised artifact is slower than the unoptimised one" in slower
