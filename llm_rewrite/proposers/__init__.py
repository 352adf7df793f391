"""Proposers: `propose(kernel, history, n) -> list[Candidate]`.

Built in: `heuristic` (offline default), `llm` (an OpenAI-compatible endpoint)
and `replay` (a recorded transcript). Each lives in its own module and is
imported only when asked for.
"""

from __future__ import annotations

import importlib

from mlirforge.llm_rewrite.types import Candidate, Kernel, Verdict

History = list[tuple[Candidate, Verdict]]


class Proposer:
    """Base class: propose up to `n` new candidates for a kernel, or module-wide ones."""

    name = "base"

    def propose(self, kernel: Kernel, history: History, n: int) -> list[Candidate]:
        raise NotImplementedError

    def propose_module(self, kernels: list[Kernel], history: History, n: int) -> list[Candidate]:
        """Module-wide candidates (IREE flags, runtime driver); none by default."""
        return []


_REGISTRY = {
    "heuristic": ("mlirforge.llm_rewrite.proposers.heuristic", "HeuristicProposer"),
}


def available() -> list[str]:
    return sorted(_REGISTRY)


def get_proposer(name: str, **kwargs) -> Proposer:
    """Instantiate a registered proposer; raises ValueError naming the known ones."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown proposer '{name}' (known: {', '.join(available())})")
    module, cls = _REGISTRY[name]
    return getattr(importlib.import_module(module), cls)(**kwargs)
