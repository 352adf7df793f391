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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.utils._pytree as pytree

from mlirforge.llm_rewrite.types import Stage, json_safe
from mlirforge.lowering.errors import UserError

FORMAT = "mlirforge-artifact"
# 2: `copy_inputs` (inputs the module may write, passed as copies); a v1
# artifact cannot say which inputs it writes, so it is not loaded.
VERSION = 2
MANIFEST = "manifest.json"
MODULE = "module.vmfb"
PARAMETERS = "parameters.irpa"


class ManifestError(ValueError):
    """One defect of a manifest, naming its key (`'rewrites[0].timing.ci_low' is missing`)."""


# -- checked reading ----------------------------------------------------------------------------

_NONFINITE = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}  # as `json_safe` writes them


@dataclasses.dataclass(frozen=True)
class _Kind:
    """A JSON type a key must have: what to call it in an error, how to test and convert a value."""

    what: str
    plural: str
    ok: Callable[[Any], bool]
    convert: Callable[[Any], Any] = lambda v: v


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return _is_int(v) or isinstance(v, float) or (isinstance(v, str) and v in _NONFINITE)


STR = _Kind("a string", "strings", lambda v: isinstance(v, str))
INT = _Kind("an integer", "integers", _is_int)
BOOL = _Kind("a boolean", "booleans", lambda v: isinstance(v, bool))
NUM = _Kind("a number", "numbers", _is_number, lambda v: _NONFINITE[v] if isinstance(v, str) else float(v))
OBJ = _Kind("an object", "objects", lambda v: isinstance(v, dict))


def list_of(k: _Kind) -> _Kind:
    return _Kind(f"a list of {k.plural}", f"lists of {k.plural}",
                 lambda v: isinstance(v, list) and all(k.ok(x) for x in v), lambda v: [k.convert(x) for x in v])


def dict_of(k: _Kind) -> _Kind:
    return _Kind(f"an object of {k.plural}", f"objects of {k.plural}",
                 lambda v: isinstance(v, dict) and all(k.ok(x) for x in v.values()),
                 lambda v: {key: k.convert(x) for key, x in v.items()})


def nullable(k: _Kind) -> _Kind:
    return _Kind(f"{k.what} or null", k.plural, lambda v: v is None or k.ok(v),
                 lambda v: None if v is None else k.convert(v))


OUT_KINDS = ("computed", "input", "const")  # an output is a module result, an input passed through, or a constant


def _is_out_step(v: Any) -> bool:
    return (isinstance(v, list) and len(v) == 2 and v[0] in OUT_KINDS
            and (v[0] == "const" or _is_int(v[1])))


OUT_PLAN = _Kind("a list of [kind, value] pairs (kind computed or input with an integer, or const)", "plans",
                 lambda v: isinstance(v, list) and all(_is_out_step(x) for x in v),
                 lambda v: [(kind, value) for kind, value in v])


def _show(v: Any) -> str:
    text = json.dumps(v)
    return text if len(text) <= 40 else text[:37] + "..."


class _Fields:
    """One JSON object being read: each getter checks one key or raises a ManifestError naming it."""

    def __init__(self, data: Any, name: str = ""):
        if not isinstance(data, dict):
            raise ManifestError(f"'{name}' must be an object, not {_show(data)}" if name
                                else f"the manifest must be a JSON object, not {_show(data)}")
        self.data, self.name = data, name

    def key(self, key: str) -> str:
        return f"{self.name}.{key}" if self.name else key

    def has(self, *keys: str) -> bool:
        return any(k in self.data for k in keys)

    def get(self, key: str, kind: _Kind) -> Any:
        if key not in self.data:
            raise ManifestError(f"'{self.key(key)}' is missing")
        value = self.data[key]
        if not kind.ok(value):
            raise ManifestError(f"'{self.key(key)}' must be {kind.what}, not {_show(value)}")
        return kind.convert(value)

    def opt(self, key: str, kind: _Kind, default: Any = None) -> Any:
        return self.get(key, kind) if key in self.data else default

    def obj(self, key: str) -> _Fields:
        self.get(key, OBJ)
        return _Fields(self.data[key], self.key(key))

    def obj_or_none(self, key: str) -> _Fields | None:
        """A key that must be present and holds an object or null."""
        return None if self.get(key, nullable(OBJ)) is None else self.obj(key)

    def objs(self, key: str) -> list[_Fields]:
        return [_Fields(x, f"{self.key(key)}[{i}]") for i, x in enumerate(self.get(key, list_of(OBJ)))]

    def stage(self, key: str) -> Stage:
        name = self.get(key, STR)
        try:
            return Stage(name)
        except ValueError:
            raise ManifestError(f"'{self.key(key)}' is {name!r}, not a stage of the evaluation "
                                f"({', '.join(s.value for s in Stage)})") from None

    def rest(self, known: tuple[str, ...]) -> dict[str, Any]:
        return {k: v for k, v in self.data.items() if k not in known}


def _some(d: dict[str, Any]) -> dict[str, Any]:
    """`d` without its None values: optional keys that were absent stay absent."""
    return {k: v for k, v in d.items() if v is not None}


# -- evidence -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class EquivalenceEvidence:
    """What the worker's numerics check found (`llm_rewrite.worker.check`), plus how the candidate was built.

    `seeds` is None when the check did not run (a build failure, a worker
    crash); then `distributions`, `max_error` and `tolerance` are not written
    either. `max_error` is None where the outputs could not be compared (a
    shape mismatch), `tolerance` where no output was. A failing check's
    `distribution`, `output` and `why` are kept in `extra`.
    """

    seeds: int | None = None
    distributions: list[str] = dataclasses.field(default_factory=list)
    max_error: float | None = None
    tolerance: float | None = None
    flags: list[str] | None = None  # the IREE flags the candidate was compiled with
    driver: str | None = None  # the candidate's driver, if not the reference's
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    _CHECK = ("seeds", "distributions", "max_error", "tolerance")
    _KNOWN = (*_CHECK, "flags", "driver")

    @property
    def checked(self) -> bool:
        return self.seeds is not None

    def to_json(self) -> dict[str, Any]:
        check = {"seeds": self.seeds, "distributions": list(self.distributions), "max_error": self.max_error,
                 "tolerance": self.tolerance} if self.checked else {}
        return {**check, **_some({"flags": self.flags, "driver": self.driver}), **self.extra}

    @classmethod
    def from_json(cls, f: _Fields, checked: bool = False) -> EquivalenceEvidence:
        """`checked`: the check must have run (a kept rewrite)."""
        check = {}
        if checked or f.has(*cls._CHECK):
            check = {"seeds": f.get("seeds", INT), "distributions": f.get("distributions", list_of(STR)),
                     "max_error": f.get("max_error", nullable(NUM)), "tolerance": f.get("tolerance", nullable(NUM))}
        return cls(**check, flags=f.opt("flags", list_of(STR)), driver=f.opt("driver", STR),
                   extra=f.rest(cls._KNOWN))


@dataclasses.dataclass(frozen=True, kw_only=True)
class TimingEvidence:
    """The worker's interleaved A/B timing (`llm_rewrite.worker.time_ab`).

    `speedup` (median ratio) and its confidence interval are None when nothing
    was timed; then nothing is written. A re-timed near miss keeps the first
    measurement under `extra["retimed_after"]`.
    """

    speedup: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    baseline_us: float | None = None  # medians of the reference and the candidate
    candidate_us: float | None = None
    rounds: int | None = None
    inner: int | None = None
    confidence: float | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    _SPEEDUP = ("speedup", "ci_low", "ci_high")
    _KNOWN = (*_SPEEDUP, "baseline_us", "candidate_us", "rounds", "inner", "confidence")

    @property
    def timed(self) -> bool:
        return self.speedup is not None

    def to_json(self) -> dict[str, Any]:
        speedup = {"speedup": self.speedup, "ci_low": self.ci_low, "ci_high": self.ci_high} if self.timed else {}
        rest = {"baseline_us": self.baseline_us, "candidate_us": self.candidate_us, "rounds": self.rounds,
                "inner": self.inner, "confidence": self.confidence}
        return {**speedup, **_some(rest), **self.extra}

    @classmethod
    def from_json(cls, f: _Fields, timed: bool = False) -> TimingEvidence:
        """`timed`: there must be a speedup (a kept rewrite)."""
        speedup = {}
        if timed or f.has(*cls._SPEEDUP):
            speedup = {k: f.get(k, NUM) for k in cls._SPEEDUP}
        return cls(**speedup, baseline_us=f.opt("baseline_us", NUM), candidate_us=f.opt("candidate_us", NUM),
                   rounds=f.opt("rounds", INT), inner=f.opt("inner", INT), confidence=f.opt("confidence", NUM),
                   extra=f.rest(cls._KNOWN))


@dataclasses.dataclass(frozen=True, kw_only=True)
class RewriteRecord:
    """One kept rewrite: the kernel, the candidate (its own JSON), and the evidence that let it in."""

    kernel: str  # the kernel's hash
    kernel_root: str
    kernel_name: str
    candidate: dict[str, Any]  # `Candidate.to_json()`: kind, payload, provenance, id
    equivalence: EquivalenceEvidence
    timing: TimingEvidence
    reason: str
    transcript: str | None = None  # the artifact's LLM transcript, for a candidate an LLM request proposed

    @classmethod
    def from_verdict(cls, kernel, candidate, verdict, transcript: str | None = None) -> RewriteRecord:
        """A kept (kernel, Candidate, Verdict); `transcript`: the transcript file the artifact keeps, if any.

        Raises ManifestError if the verdict lacks the evidence a kept rewrite must have.
        """
        v = verdict.to_json()
        return cls(kernel=kernel.hash, kernel_root=kernel.root, kernel_name=kernel.name,
                   candidate=candidate.to_json(),
                   equivalence=EquivalenceEvidence.from_json(_Fields(v["equivalence"], "equivalence"), checked=True),
                   timing=TimingEvidence.from_json(_Fields(v["timing"], "timing"), timed=True),
                   reason=verdict.reason, transcript=transcript if candidate.request is not None else None)

    def to_json(self) -> dict[str, Any]:
        return {"kernel": self.kernel, "kernel_root": self.kernel_root, "kernel_name": self.kernel_name,
                "candidate": self.candidate, "equivalence": self.equivalence.to_json(),
                "timing": self.timing.to_json(), "reason": self.reason, **_some({"transcript": self.transcript})}

    @classmethod
    def from_json(cls, f: _Fields) -> RewriteRecord:
        f.obj("candidate").get("kind", STR)
        return cls(kernel=f.get("kernel", STR), kernel_root=f.get("kernel_root", STR),
                   kernel_name=f.get("kernel_name", STR), candidate=f.get("candidate", OBJ),
                   equivalence=EquivalenceEvidence.from_json(f.obj("equivalence"), checked=True),
                   timing=TimingEvidence.from_json(f.obj("timing"), timed=True),
                   reason=f.get("reason", STR), transcript=f.opt("transcript", STR))


@dataclasses.dataclass(frozen=True, kw_only=True)
class VerdictRecord:
    """A `Verdict` as the manifest keeps it (the optimised model against the unoptimised one)."""

    candidate_id: str
    stage: Stage  # the last stage of the cascade reached
    built: bool
    equivalent: bool | None
    accepted: bool
    reason: str
    equivalence: EquivalenceEvidence
    timing: TimingEvidence

    @property
    def speedup(self) -> float | None:
        return self.timing.speedup

    @classmethod
    def from_verdict(cls, verdict) -> VerdictRecord:
        return cls.from_json(_Fields(verdict.to_json(), "verdict"))

    def to_json(self) -> dict[str, Any]:
        return {"candidate_id": self.candidate_id, "stage": self.stage.value, "built": self.built,
                "equivalent": self.equivalent, "accepted": self.accepted, "reason": self.reason,
                "equivalence": self.equivalence.to_json(), "timing": self.timing.to_json(), "speedup": self.speedup}

    @classmethod
    def from_json(cls, f: _Fields) -> VerdictRecord:
        return cls(candidate_id=f.get("candidate_id", STR), stage=f.stage("stage"), built=f.get("built", BOOL),
                   equivalent=f.get("equivalent", nullable(BOOL)), accepted=f.get("accepted", BOOL),
                   reason=f.get("reason", STR), equivalence=EquivalenceEvidence.from_json(f.obj("equivalence")),
                   timing=TimingEvidence.from_json(f.obj("timing")))


# -- the search's record ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class DroppedRecord:
    """A kernel winner that did not make it into the model, and why."""

    kernel: str
    candidate: str  # `Candidate.describe()`
    why: str

    def to_json(self) -> dict[str, Any]:
        return {"kernel": self.kernel, "candidate": self.candidate, "why": self.why}

    @classmethod
    def from_json(cls, f: _Fields) -> DroppedRecord:
        return cls(kernel=f.get("kernel", STR), candidate=f.get("candidate", STR), why=f.get("why", STR))


@dataclasses.dataclass(frozen=True, kw_only=True)
class BaselineRecord:
    """How to rebuild the unoptimised model, to time the artifact against it (`mlirforge.measure`)."""

    mlir: str  # a file in the artifact
    iree_flags: list[str]
    driver: str

    def to_json(self) -> dict[str, Any]:
        return {"mlir": self.mlir, "iree_flags": list(self.iree_flags), "driver": self.driver}

    @classmethod
    def from_json(cls, f: _Fields) -> BaselineRecord:
        return cls(mlir=f.get("mlir", STR), iree_flags=f.get("iree_flags", list_of(STR)), driver=f.get("driver", STR))


@dataclasses.dataclass(frozen=True, kw_only=True)
class OptimizationRecord:
    """What the search did: who proposed, what it cost, what the model as a whole showed, what was dropped."""

    proposer: str
    budget_s: float
    transcript: str | None  # the LLM transcript kept in the artifact
    llm: dict[str, Any] | None  # the proposer's usage (requests, tokens, seconds), if metered
    stopped: str | None  # why the search stopped early
    rejected_answers: int
    evaluations: int
    seconds: float
    interrupted: bool
    module_candidate: dict[str, Any] | None  # the kept module-wide candidate's JSON
    end_to_end: VerdictRecord | None
    dropped: list[DroppedRecord]
    baseline: BaselineRecord

    @classmethod
    def for_search(cls, proposer, budget_s: float, transcript: str | None, search, composition,
                   baseline: BaselineRecord) -> OptimizationRecord:
        """From a proposer, `llm_rewrite.search.SearchResult` and `llm_rewrite.compose.Composition`."""
        winner, verdict = search.module_winner, composition.verdict
        kept_module = winner is not None and verdict is not None and verdict.accepted
        return cls(
            proposer=proposer.name, budget_s=budget_s, transcript=transcript, llm=proposer.usage(),
            stopped=search.stopped or None, rejected_answers=search.rejected_answers,
            evaluations=search.evaluations, seconds=round(search.seconds, 2), interrupted=search.interrupted,
            module_candidate=winner[0].to_json() if kept_module else None,
            end_to_end=VerdictRecord.from_verdict(verdict) if verdict else None,
            dropped=[DroppedRecord(kernel=w[0].hash, candidate=w[1].describe(), why=why)
                     for w, why in composition.dropped],
            baseline=baseline,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "proposer": self.proposer, "budget_s": self.budget_s, "transcript": self.transcript, "llm": self.llm,
            "stopped": self.stopped, "rejected_answers": self.rejected_answers, "evaluations": self.evaluations,
            "seconds": self.seconds, "interrupted": self.interrupted, "module_candidate": self.module_candidate,
            "end_to_end": self.end_to_end.to_json() if self.end_to_end else None,
            "dropped": [d.to_json() for d in self.dropped], "baseline": self.baseline.to_json(),
        }

    @classmethod
    def from_json(cls, f: _Fields) -> OptimizationRecord:
        return cls(
            proposer=f.get("proposer", STR), budget_s=f.get("budget_s", NUM),
            transcript=f.get("transcript", nullable(STR)), llm=f.get("llm", nullable(OBJ)),
            stopped=f.get("stopped", nullable(STR)), rejected_answers=f.get("rejected_answers", INT),
            evaluations=f.get("evaluations", INT), seconds=f.get("seconds", NUM),
            interrupted=f.get("interrupted", BOOL), module_candidate=f.get("module_candidate", nullable(OBJ)),
            end_to_end=VerdictRecord.from_json(e2e) if (e2e := f.obj_or_none("end_to_end")) else None,
            dropped=[DroppedRecord.from_json(d) for d in f.objs("dropped")],
            baseline=BaselineRecord.from_json(f.obj("baseline")),
        )


# -- the manifest -------------------------------------------------------------------------------


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
    def from_json(cls, f: _Fields) -> InputSpec:
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
    def from_json(cls, f: _Fields) -> CompileRecord:
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
        f = _Fields(data)
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
        )


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
        return Manifest.from_json(data)
    except ManifestError as exc:
        raise UserError(f"{path}: {exc}") from None
