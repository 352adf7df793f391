"""The population that drives the next prompt, AlphaEvolve/OpenEvolve style.

From everything tried on a kernel, the next prompt shows:

- the elite: the best verified candidates (by the lower bound of their
  speedup's CI), or, while none is verified, the most promising timed ones;
  the best of them is the parent the model is asked to refine;
- diverse failures: the most recent failure of each kind (never built,
  build error, wrong results, crashed or timed out, not faster), so the
  model sees each way it went wrong once instead of the same error k times.
"""

from __future__ import annotations

import dataclasses

from mlirforge.llm_rewrite.types import Candidate, Verdict

Entry = tuple[Candidate, Verdict]


def failure_kind(verdict: Verdict) -> str:
    if verdict.accepted:
        return "accepted"
    if verdict.stage in ("parse", "signature"):
        return "invalid"
    if verdict.stage == "build" or not verdict.built:
        return "build failed"
    if verdict.equivalent is False:
        return "wrong results"
    if verdict.speedup is None:
        return "crashed or timed out"
    return "not faster"


@dataclasses.dataclass
class Population:
    elite: list[Entry]
    failures: list[Entry]

    @property
    def parent(self) -> Candidate | None:
        return self.elite[0][0] if self.elite else None


def select(history: list[Entry], elite_k: int = 3, failures_k: int = 4) -> Population:
    accepted = [e for e in history if e[1].accepted]
    if accepted:
        elite = sorted(accepted, key=lambda e: -e[1].timing.get("ci_low", 0.0))[:elite_k]
    else:
        timed = [e for e in history if e[1].speedup is not None and e[1].equivalent is not False]
        elite = sorted(timed, key=lambda e: -(e[1].speedup or 0.0))[:elite_k]
    chosen = {id(e) for e in elite}
    latest: dict[str, Entry] = {}
    for entry in history:
        kind = failure_kind(entry[1])
        if kind != "accepted" and id(entry) not in chosen:
            latest[kind] = entry  # later entries overwrite: the most recent of each kind
    failures = sorted(latest.values(), key=history.index, reverse=True)[:failures_k]
    return Population(elite, failures)
