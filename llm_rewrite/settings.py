"""The search's settings: each default declared here once.

`compiler_plugin.config.CompileConfig` embeds these (sections `search`,
`evaluation`, `llm`) and maps the user's flat option names onto them; the
search, the evaluator and the LLM client take them as they are. Pure
dataclasses: importing this module loads no compiler and no network client
(only the lowering's option defaults).
Each `__post_init__` raises ValueError naming the field for a value out of range.
"""

from __future__ import annotations

import dataclasses

from mlirforge.llm_rewrite.worker_protocol import DISTRIBUTIONS, TimingPlan
from mlirforge.lowering.options import DEFAULT_IREE_FLAGS

DEFAULT_MIN_GAIN = 0.03
"""A rewrite is kept only if the lower bound of its speedup's 95% CI clears 1 + this."""
DEFAULT_FORMAL_TIMEOUT_S = 3.0
"""Seconds z3 may spend proving or refuting one elementwise candidate (`llm_rewrite.formal`)."""


def _check(ok: bool, field: str, message: str) -> None:
    if not ok:
        raise ValueError(f"{field}: {message}")


@dataclasses.dataclass(frozen=True)
class SearchSettings:
    budget_s: float = 60.0
    """Wall-clock seconds the search may spend per model (or per graph)."""
    per_round: int = 4
    """Candidates asked of the proposer per round."""
    patience: int = 2
    """Proposal rounds without a better verified rewrite before a kernel's search stops."""
    max_kernels: int = 8
    min_kernel_share: float = 0.03
    """Kernels below this share of the summed kernel time are not searched."""
    module_share: float = 0.3
    """Fraction of the budget for module-wide candidates (flags, driver)."""
    allow_driver: bool = True
    """Let module-wide candidates switch the IREE driver. The torch.compile backend
    turns this off: IREE's thread pool and PyTorch's OpenMP threads slow each other
    down when eager and compiled code interleave in one process."""

    def __post_init__(self) -> None:
        _check(self.budget_s > 0, "budget_s", "must be positive")
        _check(self.patience >= 1, "patience", "must be at least 1")
        _check(self.per_round >= 1, "per_round", "must be at least 1")
        _check(0 <= self.module_share <= 1, "module_share", "must be in [0, 1]")


@dataclasses.dataclass(frozen=True)
class EvalSettings:
    """How candidates are built, checked and timed (`llm_rewrite.evaluate`)."""

    base_flags: tuple[str, ...] = DEFAULT_IREE_FLAGS
    """iree-compile flags of the reference build (the lowering's flags, set by CompileConfig)."""
    driver: str = "local-sync"
    timeout_s: float = 120.0
    """Wall-clock limit of one worker run (check and timing of one candidate)."""
    memory_mb: int = 8192
    """Address-space limit of the worker."""
    distributions: tuple[str, ...] = DISTRIBUTIONS
    samples: int = 1
    """Draws per input distribution."""
    rounds: int = TimingPlan.rounds
    inner: int = TimingPlan.inner
    warmup: int = TimingPlan.warmup
    min_gain: float = DEFAULT_MIN_GAIN
    confidence: float = TimingPlan.confidence
    formal_timeout_s: float = DEFAULT_FORMAL_TIMEOUT_S
    """Seconds z3 may spend, all queries together, on the formal check of an elementwise kernel
    candidate (`llm_rewrite.formal`); past it the randomized check alone decides. 0: no formal check."""

    def __post_init__(self) -> None:
        _check(0 <= self.min_gain < 1, "min_gain", "must be in [0, 1)")
        _check(self.formal_timeout_s >= 0, "formal_timeout_s", "must be >= 0 (0: no formal check)")
        _check(self.rounds >= 5, "rounds", "at least 5 rounds are needed for a confidence interval")
        _check(0 < self.confidence < 1, "confidence", "must be in (0, 1)")
        _check(self.timeout_s > 0, "timeout_s", "must be positive")

    def timing_plan(self) -> TimingPlan:
        return TimingPlan(rounds=self.rounds, inner=self.inner, warmup=self.warmup, confidence=self.confidence)


@dataclasses.dataclass(frozen=True)
class LLMSettings:
    """The OpenAI-compatible endpoint and the LLM's budget (`llm_rewrite.llm_client`).

    Empty `base_url`/`model` mean "from the environment" (`llm_client.resolve_llm_settings`).
    """

    base_url: str = ""
    model: str = ""
    api_key: str = ""
    timeout_s: float = 120.0
    """Seconds per request."""
    max_retries: int = 4
    backoff_s: float = 1.0
    """First backoff; doubled per retry, with up to 50% jitter."""
    max_backoff_s: float = 60.0
    concurrency: int = 2
    temperature: float = 0.7
    samples: int = 1
    """Answers per request (OpenAI's `n`): several completions of one prompt for the price of its
    prompt tokens once; an endpoint that refuses `n` is asked for one from then on."""
    temperatures: tuple[float, ...] = ()
    """Sampling temperatures of each round: one request per temperature, all sent at once (each
    with `samples` answers), their answers pooled, each charged to the budget. The API takes one
    temperature per request, so variety costs requests. Empty: one request at `temperature`."""
    max_tokens: int = 8192
    """Completion tokens per request."""
    max_requests: int = 60
    max_total_tokens: int = 400_000
    """Total tokens (prompt + completion) the search may spend."""
    max_seconds: float = 1800.0

    model_picked: bool = False
    """The model was not configured but picked: the only one the endpoint lists."""

    def __post_init__(self) -> None:
        for key in ("timeout_s", "concurrency", "max_requests", "max_total_tokens", "max_tokens", "max_seconds"):
            _check(getattr(self, key) > 0, key, "must be positive")
        _check(self.max_retries >= 0, "max_retries", "must be >= 0")
        _check(1 <= self.samples <= 8, "samples", "must be between 1 and 8")
        _check(len(self.temperatures) <= 8, "temperatures", "at most 8")
        _check(all(0.0 <= t <= 2.0 for t in self.temperatures), "temperatures", "each must be in [0, 2]")
