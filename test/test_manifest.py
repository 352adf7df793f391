"""The typed manifest: what an artifact's manifest.json holds, written and read in one place.

A manifest with one defect is rejected with a message naming the file and the
key; a manifest read back equals the one written; a compiled artifact loads to
typed records, and the evidence a search produced reaches the manifest whole.
"""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

import mlirforge
from mlirforge.errors import UserError
from mlirforge.llm_rewrite.types import Candidate, Kernel, Stage, TensorSpec, Verdict, json_safe
from mlirforge.evidence import (
    BaselineRecord,
    DroppedRecord,
    EquivalenceEvidence,
    OptimizationRecord,
    RewriteRecord,
    TimingEvidence,
    VerdictRecord,
)
from mlirforge.manifest import (
    CompileRecord,
    InputSpec,
    Manifest,
)

# What the worker and the evaluator put in a kept rewrite's verdict (`worker.check`, `worker.time_ab`,
# `evaluate.retime`, `KernelEvaluator.evaluate`), with one key no record knows.
EQUIVALENCE = {"seeds": 6, "distributions": ["normal", "wide", "tiny", "large", "all_negative", "edge"],
               "max_error": 1.5e-6, "tolerance": 2.0e-5, "flags": ["--iree-opt-level=O3"], "novel": {"x": 1}}
TIMING = {"baseline_us": 12.5, "candidate_us": 10.0, "speedup": 1.25, "ci_low": 1.2, "ci_high": 1.3,
          "rounds": 30, "inner": 5, "confidence": 0.95,
          "retimed_after": {"speedup": 1.22, "ci_low": 1.01, "ci_high": 1.4}}


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):
        return torch.relu(self.fc(x))


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """A tiny model compiled by the Python API: (artifact directory, its manifest.json as written)."""
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("manifest") / "tiny"
    summary = mlirforge.compile_model(Tiny(), [torch.randn(2, 4)], out, time_it=False)
    assert summary.matches_eager, summary.check_message
    return out, json.loads((out / "manifest.json").read_text())


def _kernel() -> Kernel:
    spec = TensorSpec((2, 4), "f32")
    return Kernel(hash="0123456789abcdef", name="kernel_0", root="linalg.matmul", module="module {}",
                  inputs=[spec], outputs=[spec], reduction_depth=4)


def _kept_verdict(cand: Candidate) -> Verdict:
    return Verdict(cand.id, stage="done", built=True, equivalent=True, accepted=True, reason="1.250x faster",
                   equivalence=json.loads(json.dumps(EQUIVALENCE)), timing=json.loads(json.dumps(TIMING)))


def _searched(manifest: Manifest) -> Manifest:
    """`manifest` as a search would leave it: one kept rewrite, an end-to-end verdict, a dropped winner."""
    cand = Candidate("kernel", {"mlir": "func.func @main() { return }"}, "0123456789abcdef", proposer="llm",
                     model="m", prompt_hash="ab" * 8, request=3)
    rewrite = RewriteRecord.from_verdict(_kernel(), cand, _kept_verdict(cand), "transcript.jsonl")
    end_to_end = Verdict("model", stage="timing", built=True, equivalent=True, accepted=False,
                         reason="not significantly faster",
                         equivalence={**EQUIVALENCE, "driver": "local-task"}, timing=dict(TIMING))
    optimization = OptimizationRecord(
        proposer="llm", budget_s=60.0, transcript="transcript.jsonl", llm={"model": "m", "requests": 3},
        stopped="budget spent", rejected_answers=1, evaluations=4, seconds=12.5, interrupted=False,
        module_candidate=None, end_to_end=VerdictRecord.from_verdict(end_to_end),
        dropped=[DroppedRecord(kernel="fedcba9876543210", candidate="kernel (replacement body)", why="slower")],
        baseline=BaselineRecord(mlir="baseline.mlir", iree_flags=[], driver="local-task"),
    )
    return dataclasses.replace(manifest, rewrites=[rewrite], optimization=optimization)


def _reject(tmp_path, data) -> str:
    """The message `mlirforge.load` gives for an artifact whose manifest.json holds `data`."""
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(UserError) as info:
        mlirforge.load(tmp_path)
    return str(info.value)


# -- a compiled artifact's manifest -------------------------------------------------------------


def test_a_compiled_artifact_loads_to_a_typed_manifest(compiled):
    out, written = compiled
    artifact = mlirforge.load(out)
    m = artifact.manifest
    assert isinstance(m, Manifest) and m.version == written["version"] == 2
    assert m.inputs == [InputSpec(shape=(2, 4), dtype="float32")]
    assert isinstance(m.compile, CompileRecord) and isinstance(m.compile.seconds, float)
    assert m.compile.module_key == written["compile"]["module_key"]
    assert m.copy_inputs == [] and m.module_inputs == [0] and m.result_dtypes == ["float32"]
    assert m.out_plan == [("computed", 0)] and isinstance(m.out_spec, str) and m.out_structseq is None
    assert m.parameters == "parameters.irpa" and len(m.parameter_names) == 2
    assert isinstance(m.tool_versions["iree-base-compiler"], str) and m.target["fingerprint"]
    assert m.rewrites == [] and m.optimization is None and "optimization" not in written
    # The writer and the reader agree: the record read back writes the file it was read from.
    assert m.to_json() == written
    x = torch.randn(2, 4)
    assert artifact(x).shape == (2, 3)


def test_a_manifest_round_trips_through_json(compiled):
    _, written = compiled
    manifest = _searched(Manifest.from_json(written))
    again = Manifest.from_json(json.loads(json.dumps(manifest.to_json())))
    assert again == manifest
    assert again.optimization.end_to_end.stage is Stage.TIMING
    rewrite = again.rewrites[0]
    assert isinstance(rewrite.equivalence, EquivalenceEvidence) and isinstance(rewrite.timing, TimingEvidence)
    assert rewrite.timing.ci_low == 1.2 and rewrite.equivalence.seeds == 6


def test_a_kept_rewrite_keeps_every_key_of_its_evidence():
    cand = Candidate("kernel", {"mlir": "func.func @main() { return }"}, "0123456789abcdef", request=None)
    verdict = _kept_verdict(cand)
    record = RewriteRecord.from_verdict(_kernel(), cand, verdict, "transcript.jsonl").to_json()
    # The shape the manifest had before it was typed: no transcript for a candidate no request proposed.
    assert record == {"kernel": "0123456789abcdef", "kernel_root": "linalg.matmul", "kernel_name": "kernel_0",
                      "candidate": cand.to_json(), "equivalence": EQUIVALENCE, "timing": TIMING,
                      "reason": "1.250x faster"}


def test_an_end_to_end_verdict_is_written_as_the_verdict_is():
    failed = Verdict("model", stage="numerics", built=True, equivalent=False, reason="not equivalent",
                     equivalence={"seeds": 2, "distributions": ["normal", "wide"], "max_error": float("inf"),
                                  "tolerance": 0.0, "distribution": "wide", "output": 0, "why": "3 of 6 differ",
                                  "flags": []})
    crashed = Verdict("model", stage="numerics", built=True, reason="worker crashed", equivalence={"flags": []})
    for verdict in (failed, crashed):
        record = VerdictRecord.from_verdict(verdict)
        assert json_safe(record.to_json()) == verdict.to_json()
    assert VerdictRecord.from_verdict(failed).equivalence.max_error == math.inf
    assert not VerdictRecord.from_verdict(crashed).equivalence.checked


# -- rejected manifests -------------------------------------------------------------------------


def test_another_version_is_rejected(tmp_path, compiled):
    message = _reject(tmp_path, {**compiled[1], "version": 1})
    assert message == (f"{tmp_path}: unsupported artifact format mlirforge-artifact v1 "
                       "(this mlirforge reads mlirforge-artifact v2; compile the model again)")


def test_another_format_is_rejected(tmp_path, compiled):
    message = _reject(tmp_path, {**compiled[1], "format": "onnx"})
    assert message.startswith(f"{tmp_path}: unsupported artifact format onnx v2 ")


def test_a_manifest_that_is_not_an_object_is_rejected(tmp_path):
    assert _reject(tmp_path, [1, 2]) == f"{tmp_path / 'manifest.json'}: the manifest must be a JSON object, not [1, 2]"


def test_a_missing_key_is_rejected(tmp_path, compiled):
    data = dict(compiled[1])
    del data["copy_inputs"]
    assert _reject(tmp_path, data) == f"{tmp_path / 'manifest.json'}: 'copy_inputs' is missing"


def test_a_missing_nested_key_is_rejected(tmp_path, compiled):
    data = json.loads(json.dumps(compiled[1]))
    del data["compile"]["module_key"]
    assert _reject(tmp_path, data) == f"{tmp_path / 'manifest.json'}: 'compile.module_key' is missing"


def test_a_key_of_the_wrong_type_is_rejected(tmp_path, compiled):
    message = _reject(tmp_path, {**compiled[1], "copy_inputs": "0"})
    assert message == f"{tmp_path / 'manifest.json'}: 'copy_inputs' must be a list of integers, not \"0\""
    # JSON's true is not an integer (Python's bool is an int).
    message = _reject(tmp_path, {**compiled[1], "copy_inputs": [True]})
    assert message == f"{tmp_path / 'manifest.json'}: 'copy_inputs' must be a list of integers, not [true]"


def test_an_input_of_the_wrong_shape_type_is_rejected(tmp_path, compiled):
    data = json.loads(json.dumps(compiled[1]))
    data["inputs"][0]["shape"] = [2.5, 4]
    message = _reject(tmp_path, data)
    assert message == f"{tmp_path / 'manifest.json'}: 'inputs[0].shape' must be a list of integers, not [2.5, 4]"


def test_an_unknown_output_kind_is_rejected(tmp_path, compiled):
    message = _reject(tmp_path, {**compiled[1], "out_plan": [["view", 0]]})
    assert message == (f"{tmp_path / 'manifest.json'}: 'out_plan' must be a list of [kind, value] pairs "
                       "(kind computed or input with an integer, or const), not [[\"view\", 0]]")


def test_an_unknown_stage_is_rejected(tmp_path, compiled):
    data = _searched(Manifest.from_json(compiled[1])).to_json()
    data["optimization"]["end_to_end"]["stage"] = "verified"
    assert _reject(tmp_path, data) == (
        f"{tmp_path / 'manifest.json'}: 'optimization.end_to_end.stage' is 'verified', not a stage of the "
        "evaluation (parse, signature, build, numerics, timing, done)")


def test_a_rewrite_without_its_timing_evidence_is_rejected(tmp_path, compiled):
    data = _searched(Manifest.from_json(compiled[1])).to_json()
    del data["rewrites"][0]["timing"]["ci_low"]
    assert _reject(tmp_path, data) == f"{tmp_path / 'manifest.json'}: 'rewrites[0].timing.ci_low' is missing"


def test_a_rewrite_without_its_equivalence_evidence_is_rejected(tmp_path, compiled):
    data = _searched(Manifest.from_json(compiled[1])).to_json()
    data["rewrites"][0]["equivalence"] = {"flags": []}
    assert _reject(tmp_path, data) == f"{tmp_path / 'manifest.json'}: 'rewrites[0].equivalence.seeds' is missing"


def test_a_rewrite_whose_evidence_has_the_wrong_type_is_rejected(tmp_path, compiled):
    data = _searched(Manifest.from_json(compiled[1])).to_json()
    data["rewrites"][0]["equivalence"]["max_error"] = "small"
    assert _reject(tmp_path, data) == (f"{tmp_path / 'manifest.json'}: 'rewrites[0].equivalence.max_error' "
                                       "must be a number or null, not \"small\"")


# -- what the types cannot say: checked on load, not mid-call -----------------------------------


def _reject_in_copy(tmp_path, compiled, edit) -> str:
    """The load error for a copy of the compiled artifact whose manifest `edit(data)` changed."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(compiled[0], copy)
    data = json.loads(json.dumps(compiled[1]))
    edit(data)
    return _reject(copy, data).removeprefix(f"{copy / 'manifest.json'}: ")


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(driver="cuda-bogus"), "'driver' is 'cuda-bogus', not one of"),
    (lambda d: d.update(out_spec="not json"), "'out_spec' is not a pytree TreeSpec"),
    (lambda d: d.update(module="nothere.vmfb"), "'module' names nothere.vmfb, which is not in the artifact"),
    (lambda d: d.update(module="../../etc/hostname"), "'module' must name a file in the artifact directory"),
    (lambda d: d.update(module_inputs=[5]), "'module_inputs' holds [5], outside the 1 inputs"),
    (lambda d: d.update(out_plan=[["computed", 9]]), "'out_plan (computed)' holds [9], outside the 1 module results"),
    (lambda d: d.update(result_dtypes=["float99"]), "'result_dtypes' holds 'float99', not a torch dtype"),
    (lambda d: d.update(out_structseq="nope"), "'out_structseq' is 'nope', not a torch.return_types name"),
    (lambda d: d.update(copy_inputs=[3]), "'copy_inputs' holds [3], outside the 1 module inputs"),
])
def test_a_manifest_inconsistent_with_itself_or_its_directory_is_rejected_on_load(tmp_path, compiled, edit, message):
    assert message in _reject_in_copy(tmp_path, compiled, edit)


def test_a_kept_rewrite_must_carry_evidence_that_admits_it(tmp_path, compiled):
    rewrite = RewriteRecord.from_verdict(_kernel(), Candidate("kernel", {"mlir": "x"}, "k"), _kept_verdict(
        Candidate("kernel", {"mlir": "x"}, "k"))).to_json()
    rewrite["timing"]["ci_low"] = 0.5
    message = _reject_in_copy(tmp_path, compiled, lambda d: d.update(rewrites=[rewrite]))
    assert "'rewrites[0].timing.ci_low' is 0.5: a kept rewrite must be faster with confidence" in message


def test_an_optimised_artifact_under_auto_decides_its_driver_where_it_runs():
    from mlirforge.api import artifact_driver

    # The default: the search's local-task win was measured in a worker with no PyTorch threads.
    assert artifact_driver("auto", "local-task", verified=True) == "auto"
    # A driver the user named is where the search starts, and the search may override it.
    assert artifact_driver("local-sync", "local-task", verified=True) == "local-task"
    # Nothing kept: the unoptimised program, under the user's driver.
    assert artifact_driver("local-sync", "local-task", verified=False) == "local-sync"
    assert artifact_driver("auto", "local-sync", verified=False) == "auto"
