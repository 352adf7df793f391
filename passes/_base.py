"""The pass base class, typed options, and the PassManager adapter.

A pass is a class with `name = "mlirforge-<kebab>"`, a frozen dataclass of
options (`pass{tile-m=64}` <-> `tile_m: int = 64`) and `run(module)`, which
rewrites the module in place and raises `PassFailure` (with the location of
the offending op) when it cannot. Passes the search uses also say which option
values would change a given module (`schedule_space`).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, ClassVar

from mlirforge.lowering.ir import ir

log = logging.getLogger("mlirforge.passes")

class PassFailure(Exception):
    """A pass could not do its job; `location` points at the op to blame."""

    def __init__(self, message: str, location: "ir.Location | None" = None):
        super().__init__(message)
        self.location = location


@dataclasses.dataclass(frozen=True)
class NoOptions:
    pass


class ForgePass:
    """Base class of mlirforge passes."""

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions

    def __init__(self, options: Any = None):
        self.options = options if options is not None else self.Options()

    def run(self, module: "ir.Module") -> None:
        """Rewrite `module` in place; raise PassFailure on failure."""
        raise NotImplementedError

    def apply(self, module: "ir.Module") -> "ir.Module":
        """Run in place and verify; returns the module for chaining."""
        with module.context, ir.Location.unknown():
            self.run(module)
        if not module.operation.verify():
            raise PassFailure(f"{self.name} produced IR that does not verify")
        return module

    def apply_to_clone(self, module: "ir.Module") -> "ir.Module":
        """Run on a copy; the input module is left untouched."""
        with module.context:
            clone = ir.Module.parse(module.operation.get_asm(enable_debug_info=True))
        return self.apply(clone)

    def schedule_space(self, module: "ir.Module") -> dict[str, list[Any]]:
        """Option name -> values worth trying on this module (empty: nothing to tune)."""
        return {}

    def __repr__(self) -> str:
        opts = format_options(self.options)
        return f"{self.name}{{{opts}}}" if opts else self.name


def format_options(options: Any) -> str:
    """Options back into pipeline syntax: `tile-m=64 flag=true list=1,2`."""
    parts = []
    for field in dataclasses.fields(options):
        value = getattr(options, field.name)
        if value == field.default:
            continue
        if isinstance(value, tuple):
            text = ",".join(str(v) for v in value)
        elif isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value)
        parts.append(f"{field.name.replace('_', '-')}={text}")
    return " ".join(parts)


def pass_manager_callable(p: ForgePass):
    """Adapt a ForgePass to `PassManager.add(fn, name)`.

    The callable gets `(op, pass_)`; failure is reported as an error diagnostic
    at the op's location and `pass_.signal_pass_failure()`. (Pattern callbacks
    are the opposite trap: there a truthy return means "did not match".)
    """

    def run(op, pass_) -> None:
        try:
            with ir.Location.unknown(op.context):
                p.run(ModuleView(op))
        except PassFailure as failure:
            (failure.location or op.location).emit_error(f"{p.name}: {failure}")
            pass_.signal_pass_failure()
        except Exception as exc:  # a bug in the pass: still a diagnostic, not a traceback
            log.debug("pass %s crashed", p.name, exc_info=True)
            op.location.emit_error(f"{p.name}: internal error: {type(exc).__name__}: {exc}")
            pass_.signal_pass_failure()

    run.__name__ = p.name.replace("-", "_")
    return run


class ModuleView:
    """The module-shaped view of a `builtin.module` op that passes expect."""

    def __init__(self, op):
        self.operation = op.operation
        self.context = op.context

    @property
    def body(self):
        return self.operation.regions[0].blocks[0]


def run_as_compile_stage(stage: str, pass_: ForgePass, mlir_text: str, debug_info: bool = False,
                         triggers: tuple[str, ...] = ()) -> str:
    """Run a pass as a default compile stage (`lowering.stages`): MLIR text in, text back.

    `triggers` are op names of which the text must contain one for the pass
    to have anything to do; without one, the text is returned as is (no parse
    and print of the whole module). Raises `LoweringError` for `stage`, with a
    reproducer (`mlirforge-opt input.mlir -p <pass>`), when the text does not
    parse or the result does not verify.
    """
    from mlirforge.lowering.ir import parse_module
    from mlirforge.lowering.stages import stage_failure

    if triggers and not any(name in mlir_text for name in triggers):
        return mlir_text
    try:
        module = parse_module(mlir_text)
        pass_.apply(module)
    except (ir.MLIRError, PassFailure) as exc:
        detail = "\n".join(str(d) for d in getattr(exc, "error_diagnostics", [])) or str(exc)
        raise stage_failure(stage, detail, {"input.mlir": mlir_text},
                            ["mlirforge-opt", "input.mlir", "-p", repr(pass_)]) from exc
    return module.operation.get_asm(enable_debug_info=debug_info)
