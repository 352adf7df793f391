"""Candidate kinds are modules behind one registry: a toy kind added here reaches every stage.

The toy kind below is the whole change a new kind needs (one class and one
`register` call): the answer parser accepts it, the prompt lists it, the
evaluator builds, checks and times it, and composition substitutes the
source that was verified without building it again.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlirforge.llm_rewrite import candidates
from mlirforge.llm_rewrite.answers import parse_answer
from mlirforge.llm_rewrite.candidates import Built, CandidateKind, CandidateRejected
from mlirforge.llm_rewrite.evaluate import EvalSettings, KernelEvaluator, new_workdir
from mlirforge.llm_rewrite.kernels import kernel_from_function_text
from mlirforge.llm_rewrite.types import Candidate, Stage, Verdict

DATA = Path(__file__).parent / "data"


class ReturnEarlyKind(CandidateKind):
    """Toy kind: the kernel returns the result of the first op named `op` (what follows becomes dead)."""

    name = "return-early"
    fields = frozenset({"op"})

    def check_payload(self, payload):
        if not isinstance(payload.get("op"), str):
            raise ValueError("return-early candidate needs 'op': an op name such as \"linalg.matmul\"")
        return payload

    def build(self, kernel, payload, settings):
        m = re.search(rf"(%\w+) = {re.escape(payload['op'])}\b", kernel.module)
        if m is None:
            raise CandidateRejected(Stage.PARSE, f"the kernel has no {payload['op']}")
        return Built(re.sub(r"return %\w+ :", f"return {m.group(1)} :", kernel.module), tuple(settings.base_flags))

    def describe(self, payload):
        return f"return-early after {payload.get('op')}"

    def prompt(self, kernel):
        return '{"kind": "return-early", "op": "linalg.matmul"}\n   Return the first such op\'s result.'


class OptLevelKind(CandidateKind):
    """A kernel-scope kind that changes only the flags: refused, the model shares one set of flags."""

    name = "opt-level"
    fields = frozenset({"level"})

    def build(self, kernel, payload, settings):
        return Built(kernel.module, (*settings.base_flags, f"--iree-opt-level={payload['level']}"))


@pytest.fixture
def toy_kind():
    kind = candidates.register(ReturnEarlyKind())
    try:
        yield kind
    finally:
        candidates.unregister(kind.name)


@pytest.fixture(scope="module")
def kernel():
    return kernel_from_function_text((DATA / "kernel_slow_matmul.mlir").read_text())


def test_an_unregistered_kind_is_refused_everywhere(kernel):
    with pytest.raises(ValueError, match="unknown candidate kind 'return-early'"):
        Candidate("return-early", {"op": "linalg.matmul"}, kernel.hash)
    parsed = parse_answer('{"kind": "return-early", "op": "linalg.matmul"}', candidates.names("kernel"),
                          kernel.hash, 4, {})
    assert parsed.candidates == [] and "is not one of kernel, tiling, pipeline" in parsed.problems[0]


def test_a_registered_kind_is_parsed_with_its_own_fields(toy_kind, kernel):
    answer = ('{"candidates": [{"kind": "return-early", "op": "linalg.matmul", "rationale": "steps are the identity"},'
              ' {"kind": "return-early", "bogus": 1}, {"kind": "return-early", "op": 3}]}')
    parsed = parse_answer(answer, candidates.names("kernel"), kernel.hash, 4, {"proposer": "llm"})
    (cand,) = parsed.candidates
    assert cand.kind == "return-early" and cand.payload == {"op": "linalg.matmul"}
    assert cand.describe() == "return-early after linalg.matmul"
    assert "unknown field(s) bogus (allowed: op)" in parsed.problems[0]
    assert "needs 'op'" in parsed.problems[1]


def test_a_registered_kind_is_offered_in_the_prompt(toy_kind, kernel):
    from mlirforge.llm_rewrite.prompts.build import describe_kinds

    text = describe_kinds(kernel)
    assert '4. {"kind": "return-early", "op": "linalg.matmul"}' in text
    assert text.index('"kind": "kernel"') < text.index('"kind": "return-early"')


def test_a_registered_kind_goes_through_the_whole_cascade(toy_kind, kernel):
    # Default rounds: five gave a CI too wide to clear the bar now and then on a loaded machine.
    evaluator = KernelEvaluator(kernel, EvalSettings(), new_workdir())
    verdict = evaluator.evaluate(Candidate("return-early", {"op": "linalg.matmul"}, kernel.hash))
    assert verdict.built and verdict.equivalent is True and verdict.accepted, verdict.reason
    assert verdict.stage is Stage.DONE and verdict.speedup > 1.5
    assert verdict.source != kernel.module  # what was verified travels with the verdict
    bad = evaluator.evaluate(Candidate("return-early", {"op": "linalg.conv_2d"}, kernel.hash))
    assert bad.stage == Stage.PARSE and not bad.built and "has no linalg.conv_2d" in bad.reason


def test_a_kernel_kind_that_changes_only_the_flags_is_refused(kernel):
    kind = candidates.register(OptLevelKind())
    try:
        evaluator = KernelEvaluator(kernel, EvalSettings(rounds=5), new_workdir())
        verdict = evaluator.evaluate(Candidate("opt-level", {"level": "O3"}, kernel.hash))
    finally:
        candidates.unregister(kind.name)
    assert verdict.stage == Stage.PARSE and "cannot change the compile flags" in verdict.reason


def test_a_candidate_that_changes_nothing_is_not_timed(kernel):
    evaluator = KernelEvaluator(kernel, EvalSettings(rounds=5), new_workdir())
    same = evaluator.evaluate(Candidate("kernel", {"mlir": kernel.module}, kernel.hash))
    assert same.stage == Stage.PARSE and "changes nothing" in same.reason
    noop = evaluator.evaluate(Candidate("pipeline", {"pipeline": "mlirforge-conv-to-channels-last"}, kernel.hash))
    assert "changes nothing" in noop.reason


def test_composition_substitutes_the_verified_source_without_rebuilding(toy_kind, monkeypatch):
    from mlirforge.llm_rewrite.compose import apply_winners
    from mlirforge.llm_rewrite.kernels import extract_kernels

    model_text = (DATA / "kernel_relu_max.mlir").read_text().replace("@row_max", "@main")
    outlined, (k,) = extract_kernels(model_text)
    cand = Candidate("return-early", {"op": "linalg.generic"}, k.hash)
    # The source that was verified (here marked by maxnumf instead of maximumf) is what lands in the model.
    verified = k.module.replace("arith.maximumf", "arith.maxnumf")
    verdict = Verdict(cand.id, stage=Stage.DONE, built=True, equivalent=True, accepted=True, source=verified)

    def no_rebuild(*_):
        raise AssertionError("composition rebuilt a verified candidate")

    monkeypatch.setattr(ReturnEarlyKind, "build", no_rebuild)
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


def test_untrusted_text_nested_too_deeply_is_refused_before_any_parser(kernel):
    deep = "func.func @main() attributes {a = " + "[" * 10000 + "]" * 10000 + "} { return }"
    evaluator = KernelEvaluator(kernel, EvalSettings(rounds=5), new_workdir())
    verdict = evaluator.evaluate(Candidate("kernel", {"mlir": deep}, kernel.hash))  # segfaulted MLIR's parser
    assert verdict.stage == Stage.PARSE and "nest more than" in verdict.reason
    answer = '{"candidates": ' + "[" * 1000 + "]" * 1000 + "}"  # RecursionError in json, which ended the search
    parsed = parse_answer(answer, candidates.names("kernel"), kernel.hash, 4, {})
    assert parsed.candidates == [] and "nest more than" in parsed.problems[0]


def test_a_kernel_candidate_may_not_set_module_attributes(kernel):
    wrapped = kernel.module.replace("module {", "module attributes {hal.device.targets = []} {", 1)
    assert wrapped != kernel.module
    verdict = KernelEvaluator(kernel, EvalSettings(rounds=5), new_workdir()).evaluate(
        Candidate("kernel", {"mlir": wrapped}, kernel.hash))
    assert not verdict.built and "may not set module attributes" in verdict.reason


def _with_config(kernel, config: str) -> str:
    """The kernel with `config` (an attribute dictionary entry) on its matmul."""
    out = re.sub(r"(linalg\.matmul) ins", rf"\1 {{{config}}} ins", kernel.module, count=1)
    assert out != kernel.module
    return out


def _cpu_config(dist, vec, red, pipeline="DoubleTilingExpert") -> str:
    return ("compilation_info = #iree_codegen.compilation_info<lowering_config = #iree_cpu.lowering_config<"
            f"distribution = {dist}, vector_common_parallel = {vec}, vector_reduction = {red}>, translation_info = "
            f"#iree_codegen.translation_info<pipeline = #iree_cpu.pipeline<{pipeline}>>>")


@pytest.mark.parametrize("config, why", [
    # The 8192-element vector cap of `tiling` candidates, bypassed before by writing the attribute by hand.
    (_cpu_config([128, 512, 0], [128, 512, 0], [0, 0, 1]), "vector tiles of 65536 elements"),
    (_cpu_config([128, 512, 0], [8, 8, 0], [0, 0, 100]), "outside 0..64"),  # beyond the root's k loop
    (_cpu_config([64, 64, 0], [8, 16, 0], [0, 0, 1], pipeline="BufferOpsTileAndVectorize"), "pipeline BufferOpsTileAndVectorize is not one of"),
    ("lowering_config = #iree_codegen.lowering_config<tile_sizes = [[64, 64, 0], [64, 256, 0], [0, 0, 1]]>",
     "vector tiles of 16384 elements"),
    ('hal.executable.objects = [#hal.executable.object<{path = "evil.o"}>]', "may not set"),
    ("mlirforge_x = #hal.executable.object<{path = \"evil.o\"}>", "uses hal"),
    # Review findings: a size behind an inner bracket, a ukernel naming code, a unit dialect attribute.
    ("compilation_info = #iree_codegen.compilation_info<lowering_config = #iree_cpu.lowering_config<"
     "distribution = [64, 64, 0], vector_common_parallel = [[8], 100000, 0], vector_reduction = [0, 0, 1]>, "
     "translation_info = #iree_codegen.translation_info<pipeline = #iree_cpu.pipeline<DoubleTilingExpert>>>",
     "vector tiles of 800000 elements"),
    ('uk = #iree_codegen.ukernel_descriptor<"evil_symbol", bitcode>', "only IREE tile configurations"),
    ("iree.abi.foo", "may not set"),
])
def test_iree_attributes_in_a_kernel_candidate_are_checked_like_tiling_candidates(kernel, config, why):
    with pytest.raises(CandidateRejected, match=why) as caught:
        candidates.get("kernel").build(kernel, {"mlir": _with_config(kernel, config)}, EvalSettings())
    assert caught.value.stage == Stage.PARSE


def test_a_legal_compilation_info_in_a_kernel_candidate_builds(kernel):
    built = candidates.get("kernel").build(
        kernel, {"mlir": _with_config(kernel, _cpu_config([64, 64, 0], [8, 16, 0], [0, 0, 1]))}, EvalSettings())
    assert "iree_cpu.lowering_config<distribution = [64, 64, 0]" in built.source


def test_a_pipeline_may_run_only_kernel_passes_and_no_unchecked_tiles(kernel):
    evaluator = KernelEvaluator(kernel, EvalSettings(rounds=5), new_workdir())
    tiles = evaluator.evaluate(Candidate("pipeline", {"pipeline": "mlirforge-annotate-tiling{distribution=128,512,0 "
                                                                  "vector-common-parallel=128,512,0}"}, kernel.hash))
    assert "not allowed in a pipeline candidate" in tiles.reason and "tiling candidate" in tiles.reason
    outline = evaluator.evaluate(Candidate("pipeline", {"pipeline": "mlirforge-outline-kernels"}, kernel.hash))
    assert "mlirforge-outline-kernels not allowed" in outline.reason


def test_a_pipeline_orders_our_passes_with_the_iree_compilers_own(kernel):
    from mlirforge.llm_rewrite.candidates.pipeline import REGISTRY_PASSES
    from mlirforge.lowering.ir import ir, passmanager

    with ir.Context():  # every pass offered is in this IREE's registry (an upgrade that drops one fails here)
        for name in REGISTRY_PASSES:
            passmanager.PassManager.parse(f"builtin.module(func.func({name}))")
    kind = candidates.get("pipeline")
    packed = kind.build(kernel, {"pipeline": "mlirforge-generalize-named-ops,"
                                             "linalg-block-pack-matmul{block-factors=16,16,16},canonicalize,cse"},
                        EvalSettings())
    assert "linalg.pack" in packed.source and "linalg.matmul ins" not in packed.source
    with pytest.raises(CandidateRejected, match="not allowed in a pipeline candidate"):
        kind.build(kernel, {"pipeline": "canonicalize,convert-linalg-to-loops"}, EvalSettings())
    with pytest.raises(CandidateRejected, match="no-such-option"):
        kind.build(kernel, {"pipeline": "linalg-block-pack-matmul{no-such-option=1}"}, EvalSettings())
    assert "linalg-block-pack-matmul" in kind.prompt(kernel)


def test_a_registry_pass_that_crashes_or_hangs_on_its_options_is_a_verdict(kernel, monkeypatch):
    """`linalg-block-pack-matmul{block-factors=0,0,0}` segfaults IREE (or hangs in its crash handler): it
    runs in `iree-opt`, a subprocess, so it costs a rejection, never the search's process."""
    from mlirforge.llm_rewrite.candidates import pipeline

    monkeypatch.setattr(pipeline, "REGISTRY_TIMEOUT_S", 3.0)
    with pytest.raises(CandidateRejected, match="(crashed the IREE compiler|took longer than 3 s)") as caught:
        candidates.get("pipeline").build(kernel, {"pipeline": "linalg-block-pack-matmul{block-factors=0,0,0}"},
                                         EvalSettings())
    assert "its options are not valid" in caught.value.reason and caught.value.stage == Stage.PARSE


def test_a_registered_module_kind_is_offered_in_the_module_prompt():
    from mlirforge.llm_rewrite.prompts.build import describe_module_kinds

    class DriverOnly(CandidateKind):
        name, scope = "driver-only", "module"

        def prompt(self, kernel):
            return '{"kind": "driver-only", "driver": "local-task"}'

    kind = candidates.register(DriverOnly())
    try:
        text = describe_module_kinds()
    finally:
        candidates.unregister(kind.name)
    assert '"kind": "flags"' in text and '{"kind": "driver-only", "driver": "local-task"}' in text
