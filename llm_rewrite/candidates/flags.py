"""`flags` candidates: module-wide iree-compile flags from a whitelist, and the runtime driver.

Payload: {"iree_flags": ["--flag=value", ...], "driver": "local-task"?}. The
flags override the reference's flags of the same name (`merge_flags`); the
whitelist and its value ranges are `llm_rewrite.flags`'s.
"""

from __future__ import annotations

from typing import Any

from mlirforge.llm_rewrite.candidates.base import Built, CandidateKind, CandidateRejected, merge_flags
from mlirforge.llm_rewrite.settings import EvalSettings
from mlirforge.llm_rewrite.types import Kernel, Stage


class FlagsKind(CandidateKind):
    name = "flags"
    scope = "module"
    fields = frozenset({"iree_flags", "driver"})

    def check_payload(self, payload: dict[str, Any]) -> dict[str, Any]:
        flags = payload.setdefault("iree_flags", [])
        if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
            raise ValueError("'iree_flags' must be a list of strings")
        if "driver" in payload and not isinstance(payload["driver"], str):
            raise ValueError("'driver' must be a string")
        return payload

    def module_choice(self, payload: dict[str, Any], settings: EvalSettings) -> tuple[list[str], str]:
        """(full iree-compile flags, driver) of the payload; CandidateRejected if not whitelisted."""
        from mlirforge.llm_rewrite.flags import FlagError, validate_flags
        from mlirforge.lowering.runtime import DRIVERS

        unknown = set(payload) - self.fields
        if unknown:
            raise CandidateRejected(Stage.PARSE, f"flags candidate with unknown keys {sorted(unknown)}")
        driver = payload.get("driver", settings.driver)
        if driver not in DRIVERS:
            raise CandidateRejected(Stage.PARSE, f"driver must be one of {', '.join(DRIVERS)}")
        try:
            return merge_flags(settings.base_flags, validate_flags(payload.get("iree_flags", []))), driver
        except FlagError as exc:
            raise CandidateRejected(Stage.PARSE, str(exc)) from None

    def build(self, kernel: Kernel, payload: dict[str, Any], settings: EvalSettings) -> Built:
        flags, _ = self.module_choice(payload, settings)
        return Built(kernel.module, tuple(flags))

    def describe(self, payload: dict[str, Any]) -> str:
        parts = list(payload.get("iree_flags", []))
        if "driver" in payload:
            parts.append(f"driver={payload['driver']}")
        return "flags " + (" ".join(parts) or "(none)")

    def prompt(self, kernel: Kernel | None) -> str:
        return ('{"kind": "flags", "iree_flags": ["--flag=value", ...], "driver": "local-sync" | "local-task" '
                '(optional)}')


KIND = FlagsKind()
