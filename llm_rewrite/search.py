"""The search loop: module-wide flags, then rounds of proposals per hot kernel.

    for each hot kernel (hottest first, while the budget lasts):
        cached rewrite?  -> reuse it, no search
        rounds: proposer(kernel, history, n) -> candidates -> evaluate each -> Verdict
                the history (candidates and verdicts) feeds the next round
        stop on budget, on `patience` rounds without a better verified rewrite, or Ctrl-C

Every accepted rewrite goes to the rewrite cache as soon as it is verified,
so an interrupted search keeps what it found.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

from mlirforge.llm_rewrite.cache import RewriteCache, context_key
from mlirforge.llm_rewrite.candidates import CandidateRejected
from mlirforge.llm_rewrite.evaluate import EvalSettings, KernelEvaluator, ModelEvaluator
from mlirforge.llm_rewrite.in_model import ModelProfile
from mlirforge.llm_rewrite.settings import SearchSettings
from mlirforge.llm_rewrite.profiling import hot_kernels, profile_kernels
from mlirforge.llm_rewrite.proposers import History, Proposer, ProposerStopped
from mlirforge.llm_rewrite.types import Candidate, Kernel, Stage, Verdict
from mlirforge.lowering.iree_compile import ModuleCache

log = logging.getLogger("mlirforge.llm_rewrite")

Progress = Callable[[str, dict], None]


@dataclasses.dataclass
class KernelResult:
    kernel: Kernel
    winner: tuple[Candidate, Verdict] | None = None
    history: History = dataclasses.field(default_factory=list)
    from_cache: bool = False
    skipped: str = ""


@dataclasses.dataclass
class _KernelSearch:
    """One kernel's search in progress, between its rounds of the round-robin."""

    kr: KernelResult
    index: int
    total: int
    evaluator: KernelEvaluator | None = None  # built at its first round
    started: float = 0.0
    stale: int = 0
    """Rounds in a row without progress (see `_progress`)."""


@dataclasses.dataclass
class SearchResult:
    module_winner: tuple[Candidate, Verdict] | None
    module_history: History
    kernels: list[KernelResult]
    evaluations: int
    seconds: float
    interrupted: bool = False
    stopped: str = ""
    """Why the proposer stopped the search early (LLM budget spent, endpoint refusing), if it did."""
    rejected_answers: int = 0
    """Proposer answers that yielded no usable candidate (LLM prose, malformed JSON, ...)."""
    flags: tuple[str, ...] = ()
    """The iree-compile flags the kernels were searched (and are to be composed) under."""
    driver: str = "local-sync"
    """The driver they were timed under."""


def module_choice(cand: Candidate, settings: EvalSettings) -> tuple[list[str], str]:
    """(flags, driver) of a module-wide candidate; CandidateRejected if it is not one, or not allowed."""
    info = cand.kind_info
    if info.scope != "module":
        raise CandidateRejected(Stage.PARSE, f"a {cand.kind} candidate is not module-wide")
    return info.module_choice(cand.payload, settings)


def _rank(v: Verdict) -> float:
    """What a winner is ranked by: its in-model CI lower bound where it was confirmed there, else alone."""
    inside = v.timing.get("in_model") or {}
    return inside["ci_low"] if inside.get("ci_low") is not None else v.timing["ci_low"]


def _better(v: Verdict, best: tuple[Candidate, Verdict] | None) -> bool:
    return v.accepted and (best is None or _rank(v) > _rank(best[1]))


def _progress(v: Verdict, best: tuple[Candidate, Verdict] | None, min_gain: float) -> bool:
    """Whether a round that found `v` made progress for patience: a first win, or one whose CI lower
    bound beats the old best's by the acceptance margin. A rank nudged up by timing noise keeps
    the better candidate but does not buy the kernel more rounds."""
    return v.accepted and (best is None or _rank(v) > _rank(best[1]) * (1 + min_gain))


def apply_in_model(verdict: Verdict, inside: Verdict) -> None:
    """Record a kernel win's in-model A/B in its verdict; a win that is measurably slower in the model
    is not one (the verdict the user sees is the in-model one)."""
    t = inside.timing
    if not t:
        verdict.timing["in_model"] = {"error": inside.reason}  # unconfirmed: composition decides
        return
    verdict.timing["in_model"] = {k: t[k] for k in ("speedup", "ci_low", "ci_high")}
    if t["ci_high"] < 1.0:
        verdict.accepted, verdict.stage = False, Stage.TIMING
        verdict.reason = (f"{verdict.speedup:.3f}x alone but {t['speedup']:.3f}x in the model (95% CI "
                          f"{t['ci_low']:.3f}-{t['ci_high']:.3f}): slower where it runs")
    else:
        verdict.reason += f"; {t['speedup']:.3f}x in the model (95% CI {t['ci_low']:.3f}-{t['ci_high']:.3f})"


class Search:
    def __init__(
        self,
        kernels: list[Kernel],
        model: ModelEvaluator,
        proposer: Proposer,
        settings: SearchSettings,
        eval_settings: EvalSettings,
        workdir: Path,
        rewrite_cache: RewriteCache | None,
        module_cache: ModuleCache | None,
        progress: Progress | None = None,
        search_module: bool = True,
        confirm: Callable[[Kernel, Candidate, Verdict, EvalSettings], Verdict] | None = None,
        profile_model: Callable[[list[str], str], ModelProfile] | None = None,
    ):
        self.kernels = kernels
        self.model = model
        self.proposer = proposer
        self.settings = settings
        self.eval_settings = eval_settings
        """The settings kernels are evaluated under: the caller's, then the module winner's flags and driver."""
        self.workdir = workdir
        self.rewrite_cache = rewrite_cache
        self.module_cache = module_cache
        self.progress = progress or (lambda event, info: None)
        self.search_module = search_module
        self.confirm = confirm
        """Measures an accepted kernel win inside the model (`compose.confirm_in_model`); None: alone only."""
        self.profile_model = profile_model
        """The unoptimised model's dispatch profile under (flags, driver), for proposers that show it."""
        self.evaluations = 0
        self.rejected_answers = 0
        self.module_cache_entry: tuple[str, str] | None = None

    @property
    def kernel_context(self) -> str:
        """Cache context of per-kernel rewrites: kernels are built and timed with these flags and driver."""
        return context_key([*self.eval_settings.base_flags, f"driver={self.eval_settings.driver}",
                            f"proposer={self.proposer.cache_tag}"])

    def forget_rejected(self, dropped_kernels: list[str], module_held: bool) -> None:
        """Drop cached rewrites that did not hold up end to end (composition decided)."""
        if self.rewrite_cache is None:
            return
        if self.module_cache_entry and not module_held:
            self.rewrite_cache.forget(*self.module_cache_entry)
        for kernel_hash in dropped_kernels:
            self.rewrite_cache.forget(kernel_hash, self.kernel_context)

    def run(self) -> SearchResult:
        start = time.monotonic()
        # A replayed recording runs to its end: its budget was the live run's, spent on thinking time.
        deadline = float("inf") if self.proposer.replays else start + self.settings.budget_s
        result = SearchResult(None, [], [], 0, 0.0, flags=tuple(self.eval_settings.base_flags),
                              driver=self.eval_settings.driver)
        try:
            profile = self._model_profile()
            self.proposer.inform(list(self.eval_settings.base_flags), self.eval_settings.driver, profile)
            if self.search_module:
                module_deadline = (float("inf") if self.proposer.replays
                                   else start + self.settings.budget_s * self.settings.module_share)
                result.module_winner = self._search_module(result.module_history, module_deadline)
                if result.module_winner is not None:
                    # Kernels are then searched (and cached) under the winning flags.
                    flags, driver = module_choice(result.module_winner[0], self.eval_settings)
                    result.flags, result.driver = tuple(flags), driver
                    self.eval_settings = dataclasses.replace(self.eval_settings, base_flags=tuple(flags),
                                                             driver=driver)
                    self.proposer.inform(flags, driver, profile)
            self.progress("profile", {"kernels": len(self.kernels)})
            ranked = profile_kernels(self.kernels, list(self.eval_settings.base_flags), self.eval_settings.driver,
                                     self.module_cache)
            hot = hot_kernels(ranked, self.settings.max_kernels, self.settings.min_kernel_share)
            for kernel in ranked:
                kr = KernelResult(kernel)
                result.kernels.append(kr)
                if kernel not in hot:
                    kr.skipped = "not hot enough"
            self.proposer.prepare([kr.kernel for kr in result.kernels if not kr.skipped and not self._cached(kr.kernel)],
                                  self.settings.per_round)
            self._search_kernels([kr for kr in result.kernels if not kr.skipped], deadline)
        except KeyboardInterrupt:
            result.interrupted = True
            self.progress("interrupted", {})
        except ProposerStopped as exc:
            result.stopped = str(exc)
            for kr in result.kernels:
                if kr.winner is None and not kr.history and not kr.skipped and not kr.from_cache:
                    kr.skipped = "proposer stopped"
            self.progress("proposer-stopped", {"reason": str(exc)})
        result.rejected_answers = self.rejected_answers
        result.evaluations = self.evaluations
        result.seconds = time.monotonic() - start
        return result

    def _model_profile(self) -> ModelProfile | None:
        """Profile the unoptimised model once, if the proposer shows it (costs a compile and ~30 calls);
        a failure costs only the prompt's facts."""
        if self.profile_model is None or not self.proposer.wants_model_profile:
            return None
        self.progress("profile-model", {})
        try:
            return self.profile_model(list(self.eval_settings.base_flags), self.eval_settings.driver)
        except Exception as exc:  # noqa: BLE001 - diagnostics for the prompt, never the search's failure
            log.warning("mlirforge: could not profile the model's dispatches for the prompts (%s: %s)",
                        type(exc).__name__, exc)
            return None

    # -- module-wide ----------------------------------------------------------

    def _search_module(self, history: History, deadline: float) -> tuple[Candidate, Verdict] | None:
        # Module-wide results are cached under the model's own hash, like kernels under theirs.
        key = "module-" + hashlib.sha256(self.model.mlir.encode()).hexdigest()[:16]
        context = context_key([*self.eval_settings.base_flags, f"driver={self.eval_settings.driver}",
                               f"allow_driver={self.settings.allow_driver}", f"proposer={self.proposer.cache_tag}"])
        self.module_cache_entry = (key, context)
        if self.rewrite_cache is not None:
            hit = self.rewrite_cache.lookup(key, context)
            if hit is not None or self.rewrite_cache.was_searched(key, context):
                self.progress("module-cached", {"candidate": hit[0] if hit else None})
                return hit
        best, started, finished = None, time.monotonic(), True
        cands = self.proposer.propose_module(self.kernels, history, n=8)
        self._note_rejections(None)
        tried = {c.id for c, _ in history}
        for cand in cands:
            if time.monotonic() >= deadline:
                finished = False
                break
            if cand.id in tried:
                continue
            tried.add(cand.id)
            if "driver" in cand.payload and not self.settings.allow_driver:
                continue  # the backend does not let the search switch drivers (see SearchSettings)
            try:
                flags, driver = module_choice(cand, self.eval_settings)
            except CandidateRejected as exc:
                verdict = Verdict(cand.id, stage=exc.stage, reason=f"{exc.stage}: {exc.reason}")
            else:
                verdict = self.model.evaluate(cand.id, self.model.mlir, flags,
                                              driver if driver != self.eval_settings.driver else None)
            self.evaluations += 1
            history.append((cand, verdict))
            self.progress("module-candidate", {"candidate": cand, "verdict": verdict})
            if _better(verdict, best):
                best = (cand, verdict)
        if self.rewrite_cache is not None:
            if best is not None:
                self.rewrite_cache.store(key, context, *best)
            if finished:
                self.rewrite_cache.mark_searched(key, context, len(history), time.monotonic() - started)
        return best

    def _cached(self, kernel: Kernel) -> bool:
        """A verified rewrite or a finished search for this kernel is in the rewrite cache."""
        if self.rewrite_cache is None:
            return False
        context = self.kernel_context
        return (self.rewrite_cache.lookup(kernel.hash, context) is not None
                or self.rewrite_cache.was_searched(kernel.hash, context))

    def _note_rejections(self, kernel: Kernel | None) -> int:
        """Report the proposer's unusable answers; how many there were."""
        reasons = self.proposer.drain_rejections(kernel.hash if kernel is not None else None)
        self.rejected_answers += len(reasons)
        for reason in reasons:
            self.progress("answer-rejected", {"kernel": kernel, "reason": reason})
        return len(reasons)

    # -- per kernel -------------------------------------------------------------

    def _search_kernels(self, krs: list[KernelResult], deadline: float) -> None:
        """Round-robin over the hot kernels, hottest first: one proposal round each in turn, so that
        one kernel cannot spend the budget (an LLM's requests, the time) while others get none."""
        active = []
        for i, kr in enumerate(krs):
            if not self._from_cache(kr):
                active.append(_KernelSearch(kr, i, len(krs)))
        while active:
            for st in list(active):
                if time.monotonic() >= deadline:
                    for left in active:
                        if not left.kr.history:
                            left.kr.skipped = "budget spent"
                        self.progress("kernel-done", {"kernel": left.kr.kernel, "winner": left.kr.winner})
                    return
                if self._kernel_round(st, deadline):
                    active.remove(st)
                    self._finish_kernel(st)

    def _from_cache(self, kr: KernelResult) -> bool:
        """Take this kernel's result from the rewrite cache if it holds one; whether it did."""
        if self.rewrite_cache is None:
            return False
        kernel, context = kr.kernel, self.kernel_context
        hit = self.rewrite_cache.lookup(kernel.hash, context)
        if hit is not None:
            kr.winner, kr.from_cache = hit, True
            self.progress("kernel-cached", {"kernel": kernel, "candidate": hit[0], "verdict": hit[1]})
            return True
        if self.rewrite_cache.was_searched(kernel.hash, context):
            kr.from_cache, kr.skipped = True, "searched before: no verified rewrite"
            self.progress("kernel-cached", {"kernel": kernel, "candidate": None, "verdict": None})
            return True
        return False

    def _kernel_round(self, st: _KernelSearch, deadline: float) -> bool:
        """One proposal round for one kernel: propose, check, time. True when its search is over
        (patience spent, or the proposer has nothing more for it)."""
        kr, kernel = st.kr, st.kr.kernel
        if st.evaluator is None:
            st.evaluator = KernelEvaluator(kernel, self.eval_settings, self.workdir, self.module_cache)
            st.started = time.monotonic()
            self.progress("kernel-start", {"kernel": kernel, "index": st.index, "total": st.total})
        # A replayed recording runs to its end: the live run's early stop hung on its own timings.
        patience = float("inf") if self.proposer.replays else self.settings.patience
        cands = self.proposer.propose(kernel, kr.history, self.settings.per_round)
        if not cands:
            if self._note_rejections(kernel):
                st.stale += 1  # a failed round (unusable answer, failed request), not an exhausted proposer
                return st.stale >= patience
            return True  # the proposer has nothing more for this kernel
        self._note_rejections(kernel)
        improved = False
        tried = {c.id for c, _ in kr.history}
        for cand in cands:
            if time.monotonic() >= deadline:
                return False
            if cand.id in tried:  # proposers (LLMs especially) repeat themselves; never pay twice
                self.rejected_answers += 1
                self.progress("answer-rejected", {"kernel": kernel, "reason": f"repeats candidate {cand.id}"})
                continue
            tried.add(cand.id)
            verdict = st.evaluator.evaluate(cand)
            if verdict.accepted and self.confirm is not None:
                apply_in_model(verdict, self.confirm(kernel, cand, verdict, self.eval_settings))
            self.evaluations += 1
            kr.history.append((cand, verdict))
            self.progress("kernel-candidate", {"kernel": kernel, "candidate": cand, "verdict": verdict})
            if _better(verdict, kr.winner):
                improved = improved or _progress(verdict, kr.winner, self.eval_settings.min_gain)
                kr.winner = (cand, verdict)
                if self.rewrite_cache is not None:
                    self.rewrite_cache.store(kernel.hash, self.kernel_context, cand, verdict)
        st.stale = 0 if improved else st.stale + 1
        return st.stale >= patience

    def _finish_kernel(self, st: _KernelSearch) -> None:
        """A kernel whose search ran to its end: remembered as searched, so a later run skips it."""
        kr = st.kr
        if self.rewrite_cache is not None:
            self.rewrite_cache.mark_searched(kr.kernel.hash, self.kernel_context, len(kr.history),
                                             time.monotonic() - st.started)
        self.progress("kernel-done", {"kernel": kr.kernel, "winner": kr.winner})
