"""User-facing configuration of the backend, the driver and the search.

One typed dataclass, filled in this order (later wins): defaults, a config
file (`mlirforge.toml`, or `[tool.mlirforge]` in `pyproject.toml`, found in
the working directory), the environment (`MLIRFORGE_PROPOSER`,
`MLIRFORGE_BUDGET_S`, `MLIRFORGE_MODEL`), then CLI flags or `torch.compile` options. Unknown
keys, ill-typed values and contradictions are errors naming the key. Secrets
(API keys) are never read from files: only from the environment.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlirforge.lowering.errors import UserError
from mlirforge.lowering.options import LoweringOptions

PROPOSERS = ("auto", "heuristic", "llm", "replay")


@dataclasses.dataclass(frozen=True)
class CompileConfig:
    lowering: LoweringOptions = LoweringOptions()
    max_shape_variants: int = 8
    """Distinct input shapes compiled per graph; calls with more run eagerly."""
    optimize: bool = False
    """Search verified rewrites (torch.compile backend; the driver's `optimize` always does)."""
    proposer: str = "auto"
    """`auto`: the LLM when an endpoint is configured (OPENAI_BASE_URL or llm_base_url) and
    so is a model (MLIRFORGE_MODEL or llm_model) or the endpoint lists exactly one; else the
    offline heuristic. Without an endpoint, nothing touches the network."""
    budget_s: float = 60.0
    """Wall-clock seconds the search may spend per model (or per graph)."""
    min_gain: float = 0.03
    """A rewrite is kept only if the lower bound of its speedup's 95% CI clears 1 + min_gain."""
    timing_rounds: int = 30
    use_rewrite_cache: bool = True
    transcript: str = ""
    """Replay transcript path (proposer `replay`) or where the LLM transcript is written."""
    patience: int = 2
    """Proposal rounds without a better verified rewrite before a kernel's search stops."""
    llm_base_url: str = ""
    """OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 (default: $OPENAI_BASE_URL)."""
    llm_model: str = ""
    """Model name sent to the endpoint (default: $MLIRFORGE_MODEL, else the only model the endpoint lists)."""
    llm_timeout_s: float = 120.0
    llm_max_retries: int = 4
    llm_concurrency: int = 2
    llm_temperature: float = 0.7
    llm_max_requests: int = 60
    llm_max_tokens: int = 400_000
    """Total tokens (prompt + completion) the search may spend."""

    def __post_init__(self) -> None:
        if self.max_shape_variants < 1:
            raise UserError("max_shape_variants: must be at least 1")
        if self.proposer not in PROPOSERS:
            raise UserError(f"proposer: expected one of {', '.join(PROPOSERS)}, got '{self.proposer}'")
        if self.budget_s <= 0:
            raise UserError("budget_s: must be positive")
        if not 0 <= self.min_gain < 1:
            raise UserError("min_gain: must be in [0, 1)")
        if self.timing_rounds < 5:
            raise UserError("timing_rounds: at least 5 rounds are needed for a confidence interval")
        if self.proposer == "replay" and not self.transcript:
            raise UserError("proposer 'replay' needs 'transcript' (the recorded transcript file)")
        if self.patience < 1:
            raise UserError("patience: must be at least 1")
        for key in ("llm_timeout_s", "llm_concurrency", "llm_max_requests", "llm_max_tokens"):
            if getattr(self, key) <= 0:
                raise UserError(f"{key}: must be positive")
        if self.llm_max_retries < 0:
            raise UserError("llm_max_retries: must be >= 0")

    @property
    def llm_configured(self) -> bool:
        """An endpoint is configured (no network: a missing model may still be picked from the endpoint)."""
        from mlirforge.llm_rewrite.llm_client import ENV_BASE_URL

        return bool(self.llm_base_url or os.environ.get(ENV_BASE_URL))

    @property
    def resolved_proposer(self) -> str:
        if self.proposer != "auto":
            return self.proposer
        if not self.llm_configured:
            return "heuristic"  # offline: no endpoint, no network, no key
        from mlirforge.llm_rewrite import llm_client

        if self.llm_model or os.environ.get(llm_client.ENV_MODEL):
            return "llm"
        base_url = self.llm_base_url or os.environ[llm_client.ENV_BASE_URL]
        if not base_url.startswith(("http://", "https://")):
            return "llm"  # make_proposer says what is wrong with it
        pick = llm_client.pick_model(base_url, llm_client.api_key_from_env(),
                                     min(llm_client.LIST_TIMEOUT_S, self.llm_timeout_s))
        if pick.model:
            return "llm"
        llm_client.note_once(f"an LLM endpoint is configured but no model, and {pick.problem}; using the offline "
                             f"heuristic proposer; to use the LLM, set {llm_client.CHOOSE_MODEL}")
        return "heuristic"

    def make_proposer(self, transcript_out: Path | None = None):
        """The configured proposer. `transcript_out`: where the LLM records its transcript
        when `transcript` is not set. Raises UserError saying what is missing."""
        from mlirforge.llm_rewrite.proposers import get_proposer

        name = self.resolved_proposer
        if name == "heuristic":
            return get_proposer("heuristic")
        if name == "replay":
            return get_proposer("replay", transcript=self.transcript)
        from mlirforge.llm_rewrite.llm_client import LLMSettings

        settings = LLMSettings.resolve(
            self.llm_base_url, self.llm_model, timeout_s=self.llm_timeout_s, max_retries=self.llm_max_retries,
            concurrency=self.llm_concurrency, temperature=self.llm_temperature,
            max_requests=self.llm_max_requests, max_total_tokens=self.llm_max_tokens,
            max_seconds=self.budget_s,
        )
        where = self.transcript or transcript_out
        if not where:
            raise UserError("the llm proposer needs a transcript path (option 'transcript')")
        return get_proposer("llm", settings=settings, transcript=where,
                            base_flags=tuple(self.lowering.iree_flags), driver=self.search_driver)

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None, base: CompileConfig | None = None) -> CompileConfig:
        """Apply options (from torch.compile, CLI, file) over `base`; raises UserError naming a bad key."""
        base = base or cls()
        options = dict(options or {})
        lowering_fields = {f.name: f for f in dataclasses.fields(LoweringOptions)}
        own_fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "lowering"}
        known = sorted(set(lowering_fields) | set(own_fields))
        lowering_kw, own_kw = {}, {}
        for key, value in options.items():
            if key in lowering_fields:
                if key == "iree_flags":
                    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                        raise UserError(f"option 'iree_flags': expected a list of strings, got {value!r}")
                    value = tuple(value)
                else:
                    value = _typed(key, lowering_fields[key], value)
                lowering_kw[key] = value
            elif key in own_fields:
                own_kw[key] = _typed(key, own_fields[key], value)
            else:
                raise UserError(f"unknown mlirforge option '{key}'; known options: {', '.join(known)}")
        try:
            lowering = dataclasses.replace(base.lowering, **lowering_kw)
        except (TypeError, ValueError) as exc:
            raise UserError(f"option {exc}") from None
        return dataclasses.replace(base, lowering=lowering, **own_kw)

    @classmethod
    def load(cls, options: Mapping[str, Any] | None = None, cwd: Path | None = None) -> CompileConfig:
        """Defaults <- config file <- environment <- options."""
        config = cls()
        file_opts, where = read_config_file(cwd or Path.cwd())
        if file_opts:
            try:
                config = cls.from_options(file_opts, config)
            except UserError as exc:
                raise UserError(f"{where}: {exc}") from None
        env = {}
        if os.environ.get("MLIRFORGE_PROPOSER"):
            env["proposer"] = os.environ["MLIRFORGE_PROPOSER"]
        if os.environ.get("MLIRFORGE_BUDGET_S"):
            env["budget_s"] = os.environ["MLIRFORGE_BUDGET_S"]
        if env:
            try:
                config = cls.from_options(env, config)
            except UserError as exc:
                raise UserError(f"environment: {exc}") from None
        return cls.from_options(options or {}, config)

    def search_settings(self):
        from mlirforge.llm_rewrite.search import SearchSettings

        return SearchSettings(budget_s=self.budget_s, patience=self.patience)

    def eval_settings(self):
        from mlirforge.llm_rewrite.evaluate import EvalSettings

        return EvalSettings(
            base_flags=tuple(self.lowering.iree_flags), driver=self.search_driver,
            min_gain=self.min_gain, rounds=self.timing_rounds,
        )

    @property
    def search_driver(self) -> str:
        """The driver the search times under: `auto` is decided per graph at run time, so the
        search starts from `local-sync` and may propose `local-task` itself."""
        return "local-sync" if self.lowering.driver == "auto" else self.lowering.driver


def _typed(key: str, field: dataclasses.Field, value: Any) -> Any:
    kind = field.type if isinstance(field.type, str) else field.type.__name__
    try:
        if kind == "bool":
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                return value.lower() in ("true", "1")
            if not isinstance(value, bool):
                raise ValueError
            return value
        if kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError  # 2.7 is not silently 2
            return int(value)
        if kind == "float":
            if isinstance(value, bool) or float(value) != float(value):
                raise ValueError  # NaN
            return float(value)
        if kind == "str":
            if not isinstance(value, str):
                raise ValueError
            return value
    except (TypeError, ValueError):
        raise UserError(f"option '{key}': expected {kind}, got {value!r}") from None
    return value


def read_config_file(cwd: Path) -> tuple[dict, str]:
    """Options from ./mlirforge.toml or [tool.mlirforge] in ./pyproject.toml."""
    own = cwd / "mlirforge.toml"
    try:
        if own.is_file():
            return tomllib.loads(own.read_text()), str(own)
        project = cwd / "pyproject.toml"
        if project.is_file():
            data = tomllib.loads(project.read_text())
            return data.get("tool", {}).get("mlirforge", {}), f"{project} [tool.mlirforge]"
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{own if own.is_file() else cwd / 'pyproject.toml'}: {exc}") from None
    return {}, ""
