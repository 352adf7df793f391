"""The adversarial corpus: candidates that cheat, each rejected for its own reason, and honest ones kept.

`test/data/adversarial/` holds reference kernels (`ref_*.mlir`) and
candidates for them. Each candidate's header names its reference and what the
check must find:

    // reference: ref_row_sum.mlir
    // settings: timeout_s=6          EvalSettings fields (optional)
    // aliasing: ignored              no copies of the inputs the module writes (optional)
    // expect: numerics all_negative "values differ"
    //         (stage; distribution, 'a|b' either, '-' none; a part of the reason, 'a|b' either)
    // expect: equivalent             (an honest candidate)

The corpus cases build the candidate (iree-compile under the settings' time
limit) and run the worker's check (`evaluate.time_and_check`, no timing), so
every verdict is the worker's own, not the candidate kind's or the formal
check's; the tests after them run a few through the whole cascade.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mlirforge.llm_rewrite.candidates import CandidateRejected
from mlirforge.llm_rewrite.evaluate import (
    EvalSettings,
    KernelEvaluator,
    build_reference,
    compile_or_reject,
    module_spec,
    time_and_check,
    verdict_from_reply,
)
from mlirforge.llm_rewrite.kernels import kernel_from_function_text, runnable_module
from mlirforge.llm_rewrite.types import Candidate, Verdict
from mlirforge.llm_rewrite.equivalence import compare, make_input
from mlirforge.llm_rewrite.worker import check
from mlirforge.llm_rewrite.worker_protocol import DISTRIBUTIONS, ModuleSpec, WorkerRequest, run_worker

DATA = Path(__file__).parent / "data" / "adversarial"
CASES = sorted(p.name for p in DATA.glob("*.mlir") if not p.name.startswith("ref_"))


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    text: str
    reference: str
    settings: dict
    aliasing: bool
    expect: tuple[str, str, str] | None  # (stage, distribution, reason); None: equivalent


def read_case(name: str) -> Case:
    text = (DATA / name).read_text()

    def header(key: str) -> str | None:
        found = re.search(rf"^// {key}: (.*)$", text, re.M)
        return found.group(1).strip() if found else None

    settings = {}
    for item in (header("settings") or "").split():
        key, value = item.split("=")
        settings[key] = float(value) if "." in value else int(value)
    expect = header("expect")
    assert expect, f"{name}: no '// expect:' line"
    if expect == "equivalent":
        expected = None
    else:
        stage, dist, reason = re.fullmatch(r'(\w+) (\S+) "(.*)"', expect).groups()
        expected = (stage, dist, reason)
    return Case(name, text, header("reference"), settings, header("aliasing") != "ignored", expected)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("adversarial")


_references: dict[str, tuple] = {}


def reference(name: str, workdir: Path):
    """The reference kernel and its build (once per module)."""
    if name not in _references:
        kernel = kernel_from_function_text((DATA / name).read_text(), name)
        spec = build_reference(runnable_module(kernel, kernel.module), EvalSettings(), None, workdir / f"{name}.vmfb")
        _references[name] = (kernel, spec)
    return _references[name]


def built(case: Case, workdir: Path):
    """(kernel, reference spec, candidate spec or the build's Verdict, settings)."""
    kernel, ref = reference(case.reference, workdir)
    settings = EvalSettings(**case.settings)
    source = kernel_from_function_text(case.text, case.name).module
    try:
        compiled = compile_or_reject(runnable_module(kernel, source), settings.base_flags, None, settings.timeout_s)
    except CandidateRejected as exc:
        return kernel, ref, Verdict(case.name, stage=exc.stage, built=False, reason=f"{exc.stage}: {exc.reason}"), settings
    spec = module_spec(workdir / f"{case.name}.vmfb", compiled)
    if not case.aliasing:
        spec = dataclasses.replace(spec, copy_inputs=())
    return kernel, ref, spec, settings


def worker_verdict(case: Case, workdir: Path) -> Verdict:
    kernel, ref, spec, settings = built(case, workdir)
    if isinstance(spec, Verdict):
        return spec
    reply = time_and_check(ref, spec, kernel.call_inputs, kernel.reduction_depth, settings, workdir,
                           timing=False, weights=kernel.weights)
    return verdict_from_reply(case.name, reply, settings)


@pytest.mark.parametrize("name", CASES, ids=[c.removesuffix(".mlir") for c in CASES])
def test_corpus(name, workdir):
    case = read_case(name)
    verdict = worker_verdict(case, workdir)
    if case.expect is None:
        assert verdict.equivalent is True, verdict.reason
        assert verdict.equivalence["error_bound"] == "terms"
        assert set(verdict.equivalence["distributions"]) == set(DISTRIBUTIONS)
        return
    stage, dist, reason = case.expect
    assert verdict.equivalent is not True and not verdict.accepted, verdict.reason
    assert verdict.stage == stage, verdict.reason
    assert any(part in verdict.reason for part in reason.split("|")), verdict.reason
    if dist != "-":
        assert verdict.equivalence.get("distribution") in dist.split("|"), verdict.reason


def test_the_corpus_covers_the_ways_to_cheat():
    cases = [read_case(name) for name in CASES]
    cheats = [c for c in cases if c.expect]
    assert len(cheats) >= 25 and len(cases) - len(cheats) >= 8
    reasons = " ".join(c.expect[2] for c in cheats)
    for kind in ("NaN positions differ", "inf positions or signs differ", "signs of zero differ", "values differ",
                 "elements differ", "candidate modified its inputs", "timed out", "crashed", "memory limit",
                 "iree-compile timed out"):
        assert kind in reasons, kind
    dists = {d for c in cheats for d in c.expect[1].split("|")}
    assert {"normal", "wide", "all_negative", "edge", "row_scaled", "subnormal"} <= dists


# -- the whole cascade: a hang or a crash is a verdict, and the search goes on ------------------


def test_a_hang_and_a_crash_are_verdicts_of_the_whole_cascade(workdir):
    kernel = kernel_from_function_text((DATA / "ref_row_sum.mlir").read_text())
    evaluator = KernelEvaluator(kernel, EvalSettings(timeout_s=6, rounds=5, inner=1, warmup=1), workdir)
    for name, reason in (("sandbox_hang.mlir", "timed out after 6 s while running the candidate"),
                         ("sandbox_segfault.mlir", "worker crashed (SIGSEGV) while running the candidate")):
        verdict = evaluator.evaluate(Candidate("kernel", {"mlir": (DATA / name).read_text()}, kernel.hash))
        assert verdict.stage == "numerics" and not verdict.accepted and reason in verdict.reason, verdict.reason
    honest = evaluator.evaluate(Candidate("kernel", {"mlir": (DATA / "honest_row_sum_tree.mlir").read_text()},
                                          kernel.hash))
    assert honest.stage in ("timing", "done"), honest.reason


def test_the_worker_has_a_cpu_time_limit(workdir):
    """A backstop for a worker whose parent died: RLIMIT_CPU, reported as such."""
    kernel, ref, spec, _ = built(read_case("sandbox_hang.mlir"), workdir)
    request = WorkerRequest(reference=ref, candidate=spec, inputs=tuple(s.to_json() for s in kernel.call_inputs),
                            seed=1, timing=None, cpu_s=2)
    reply = run_worker(request, 60, workdir)
    assert reply["error"].startswith("worker exceeded its CPU-time limit (2 s) while running the candidate"), reply


def test_a_candidate_that_writes_its_input_is_refused_or_given_a_copy(workdir):
    case = read_case("mutate_input_scatter_in_place.mlir")
    kernel, _ = reference(case.reference, workdir)
    cascade = KernelEvaluator(kernel, EvalSettings(rounds=5), workdir).evaluate(
        Candidate("kernel", {"mlir": case.text}, kernel.hash))
    assert cascade.stage == "parse" and "iree_linalg_ext.scatter" in cascade.reason, cascade.reason
    # Past the kind's check (another kind, a lowering that emits it), the aliasing analysis
    # makes the worker pass a copy: the values are right and the caller's input is untouched.
    copied = worker_verdict(dataclasses.replace(case, aliasing=True), workdir)
    assert copied.equivalent is True, copied.reason


# -- the checker's own rules, without IREE --------------------------------------------------------


def test_the_error_bound_is_per_element_where_the_terms_are_known():
    ref = np.array([1e3, 1e-3, 4e-6, -2.0], np.float32)
    got = np.array([1e3, 1e-3, 0.0, -2.0], np.float32)
    # A global bound (c*eps*max|ref|) lets every element below ~2e-4 be anything...
    assert compare(ref, got, 1)["ok"]
    # ...the terms' magnitudes do not.
    result = compare(ref, got, 1, scale=np.abs(ref).astype(np.float64))
    assert not result["ok"] and "worst at (2,)" in result["why"] and result["max_error"] > result["tolerance"]
    # Honest rounding passes either way.
    near = ref * np.float32(1 + 2**-22)
    assert compare(ref, near, 1, scale=np.abs(ref).astype(np.float64))["ok"]


def test_zero_signs_and_subnormals():
    z = np.float32
    assert not compare(np.array([-0.0], z), np.array([0.0], z), 1)["ok"]
    assert "signs of zero differ" in compare(np.array([0.0, -0.0], z), np.array([0.0, 0.0], z), 1)["why"]
    # IREE's CPU code reads subnormals as zeros of their sign: compared so.
    assert compare(np.array([1e-40, 3.0], z), np.array([0.0, 3.0], z), 1, scale=np.array([1e-40, 3.0]))["ok"]
    assert not compare(np.array([-1e-40], z), np.array([0.0], z), 1)["ok"]
    assert compare(np.array([1, 2], np.int32), np.array([1, 2], np.int32), 1)["ok"]


def test_the_distributions_hold_what_the_cheats_need():
    rng = np.random.default_rng(0)
    draw = {d: make_input(rng, (64, 256), "f32", d).astype(np.float64) for d in DISTRIBUTIONS}
    rows = np.abs(draw["row_scaled"]).max(axis=1)
    assert rows.max() / rows.min() > 100 and np.abs(draw["row_scaled"]).min() < 1e-5
    ties = draw["ties"]
    assert all((row == row.max()).sum() > 1 for row in ties) and (ties == 0).any()
    sub = np.abs(draw["subnormal"])
    assert ((sub > 0) & (sub < 2.0**-126)).mean() > 0.25
    assert (draw["all_negative"] <= 0).all() and np.abs(draw["large"]).max() > 1e14
    assert np.isnan(draw["edge"]).any() and np.isinf(draw["edge"]).any()
    assert (np.signbit(draw["edge"]) & (draw["edge"] == 0)).any()
    half = make_input(rng, (8, 64), "f16", "subnormal").astype(np.float64)
    assert ((np.abs(half) > 0) & (np.abs(half) < 2.0**-14)).any()


class _Fake:
    """A stand-in for `worker.Runner`: calls `fn(inputs, call number)` on host arrays."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def device_inputs(self, arrays):
        return [(a, SimpleNamespace(_buffer_view=a)) for a in arrays]

    def __call__(self, inputs):
        self.calls += 1
        return self.fn([d._buffer_view for _, d in inputs], self.calls)

    def to_host(self, views):
        return [np.array(v, copy=True) for v in views]

    def read_back(self, inputs):
        return self.to_host([d._buffer_view for _, d in inputs])


def _fake_check(cand_fn):
    request = WorkerRequest(reference=ModuleSpec("ref"), candidate=ModuleSpec("cand"),
                            inputs=({"shape": [4, 8], "dtype": "f32"},), seed=3, distributions=("normal",),
                            timing=None)
    return check(_Fake(lambda xs, n: [np.maximum(xs[0], 0)]), _Fake(cand_fn), request)


def test_nondeterminism_and_reused_buffers_are_caught():
    # Within any tolerance, but different bits from call to call: uninitialised memory.
    noisy = _fake_check(lambda xs, n: [np.maximum(xs[0], 0) * np.float32(1 + n * 2**-23)])
    assert not noisy["equivalent"] and "nondeterministic" in noisy["equivalence"]["why"]
    buffer = np.zeros((4, 8), np.float32)

    def reused(xs, n):
        buffer[...] = np.maximum(xs[0], 0)
        return [buffer]

    again = _fake_check(reused)
    assert not again["equivalent"] and "reused buffer" in again["equivalence"]["why"]

    def writes(xs, n):
        out = np.maximum(xs[0], 0)
        xs[0][0, 0] = 42.0
        return [out]

    written = _fake_check(writes)
    assert not written["equivalent"] and written["equivalence"]["why"] == "candidate modified its inputs"
    assert _fake_check(lambda xs, n: [np.maximum(xs[0], 0)])["equivalent"]
