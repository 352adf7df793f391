"""What a formal check can conclude: the outcomes, `FormalResult`, and `NotApplicable` (why not at all).

Its own module so that the entry point (`__init__`) and the search (`counterexamples`) share
these without importing each other.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import z3

from mlirforge.llm_rewrite.types import json_safe

PROVED, REFUTED, UNDECIDED = "proved", "refuted", "undecided"
NOT_APPLICABLE, UNKNOWN = "not applicable", "unknown"


class NotApplicable(Exception):
    """Why a kernel is outside what the check translates (one sentence)."""


@dataclasses.dataclass(frozen=True)
class FormalResult:
    """What the check found: `outcome` (PROVED, REFUTED, UNDECIDED, NOT_APPLICABLE, UNKNOWN) and why.

    `example`: an input (every element of argument `argK` holds `inputs["argK"]`) and both
    kernels' `output` there, with `compare`'s `max_error`, `tolerance` and `why`: the
    counter-example when REFUTED, an input where the bits differ otherwise (if one is known).
    """

    outcome: str
    why: str
    seconds: float = 0.0
    example: dict[str, Any] | None = None

    @property
    def method(self) -> str:
        """How equivalence stands after this check: `proved`, `refuted`, or `tested` (randomized testing decides)."""
        return {PROVED: "proved", REFUTED: "refuted"}.get(self.outcome, "tested")

    def to_json(self) -> dict[str, Any]:
        d = {"outcome": self.outcome, "why": self.why, "seconds": round(self.seconds, 3),
             "solver": f"z3 {z3.get_version_string()}"}
        if self.example is not None:
            d["example"] = self.example
        return json_safe(d)
