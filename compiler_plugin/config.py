"""User-facing configuration of the backend, the driver and the search.

One typed tree, `CompileConfig`, whose sections are the lowering's options
and the search's settings (`llm_rewrite.settings`: search, evaluation, llm);
each default is declared once, in its section. Users set flat option names
(`OPTIONS` maps each to its section and field). Filled in this order (later wins): defaults, a config
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

from mlirforge.llm_rewrite.settings import EvalSettings, LLMSettings, SearchSettings
from mlirforge.lowering.errors import UserError
from mlirforge.lowering.options import LoweringOptions

PROPOSERS = ("auto", "heuristic", "llm", "replay")

OPTIONS: dict[str, tuple[str, str]] = {
    # user option -> (section of CompileConfig, field); the lowering's fields keep their own names
    **{f.name: ("lowering", f.name) for f in dataclasses.fields(LoweringOptions)},
    "budget_s": ("search", "budget_s"),
    "patience": ("search", "patience"),
    "min_gain": ("evaluation", "min_gain"),
    "timing_rounds": ("evaluation", "rounds"),
    "llm_base_url": ("llm", "base_url"),
    "llm_model": ("llm", "model"),
    "llm_timeout_s": ("llm", "timeout_s"),
    "llm_max_retries": ("llm", "max_retries"),
    "llm_concurrency": ("llm", "concurrency"),
    "llm_temperature": ("llm", "temperature"),
    "llm_samples": ("llm", "samples"),
    "llm_temperatures": ("llm", "temperatures"),
    "llm_max_requests": ("llm", "max_requests"),
    "llm_max_tokens": ("llm", "max_total_tokens"),
    **{name: ("", name) for name in ("max_shape_variants", "optimize", "proposer", "use_rewrite_cache", "transcript",
                                     "eager_if_faster")},
}
"""Every user-facing option (torch.compile options, config files, CLI flags) and where it lives.
Defaults and documentation are the target field's, declared once in its section's dataclass."""


@dataclasses.dataclass(frozen=True)
class CompileConfig:
    lowering: LoweringOptions = LoweringOptions()
    search: SearchSettings = SearchSettings()
    evaluation: EvalSettings = EvalSettings()
    """How candidates are checked and timed; `base_flags`/`driver` come from `lowering` (`eval_settings`)."""
    llm: LLMSettings = LLMSettings()
    max_shape_variants: int = 8
    """Distinct input shapes compiled per graph; calls with more run eagerly."""
    optimize: bool = False
    """Search verified rewrites (torch.compile backend; the driver's `optimize` always does)."""
    proposer: str = "auto"
    """`auto`: the LLM when an endpoint is configured (OPENAI_BASE_URL or llm_base_url) and
    so is a model (MLIRFORGE_MODEL or llm_model) or the endpoint lists exactly one; else the
    offline heuristic. Without an endpoint, nothing touches the network."""
    use_rewrite_cache: bool = True
    transcript: str = ""
    eager_if_faster: bool = True
    """torch.compile: a compiled graph that measures slower than the same graph run eagerly (timed on
    its first calls, `mlirforge.eager_choice`) runs eagerly. Off: always the compiled graph."""
    """Replay transcript path (proposer `replay`) or where the LLM transcript is written."""

    def __post_init__(self) -> None:
        if self.max_shape_variants < 1:
            raise UserError("option 'max_shape_variants': must be at least 1")
        if self.proposer not in PROPOSERS:
            raise UserError(f"option 'proposer': expected one of {', '.join(PROPOSERS)}, got '{self.proposer}'")

    def check_complete(self) -> CompileConfig:
        """Checks across options, on the merged result only (a file may set the proposer and the
        command line the transcript); returns self. Raises UserError naming the missing option."""
        if self.proposer == "replay" and not self.transcript:
            raise UserError("proposer 'replay' needs 'transcript' (the recorded transcript file)")
        return self

    @property
    def llm_configured(self) -> bool:
        """An endpoint is configured (no network: a missing model may still be picked from the endpoint)."""
        from mlirforge.llm_rewrite.llm_client import ENV_BASE_URL

        return bool(self.llm.base_url or os.environ.get(ENV_BASE_URL))

    @property
    def resolved_proposer(self) -> str:
        if self.proposer != "auto":
            return self.proposer
        if not self.llm_configured:
            return "heuristic"  # offline: no endpoint, no network, no key
        from mlirforge.llm_rewrite import llm_client

        if self.llm.model or os.environ.get(llm_client.ENV_MODEL):
            return "llm"
        base_url = self.llm.base_url or os.environ[llm_client.ENV_BASE_URL]
        if not base_url.startswith(("http://", "https://")):
            return "llm"  # make_proposer says what is wrong with it
        pick = llm_client.pick_model(base_url, llm_client.api_key_from_env(),
                                     min(llm_client.LIST_TIMEOUT_S, self.llm.timeout_s))
        if pick.model:
            return "llm"
        llm_client.note_once(f"an LLM endpoint is configured but no model, and {pick.problem}; using the offline "
                             f"heuristic proposer; to use the LLM, set {llm_client.CHOOSE_MODEL}")
        return "heuristic"

    def make_proposer(self, transcript_out: Path | None = None):
        """The configured proposer. `transcript_out`: where the LLM records its transcript
        when `transcript` is not set. Raises UserError saying what is missing."""
        from mlirforge.llm_rewrite.proposers import get_proposer

        self.check_complete()
        name = self.resolved_proposer
        if name == "heuristic":
            return get_proposer("heuristic")
        if name == "replay":
            return get_proposer("replay", transcript=self.transcript)
        from mlirforge.llm_rewrite.llm_client import resolve_llm_settings

        # The LLM may take no longer than the search it serves.
        settings = resolve_llm_settings(dataclasses.replace(self.llm, max_seconds=self.search.budget_s))
        where = self.transcript or transcript_out
        if not where:
            raise UserError("the llm proposer needs a transcript path (option 'transcript')")
        return get_proposer("llm", settings=settings, transcript=where,
                            base_flags=tuple(self.lowering.iree_flags), driver=self.search_driver)

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None, base: CompileConfig | None = None) -> CompileConfig:
        """Apply flat user options (from torch.compile, CLI, file) over `base`; raises UserError naming a bad key."""
        base = base or cls()
        if options is not None and not isinstance(options, Mapping):
            raise UserError(f"options must be a mapping of option names to values, not {options!r}")
        changes: dict[str, dict[str, Any]] = {}
        for key, value in dict(options or {}).items():
            if key not in OPTIONS:
                raise UserError(f"unknown mlirforge option '{key}'; known options: {', '.join(sorted(OPTIONS))}")
            section, name = OPTIONS[key]
            target = getattr(base, section) if section else base
            field = next(f for f in dataclasses.fields(target) if f.name == name)
            changes.setdefault(section, {})[name] = _typed(key, field, value)
        own = changes.pop("", {})
        sections = {}
        for section, kw in changes.items():
            try:
                sections[section] = dataclasses.replace(getattr(base, section), **kw)
            except ValueError as exc:  # the section's own range check: "field: why"
                name, _, why = str(exc).partition(": ")
                raise UserError(f"option '{_user_key(section, name)}': {why or exc}") from None
        return dataclasses.replace(base, **sections, **own)

    @classmethod
    def resolve(cls, config: CompileConfig | Mapping[str, Any] | None) -> CompileConfig:
        """What the Python API takes: a CompileConfig as it is, or options (or None) loaded the
        way the CLI and the backend load them (`load`: defaults <- file <- environment <- options)."""
        return config if isinstance(config, CompileConfig) else cls.load(config)

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
        return cls.from_options(options or {}, config).check_complete()

    def eval_settings(self) -> EvalSettings:
        """The evaluation settings with the lowering's flags and the search's driver as the reference build's."""
        return dataclasses.replace(self.evaluation, base_flags=tuple(self.lowering.iree_flags),
                                   driver=self.search_driver)

    @property
    def search_driver(self) -> str:
        """The driver the search times under: `auto` is decided per graph at run time, so the
        search starts from `local-sync` and may propose `local-task` itself."""
        return "local-sync" if self.lowering.driver == "auto" else self.lowering.driver


def _user_key(section: str, name: str) -> str:
    """The user option that sets `section.name` (the field's own name if none does)."""
    return next((k for k, v in OPTIONS.items() if v == (section, name)), name)


def _typed(key: str, field: dataclasses.Field, value: Any) -> Any:
    """`value` as the field's type (bool, int, float, str, tuple of str or of float); UserError naming
    `key` otherwise. A tuple of floats may also be one number or text, `"0.2,0.7,1.0"` (a CLI flag)."""
    kind = field.type if isinstance(field.type, str) else field.type.__name__
    if kind == "tuple[str, ...]":
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise UserError(f"option '{key}': expected a list of strings, got {value!r}")
        return tuple(value)
    if kind == "tuple[float, ...]":
        items = [v for v in value.split(",") if v.strip()] if isinstance(value, str) else value
        if isinstance(items, int | float) and not isinstance(items, bool):
            items = [items]
        try:
            if not isinstance(items, list | tuple) or any(isinstance(v, bool) for v in items):
                raise ValueError
            floats = tuple(float(v) for v in items)
            if any(f != f for f in floats):
                raise ValueError  # NaN
            return floats
        except (TypeError, ValueError):
            raise UserError(f"option '{key}': expected a list of numbers, got {value!r}") from None
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
