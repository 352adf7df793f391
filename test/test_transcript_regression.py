"""A real model's recorded answers, replayed as a regression test (issue "LLM round two", item 6).

`test/data/transcripts/transformer_block.relay.jsonl` is a capable LLM's run
on `examples/transformer_block.py` through `--proposer llm` (28 requests;
docs/llm.md, "A real model's run"). These tests pin what must not drift
without anyone noticing: the kernels the recording was made for are still the
kernels the example lowers to (or replay silently has nothing to give), every
recorded answer still parses into the candidates the live run parsed (prompt,
parser and candidate checks agree with what the model was told), and the
rewrites that run kept still build and compute the same results as the
kernels they replace. Whether they are still *faster* is a timing question:
`bench/bench_in_model.py` measures it, interleaved, not a test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlirforge.kernelbench import load_model_file
from mlirforge.llm_rewrite import candidates
from mlirforge.llm_rewrite.answers import parse_answers
from mlirforge.llm_rewrite.kernels import extract_kernels
from mlirforge.llm_rewrite.transcript import read_transcript
from mlirforge.lowering.options import LoweringOptions
from mlirforge.lowering.torch_export import export_model

ROOT = Path(__file__).resolve().parents[1]
TRANSCRIPT = ROOT / "test" / "data" / "transcripts" / "transformer_block.relay.jsonl"
EXAMPLE = ROOT / "examples" / "transformer_block.py"


@pytest.fixture(scope="module")
def recording():
    return read_transcript(TRANSCRIPT)


@pytest.fixture(scope="module")
def example_kernels():
    problem = load_model_file(EXAMPLE)
    exported = export_model(problem.model, problem.inputs, LoweringOptions())
    return {k.hash: k for k in extract_kernels(exported.lowered.mlir)[1]}


def _parsed(rec):
    response = rec.get("response") or {}
    texts = response.get("texts") or [response.get("text", "")]
    return parse_answers(texts, candidates.names(rec["purpose"]), rec.get("kernel"), int(rec.get("n", 4)), {})


def test_the_recorded_kernels_are_still_the_examples_kernels(recording, example_kernels):
    recorded = {r["kernel"] for r in recording.requests if r["purpose"] == "kernel"}
    assert len(recorded) >= 8
    missing = sorted(recorded - set(example_kernels))
    assert not missing, (f"the lowering of {EXAMPLE.name} changed: kernels {missing} of the recording are gone, "
                         "so replay has nothing to give them (re-record, or keep their hashes stable)")


def test_every_recorded_answer_parses_into_the_candidates_the_live_run_parsed(recording):
    assert len(recording.requests) == 28
    for rec in recording.requests:
        parsed = _parsed(rec)
        got = [c.id for c in parsed.candidates]
        want = rec.get("candidates") or []
        assert len(got) == len(want) and all(g.startswith(w) for g, w in zip(got, want)), (
            f"request {rec['seq']} ({rec['purpose']} {rec.get('kernel')}): parsed {got}, "
            f"the live run parsed {want}; problems: {parsed.problems}")
    # Declined rounds stay declined (an honest empty answer ends that kernel's search).
    assert any(_parsed(r).declined for r in recording.requests)


# The hot kernels of the example whose recorded candidates won alone in the recorded run
# (docs/in-model.md): the four matmuls (replacement bodies) and a batch matmul (tilings).
HOT_KERNELS = ("d5329a09d3bdae8c", "abc0ca254b7f7d6f", "07d661b8d756a5b4", "7f2782ae71c41c96", "eb6062733a63deff")


def test_the_recorded_winning_rounds_still_build_and_compute_the_same_results(recording, example_kernels, tmp_path):
    from mlirforge.llm_rewrite.evaluate import KernelEvaluator
    from mlirforge.llm_rewrite.settings import EvalSettings

    settings = EvalSettings(rounds=5, inner=1, warmup=1)  # timing is not what this test checks
    checked = 0
    for kernel_hash in HOT_KERNELS:
        first = next(r for r in recording.requests if r["kernel"] == kernel_hash)
        workdir = tmp_path / kernel_hash
        workdir.mkdir()
        evaluator = KernelEvaluator(example_kernels[kernel_hash], settings, workdir)
        for cand in _parsed(first).candidates:
            verdict = evaluator.evaluate(cand)
            assert verdict.built and verdict.equivalent is True, (
                f"{kernel_hash} request {first['seq']} {cand.describe()}: {verdict.stage.value}: {verdict.reason}")
            checked += 1
    assert checked >= 15
