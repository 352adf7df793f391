"""`pipeline` candidates: an ordered list of our passes, run on one kernel.

Payload: {"pipeline": "pass-a,pass-b{option=value}"}: the textual pipeline of
`mlirforge-opt -p`. The passes must exist in our registry and may not change
the kernel's signature.
"""

from __future__ import annotations

from typing import Any

from mlirforge.llm_rewrite.candidates.base import Built, CandidateKind, CandidateRejected, first_error, main_function
from mlirforge.llm_rewrite.settings import EvalSettings
from mlirforge.llm_rewrite.types import Kernel, Stage

KERNEL_PASSES = ("mlirforge-fold-transpose-into-matmul", "mlirforge-conv-to-channels-last",
                 "mlirforge-generalize-named-ops")
"""Passes a pipeline candidate may run on one kernel. Outlining, inlining and substitution are the
search's own; tile sizes go through `tiling` candidates, whose sizes are checked (`tiling.check_tile_sizes`)."""


def apply_pipeline(kernel: Kernel, text: str, allowed: tuple[str, ...] | None = None) -> str:
    """The kernel's standalone module after the pipeline `text` (its passes among `allowed`, if given);
    CandidateRejected for a bad or failing one."""
    from mlirforge.lowering.ir import ir
    from mlirforge.passes import PassFailure, PipelineError, function_type, parse_pipeline, run_pipeline

    with ir.Context(), ir.Location.unknown():
        module = ir.Module.parse(kernel.module)
        want = str(function_type(main_function(module)))
        try:
            passes = parse_pipeline(text)
        except PipelineError as exc:
            raise CandidateRejected(Stage.PARSE, str(exc)) from None
        if allowed is not None:
            other = sorted({p.name for p in passes} - set(allowed))
            if other:
                raise CandidateRejected(Stage.PARSE, f"pass(es) {', '.join(other)} not allowed in a pipeline "
                                                     f"candidate (allowed: {', '.join(allowed)}; tile sizes: a "
                                                     "tiling candidate)")
        try:
            run_pipeline(module, passes)
        except (ir.MLIRError, PassFailure) as exc:
            raise CandidateRejected(Stage.PARSE, f"pipeline failed: {first_error(exc)}") from None
        got = str(function_type(main_function(module)))
        if got != want:
            raise CandidateRejected(Stage.SIGNATURE, f"the rewrite changed the signature to {got}")
        return module.operation.get_asm()


class PipelineKind(CandidateKind):
    name = "pipeline"
    fields = frozenset({"pipeline"})

    def check_payload(self, payload: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(payload.get("pipeline"), str):
            raise ValueError("pipeline candidate needs 'pipeline': a comma-separated pass pipeline string")
        return payload

    def build(self, kernel: Kernel, payload: dict[str, Any], settings: EvalSettings) -> Built:
        text = payload.get("pipeline")
        if not isinstance(text, str):
            raise CandidateRejected(Stage.PARSE, "pipeline candidate without a 'pipeline' string")
        return Built(apply_pipeline(kernel, text, KERNEL_PASSES), tuple(settings.base_flags))

    def describe(self, payload: dict[str, Any]) -> str:
        return "pipeline " + str(payload.get("pipeline", ""))

    def prompt(self, kernel: Kernel | None) -> str:
        return "\n".join([
            '{"kind": "pipeline", "pipeline": "pass-a,pass-b{option=value}"}',
            "   Our passes, run on the kernel in order (names and options below).",
        ])


KIND = PipelineKind()
