"""Named lowering stages and the reproducers they leave when they fail.

Each stage is `(source) -> source` with a name. When one fails, everything
needed to rerun it outside mlirforge is written to a fresh directory: the input
it got (`input.mlir`, or `graph.py` for the FX stage), the compiler's
diagnostics, and `command.sh` with the exact command line.
"""

from __future__ import annotations

import datetime
import os
import shlex
import shutil
import tempfile
from pathlib import Path

from mlirforge.lowering.errors import LoweringError


def cache_root() -> Path:
    """Where compiled modules, reproducers and (later) rewrites are kept."""
    env = os.environ.get("MLIRFORGE_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) / "mlirforge" if xdg else Path.home() / ".cache" / "mlirforge"


MAX_REPRODUCERS = 50


def _prune(root: Path, keep: int) -> None:
    """Drop the oldest reproducers: expected failures (partitioning) write one per compile."""
    entries = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for old in entries[: max(0, len(entries) - keep)]:
        shutil.rmtree(old, ignore_errors=True)


def write_reproducer(
    stage: str,
    inputs: dict[str, str],
    command: list[str] | None,
    diagnostics: str,
) -> Path:
    """Write a reproducer directory and return its path.

    `inputs` maps file names to their text; `command` refers to them by name and
    is run from inside the directory.
    """
    root = cache_root() / "reproducers"
    root.mkdir(parents=True, exist_ok=True)
    _prune(root, keep=MAX_REPRODUCERS - 1)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    repro = Path(tempfile.mkdtemp(prefix=f"{stamp}-{stage}-", dir=root))
    for name, text in inputs.items():
        (repro / name).write_text(text)
    (repro / "diagnostics.txt").write_text(diagnostics)
    if command:
        script = "#!/bin/sh\n# Reproduces the failure of stage '%s'.\ncd \"$(dirname \"$0\")\"\n%s\n" % (
            stage,
            shlex.join(command),
        )
        (repro / "command.sh").write_text(script)
        (repro / "command.sh").chmod(0o755)
    return repro


def stage_failure(
    stage: str,
    diagnostics: str,
    inputs: dict[str, str],
    command: list[str] | None,
    unsupported_ops: list[str] | None = None,
) -> LoweringError:
    """Build the error for a failed stage, writing its reproducer first."""
    try:
        repro = write_reproducer(stage, inputs, command, diagnostics)
    except OSError:
        repro = None  # a read-only cache must not hide the real error
    return LoweringError(stage, diagnostics, repro, unsupported_ops)
