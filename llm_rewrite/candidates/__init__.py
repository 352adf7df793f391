"""Candidate kinds, one module each, and the registry that names them.

Adding a kind is one module defining a `CandidateKind` subclass plus one
`register(...)` call: the answer parser, the evaluator, the prompts and the
reports all go through `get(kind)`. Built in, in prompt order: `kernel`
(a replacement function), `tiling` (IREE tile sizes for the root op),
`triton` (a Triton kernel and its launch, where a GPU or Triton's interpreter
is there), `pipeline` (our passes on the kernel), `flags` (module-wide IREE
flags and driver).
"""

from __future__ import annotations

from mlirforge.llm_rewrite.candidates.base import Built, CandidateKind, CandidateRejected, merge_flags

__all__ = ["Built", "CandidateKind", "CandidateRejected", "merge_flags", "register", "unregister", "get",
           "names"]

_KINDS: dict[str, CandidateKind] = {}


def register(kind: CandidateKind) -> CandidateKind:
    """Make `kind` known by its name; raises ValueError if the name is taken."""
    if kind.name in _KINDS:
        raise ValueError(f"candidate kind {kind.name!r} is already registered")
    if kind.scope not in ("kernel", "module"):
        raise ValueError(f"candidate kind {kind.name!r}: scope must be 'kernel' or 'module', not {kind.scope!r}")
    _KINDS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    """Forget a kind (for tests that register a toy one)."""
    _KINDS.pop(name, None)


def get(name: str) -> CandidateKind:
    """The kind called `name`; ValueError listing the known ones otherwise."""
    try:
        return _KINDS[name]
    except KeyError:
        raise ValueError(f"unknown candidate kind {name!r}; expected one of {', '.join(_KINDS)}") from None


def names(scope: str | None = None, everywhere: bool = False) -> tuple[str, ...]:
    """Registered kinds in registration (prompt) order, optionally only those of one scope; only
    those that can run on this machine (`CandidateKind.available`) unless `everywhere`."""
    return tuple(n for n, k in _KINDS.items()
                 if (scope is None or k.scope == scope) and (everywhere or k.available()))


def _register_builtins() -> None:
    from mlirforge.llm_rewrite.candidates import flags, kernel, pipeline, tiling, triton

    for module in (kernel, tiling, triton, pipeline, flags):
        register(module.KIND)


_register_builtins()
