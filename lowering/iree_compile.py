"""The `iree-compile` stage: MLIR text -> vmfb, with an on-disk module cache.

We run the `iree-compile` tool as a subprocess rather than through the
in-process API so that (a) a compiler crash cannot take the user's process down
and (b) the reproducer's command line is exactly what ran.

The cache key is the SHA-256 of the input text, the flags, the input type, the
tool versions and the host CPU's fingerprint; a second process compiling the
same graph with the same flags reads the vmfb back instead of running IREE.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mlirforge.lowering.aliasing import written_inputs
from mlirforge.lowering.fx_import import unsupported_ops_in
from mlirforge.lowering.stages import cache_root, pipeline_fingerprint, stage_failure
from mlirforge.lowering.target import CpuTarget, CudaTarget, host_cpu

log = logging.getLogger("mlirforge.lowering")

# The linalg form is linalg on tensors plus torch-mlir's `tm_tensor` ops (scatter,
# sort, scan: index_put, scatter_reduce, index_add, topk, cumsum); IREE's `auto`
# input type converts those to its own `iree_linalg_ext` ops, `none` rejects them.
INPUT_TYPES = {"linalg": "auto", "torch": "torch", "auto": "auto"}


@dataclass
class CompileResult:
    vmfb: bytes
    key: str
    cached: bool
    seconds: float
    command: list[str]
    written_inputs: dict[str, tuple[int, ...]] = field(default_factory=dict)
    """Per public function, the inputs the module may write into (`lowering.aliasing`):
    the runtime passes copies of these."""

    def copy_inputs(self, function: str = "main") -> tuple[int, ...]:
        return self.written_inputs.get(function, ())


def iree_compile_tool() -> str:
    from iree.compiler.tools.binaries import find_tool

    return find_tool("iree-compile")


# Flags that keep the program's meaning, not tuning: IREE computes float64
# in float32 by default, so a float64 model lost precision and its module
# refused float64 inputs at run time.
SEMANTIC_FLAGS: tuple[str, ...] = ("--iree-input-demote-f64-to-f32=false",)


def compile_flags(form: str, extra_flags: Sequence[str], target: CpuTarget | CudaTarget | None = None) -> list[str]:
    """Full iree-compile flags for `target` (default: the host CPU) and an input form (`extra_flags` last, so
    they win)."""
    return [
        *(target or host_cpu()).iree_flags(),
        f"--iree-input-type={INPUT_TYPES[form]}",
        *SEMANTIC_FLAGS,
        *extra_flags,
    ]


def module_key(mlir_text: str, flags: Sequence[str]) -> str:
    """The module cache's key: the input text and the pipeline's one fingerprint (`stages.pipeline_fingerprint`)."""
    h = hashlib.sha256()
    h.update(mlir_text.encode())
    h.update(pipeline_fingerprint(flags).encode())
    return h.hexdigest()


class ModuleCache:
    """Compiled vmfbs on disk, one file per key beside a JSON sidecar; writes are atomic renames.

    The sidecar holds what was learnt while compiling (the inputs the module
    writes); an entry without it is a miss, so an old cache is recompiled
    rather than trusted.
    """

    def __init__(self, root: Path | None = None):
        self.root = (root or cache_root()) / "modules"

    def path(self, key: str) -> Path:
        return self.root / f"{key}.vmfb"

    def _meta_path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, key: str) -> tuple[bytes, dict[str, tuple[int, ...]]] | None:
        try:
            meta = json.loads(self._meta_path(key).read_text())
            written = {name: tuple(int(i) for i in pos) for name, pos in meta["written_inputs"].items()}
            return self.path(key).read_bytes(), written
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def put(self, key: str, vmfb: bytes, written: dict[str, tuple[int, ...]]) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            # The vmfb first: a sidecar never announces a module that is not there.
            for path, data in ((self.path(key), vmfb),
                               (self._meta_path(key), json.dumps({"written_inputs": written}).encode())):
                fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".tmp")
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, path)
        except OSError as exc:  # a full or read-only disk costs a recompile, nothing more
            log.warning("could not write the module cache at %s: %s", self.root, exc)


def compile_mlir(
    mlir_text: str,
    form: str = "linalg",
    extra_flags: Sequence[str] = (),
    cache: ModuleCache | None = None,
    source_name: str = "input.mlir",
    timeout_s: float | None = None,
    target: CpuTarget | CudaTarget | None = None,
) -> CompileResult:
    """Compile MLIR text for `target` (default: the host CPU); returns the vmfb and how it was obtained.

    Raises `LoweringError` (stage `iree-compile`) with IREE's diagnostics,
    rewritten to name `source_name`, and a reproducer directory. `timeout_s`
    bounds the compile (candidates from a proposer are untrusted: an absurd
    tile size can make IREE compile for hours).
    """
    flags = compile_flags(form, extra_flags, target)
    key = module_key(mlir_text, flags)
    start = time.perf_counter()
    if cache is not None:
        hit = cache.get(key)
        if hit is not None:
            log.debug("module cache hit %s", key[:12])
            return CompileResult(hit[0], key, True, time.perf_counter() - start, [], hit[1])
    tool = iree_compile_tool()
    with tempfile.TemporaryDirectory(prefix="mlirforge-compile-") as tmp:
        src = Path(tmp) / "input.mlir"
        out = Path(tmp) / "module.vmfb"
        src.write_text(mlir_text)
        command = ["iree-compile", "input.mlir", "-o", "module.vmfb", *flags]
        phases = Path(tmp) / "phases"
        try:
            proc = subprocess.run(
                # The phase dump is for `written_inputs` only; it changes nothing that is compiled.
                [tool, str(src), "-o", str(out), *flags, f"--dump-compilation-phases-to={phases}"],
                capture_output=True,
                text=True,
                timeout=timeout_s,
                # A crash prints its stack at once instead of a minute of llvm-symbolizer first.
                env={**os.environ, "LLVM_DISABLE_SYMBOLIZATION": "1"},
            )
        except subprocess.TimeoutExpired:
            raise stage_failure("iree-compile", f"iree-compile timed out after {timeout_s:.0f} s",
                                {"input.mlir": mlir_text}, command, []) from None
        if proc.returncode != 0 or not out.exists():
            diagnostics = proc.stderr.replace(str(src), source_name) or f"iree-compile exited {proc.returncode}"
            # With the torch input form, ops torch-mlir could not lower are only
            # found here, by IREE's torch conversion: name them for partitioning.
            raise stage_failure(
                "iree-compile", diagnostics, {"input.mlir": mlir_text}, command, unsupported_ops_in(diagnostics)
            )
        vmfb = out.read_bytes()
        written = _written_inputs(phases)
    seconds = time.perf_counter() - start
    log.debug("iree-compile %.2fs (%s)", seconds, key[:12])
    if cache is not None:
        cache.put(key, vmfb, written)
    return CompileResult(vmfb, key, False, seconds, command, written)


def _written_inputs(phases: Path) -> dict[str, tuple[int, ...]]:
    stream = sorted(phases.glob("*.stream.mlir"))
    if not stream:
        raise RuntimeError(f"iree-compile wrote no stream phase into {phases}; cannot tell which inputs it writes")
    return written_inputs(stream[0].read_text())
