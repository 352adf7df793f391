"""Replay: the LLM's recorded answers, offline, through the same checks.

Each kernel's requests are taken from the transcript in the order they were
made, and each recorded answer is parsed exactly as the live proposer parsed
it, with the provenance it had (model, prompt hash, request number, parent),
so the same candidates come out and an accepted rewrite is listed in the
manifest byte for byte as in the recorded run. Nothing is trusted from the
recording but the answers: every candidate is checked and timed again here.

The search runs a replay to the end of the recording (`replays = True`):
the live run's early stop depended on its own timings, and every recorded
round should get its chance.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mlirforge.llm_rewrite.answers import parse_answers
from mlirforge.llm_rewrite import candidates
from mlirforge.llm_rewrite.proposers import History, Proposer, ProposerStopped
from mlirforge.llm_rewrite.transcript import read_transcript
from mlirforge.llm_rewrite.types import Candidate, Kernel

log = logging.getLogger("mlirforge.llm_rewrite")


class ReplayProposer(Proposer):
    name = "replay"
    replays = True

    def __init__(self, transcript: str | Path):
        self.transcript = read_transcript(transcript)
        self.transcript_file = self.transcript.path
        self._pending: dict[str | None, list[str]] = {}

    @property
    def cache_tag(self) -> str:
        return f"replay:{self.transcript.header.get('started', '')}:{self.transcript.model}"

    def drain_rejections(self, kernel_hash: str | None) -> list[str]:
        return self._pending.pop(kernel_hash, [])

    def prepare(self, kernels: list[Kernel], n: int) -> None:
        recorded = {r.get("kernel") for r in self.transcript.requests}
        if kernels and not any(k.hash in recorded for k in kernels):
            log.warning("mlirforge: the transcript %s has no requests for this model's kernels "
                        "(recorded for another model or other flags?); nothing to replay for them",
                        self.transcript.path)

    def propose(self, kernel: Kernel, history: History, n: int) -> list[Candidate]:
        return self._replay("kernel", kernel.hash, candidates.names("kernel"))

    def propose_module(self, kernels: list[Kernel], history: History, n: int) -> list[Candidate]:
        return self._replay("module", None, candidates.names("module"))

    def _replay(self, purpose: str, kernel_hash: str | None, kinds) -> list[Candidate]:
        rec = self.transcript.take(purpose, kernel_hash)
        if rec is None:
            return []  # the recording has no more rounds for this kernel
        if rec.get("error"):
            if rec.get("stopped"):
                raise ProposerStopped(f"(replayed) {rec['error']}")
            self._pending.setdefault(kernel_hash, []).append(f"the request failed: {rec['error']}")
            return []
        response = rec.get("response") or {}
        provenance = {"proposer": "llm", "model": rec.get("model"), "prompt_hash": rec.get("prompt_hash"),
                      "request": rec.get("seq"), "parent": rec.get("parent")}
        parsed = parse_answers(response.get("texts") or [response.get("text", "")], kinds, kernel_hash,
                               int(rec.get("n", 4)), provenance)
        if parsed.declined:
            return []  # the model said it had nothing more: as live, that kernel's search ends here
        self._pending.setdefault(kernel_hash, []).extend(parsed.problems)
        return parsed.candidates
