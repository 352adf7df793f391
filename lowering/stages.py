"""The compile stages, in one list, and the reproducers they leave when they fail.

`COMPILE_STAGES` names every step from an FX graph to a vmfb, in order (the
idea of Triton's `add_stages`: one list says what runs). Each stage is
`(source) -> source`; the modules that run them (`fx_import`, `params`,
`iree_compile`) take their names and pipelines from here. When one fails,
everything needed to rerun it outside mlirforge is written to a fresh
directory: the input it got (`input.mlir`, or `graph.py` for the FX stage), the
diagnostics, and `command.sh` with the exact command line where a tool exists.
`pipeline_fingerprint` hashes the list with the flags, tool versions and target
CPU: the one key of everything that decides what a given input compiles to.
"""

from __future__ import annotations

import datetime
import os
import shlex
import shutil
import tempfile
from pathlib import Path

import dataclasses
import hashlib
import json
from collections.abc import Sequence

from mlirforge.lowering.errors import LoweringError


@dataclasses.dataclass(frozen=True)
class CompileStage:
    name: str
    """The name errors and reproducers carry (`LoweringError.stage`)."""
    tool: str
    """What runs it."""
    pipeline: str = ""
    """Its pass pipeline, where it is one."""
    forms: tuple[str, ...] = ("linalg", "torch")
    """The lowering forms it runs for (`lowering.fx_import.FORMS`)."""


COMPILE_STAGES: tuple[CompileStage, ...] = (
    CompileStage("fx-import", "torch-mlir FxImporter (FX graph -> torch dialect)"),
    CompileStage("torch-backend", "torch-mlir-opt", "builtin.module(func.func(torch-match-quantized-custom-ops),"
                 "torchdynamo-export-to-torch-backend-pipeline{ extra-library=})"),
    CompileStage("linalg", "torch-mlir-opt",
                 "builtin.module(torch-backend-to-linalg-on-tensors-backend-pipeline{allow-non-finites=true})",
                 forms=("linalg",)),
    CompileStage("channels-last", "mlirforge-conv-to-channels-last (mlirforge.passes, IREE's MLIR bindings)",
                 "mlirforge-conv-to-channels-last", forms=("linalg",)),
    CompileStage("tile-reductions", "mlirforge-tile-reductions (mlirforge.passes, IREE's MLIR bindings)",
                 "mlirforge-tile-reductions", forms=("linalg",)),
    CompileStage("bind-parameters", "mlirforge.lowering.params (weight arguments -> IREE parameters)"),
    CompileStage("iree-compile", "iree-compile (llvm-cpu, the host CPU)"),
)


def stages_for(form: str) -> list[CompileStage]:
    """The stages that run, in order, for a lowering form."""
    return [s for s in COMPILE_STAGES if form in s.forms]


def pipeline_fingerprint(flags: Sequence[str]) -> str:
    """SHA-256 of the stage list, the iree-compile `flags`, the tool versions and the target CPU."""
    from mlirforge.lowering.target import host_cpu
    from mlirforge.lowering.versions import tool_versions

    text = json.dumps([[dataclasses.astuple(s) for s in COMPILE_STAGES], list(flags), tool_versions(),
                       host_cpu().fingerprint], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


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
