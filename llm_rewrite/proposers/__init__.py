"""Proposers: `propose(kernel, history, n) -> list[Candidate]`.

Built in: `heuristic` (offline default), `llm` (an OpenAI-compatible endpoint)
and `replay` (a recorded LLM transcript). Each lives in its own module and is
imported only when asked for.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from typing import TYPE_CHECKING

from mlirforge.llm_rewrite.types import Candidate, Kernel, Verdict

if TYPE_CHECKING:
    from mlirforge.llm_rewrite.in_model import ModelProfile

History = list[tuple[Candidate, Verdict]]


class ProposerStopped(Exception):
    """The proposer cannot go on (budget spent, endpoint refusing us): the search
    stops here and keeps what it verified."""


class Proposer:
    """Base class: propose up to `n` new candidates for a kernel, or module-wide ones."""

    name = "base"
    replays = False
    """True for a proposer that replays recorded rounds: the search then runs it to
    exhaustion instead of stopping after `patience` rounds without improvement, so
    that every recorded round is evaluated again."""

    @property
    def cache_tag(self) -> str:
        """Who searched, in rewrite-cache keys: one proposer's "searched, nothing found"
        must not stop another from searching."""
        return self.name

    def propose(self, kernel: Kernel, history: History, n: int) -> list[Candidate]:
        raise NotImplementedError

    def propose_module(self, kernels: list[Kernel], history: History, n: int) -> list[Candidate]:
        """Module-wide candidates (IREE flags, runtime driver); none by default."""
        return []

    wants_model_profile = False
    """True for a proposer whose prompts show each kernel's time inside the model (the LLM's): the
    search then profiles the unoptimised model's dispatches once, before the module round."""

    def inform(self, flags: list[str], driver: str, profile: ModelProfile | None) -> None:
        """What the search knows about where kernels run: the iree-compile `flags` and `driver` they
        are built and timed under (called again after the module round chose its own), and the
        unoptimised model's dispatch profile charged to its kernels (None: not profiled). Called
        before the module round and before any kernel's first round."""

    def prepare(self, kernels: list[Kernel], n: int) -> None:
        """The kernels about to be searched, hottest first: a proposer may start on
        their first rounds early (the LLM overlaps its latency with our checking)."""

    def drain_rejections(self, kernel_hash: str | None) -> list[str]:
        """Why this kernel's (None: the module's) answers since the last call yielded no
        candidate. An empty list from `propose` with rejections is a failed round, not
        an exhausted proposer."""
        return []

    transcript_file: Path | None = None
    """The LLM transcript this proposer wrote or replays, to keep in the artifact."""

    def usage(self) -> dict | None:
        """What the proposer spent (LLM requests, tokens, seconds), for the manifest; None if nothing metered."""
        return None

    def close(self) -> None:
        """Release what the proposer holds (transcript files, HTTP clients)."""


_REGISTRY = {
    "heuristic": ("mlirforge.llm_rewrite.proposers.heuristic", "HeuristicProposer"),
    "llm": ("mlirforge.llm_rewrite.proposers.llm", "LLMProposer"),
    "replay": ("mlirforge.llm_rewrite.proposers.replay", "ReplayProposer"),
}


def available() -> list[str]:
    return sorted(_REGISTRY)


def get_proposer(name: str, **kwargs) -> Proposer:
    """Instantiate a registered proposer; raises ValueError naming the known ones."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown proposer '{name}' (known: {', '.join(available())})")
    module, cls = _REGISTRY[name]
    return getattr(importlib.import_module(module), cls)(**kwargs)
