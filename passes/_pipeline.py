"""Pipelines of our passes: `pass-a,pass-b{opt=1 list=2,3}`.

The syntax is MLIR's: passes separated by commas, options in braces separated
by spaces, list values separated by commas. Unknown passes and options, and
values of the wrong type, are errors naming them and their column.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from mlirforge.lowering.ir import ir, passmanager
from mlirforge.passes import get_all_passes
from mlirforge.passes._base import ForgePass, pass_manager_callable


class PipelineError(ValueError):
    """A pipeline string is malformed; `column` is 1-based."""

    def __init__(self, message: str, column: int):
        super().__init__(f"pipeline column {column}: {message}")
        self.column = column


def split_pipeline(text: str) -> list[tuple[str, int]]:
    """Split on commas outside braces; returns (piece, start column 1-based)."""
    pieces, depth, start, opened = [], 0, 0, 0
    for i, ch in enumerate(text):
        if ch == "{":
            if depth == 0:
                opened = i + 1
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth < 0:
                raise PipelineError("unbalanced '}'", i + 1)
        elif ch == "," and depth == 0:
            pieces.append((text[start:i], start + 1))
            start = i + 1
    if depth != 0:
        raise PipelineError("unclosed '{'", opened)
    pieces.append((text[start:], start + 1))
    return pieces


def _convert(field: dataclasses.Field, raw: str, column: int, pass_name: str):
    # Options modules use `from __future__ import annotations`, so types are strings.
    kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", str(field.type))
    try:
        if kind.startswith("tuple"):
            elem = int if "int" in kind else str
            return tuple(elem(v) for v in raw.split(",") if v != "")
        if kind == "bool":
            if raw not in ("true", "false", "1", "0"):
                raise ValueError(raw)
            return raw in ("true", "1")
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        return raw
    except ValueError:
        raise PipelineError(
            f"option '{field.name.replace('_', '-')}' of {pass_name}: bad value '{raw}' (expected {kind})",
            column,
        ) from None


def _parse_options(pass_cls: type, body: str, column: int) -> object:
    fields = {f.name.replace("_", "-"): f for f in dataclasses.fields(pass_cls.Options)}
    values: dict[str, object] = {}
    offset = 0
    for token in body.split(" "):
        if not token:
            offset += 1
            continue
        col = column + offset
        key, eq, raw = token.partition("=")
        if key not in fields:
            known = ", ".join(sorted(fields)) or "none"
            raise PipelineError(f"unknown option '{key}' for {pass_cls.name} (options: {known})", col)
        if not eq:
            raise PipelineError(f"option '{key}' of {pass_cls.name} needs a value ('{key}=...')", col)
        values[fields[key].name] = _convert(fields[key], raw, col, pass_cls.name)
        offset += len(token) + 1
    try:
        return pass_cls.Options(**values)
    except (TypeError, ValueError) as exc:
        raise PipelineError(f"{pass_cls.name}: {exc}", column) from None


def parse_pipeline(text: str) -> list[ForgePass]:
    """Parse a pipeline string into pass instances; raises PipelineError."""
    registry = get_all_passes()
    passes: list[ForgePass] = []
    if not text.strip():
        return passes
    for piece, column in split_pipeline(text):
        lead = len(piece) - len(piece.lstrip())
        piece = piece.strip()
        column += lead
        if not piece:
            raise PipelineError("empty pass name", column)
        name, brace, rest = piece.partition("{")
        name = name.strip()
        if name not in registry:
            known = ", ".join(sorted(registry))
            raise PipelineError(f"unknown pass '{name}' (known passes: {known})", column)
        cls = registry[name]()
        if brace:
            if not rest.endswith("}"):
                raise PipelineError(f"text after the options of {name}", column + len(piece))
            options = _parse_options(cls, rest[:-1], column + len(name) + 1)
        else:
            options = cls.Options()
        passes.append(cls(options))
    return passes


def run_pipeline(module: "ir.Module", passes: Sequence[ForgePass]) -> None:
    """Run passes through a real MLIR PassManager (verifier on between passes).

    Failures surface as MLIR diagnostics at the offending op, then `ir.MLIRError`.
    """
    with module.context:
        pm = passmanager.PassManager("builtin.module")
        for p in passes:
            pm.add(pass_manager_callable(p), name=p.name, argument=p.name, description=p.summary)
        pm.run(module.operation)
