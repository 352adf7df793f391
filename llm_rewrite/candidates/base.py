"""The interface every candidate kind implements, and the rejection it raises.

A kind is a small object with three jobs (ARCHITECTURE.md, "Candidate"):
- `check_payload`: the shape of an LLM's (or any proposer's) payload, before
  anything is parsed as MLIR: the keys it may carry and their JSON types.
  Raises ValueError with a one-line reason that goes back into the next prompt.
- `build`: the payload applied to one kernel: the MLIR text of the standalone
  `@main` to compile and the iree-compile flags. Everything that can be checked
  without compiling (MLIR parses and verifies, the signature is kept, passes
  exist, flags are whitelisted, tile sizes are legal) is checked here and
  raises `CandidateRejected`.
- `describe` / `payload_text` / `prompt`: one line for reports and logs, the
  payload as shown in a prompt's history, and the kind's entry in the prompt's
  "What you may propose" list.

`scope` says where a kind applies: "kernel" (one outlined kernel) or
"module" (the whole model; built by `module_choice`). `runtime` says what runs
it (IREE, or Triton for `triton`), `available` whether it can run here.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, ClassVar

from mlirforge.llm_rewrite.settings import EvalSettings
from mlirforge.llm_rewrite.types import Kernel, Stage


class CandidateRejected(Exception):
    """A candidate that cannot be built: `stage` is where the cascade stopped (parse, signature, build)."""

    def __init__(self, stage: Stage | str, reason: str):
        super().__init__(reason)
        self.stage = Stage(stage)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class Built:
    """What a candidate becomes before compilation: a standalone module and its flags."""

    source: str
    """MLIR text of a module whose public `@main` is the (rewritten) kernel."""
    flags: tuple[str, ...]
    """The full iree-compile flags (the reference's, with the candidate's overrides)."""


def merge_flags(base: tuple[str, ...] | list[str], extra: list[str]) -> list[str]:
    """`base` with `extra` appended; a flag in `extra` replaces the base flag of the same name."""
    names = {f.partition("=")[0] for f in extra}
    return [f for f in base if f.partition("=")[0] not in names] + list(extra)


def nesting_depth(text: str, limit: int) -> int:
    """How deeply brackets ([{(<) nest in `text` outside string literals, counting up to `limit` + 1.

    Untrusted text is measured before a parser sees it: MLIR's parser recurses on
    nesting in C++ and a 20 KB attribute nested 10,000 deep crashes the process;
    Python's json module raises RecursionError a thousand levels down.
    """
    depth = deepest = 0
    in_string = escaped = False
    previous = ""
    for ch in text:
        arrow, previous = previous == "-" and ch == ">", ch  # `->` of a function type closes nothing
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "([{<":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif ch in ")]}>" and depth and not arrow:
            depth -= 1
    return deepest


def first_error(exc: Exception) -> str:
    """The first located diagnostic of an MLIR error (or the last line of any other)."""
    diags = getattr(exc, "error_diagnostics", None)
    if diags:
        d = diags[0]
        return f"{d.location}: {d.message}"
    return str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__


class CandidateKind:
    """Base class of the kinds; subclasses set the class attributes and override what differs."""

    name: ClassVar[str]
    scope: ClassVar[str] = "kernel"
    runtime: ClassVar[str] = "iree"
    """What runs a built candidate: "iree" (`Built.source` is MLIR compiled by IREE) or "triton"
    (`Built.source` is a Triton kernel, run by the worker's `triton_runner`)."""
    fields: ClassVar[frozenset[str]] = frozenset()
    """The payload keys this kind may carry (the prompt's JSON keys besides kind/rationale/parent)."""

    def available(self) -> bool:
        """Whether candidates of this kind can be evaluated on this machine (offered to proposers only then)."""
        return True

    def check_payload(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The payload with its defaults filled in; ValueError naming what is wrong."""
        return payload

    def build(self, kernel: Kernel, payload: dict[str, Any], settings: EvalSettings) -> Built:
        raise NotImplementedError(f"candidate kind {self.name!r} does not apply to one kernel")

    def module_choice(self, payload: dict[str, Any], settings: EvalSettings) -> tuple[list[str], str]:
        """Module-scope kinds: (full iree-compile flags, driver) for the whole model."""
        raise NotImplementedError(f"candidate kind {self.name!r} is not module-wide")

    def describe(self, payload: dict[str, Any]) -> str:
        return f"{self.name} {json.dumps(payload, sort_keys=True)}"

    def payload_text(self, payload: dict[str, Any], full: bool) -> str:
        """The payload as the prompt's history shows it (`full`: the best candidate, shown whole)."""
        return "`" + json.dumps({"kind": self.name, **payload}, sort_keys=True) + "`"

    def prompt(self, kernel: Kernel | None) -> str:
        """This kind's entry in the prompt: its JSON form, then what it means and its legal values."""
        return f'{{"kind": "{self.name}", ...}}'


def main_function(module):
    """The `@main` func.func of a parsed module; CandidateRejected(parse) if there is none."""
    from mlirforge.lowering.ir import ir
    from mlirforge.passes import op_name

    for op in module.body.operations:
        if op_name(op) == "func.func" and ir.StringAttr(op.attributes["sym_name"]).value == "main":
            return op
    raise CandidateRejected(Stage.PARSE, "the module has no @main")
