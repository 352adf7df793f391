"""An artifact's manifest.json as typed records, written and read only here.

The manifest holds what `mlirforge.load` needs to run the module (its inputs,
how outputs are rebuilt, which inputs are passed as copies, the driver) and
what a reader needs to trust it: the tools and CPU it was built for and, from
a search, every kept rewrite with the equivalence and timing evidence that let
it in (Invariant 1).

`Manifest.to_json()` is what `write_artifact` writes; `read_manifest(path)`
reads it back and rejects, with a UserError naming the file and the key, a
manifest of another format or version, a missing key, a key of the wrong type
or a stage the evaluation cascade does not have. Keys this version does not
know are ignored, except in the evidence records, which keep them (`extra`)
so that whatever the worker measured reaches the manifest whole.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
import torch.utils._pytree as pytree

from mlirforge.evidence import OptimizationRecord, RewriteRecord
from mlirforge.llm_rewrite.types import json_safe
from mlirforge.lowering.errors import UserError
from mlirforge.manifest_schema import (
    INT, NUM, OBJ, OUT_PLAN, STR, Fields, ManifestError, dict_of, list_of, nullable,
)

FORMAT = "mlirforge-artifact"
# 2: `copy_inputs` (inputs the module may write, passed as copies); a v1
# artifact cannot say which inputs it writes, so it is not loaded.
VERSION = 2
MANIFEST = "manifest.json"
MODULE = "module.vmfb"
PARAMETERS = "parameters.irpa"
def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


@dataclasses.dataclass(frozen=True, kw_only=True)
class InputSpec:
    """One model input the artifact was compiled for."""

    shape: tuple[int, ...]
    dtype: str  # torch's name: float32, int64, uint8, ...

    @classmethod
    def of(cls, t: torch.Tensor) -> InputSpec:
        return cls(shape=tuple(t.shape), dtype=dtype_name(t.dtype))

    def to_json(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_json(cls, f: Fields) -> InputSpec:
        return cls(shape=tuple(f.get("shape", list_of(INT))), dtype=f.get("dtype", STR))


@dataclasses.dataclass(frozen=True, kw_only=True)
class CompileRecord:
    form: str  # what the model was lowered to before IREE
    iree_flags: list[str]
    module_key: str  # the module cache's key
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"form": self.form, "iree_flags": list(self.iree_flags), "module_key": self.module_key,
                "seconds": self.seconds}

    @classmethod
    def from_json(cls, f: Fields) -> CompileRecord:
        return cls(form=f.get("form", STR), iree_flags=f.get("iree_flags", list_of(STR)),
                   module_key=f.get("module_key", STR), seconds=f.get("seconds", NUM))


def _plain(tree):
    """`torch.return_types.*` (structseqs, which pytree cannot serialise) as plain tuples, recursively."""
    if isinstance(tree, tuple):
        return tuple(_plain(x) for x in tree)
    if isinstance(tree, list):
        return [_plain(x) for x in tree]
    if isinstance(tree, dict):
        return {k: _plain(v) for k, v in tree.items()}
    return tree


def dump_out_spec(spec: pytree.TreeSpec) -> tuple[str, str | None]:
    """`out_spec` as pytree writes it, and `out_structseq`: the `torch.return_types` name of a structseq result."""
    tree = pytree.tree_unflatten(list(range(spec.num_leaves)), spec)
    structseq = type(tree).__name__ if type(tree).__module__ == "torch.return_types" else None
    return pytree.treespec_dumps(pytree.tree_structure(_plain(tree))), structseq


@dataclasses.dataclass(frozen=True, kw_only=True)
class Manifest:
    """manifest.json. `module` and `parameters` name the artifact's files; `write_artifact` sets them."""

    format: str = FORMAT
    version: int = VERSION
    module: str = MODULE
    parameters: str | None = None  # the parameter archive, if the model has weights
    entry: str = "main"
    driver: str
    source: str | None  # the model file it was compiled from
    inputs: list[InputSpec]
    module_inputs: list[int]  # the user input passed as each of the module's inputs
    copy_inputs: list[int]  # positions in the module's inputs that it may write into: passed as copies
    result_dtypes: list[str]  # of the module's results: IREE hands unsigned ones back as signed
    out_plan: list[tuple[str, Any]]  # each output leaf: ("computed", result) | ("input", user input) | ("const", v)
    out_spec: str  # the outputs' pytree structure (`pytree.treespec_dumps`)
    out_structseq: str | None  # the `torch.return_types` name of a structseq result
    parameter_names: list[str]
    compile: CompileRecord
    tool_versions: dict[str, str]
    target: dict[str, Any]  # `lowering.target.host_cpu().describe()`
    rewrites: list[RewriteRecord] = dataclasses.field(default_factory=list)
    optimization: OptimizationRecord | None = None  # only from `mlirforge optimize`

    @classmethod
    def for_compiled(cls, opts, source, inputs, exported, compiled, low, *, driver: str | None = None,
                     iree_flags: list[str] | None = None, rewrites: list[RewriteRecord] = (),
                     optimization: OptimizationRecord | None = None) -> Manifest:
        """The manifest of a module compiled from an exported model.

        `opts`: the LoweringOptions; `exported`: `lowering.torch_export.export_model`'s
        result, `low` its lowered graph; `compiled`: the `CompileResult`. `driver` and
        `iree_flags` default to the options' (a search may choose others). Raises
        UserError if the model returns one of its weights unchanged.
        """
        from mlirforge.lowering.target import host_cpu
        from mlirforge.lowering.versions import tool_versions

        user_index = {pos: i for i, pos in enumerate(exported.user_positions)}
        out_plan = []
        for kind, value in low.out_plan:
            if kind == "input":
                if value not in user_index:
                    raise UserError("the model returns one of its weights unchanged; artifacts cannot")
                value = user_index[value]
            out_plan.append((kind, value))
        out_spec, structseq = dump_out_spec(low.out_spec)
        return cls(
            driver=driver or opts.driver,
            source=None if source is None else str(source),
            inputs=[InputSpec.of(t) for t in inputs],
            module_inputs=[user_index[p] for p in low.input_positions],
            copy_inputs=list(compiled.copy_inputs()),
            result_dtypes=[dtype_name(d) for d in low.result_dtypes],
            out_plan=out_plan, out_spec=out_spec, out_structseq=structseq,
            parameter_names=list(exported.parameter_names),
            compile=CompileRecord(form=opts.form, iree_flags=list(opts.iree_flags if iree_flags is None
                                                                  else iree_flags),
                                  module_key=compiled.key, seconds=round(compiled.seconds, 3)),
            tool_versions=tool_versions(), target=host_cpu().describe(),
            rewrites=list(rewrites), optimization=optimization,
        )

    def to_json(self) -> dict[str, Any]:
        """The manifest as written: strict JSON (NaN and infinities as strings)."""
        d = {
            "format": self.format, "version": self.version, "module": self.module, "parameters": self.parameters,
            "entry": self.entry, "driver": self.driver, "source": self.source,
            "inputs": [s.to_json() for s in self.inputs], "module_inputs": list(self.module_inputs),
            "copy_inputs": list(self.copy_inputs), "result_dtypes": list(self.result_dtypes),
            "out_plan": [[kind, value] for kind, value in self.out_plan], "out_spec": self.out_spec,
            "out_structseq": self.out_structseq, "parameter_names": list(self.parameter_names),
            "compile": self.compile.to_json(), "tool_versions": dict(self.tool_versions), "target": self.target,
            "rewrites": [r.to_json() for r in self.rewrites],
        }
        if self.optimization is not None:
            d["optimization"] = self.optimization.to_json()
        return json_safe(d)

    @classmethod
    def from_json(cls, data: Any) -> Manifest:
        """Read a manifest of this FORMAT and VERSION; raises ManifestError naming the first bad key."""
        f = Fields(data)
        if problem := _format_problem(f.data):
            raise ManifestError(problem)
        return cls(
            module=f.get("module", STR), parameters=f.get("parameters", nullable(STR)), entry=f.get("entry", STR),
            driver=f.get("driver", STR), source=f.get("source", nullable(STR)),
            inputs=[InputSpec.from_json(s) for s in f.objs("inputs")],
            module_inputs=f.get("module_inputs", list_of(INT)), copy_inputs=f.get("copy_inputs", list_of(INT)),
            # Written since 8-bit unsigned results (still v2): older artifacts have no unsigned results.
            result_dtypes=f.opt("result_dtypes", list_of(STR), []),
            out_plan=f.get("out_plan", OUT_PLAN), out_spec=f.get("out_spec", STR),
            out_structseq=f.opt("out_structseq", nullable(STR)),
            parameter_names=f.get("parameter_names", list_of(STR)),
            compile=CompileRecord.from_json(f.obj("compile")), tool_versions=f.get("tool_versions", dict_of(STR)),
            target=f.get("target", OBJ), rewrites=[RewriteRecord.from_json(r) for r in f.objs("rewrites")],
            optimization=OptimizationRecord.from_json(f.obj("optimization")) if f.has("optimization") else None,
        )._consistent()

    def _consistent(self) -> Manifest:
        """What the types cannot say: positions in range, names that exist, evidence that admits the rewrite.
        Raises ManifestError naming the key (checked on load, so a bad artifact fails there, not mid-call)."""
        from mlirforge.lowering.runtime import DRIVER_CHOICES

        def positions(key: str, values: list[int], n: int, of: str) -> None:
            bad = [v for v in values if not 0 <= v < n]
            if bad:
                raise ManifestError(f"'{key}' holds {bad}, outside the {n} {of}")

        for key in ("module", "parameters"):
            name = getattr(self, key)
            if name is not None and (not name or Path(name).name != name or name in (".", "..")):
                raise ManifestError(f"'{key}' must name a file in the artifact directory, not {name!r}")
        if self.parameter_names and self.parameters is None:
            raise ManifestError(f"'parameters' is null but the module has {len(self.parameter_names)} weights")
        if self.driver not in DRIVER_CHOICES:
            raise ManifestError(f"'driver' is {self.driver!r}, not one of {', '.join(DRIVER_CHOICES)}")
        positions("module_inputs", self.module_inputs, len(self.inputs), "inputs")
        positions("copy_inputs", self.copy_inputs, len(self.module_inputs), "module inputs")
        positions("out_plan (input)", [v for k, v in self.out_plan if k == "input"], len(self.inputs), "inputs")
        if self.result_dtypes:
            positions("out_plan (computed)", [v for k, v in self.out_plan if k == "computed"],
                      len(self.result_dtypes), "module results")
        for name in self.result_dtypes:
            if not isinstance(getattr(torch, name, None), torch.dtype):
                raise ManifestError(f"'result_dtypes' holds {name!r}, not a torch dtype")
        if self.out_structseq is not None and not hasattr(torch.return_types, self.out_structseq):
            raise ManifestError(f"'out_structseq' is {self.out_structseq!r}, not a torch.return_types name")
        try:
            spec = pytree.treespec_loads(self.out_spec)
        except Exception:  # noqa: BLE001 - whatever pytree raises for text it cannot read
            raise ManifestError("'out_spec' is not a pytree TreeSpec that this torch can read") from None
        if spec.num_leaves != len(self.out_plan):
            raise ManifestError(f"'out_spec' has {spec.num_leaves} leaves but 'out_plan' {len(self.out_plan)}")
        for i, r in enumerate(self.rewrites):
            if r.timing.ci_low is None or r.timing.ci_low < 1.0:
                raise ManifestError(f"'rewrites[{i}].timing.ci_low' is {r.timing.ci_low}: a kept rewrite must be "
                                    "faster with confidence (lower bound >= 1)")
        return self


def _format_problem(data: dict[str, Any]) -> str | None:
    if data.get("format") == FORMAT and data.get("version") == VERSION:
        return None
    return (f"unsupported artifact format {data.get('format')} v{data.get('version')} "
            f"(this mlirforge reads {FORMAT} v{VERSION}; compile the model again)")


def write_manifest(directory: Path, manifest: Manifest) -> None:
    (Path(directory) / MANIFEST).write_text(json.dumps(manifest.to_json(), indent=2) + "\n", encoding="utf-8")


def read_manifest(directory: str | Path) -> Manifest:
    """The manifest of the artifact in `directory`.

    Raises UserError naming the artifact: no manifest, malformed JSON, another
    format or version, a missing key, a key of the wrong type, an unknown stage.
    """
    directory = Path(directory)
    path = directory / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{directory}: not an mlirforge artifact (no {MANIFEST})") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}:{exc.colno}: error: {exc.msg}") from None
    if isinstance(data, dict) and (problem := _format_problem(data)):
        raise UserError(f"{directory}: {problem}")
    try:
        manifest = Manifest.from_json(data)
    except ManifestError as exc:
        raise UserError(f"{path}: {exc}") from None
    for key in ("module", "parameters"):
        name = getattr(manifest, key)
        if name is not None and not (directory / name).is_file():
            raise UserError(f"{path}: '{key}' names {name}, which is not in the artifact")
    return manifest
