"""The artifact: a directory that runs a compiled model with no compiler and no LLM.

    out/
      module.vmfb        the IREE module (weights not included)
      parameters.irpa    the weights, as an IREE parameter archive
      manifest.json      inputs, outputs, flags, tool versions, target CPU,
                         and (from the search) every accepted rewrite with its evidence

`write_artifact` builds the directory beside its destination and renames it
into place, so a failure never leaves a half-written artifact. `load` needs
only torch and the IREE runtime. The manifest's records, and the one reader
and writer of manifest.json, are in `mlirforge.manifest`.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path

import torch
import torch.utils._pytree as pytree

from mlirforge.lowering.errors import UserError
from mlirforge.lowering.runtime import IreeModule, load_module, write_parameter_archive
from mlirforge.manifest import MANIFEST, MODULE, PARAMETERS, Manifest, dtype_name, read_manifest, write_manifest


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same directory and rename into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_artifact(
    out_dir: Path,
    vmfb: bytes,
    parameters: list[torch.Tensor],
    manifest: Manifest,
    extra_files: dict[str, str] | None = None,
) -> Path:
    """Write an artifact directory atomically; returns its path.

    The manifest's `module` and `parameters` are set to the files written here.
    Refuses to replace an existing directory that is not an artifact.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / MANIFEST).exists())):
        raise UserError(f"{out_dir}: exists and is not an mlirforge artifact; refusing to overwrite it")
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    except OSError as exc:
        raise UserError(f"{out_dir}: cannot write the artifact: {exc.strerror or exc}") from None
    try:
        (staging / MODULE).write_bytes(vmfb)
        write_parameter_archive(staging / PARAMETERS, parameters)
        write_manifest(staging, dataclasses.replace(manifest, module=MODULE,
                                                    parameters=PARAMETERS if parameters else None))
        for name, text in (extra_files or {}).items():
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        _move_into_place(staging, out_dir)
    except OSError as exc:  # a full disk, a read-only directory: the old artifact, if any, is untouched
        shutil.rmtree(staging, ignore_errors=True)
        raise UserError(f"{out_dir}: cannot write the artifact: {exc.strerror or exc}; "
                        "nothing was changed there") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


_RENAME_EXCHANGE = 2  # linux/fs.h


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directory entries in one atomic step (Linux renameat2); False where unsupported."""
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0


def _move_into_place(staging: Path, out_dir: Path) -> None:
    """Put the finished `staging` directory at `out_dir`, replacing an existing artifact.

    There is never a moment without a whole artifact at `out_dir`: the two are swapped atomically
    (the old one then sits in `staging` and is removed), so a process killed at any point leaves
    the old artifact or the new one, never neither or a mix. Where the swap is unsupported the old
    one is renamed aside first, leaving a short window in which `out_dir` does not exist.
    """
    if not out_dir.exists():
        os.replace(staging, out_dir)
        return
    if _exchange(staging, out_dir):
        shutil.rmtree(staging, ignore_errors=True)
        return
    aside = staging.with_name(staging.name + ".old")
    os.replace(out_dir, aside)
    try:
        os.replace(staging, out_dir)
    except BaseException:
        os.replace(aside, out_dir)  # the old one back where it was: "nothing was changed" stays true
        raise
    shutil.rmtree(aside, ignore_errors=True)


class LoadedArtifact:
    """A loaded artifact; call it with the model's inputs (torch tensors or numpy arrays)."""

    def __init__(self, path: Path, manifest: Manifest, module: IreeModule):
        self.path = path
        self.manifest = manifest
        self.module = module
        self._out_spec = pytree.treespec_loads(manifest.out_spec)

    def __call__(self, *inputs):
        m = self.manifest
        if len(inputs) != len(m.inputs):
            raise UserError(f"{self.path}: expected {len(m.inputs)} inputs, got {len(inputs)}")
        tensors = []
        for i, (x, spec) in enumerate(zip(inputs, m.inputs)):
            t = x if isinstance(x, torch.Tensor) else torch.as_tensor(x)
            if tuple(t.shape) != spec.shape or dtype_name(t.dtype) != spec.dtype:
                raise UserError(
                    f"{self.path}: input {i} is {list(t.shape)} {dtype_name(t.dtype)}, "
                    f"the artifact was compiled for {list(spec.shape)} {spec.dtype}"
                )
            tensors.append(t)
        outs = self.module(*[tensors[i] for i in m.module_inputs])
        for j, name in enumerate(m.result_dtypes):
            dtype = getattr(torch, name)
            if outs[j].dtype != dtype and outs[j].element_size() == dtype.itemsize:
                outs[j] = outs[j].view(dtype)  # unsigned results come back signed, bits unchanged
        leaves = []
        for kind, value in m.out_plan:
            leaves.append(outs[value] if kind == "computed" else tensors[value] if kind == "input" else value)
        out = pytree.tree_unflatten(leaves, self._out_spec)
        return getattr(torch.return_types, m.out_structseq)(out) if m.out_structseq else out


def load(path: str | Path, driver: str | None = None) -> LoadedArtifact:
    """Load an artifact directory; raises UserError if it is missing or its manifest is not understood."""
    path = Path(path)
    manifest = read_manifest(path)
    vmfb = (path / manifest.module).read_bytes()
    archive = path / manifest.parameters if manifest.parameters else None
    module = load_module(
        vmfb,
        driver=driver or manifest.driver,
        parameters=() if archive is None else None,
        archive=archive,
        copy_inputs=manifest.copy_inputs,
    )
    return LoadedArtifact(path, manifest, module)
