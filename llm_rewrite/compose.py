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
from mlirforge.llm_rewrite.types import Candidate, Kernel, Stage, Verdict
from mlirforge.lowering.ir import ir
from mlirforge.passes import parse_pipeline, run_pipeline, substitute, tag_kernel_locations

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
    profile: dict[str, dict] = dataclasses.field(default_factory=dict)
    """kernel hash -> its dispatches in the unoptimised model and in the model with every winner that
    built (`in_model.KernelInModel.to_json()` under "before"/"after") and `why`: the sentence that
    explains a gap between its speedup alone and in the model. Empty if profiling failed."""


def verified_source(winner: Winner, settings: EvalSettings) -> str:
    """The standalone kernel module that was verified: the Verdict's own (a rewrite cached by an
    older mlirforge has none and is rebuilt from its candidate, deterministically)."""
    kernel, cand, verdict = winner
    return verdict.source or build_candidate(kernel, cand, settings).source


def apply_winners(outlined: str, winners: list[Winner], settings: EvalSettings, tagged: bool = False) -> str:
    """Substitute each winner's verified kernel into the outlined model and inline.

    `tagged`: every op keeps a name location naming its kernel (`kernel:<hash>`; a
    substituted kernel keeps the hash of the kernel it replaces), printed with debug
    info, for `in_model.kernel_times`; IREE forms the same dispatches from either text.
    """
    with ir.Context(), ir.Location.unknown():
        module = ir.Module.parse(outlined)
        for winner in winners:
            substitute(module, ir.Module.parse(verified_source(winner, settings)))
        if tagged:
            tag_kernel_locations(module)
        run_pipeline(module, parse_pipeline("mlirforge-inline-kernels"))
        return module.operation.get_asm(enable_debug_info=tagged)


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


def confirm_in_model(model: ModelEvaluator, outlined: str, winner: Winner, settings: EvalSettings,
                     baseline: str | None = None) -> Verdict:
    """A kernel win measured where it runs: the model with this one rewrite against the model without
    it, same flags and driver (`settings`), interleaved in the worker. Its numerics were checked alone;
    the set's are checked again by `compose`. `baseline`: `apply_winners(outlined, [], ...)`, if built."""
    try:
        with_it = apply_winners(outlined, [winner], settings)
    except Exception as exc:  # noqa: BLE001 - a substitution failure is this candidate's verdict
        return Verdict(winner[1].id, stage=Stage.BUILD, reason=f"cannot be substituted into the model: {exc}")
    baseline = apply_winners(outlined, [], settings) if baseline is None else baseline
    return _ab(model, baseline, with_it, list(settings.base_flags), settings.driver, settings,
               f"in-model-{winner[1].id}")


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
        if w[1].kind_info.runtime != "iree":
            # Its PTX would have to be embedded as an IREE custom dispatch, which is not built yet.
            dropped.append((w, f"a {w[1].kind} kernel cannot be placed in the IREE artifact yet"))
            continue
        try:
            compile_or_reject(apply_winners(outlined, [w], settings), flags, model.cache)
            kept.append(w)
        except CandidateRejected as exc:
            dropped.append((w, f"does not build in the model: {exc.reason}"))
    if not kept and not module_choice:
        progress("compose-final", {"verdict": None})
        return Composition(baseline_inlined, base_flags, base_driver, [], dropped, None)

    full = apply_winners(outlined, kept, settings) if kept else baseline_inlined
    profile = _profile(model, outlined, kept, flags, driver, settings, (baseline_inlined, full))
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
        return Composition(baseline_inlined, base_flags, base_driver, [], dropped, verdict, in_model, profile)
    return Composition(full, flags, driver, kept, dropped, verdict, in_model, profile)


def _profile(model: ModelEvaluator, outlined: str, winners: list[Winner], flags: list[str], driver: str,
             settings: EvalSettings, untagged: tuple[str, str]) -> dict[str, dict]:
    """Each winner's dispatches in the unoptimised model and with all winners in it (see `Composition.profile`).
    `untagged`: those two models as composition already built them (without kernel tags).

    Diagnostics only: a failure is logged and costs nothing but the explanation.
    """
    if not winners:
        return {}
    from mlirforge.llm_rewrite.in_model import explain, kernel_times

    try:
        times = []
        for ws, fl, mlir in (([], list(model.settings.base_flags), untagged[0]), (winners, flags, untagged[1])):
            times.append(kernel_times(apply_winners(outlined, ws, settings, tagged=True), mlir, fl, driver,
                                      model.parameters, model.inputs, model.cache))
    except Exception as exc:  # noqa: BLE001 - the profile explains; it must never cost the composition
        log.warning("mlirforge: could not profile the model's dispatches (%s: %s)", type(exc).__name__, exc)
        return {}
    before, after = times
    out = {}
    for kernel, _, verdict in winners:
        b, a = before.get(kernel.hash), after.get(kernel.hash)
        out[kernel.hash] = {"before": b.to_json() if b else None, "after": a.to_json() if a else None,
                            "why": explain(kernel.hash, verdict.speedup, b, a, verdict.timing.get("baseline_us"))}
    return out
