"""The artifact: a directory that runs a compiled model with no compiler and no LLM.

    out/
      module.vmfb        the IREE module (weights not included)
      parameters.irpa    the weights, as an IREE parameter archive
      manifest.json      inputs, outputs, flags, tool versions, target CPU,
                         and (from the search) every accepted rewrite with its evidence

`write_artifact` builds the directory beside its destination and renames it
into place, so a failure never leaves a half-written artifact. `load` needs
only torch and the IREE runtime.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.utils._pytree as pytree

from mlirforge.lowering.errors import UserError
from mlirforge.lowering.runtime import IreeModule, load_module, write_parameter_archive

FORMAT = "mlirforge-artifact"
# 2: `copy_inputs` (inputs the module may write, passed as copies); a v1
# artifact cannot say which inputs it writes, so it is not loaded.
VERSION = 2
MANIFEST = "manifest.json"
MODULE = "module.vmfb"
PARAMETERS = "parameters.irpa"


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


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
    manifest: dict[str, Any],
    extra_files: dict[str, str] | None = None,
) -> Path:
    """Write an artifact directory atomically; returns its path.

    Refuses to replace an existing directory that is not an artifact.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / MANIFEST).exists())):
        raise UserError(f"{out_dir}: exists and is not an mlirforge artifact; refusing to overwrite it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        (staging / MODULE).write_bytes(vmfb)
        write_parameter_archive(staging / PARAMETERS, parameters)
        full = {
            "format": FORMAT,
            "version": VERSION,
            "module": MODULE,
            "parameters": PARAMETERS if parameters else None,
            **manifest,
        }
        (staging / MANIFEST).write_text(json.dumps(full, indent=2, default=str) + "\n", encoding="utf-8")
        for name, text in (extra_files or {}).items():
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def _plain(tree):
    """`torch.return_types.*` (structseqs, which pytree cannot serialise) as plain tuples, recursively."""
    if isinstance(tree, tuple):
        return tuple(_plain(x) for x in tree)
    if isinstance(tree, list):
        return [_plain(x) for x in tree]
    if isinstance(tree, dict):
        return {k: _plain(v) for k, v in tree.items()}
    return tree


def dump_out_spec(spec: pytree.TreeSpec) -> dict[str, Any]:
    """The manifest's `out_spec` (and `out_structseq`: the `torch.return_types` name of a structseq result)."""
    tree = pytree.tree_unflatten(list(range(spec.num_leaves)), spec)
    structseq = type(tree).__name__ if type(tree).__module__ == "torch.return_types" else None
    return {"out_spec": pytree.treespec_dumps(pytree.tree_structure(_plain(tree))), "out_structseq": structseq}


def tensor_spec(t: torch.Tensor) -> dict[str, Any]:
    return {"shape": list(t.shape), "dtype": _dtype_name(t.dtype)}


class LoadedArtifact:
    """A loaded artifact; call it with the model's inputs (torch tensors or numpy arrays)."""

    def __init__(self, path: Path, manifest: dict[str, Any], module: IreeModule):
        self.path = path
        self.manifest = manifest
        self.module = module
        self._out_spec = pytree.treespec_loads(manifest["out_spec"])

    def __call__(self, *inputs):
        specs = self.manifest["inputs"]
        if len(inputs) != len(specs):
            raise UserError(f"{self.path}: expected {len(specs)} inputs, got {len(inputs)}")
        tensors = []
        for i, (x, spec) in enumerate(zip(inputs, specs)):
            t = x if isinstance(x, torch.Tensor) else torch.as_tensor(x)
            if list(t.shape) != spec["shape"] or _dtype_name(t.dtype) != spec["dtype"]:
                raise UserError(
                    f"{self.path}: input {i} is {list(t.shape)} {_dtype_name(t.dtype)}, "
                    f"the artifact was compiled for {spec['shape']} {spec['dtype']}"
                )
            tensors.append(t)
        outs = self.module(*[tensors[i] for i in self.manifest["module_inputs"]])
        for j, name in enumerate(self.manifest.get("result_dtypes", [])):
            dtype = getattr(torch, name)
            if outs[j].dtype != dtype and outs[j].element_size() == dtype.itemsize:
                outs[j] = outs[j].view(dtype)  # unsigned results come back signed, bits unchanged
        leaves = []
        for kind, value in self.manifest["out_plan"]:
            leaves.append(outs[value] if kind == "computed" else tensors[value] if kind == "input" else value)
        out = pytree.tree_unflatten(leaves, self._out_spec)
        structseq = self.manifest.get("out_structseq")
        return getattr(torch.return_types, structseq)(out) if structseq else out


def load(path: str | Path, driver: str | None = None) -> LoadedArtifact:
    """Load an artifact directory; raises UserError if it is missing or malformed."""
    path = Path(path)
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: not an mlirforge artifact (no {MANIFEST})") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path / MANIFEST}:{exc.lineno}:{exc.colno}: error: {exc.msg}") from None
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION or "copy_inputs" not in manifest:
        raise UserError(f"{path}: unsupported artifact format {manifest.get('format')} v{manifest.get('version')} "
                        f"(this mlirforge reads {FORMAT} v{VERSION}; compile the model again)")
    vmfb = (path / manifest["module"]).read_bytes()
    archive = path / manifest["parameters"] if manifest.get("parameters") else None
    module = load_module(
        vmfb,
        driver=driver or manifest.get("driver", "local-sync"),
        parameters=() if archive is None else None,
        archive=archive,
        copy_inputs=manifest["copy_inputs"],
    )
    return LoadedArtifact(path, manifest, module)
