"""The search's evidence as the manifest records it: kept rewrites, the end-to-end verdict, the search.

Each record is a frozen dataclass with `to_json()` and `from_json(Fields)`;
keys the worker emits that no field names are kept in `extra` and written
back unchanged, so whatever was measured reaches the manifest whole.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mlirforge.llm_rewrite.types import EQUIVALENCE_METHODS, Stage
from mlirforge.manifest_schema import BOOL, INT, NUM, OBJ, STR, Fields, ManifestError, list_of, nullable, present

@dataclasses.dataclass(frozen=True, kw_only=True)
class EquivalenceEvidence:
    """What the worker's numerics check found (`llm_rewrite.worker.check`), plus how the candidate was built.

    `seeds` is None when the check did not run (a build failure, a worker
    crash); then `distributions`, `max_error` and `tolerance` are not written
    either. `max_error` is None where the outputs could not be compared (a
    shape mismatch), `tolerance` where no output was. A failing check's
    `distribution`, `output` and `why` are kept in `extra`, and so is the
    formal check's finding (`formal`, `llm_rewrite.formal.FormalResult.to_json`).
    `method` is how equivalence was decided (`EQUIVALENCE_METHODS`: a kept
    rewrite's is `proved` or `tested`); None where the record has none (written
    before it was recorded), which reads as `tested` (`decided_by`).
    """

    seeds: int | None = None
    distributions: list[str] = dataclasses.field(default_factory=list)
    max_error: float | None = None
    tolerance: float | None = None
    flags: list[str] | None = None  # the IREE flags the candidate was compiled with
    driver: str | None = None  # the candidate's driver, if not the reference's
    method: str | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    _CHECK = ("seeds", "distributions", "max_error", "tolerance")
    _KNOWN = (*_CHECK, "flags", "driver", "method")

    @property
    def checked(self) -> bool:
        return self.seeds is not None

    @property
    def decided_by(self) -> str:
        """`method`, with a record that has none read as `tested` (all there was before the formal check)."""
        return self.method or "tested"

    def to_json(self) -> dict[str, Any]:
        check = {"seeds": self.seeds, "distributions": list(self.distributions), "max_error": self.max_error,
                 "tolerance": self.tolerance} if self.checked else {}
        return {**check, **present({"flags": self.flags, "driver": self.driver, "method": self.method}),
                **self.extra}

    @classmethod
    def from_json(cls, f: Fields, checked: bool = False) -> EquivalenceEvidence:
        """`checked`: the check must have run (a kept rewrite)."""
        check = {}
        if checked or f.has(*cls._CHECK):
            check = {"seeds": f.get("seeds", INT), "distributions": f.get("distributions", list_of(STR)),
                     "max_error": f.get("max_error", nullable(NUM)), "tolerance": f.get("tolerance", nullable(NUM))}
        method = f.opt("method", STR)
        if method is not None and method not in EQUIVALENCE_METHODS:
            raise ManifestError(f"'{f.key('method')}' is {method!r}, not one of {', '.join(EQUIVALENCE_METHODS)}")
        return cls(**check, flags=f.opt("flags", list_of(STR)), driver=f.opt("driver", STR), method=method,
                   extra=f.rest(cls._KNOWN))


@dataclasses.dataclass(frozen=True, kw_only=True)
class TimingEvidence:
    """The worker's interleaved A/B timing (`llm_rewrite.worker.time_ab`).

    `speedup` (median ratio) and its confidence interval are None when nothing
    was timed; then nothing is written. A re-timed near miss keeps the first
    measurement under `extra["retimed_after"]`.
    """

    speedup: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    baseline_us: float | None = None  # medians of the reference and the candidate
    candidate_us: float | None = None
    rounds: int | None = None
    inner: int | None = None
    confidence: float | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    _SPEEDUP = ("speedup", "ci_low", "ci_high")
    _KNOWN = (*_SPEEDUP, "baseline_us", "candidate_us", "rounds", "inner", "confidence")

    @property
    def timed(self) -> bool:
        return self.speedup is not None

    def to_json(self) -> dict[str, Any]:
        speedup = {"speedup": self.speedup, "ci_low": self.ci_low, "ci_high": self.ci_high} if self.timed else {}
        rest = {"baseline_us": self.baseline_us, "candidate_us": self.candidate_us, "rounds": self.rounds,
                "inner": self.inner, "confidence": self.confidence}
        return {**speedup, **present(rest), **self.extra}

    @classmethod
    def from_json(cls, f: Fields, timed: bool = False) -> TimingEvidence:
        """`timed`: there must be a speedup (a kept rewrite)."""
        speedup = {}
        if timed or f.has(*cls._SPEEDUP):
            speedup = {k: f.get(k, NUM) for k in cls._SPEEDUP}
        return cls(**speedup, baseline_us=f.opt("baseline_us", NUM), candidate_us=f.opt("candidate_us", NUM),
                   rounds=f.opt("rounds", INT), inner=f.opt("inner", INT), confidence=f.opt("confidence", NUM),
                   extra=f.rest(cls._KNOWN))


@dataclasses.dataclass(frozen=True, kw_only=True)
class RewriteRecord:
    """One kept rewrite: the kernel, the candidate (its own JSON), and the evidence that let it in."""

    kernel: str  # the kernel's hash
    kernel_root: str
    kernel_name: str
    candidate: dict[str, Any]  # `Candidate.to_json()`: kind, payload, provenance, id
    equivalence: EquivalenceEvidence
    timing: TimingEvidence
    reason: str
    transcript: str | None = None  # the artifact's LLM transcript, for a candidate an LLM request proposed
    in_model: TimingEvidence | None = None
    """The rewrite's A/B inside the composed model (with it vs without it), when composition measured
    one; `timing` is the kernel alone. Optional: artifacts written before it have none."""

    @classmethod
    def from_verdict(cls, kernel, candidate, verdict, transcript: str | None = None,
                     in_model: dict | None = None) -> RewriteRecord:
        """A kept (kernel, Candidate, Verdict); `transcript`: the transcript file the artifact keeps, if any.

        Raises ManifestError if the verdict lacks the evidence a kept rewrite must have.
        """
        v = verdict.to_json()
        return cls(kernel=kernel.hash, kernel_root=kernel.root, kernel_name=kernel.name,
                   candidate=candidate.to_json(),
                   equivalence=EquivalenceEvidence.from_json(Fields(v["equivalence"], "equivalence"), checked=True),
                   timing=TimingEvidence.from_json(Fields(v["timing"], "timing"), timed=True),
                   reason=verdict.reason, transcript=transcript if candidate.request is not None else None,
                   in_model=TimingEvidence.from_json(Fields(in_model, "in_model"), timed=True)
                   if in_model and in_model.get("speedup") is not None else None)

    def to_json(self) -> dict[str, Any]:
        return {"kernel": self.kernel, "kernel_root": self.kernel_root, "kernel_name": self.kernel_name,
                "candidate": self.candidate, "equivalence": self.equivalence.to_json(),
                "timing": self.timing.to_json(), "reason": self.reason,
                **present({"transcript": self.transcript,
                           "in_model": self.in_model.to_json() if self.in_model else None})}

    @classmethod
    def from_json(cls, f: Fields) -> RewriteRecord:
        f.obj("candidate").get("kind", STR)
        equivalence = EquivalenceEvidence.from_json(f.obj("equivalence"), checked=True)
        if equivalence.decided_by == "refuted":
            raise ManifestError(f"'{f.obj('equivalence').key('method')}' is 'refuted': a kept rewrite must be "
                                "proved or tested equivalent")
        return cls(kernel=f.get("kernel", STR), kernel_root=f.get("kernel_root", STR),
                   kernel_name=f.get("kernel_name", STR), candidate=f.get("candidate", OBJ),
                   equivalence=equivalence,
                   timing=TimingEvidence.from_json(f.obj("timing"), timed=True),
                   reason=f.get("reason", STR), transcript=f.opt("transcript", STR),
                   in_model=TimingEvidence.from_json(f.obj("in_model"), timed=True) if f.has("in_model") else None)


@dataclasses.dataclass(frozen=True, kw_only=True)
class VerdictRecord:
    """A `Verdict` as the manifest keeps it (the optimised model against the unoptimised one)."""

    candidate_id: str
    stage: Stage  # the last stage of the cascade reached
    built: bool
    equivalent: bool | None
    accepted: bool
    reason: str
    equivalence: EquivalenceEvidence
    timing: TimingEvidence

    @property
    def speedup(self) -> float | None:
        return self.timing.speedup

    @classmethod
    def from_verdict(cls, verdict) -> VerdictRecord:
        return cls.from_json(Fields(verdict.to_json(), "verdict"))

    def to_json(self) -> dict[str, Any]:
        return {"candidate_id": self.candidate_id, "stage": self.stage.value, "built": self.built,
                "equivalent": self.equivalent, "accepted": self.accepted, "reason": self.reason,
                "equivalence": self.equivalence.to_json(), "timing": self.timing.to_json(), "speedup": self.speedup}

    @classmethod
    def from_json(cls, f: Fields) -> VerdictRecord:
        return cls(candidate_id=f.get("candidate_id", STR), stage=f.stage("stage"), built=f.get("built", BOOL),
                   equivalent=f.get("equivalent", nullable(BOOL)), accepted=f.get("accepted", BOOL),
                   reason=f.get("reason", STR), equivalence=EquivalenceEvidence.from_json(f.obj("equivalence")),
                   timing=TimingEvidence.from_json(f.obj("timing")))


# -- the search's record ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class DroppedRecord:
    """A kernel winner that did not make it into the model, and why."""

    kernel: str
    candidate: str  # `Candidate.describe()`
    why: str

    def to_json(self) -> dict[str, Any]:
        return {"kernel": self.kernel, "candidate": self.candidate, "why": self.why}

    @classmethod
    def from_json(cls, f: Fields) -> DroppedRecord:
        return cls(kernel=f.get("kernel", STR), candidate=f.get("candidate", STR), why=f.get("why", STR))


@dataclasses.dataclass(frozen=True, kw_only=True)
class BaselineRecord:
    """How to rebuild the unoptimised model, to time the artifact against it (`mlirforge.measure`)."""

    mlir: str  # a file in the artifact
    iree_flags: list[str]
    driver: str

    def to_json(self) -> dict[str, Any]:
        return {"mlir": self.mlir, "iree_flags": list(self.iree_flags), "driver": self.driver}

    @classmethod
    def from_json(cls, f: Fields) -> BaselineRecord:
        return cls(mlir=f.get("mlir", STR), iree_flags=f.get("iree_flags", list_of(STR)), driver=f.get("driver", STR))


@dataclasses.dataclass(frozen=True, kw_only=True)
class OptimizationRecord:
    """What the search did: who proposed, what it cost, what the model as a whole showed, what was dropped."""

    proposer: str
    budget_s: float
    transcript: str | None  # the LLM transcript kept in the artifact
    llm: dict[str, Any] | None  # the proposer's usage (requests, tokens, seconds), if metered
    stopped: str | None  # why the search stopped early
    rejected_answers: int
    evaluations: int
    seconds: float
    interrupted: bool
    module_candidate: dict[str, Any] | None  # the kept module-wide candidate's JSON
    end_to_end: VerdictRecord | None
    dropped: list[DroppedRecord]
    baseline: BaselineRecord

    @classmethod
    def for_search(cls, proposer, budget_s: float, transcript: str | None, search, composition,
                   baseline: BaselineRecord) -> OptimizationRecord:
        """From a proposer, `llm_rewrite.search.SearchResult` and `llm_rewrite.compose.Composition`."""
        winner, verdict = search.module_winner, composition.verdict
        kept_module = winner is not None and verdict is not None and verdict.accepted
        return cls(
            proposer=proposer.name, budget_s=budget_s, transcript=transcript, llm=proposer.usage(),
            stopped=search.stopped or None, rejected_answers=search.rejected_answers,
            evaluations=search.evaluations, seconds=round(search.seconds, 2), interrupted=search.interrupted,
            module_candidate=winner[0].to_json() if kept_module else None,
            end_to_end=VerdictRecord.from_verdict(verdict) if verdict else None,
            dropped=[DroppedRecord(kernel=w[0].hash, candidate=w[1].describe(), why=why)
                     for w, why in composition.dropped],
            baseline=baseline,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "proposer": self.proposer, "budget_s": self.budget_s, "transcript": self.transcript, "llm": self.llm,
            "stopped": self.stopped, "rejected_answers": self.rejected_answers, "evaluations": self.evaluations,
            "seconds": self.seconds, "interrupted": self.interrupted, "module_candidate": self.module_candidate,
            "end_to_end": self.end_to_end.to_json() if self.end_to_end else None,
            "dropped": [d.to_json() for d in self.dropped], "baseline": self.baseline.to_json(),
        }

    @classmethod
    def from_json(cls, f: Fields) -> OptimizationRecord:
        return cls(
            proposer=f.get("proposer", STR), budget_s=f.get("budget_s", NUM),
            transcript=f.get("transcript", nullable(STR)), llm=f.get("llm", nullable(OBJ)),
            stopped=f.get("stopped", nullable(STR)), rejected_answers=f.get("rejected_answers", INT),
            evaluations=f.get("evaluations", INT), seconds=f.get("seconds", NUM),
            interrupted=f.get("interrupted", BOOL), module_candidate=f.get("module_candidate", nullable(OBJ)),
            end_to_end=VerdictRecord.from_json(e2e) if (e2e := f.obj_or_none("end_to_end")) else None,
            dropped=[DroppedRecord.from_json(d) for d in f.objs("dropped")],
            baseline=BaselineRecord.from_json(f.obj("baseline")),
        )


# -- the manifest -------------------------------------------------------------------------------
