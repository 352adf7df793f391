"""Composition keeps the set of verified rewrites that pays end to end.

The decisions are tested on a model of the timings (each rewrite saves a known
share of the model's time), so they are exact: the bar applies to the set, a
member is pruned only when the model is measurably slower with it, and nothing
is compared with itself. `test_search.py` has the real, timed end-to-end case.
"""

from __future__ import annotations

import pytest

from mlirforge.llm_rewrite import compose as compose_mod
from mlirforge.llm_rewrite.evaluate import EvalSettings
from mlirforge.llm_rewrite.types import Candidate, Kernel, Stage, TensorSpec, Verdict

MIN_GAIN = EvalSettings().min_gain
NOISE = 0.01  # half-width of every simulated CI


def _winner(name: str, alone: float) -> tuple[Kernel, Candidate, Verdict]:
    k = Kernel(name, name, "linalg.matmul", f"module {{}} // {name}", [TensorSpec((1,), "f32")],
               [TensorSpec((1,), "f32")], 1)
    c = Candidate("kernel", {"mlir": name}, k.hash)
    v = Verdict(c.id, stage=Stage.DONE, built=True, equivalent=True, accepted=True,
                timing={"speedup": alone, "ci_low": alone - NOISE, "ci_high": alone + NOISE}, source=name)
    return k, c, v


def _verdict(cand_id: str, speedup: float, bar: float) -> Verdict:
    t = {"speedup": speedup, "ci_low": speedup - NOISE, "ci_high": speedup + NOISE,
         "baseline_us": 100.0, "candidate_us": 100.0 / speedup}
    accepted = t["ci_low"] >= bar
    return Verdict(cand_id, stage=Stage.DONE if accepted else Stage.TIMING, built=True, equivalent=True,
                   accepted=accepted, timing=t, reason=f"{speedup:.3f}x")


class _Timed:
    """A model whose time is 100 µs minus what each substituted rewrite saves (negative: it costs)."""

    def __init__(self, saves: dict[str, float], module_saves: float = 0.0):
        self.saves, self.module_saves = saves, module_saves
        self.settings = EvalSettings()
        self.cache = None
        self.evaluated: list[frozenset[str]] = []

    def time(self, members: frozenset[str], flags) -> float:
        extra = self.module_saves if list(flags) != list(self.settings.base_flags) else 0.0
        return 100.0 - sum(self.saves[m] for m in members) - extra

    def evaluate(self, cand_id, mlir, flags, driver=None) -> Verdict:
        members = _members(mlir)
        self.evaluated.append(members)
        return _verdict(cand_id, 100.0 / self.time(members, flags), 1 + MIN_GAIN)


def _members(mlir: str) -> frozenset[str]:
    return frozenset(mlir.split(",")) - {""}


@pytest.fixture
def timed(monkeypatch):
    """Composition on `_Timed` models: substitution lists the members, builds always succeed."""
    monkeypatch.setattr(compose_mod, "apply_winners", lambda outlined, ws, s, tagged=False: ",".join(sorted(w[0].name for w in ws)))
    monkeypatch.setattr(compose_mod, "compile_or_reject", lambda *a, **k: None)

    def ab(model, ref_mlir, cand_mlir, flags, driver, settings, cand_id):
        ratio = model.time(_members(ref_mlir), flags) / model.time(_members(cand_mlir), flags)
        return _verdict(cand_id, ratio, 1 + settings.min_gain)

    monkeypatch.setattr(compose_mod, "_ab", ab)
    return compose_mod


def _compose(timed, model, winners, flags=None):
    flags = list(model.settings.base_flags) if flags is None else flags
    return timed.compose(model, "outlined", winners, flags, model.settings.driver, model.settings)


def test_rewrites_that_pay_only_together_are_all_kept(timed):
    # Each saves 2.5% of the model: below the 3% bar alone, 7.5% together.
    winners = [_winner(n, 1.4) for n in ("a", "b", "c")]
    model = _Timed({"a": 2.5, "b": 2.5, "c": 2.5})
    comp = _compose(timed, model, winners)
    assert [w[0].name for w in comp.kept] == ["a", "b", "c"] and comp.dropped == []
    assert comp.verdict.accepted and comp.verdict.speedup == pytest.approx(100 / 92.5)
    assert model.evaluated == [frozenset("abc")]  # the set, checked once: nothing was pruned
    # Each member's in-model figure is its own A/B, not the kernel-alone 1.4x.
    assert comp.in_model["a"]["speedup"] == pytest.approx(95.0 / 92.5)


def test_only_a_member_that_measurably_hurts_is_pruned_and_the_rest_reverified(timed):
    winners = [_winner("good", 1.5), _winner("neutral", 1.2), _winner("bad", 1.3)]
    model = _Timed({"good": 10.0, "neutral": 0.0, "bad": -4.0})  # fast alone, slower in the model
    comp = _compose(timed, model, winners)
    assert sorted(w[0].name for w in comp.kept) == ["good", "neutral"]
    ((dropped, why),) = comp.dropped
    assert dropped[0].name == "bad" and why.startswith("makes the model slower")
    assert model.evaluated == [frozenset({"good", "neutral", "bad"}), frozenset({"good", "neutral"})]
    assert comp.verdict.accepted and comp.verdict.speedup == pytest.approx(100 / 90)
    assert comp.mlir == "good,neutral"


def test_a_set_that_does_not_pay_is_dropped_whole_and_the_baseline_is_written(timed):
    winners = [_winner("a", 1.1), _winner("b", 1.1)]
    comp = _compose(timed, _Timed({"a": 1.0, "b": 0.5}), winners)
    assert comp.kept == [] and len(comp.dropped) == 2 and comp.mlir == ""
    assert all("not faster" in why for _, why in comp.dropped)
    assert comp.verdict is not None and not comp.verdict.accepted


def test_nothing_is_compared_with_itself(timed):
    model = _Timed({})
    comp = _compose(timed, model, [])
    assert comp.verdict is None and model.evaluated == []


def test_a_module_wide_choice_alone_is_still_verified(timed):
    model = _Timed({}, module_saves=8.0)
    comp = _compose(timed, model, [], flags=[*model.settings.base_flags, "--iree-opt-level=O3"])
    assert comp.verdict.accepted and comp.flags[-1] == "--iree-opt-level=O3"
    assert model.evaluated == [frozenset()]


def test_a_kernel_win_slower_in_the_model_is_not_a_win_and_winners_rank_by_the_model():
    from mlirforge.llm_rewrite.search import _better, apply_in_model

    fast_alone = _winner("a", 1.4)[2]
    apply_in_model(fast_alone, _verdict("m", 0.96, 1.03))  # CI 0.95-0.97: measurably slower in the model
    assert not fast_alone.accepted and "1.400x alone but 0.960x in the model" in fast_alone.reason
    assert fast_alone.timing["in_model"]["speedup"] == pytest.approx(0.96)

    modest, big = _winner("b", 1.2)[2], _winner("c", 1.6)[2]
    apply_in_model(modest, _verdict("m", 1.08, 1.03))
    apply_in_model(big, _verdict("m", 1.02, 1.03))  # faster alone, less so where it runs
    assert modest.accepted and big.accepted and "1.080x in the model" in modest.reason
    assert _better(modest, (None, big)) and not _better(big, (None, modest))

    unconfirmed = _winner("d", 1.3)[2]
    apply_in_model(unconfirmed, Verdict("m", reason="build: failed"))
    assert unconfirmed.accepted and unconfirmed.timing["in_model"] == {"error": "build: failed"}


def test_a_win_rejected_in_the_model_says_so_in_the_next_prompt():
    from mlirforge.llm_rewrite.search import apply_in_model

    verdict = _winner("a", 1.4)[2]
    apply_in_model(verdict, _verdict("m", 0.96, 1.03))
    assert "1.400x (95% CI 1.390-1.410) alone, 0.960x in the model" in verdict.feedback()
    assert verdict.feedback().endswith("slower where it runs")


def test_the_explanation_names_a_reference_that_pays_more_alone_than_in_the_model():
    from mlirforge.llm_rewrite.in_model import KernelInModel, explain

    before = KernelInModel(246.0, ("main_dispatch_19",), ("7f2782ae71c41c96",))
    after = KernelInModel(205.0, ("main_dispatch_19",), ())
    why = explain("d5329a09d3bdae8c", 1.46, before, after, alone_us=335.0)
    assert "alone the unoptimised kernel takes 335.0 µs but its dispatches in the model 246.0 µs" in why
    assert "246.0 µs per call in the unoptimised model and 205.0 µs in the optimised one (1.20x; 1.46x alone)" in why
    assert "IREE fused kernel(s) 7f2782ae into its dispatch" in why
    # Alone and in the model within noise of each other: nothing to explain about the context.
    assert "alone the unoptimised" not in explain("k", 1.46, before, after, alone_us=250.0)
