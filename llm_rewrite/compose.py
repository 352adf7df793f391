"""Composition: put the per-kernel winners into the model and keep the set that pays end to end.

Each winner's standalone kernel (the very source that was verified, carried
by its Verdict) is substituted into the outlined model and the kernels are
inlined. Then:

1. each winner must build inside the model (IREE forms dispatches differently there);
2. the full set is checked and timed against the unoptimised model: the
   `min_gain` bar applies to the set's end-to-end gain, not to each member's
   share of it (three 1.4x kernels holding 70% of the time give ~1.25x
   together, while each alone moves the model by 2-7%);
3. a member is pruned only if it measurably hurts: an A/B of the model with
   and without it (same flags and driver) whose whole CI says "slower with
   it". Each member's A/B is also its in-model speedup, shown to the user next
   to the speedup it had alone (`Composition.in_model`);
4. if anything was pruned, the rest is checked and timed again; the verdict
   the user sees is always that of the program that is written.

Nothing is ever compared with itself: with no winner and no module-wide
choice there is no end-to-end verdict (None), not a 1.0x of two identical builds.
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
    verdict: Verdict | None  # optimised vs unoptimised model; None when nothing differs from it
    in_model: dict[str, dict] = dataclasses.field(default_factory=dict)
    """kernel hash -> its in-model A/B (the model with the rewrite vs without it, the rest of the
    set in place): speedup, ci_low, ci_high; the kernel's alone figure is its Verdict's."""


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


def _in_model(verdict: Verdict) -> dict:
    """An in-model A/B as the summary, report and manifest show it (its error when it was not timed)."""
    t = verdict.timing or {}
    figures = {k: t[k] for k in ("speedup", "ci_low", "ci_high", "baseline_us", "candidate_us") if t.get(k) is not None}
    return figures or {"error": verdict.reason}


def compose(
    model: ModelEvaluator,
    outlined: str,
    winners: list[Winner],
    flags: list[str],
    driver: str,
    settings: EvalSettings,
    progress=lambda event, info: None,
) -> Composition:
    """Build the optimised model from winners and verify the set pays off end to end."""
    base_flags, base_driver = list(model.settings.base_flags), model.settings.driver
    baseline_inlined = apply_winners(outlined, [], settings)
    module_choice = flags != base_flags or driver != base_driver
    kept, dropped = [], []
    # A kernel that built alone may not build inside the model, where IREE
    # forms its dispatches differently: each winner must build in place.
    for w in winners:
        try:
            compile_or_reject(apply_winners(outlined, [w], settings), flags, model.cache)
            kept.append(w)
        except CandidateRejected as exc:
            dropped.append((w, f"does not build in the model: {exc.reason}"))
    if not kept and not module_choice:
        progress("compose-final", {"verdict": None})
        return Composition(baseline_inlined, base_flags, base_driver, [], dropped, None)

    full = apply_winners(outlined, kept, settings) if kept else baseline_inlined
    verdict = model.evaluate("model", full, flags, driver)
    progress("compose-set", {"verdict": verdict, "kept": len(kept)})
    in_model: dict[str, dict] = {}
    if len(kept) == 1 and not module_choice:
        in_model[kept[0][0].hash] = _in_model(verdict)  # with vs without it is the set's own verdict
    elif kept:
        pruned = False
        for w in sorted(kept, key=lambda x: x[2].speedup or 0.0):  # the weakest alone first
            others = [x for x in kept if x is not w]
            without = apply_winners(outlined, others, settings) if others else baseline_inlined
            ab = _ab(model, without, full, flags, driver, settings, f"keep-{w[0].hash}")
            in_model[w[0].hash] = _in_model(ab)
            progress("compose-ablation", {"kernel": w[0], "verdict": ab})
            if ab.timing and ab.timing["ci_high"] < 1.0:  # measurably slower with it: it hurts the set
                kept.remove(w)
                dropped.append((w, f"makes the model slower: {ab.timing['speedup']:.3f}x with it "
                                   f"(95% CI {ab.timing['ci_low']:.3f}-{ab.timing['ci_high']:.3f})"))
                full, pruned = without, True
        if pruned:
            verdict = model.evaluate("model", full, flags, driver) if (kept or module_choice) else None
    if verdict is not None and not verdict.accepted and kept:
        for w in kept:
            dropped.append((w, f"the model with the rewrites is not faster: {verdict.reason}"))
        kept = []
        verdict = model.evaluate("model-flags", baseline_inlined, flags, driver) if module_choice else verdict
        full = baseline_inlined
    progress("compose-final", {"verdict": verdict})
    if verdict is None or not verdict.accepted:
        return Composition(baseline_inlined, base_flags, base_driver, [], dropped, verdict, in_model)
    return Composition(full, flags, driver, kept, dropped, verdict, in_model)
