"""Composition: put the per-kernel winners into the model and keep only what pays end to end.

Each winner's standalone kernel (the very source that was verified, carried
by its Verdict) is substituted into the outlined model, the kernels are inlined, and the whole
model is checked and timed against the unoptimised build. Each rewrite must
then earn its place: the model with it must be significantly faster than the
model without it (an A/B of the two, never a number measured earlier), or it
is dropped and the rest re-verified.
"""

from __future__ import annotations

import dataclasses
import logging

from mlirforge.llm_rewrite.candidates import CandidateRejected
from mlirforge.llm_rewrite.evaluate import (
    EvalSettings, ModelEvaluator, build_candidate, compile_or_reject, module_spec, time_and_check, verdict_from_reply,
)
from mlirforge.llm_rewrite.types import Candidate, Kernel, Verdict
from mlirforge.lowering.ir import ir
from mlirforge.passes import parse_pipeline, run_pipeline, substitute

log = logging.getLogger("mlirforge.llm_rewrite")

Winner = tuple[Kernel, Candidate, Verdict]


@dataclasses.dataclass
class Composition:
    mlir: str  # the optimised model, kernels inlined
    flags: list[str]
    driver: str
    kept: list[Winner]
    dropped: list[tuple[Winner, str]]
    verdict: Verdict | None  # optimised vs unoptimised model


def verified_source(winner: Winner, settings: EvalSettings) -> str:
    """The standalone kernel module that was verified: the Verdict's own (a rewrite cached by an
    older mlirforge has none and is rebuilt from its candidate, deterministically)."""
    kernel, cand, verdict = winner
    return verdict.source or build_candidate(kernel, cand, settings).source


def apply_winners(outlined: str, winners: list[Winner], settings: EvalSettings) -> str:
    """Substitute each winner's verified kernel into the outlined model and inline."""
    with ir.Context(), ir.Location.unknown():
        module = ir.Module.parse(outlined)
        for winner in winners:
            substitute(module, ir.Module.parse(verified_source(winner, settings)))
        run_pipeline(module, parse_pipeline("mlirforge-inline-kernels"))
        return module.operation.get_asm()


def _ab(model: ModelEvaluator, ref_mlir: str, cand_mlir: str, flags: list[str], driver: str, settings: EvalSettings,
        cand_id: str) -> Verdict:
    """A/B of two model variants with the same flags and driver."""
    try:
        ref = compile_or_reject(ref_mlir, flags, model.cache)
        cand = compile_or_reject(cand_mlir, flags, model.cache)
    except CandidateRejected as exc:
        return Verdict(cand_id, stage=exc.stage, reason=exc.reason)
    ref_spec = module_spec(model.workdir / f"ab-ref-{cand_id}.vmfb", ref, model.parameters, driver)
    cand_spec = module_spec(model.workdir / f"ab-cand-{cand_id}.vmfb", cand, model.parameters, driver)
    reply = time_and_check(ref_spec, cand_spec, model.inputs, model.depth,
                           dataclasses.replace(settings, driver=driver), model.workdir, check=False)
    return verdict_from_reply(cand_id, reply, settings)


def compose(
    model: ModelEvaluator,
    outlined: str,
    winners: list[Winner],
    flags: list[str],
    driver: str,
    settings: EvalSettings,
    progress=lambda event, info: None,
) -> Composition:
    """Build the optimised model from winners and verify it pays off end to end."""
    baseline_inlined = apply_winners(outlined, [], settings)
    kept, dropped = [], []
    # A kernel that built alone may not build inside the model, where IREE
    # forms its dispatches differently: each winner must build in place.
    for w in winners:
        try:
            compile_or_reject(apply_winners(outlined, [w], settings), flags, model.cache)
            kept.append(w)
        except CandidateRejected as exc:
            dropped.append((w, f"does not build in the model: {exc.reason}"))
    full = apply_winners(outlined, kept, settings) if kept else baseline_inlined
    if len(kept) > 1:
        for w in list(kept):
            others = [x for x in kept if x is not w]
            without = apply_winners(outlined, others, settings)
            verdict = _ab(model, without, full, flags, driver, settings, f"keep-{w[0].hash}")
            progress("compose-ablation", {"kernel": w[0], "verdict": verdict})
            if not verdict.accepted:
                kept.remove(w)
                dropped.append((w, f"does not pay off in the model: {verdict.reason}"))
                full = without
    final = full  # the model with exactly the winners still kept
    verdict = model.evaluate("model", final, flags, driver)
    module_choice = flags != list(model.settings.base_flags) or driver != model.settings.driver
    if not verdict.accepted and kept:
        for w in kept:
            dropped.append((w, f"the model with it is not faster: {verdict.reason}"))
        kept, final = [], baseline_inlined
        if module_choice:  # the kernels did not pay together; the module-wide choice may still
            verdict = model.evaluate("model-flags", final, flags, driver)
    progress("compose-final", {"verdict": verdict})
    if not verdict.accepted:
        return Composition(baseline_inlined, list(model.settings.base_flags), model.settings.driver, [], dropped, verdict)
    return Composition(final, flags, driver, kept, dropped, verdict)
