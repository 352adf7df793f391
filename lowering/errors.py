"""Error types shared by every door.

`UserError` is what a CLI prints as one line (no traceback unless --verbose)
and turns into a non-zero exit. `LoweringError` names the stage that failed and
where its reproducer lies, so an engineer can rerun exactly what broke.
"""

from __future__ import annotations

from pathlib import Path


class MlirforgeError(Exception):
    """Base class of every error mlirforge raises on purpose."""


class UserError(MlirforgeError):
    """Bad input from the user: a missing file, a malformed model, a bad option."""


class UnsupportedOpError(MlirforgeError):
    """A graph holds operators that cannot be lowered (named in `ops`)."""

    def __init__(self, message: str, ops: list[str]):
        super().__init__(message)
        self.ops = ops


class LoweringError(MlirforgeError):
    """A named lowering stage failed.

    `diagnostics` holds the compiler's own messages (`file:line:col: error: ...`
    where it had a location); `reproducer` is a directory with the stage's input
    IR and a `command.sh` that reproduces the failure outside mlirforge.
    """

    def __init__(
        self,
        stage: str,
        diagnostics: str,
        reproducer: Path | None = None,
        unsupported_ops: list[str] | None = None,
    ):
        self.stage = stage
        self.diagnostics = diagnostics.strip()
        self.reproducer = reproducer
        self.unsupported_ops = unsupported_ops or []
        where = f"\n  reproducer: {reproducer}" if reproducer else ""
        super().__init__(f"stage '{stage}' failed:\n{self.diagnostics}{where}")

    def summary(self) -> str:
        """One line: the stage, the first error, and the reproducer."""
        errors = [line for line in self.diagnostics.splitlines() if "error:" in line]
        first = (errors or self.diagnostics.splitlines() or ["(no diagnostics)"])[0].strip()
        where = f" (reproducer: {self.reproducer})" if self.reproducer else ""
        return f"stage '{self.stage}' failed: {first}{where}"
