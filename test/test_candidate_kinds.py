"""Candidate kinds are modules behind one registry: a toy kind added here reaches every stage.

The toy kind below is the whole change a new kind needs (one class and one
`register` call): the answer parser accepts it, the prompt lists it, the
evaluator builds, checks and times it, and composition substitutes the
source that was verified without building it again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlirforge.llm_rewrite import candidates
from mlirforge.llm_rewrite.answers import parse_answer
from mlirforge.llm_rewrite.candidates import Built, CandidateKind, CandidateRejected
from mlirforge.llm_rewrite.evaluate import EvalSettings, KernelEvaluator, new_workdir
from mlirforge.llm_rewrite.kernels import kernel_from_function_text
from mlirforge.llm_rewrite.types import Candidate, Stage, Verdict

DATA = Path(__file__).parent / "data"


class OptLevelKind(CandidateKind):
    """Toy kind: the kernel unchanged, compiled at another IREE optimisation level."""

    name = "opt-level"
    fields = frozenset({"level"})

    def check_payload(self, payload):
        if not isinstance(payload.get("level"), str):
            raise ValueError("opt-level candidate needs 'level': a string such as \"O3\"")
        return payload

    def build(self, kernel, payload, settings):
        if payload["level"] not in ("O0", "O1", "O2", "O3"):
            raise CandidateRejected(Stage.PARSE, f"level {payload['level']!r} is not O0..O3")
        return Built(kernel.module, (*settings.base_flags, f"--iree-opt-level={payload['level']}"))

    def describe(self, payload):
        return f"opt-level {payload.get('level')}"

    def prompt(self, kernel):
        return '{"kind": "opt-level", "level": "O3"}\n   The kernel compiled at another IREE optimisation level.'


@pytest.fixture
def toy_kind():
    kind = candidates.register(OptLevelKind())
    try:
        yield kind
    finally:
        candidates.unregister(kind.name)


@pytest.fixture(scope="module")
def kernel():
    return kernel_from_function_text((DATA / "kernel_relu_max.mlir").read_text())


def test_an_unregistered_kind_is_refused_everywhere(kernel):
    with pytest.raises(ValueError, match="unknown candidate kind 'opt-level'"):
        Candidate("opt-level", {"level": "O3"}, kernel.hash)
    parsed = parse_answer('{"kind": "opt-level", "level": "O3"}', candidates.names("kernel"), kernel.hash, 4, {})
    assert parsed.candidates == [] and "is not one of kernel, tiling, pipeline" in parsed.problems[0]


def test_a_registered_kind_is_parsed_with_its_own_fields(toy_kind, kernel):
    answer = ('{"candidates": [{"kind": "opt-level", "level": "O3", "rationale": "more unrolling"},'
              ' {"kind": "opt-level", "bogus": 1}, {"kind": "opt-level", "level": 3}]}')
    parsed = parse_answer(answer, candidates.names("kernel"), kernel.hash, 4, {"proposer": "llm"})
    (cand,) = parsed.candidates
    assert cand.kind == "opt-level" and cand.payload == {"level": "O3"} and cand.describe() == "opt-level O3"
    assert "unknown field(s) bogus (allowed: level)" in parsed.problems[0]
    assert "needs 'level'" in parsed.problems[1]


def test_a_registered_kind_is_offered_in_the_prompt(toy_kind, kernel):
    from mlirforge.llm_rewrite.prompts.build import describe_kinds

    text = describe_kinds(kernel)
    assert '4. {"kind": "opt-level", "level": "O3"}' in text
    assert text.index('"kind": "kernel"') < text.index('"kind": "opt-level"')


def test_a_registered_kind_goes_through_the_whole_cascade(toy_kind, kernel):
    evaluator = KernelEvaluator(kernel, EvalSettings(rounds=5), new_workdir())
    verdict = evaluator.evaluate(Candidate("opt-level", {"level": "O3"}, kernel.hash))
    assert verdict.built and verdict.equivalent is True, verdict.reason
    assert verdict.stage in (Stage.TIMING, Stage.DONE) and verdict.speedup is not None
    assert "--iree-opt-level=O3" in verdict.equivalence["flags"]
    assert verdict.source == kernel.module  # what was verified travels with the verdict
    bad = evaluator.evaluate(Candidate("opt-level", {"level": "O9"}, kernel.hash))
    assert bad.stage == Stage.PARSE and not bad.built and "is not O0..O3" in bad.reason


def test_composition_substitutes_the_verified_source_without_rebuilding(toy_kind, monkeypatch):
    from mlirforge.llm_rewrite.compose import apply_winners
    from mlirforge.llm_rewrite.kernels import extract_kernels

    model_text = (DATA / "kernel_relu_max.mlir").read_text().replace("@row_max", "@main")
    outlined, (k,) = extract_kernels(model_text)
    cand = Candidate("opt-level", {"level": "O3"}, k.hash)
    # The source that was verified (here marked by maxnumf instead of maximumf) is what lands in the model.
    verified = k.module.replace("arith.maximumf", "arith.maxnumf")
    verdict = Verdict(cand.id, stage=Stage.DONE, built=True, equivalent=True, accepted=True, source=verified)

    def no_rebuild(*_):
        raise AssertionError("composition rebuilt a verified candidate")

    monkeypatch.setattr(OptLevelKind, "build", no_rebuild)
    model = apply_winners(outlined, [(k, cand, verdict)], EvalSettings())
    assert "arith.maxnumf" in model and "arith.maximumf" not in model and "func.call" not in model


def test_a_verdict_reads_its_stage_back_and_refuses_an_unknown_one():
    assert Verdict("x", stage="numerics").stage is Stage.NUMERICS
    assert Verdict("x", stage="timing").to_json()["stage"] == "timing"
    with pytest.raises(ValueError):
        Verdict("x", stage="compiled")


def test_a_kind_name_is_registered_once():
    with pytest.raises(ValueError, match="already registered"):
        candidates.register(candidates.get("kernel"))
