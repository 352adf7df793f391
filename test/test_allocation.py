"""How the search spends its proposals: round-robin over hot kernels, patience that ignores noise.

The evaluator is replaced by scripted verdicts here: what is under test is the
search loop's allocation, not the checks (those have their own tests with real
IREE builds). Nothing is compiled, so these run in milliseconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlirforge.llm_rewrite import search as search_mod
from mlirforge.llm_rewrite.proposers import Proposer, ProposerStopped
from mlirforge.llm_rewrite.settings import EvalSettings, SearchSettings
from mlirforge.llm_rewrite.types import Candidate, Kernel, Stage, TensorSpec, Verdict


def _kernel(i: int, us: float) -> Kernel:
    spec = TensorSpec((8, 8), "f32")
    return Kernel(hash=f"{i:016x}", name=f"kernel_{i}", root="linalg.matmul", module="module {}",
                  inputs=[spec, spec], outputs=[spec], reduction_depth=8, calls=1, baseline_us=us)


class Counting(Proposer):
    """A new candidate on every request; stops like an LLM whose request budget is spent."""

    name = "counting"

    def __init__(self, max_requests: int = 10_000):
        self.asked: list[str] = []
        self.max_requests = max_requests

    def propose(self, kernel, history, n):
        if len(self.asked) == self.max_requests:
            raise ProposerStopped(f"budget spent: {self.max_requests}/{self.max_requests} requests")
        self.asked.append(kernel.hash)
        return [Candidate("kernel", {"mlir": f"// {kernel.hash} round {len(history)}"}, kernel.hash)]


def _search(monkeypatch, kernels, proposer, verdicts, patience=3):
    """A Search whose evaluator answers `verdicts(kernel, round) -> Verdict`."""

    class ScriptedEvaluator:
        def __init__(self, kernel, *args, **kwargs):
            self.kernel, self.round = kernel, 0

        def evaluate(self, cand):
            self.round += 1
            return verdicts(self.kernel, self.round, cand)

    monkeypatch.setattr(search_mod, "KernelEvaluator", ScriptedEvaluator)
    monkeypatch.setattr(search_mod, "profile_kernels", lambda ks, *a, **kw: ks)
    settings = SearchSettings(budget_s=600, patience=patience, per_round=1, max_kernels=8, min_kernel_share=0.0)
    return search_mod.Search(kernels, None, proposer, settings, EvalSettings(), Path("."), None, None,
                             search_module=False)


def _slower(kernel, round_no, cand):
    return Verdict(cand.id, stage=Stage.TIMING, built=True, equivalent=True, reason="not faster",
                   timing={"speedup": 0.98, "ci_low": 0.95, "ci_high": 1.01})


def test_a_request_budget_is_shared_round_robin_by_the_hot_kernels(monkeypatch):
    kernels = [_kernel(i, us) for i, us in enumerate((300.0, 200.0, 100.0))]
    proposer = Counting(max_requests=6)
    result = _search(monkeypatch, kernels, proposer, _slower, patience=4).run()
    # Hottest first, one round each in turn: each kernel got two of the six requests. Searched one
    # after another, the hottest would have taken four (its patience) and the coolest none.
    assert proposer.asked == [k.hash for k in kernels] * 2
    assert "budget spent" in result.stopped
    assert [len(kr.history) for kr in result.kernels] == [2, 2, 2]


def test_patience_counts_only_gains_that_clear_the_noise(monkeypatch):
    (kernel,) = [_kernel(0, 100.0)]

    def creeping(kernel, round_no, cand):  # each "better" by 0.1%: timing noise, not progress
        low = 1.20 + 0.001 * round_no
        return Verdict(cand.id, stage=Stage.TIMING, built=True, equivalent=True, accepted=True, reason="faster",
                       timing={"speedup": low + 0.05, "ci_low": low, "ci_high": low + 0.1})

    proposer = Counting(max_requests=50)  # without the noise rule the search would run to this
    result = _search(monkeypatch, [kernel], proposer, creeping, patience=3).run()
    # The first win is progress; three rounds that only nudge the CI up by noise end the search,
    # and the best of them is still the one kept.
    assert len(proposer.asked) == 4
    (kr,) = result.kernels
    assert kr.winner[1].timing["ci_low"] == pytest.approx(1.204)

    def real_gains(kernel, round_no, cand):  # each round clears the old best by more than min_gain
        low = 1.2 * 1.05 ** round_no if round_no <= 5 else 1.0
        return Verdict(cand.id, stage=Stage.TIMING, built=True, equivalent=True, accepted=round_no <= 5,
                       reason="", timing={"speedup": low + 0.05, "ci_low": low, "ci_high": low + 0.1})

    proposer = Counting(max_requests=50)
    _search(monkeypatch, [kernel], proposer, real_gains, patience=3).run()
    assert len(proposer.asked) == 5 + 3


def test_a_kernel_the_proposer_has_nothing_for_leaves_the_round_robin(monkeypatch):
    kernels = [_kernel(i, us) for i, us in enumerate((300.0, 200.0))]

    class NothingForTheFirst(Counting):
        def propose(self, kernel, history, n):
            if kernel.hash == kernels[0].hash:
                self.asked.append(kernel.hash)
                return []  # no rejections pending: nothing more for this kernel
            return super().propose(kernel, history, n)

    proposer = NothingForTheFirst()
    _search(monkeypatch, kernels, proposer, _slower, patience=3).run()
    assert proposer.asked.count(kernels[0].hash) == 1 and proposer.asked.count(kernels[1].hash) == 3
