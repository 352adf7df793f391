"""The shared vocabulary of the search: Kernel, Candidate, Verdict."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

CANDIDATE_KINDS = ("flags", "pipeline", "tiling", "kernel")


def json_safe(value: Any) -> Any:
    """NaN and infinities as strings, so manifests and --json output stay strict JSON."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int, ...]
    dtype: str  # MLIR element type: f32, f16, bf16, i64, ...

    def to_json(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TensorSpec:
        return cls(tuple(d["shape"]), d["dtype"])

    @property
    def mlir(self) -> str:
        return "tensor<" + "".join(f"{d}x" for d in self.shape) + self.dtype + ">"


@dataclasses.dataclass
class Kernel:
    """An outlined hot-op cluster, runnable on its own as `@main` of `module`."""

    hash: str
    name: str
    root: str
    module: str  # a standalone module whose public @main is the kernel
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    reduction_depth: int  # product of the root's reduction loop sizes (1 if none)
    calls: int = 1  # call sites in the model
    sources: list[str] = dataclasses.field(default_factory=list)
    baseline_us: float | None = None
    weight_inputs: list[int] = dataclasses.field(default_factory=list)
    """Argument positions fed by model weights at every call site. They are bound
    as IREE parameters when the kernel runs alone, as in the model, so that
    weight-only work (transposes, data-tiling packs) is hoisted there too and a
    kernel's timing means what it means inside the model."""

    @property
    def call_inputs(self) -> list[TensorSpec]:
        """The inputs passed at each call when the weights are parameters."""
        return [s for i, s in enumerate(self.inputs) if i not in self.weight_inputs]

    @property
    def weights(self) -> list[TensorSpec]:
        return [self.inputs[i] for i in self.weight_inputs]

    @property
    def weight(self) -> float:
        """How much of the model's time this kernel is worth (for ranking)."""
        return (self.baseline_us or 0.0) * self.calls


@dataclasses.dataclass
class Candidate:
    """One proposed change.

    kind `flags`:    payload {"iree_flags": [...]} (module-wide)
    kind `pipeline`: payload {"pipeline": "pass-a,pass-b{...}"} (our passes, on the kernel)
    kind `tiling`:   payload {"distribution": [...], "vector_common_parallel": [...],
                              "vector_reduction": [...], "pipeline": "DoubleTilingExpert"}
    kind `kernel`:   payload {"mlir": "func.func ..."} (identical signature)
    """

    kind: str
    payload: dict[str, Any]
    kernel_hash: str | None = None  # None for module-wide candidates
    proposer: str = "unknown"
    model: str | None = None  # the LLM model, for llm proposals
    prompt_hash: str | None = None
    parent: str | None = None  # id of the candidate this one refines
    rationale: str = ""
    request: int | None = None  # the transcript record (seq) of the request that proposed it

    def __post_init__(self) -> None:
        if self.kind not in CANDIDATE_KINDS:
            raise ValueError(f"unknown candidate kind {self.kind!r}; expected one of {CANDIDATE_KINDS}")

    @property
    def id(self) -> str:
        text = json.dumps([self.kind, self.payload, self.kernel_hash], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def describe(self) -> str:
        if self.kind == "tiling":
            p = self.payload
            return f"tiling dist={p.get('distribution')} vec={p.get('vector_common_parallel')} red={p.get('vector_reduction')}"
        if self.kind == "flags":
            parts = list(self.payload.get("iree_flags", []))
            if "driver" in self.payload:
                parts.append(f"driver={self.payload['driver']}")
            return "flags " + (" ".join(parts) or "(none)")
        if self.kind == "pipeline":
            return "pipeline " + self.payload.get("pipeline", "")
        return "kernel (replacement body)"

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["id"] = self.id
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Candidate:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in fields})


@dataclasses.dataclass
class Verdict:
    """What evaluating one candidate found. The first failing stage stops the cascade."""

    candidate_id: str
    stage: str = "parse"  # the last stage reached: parse, signature, build, numerics, timing, done
    built: bool = False
    equivalent: bool | None = None
    accepted: bool = False
    reason: str = ""
    equivalence: dict[str, Any] = dataclasses.field(default_factory=dict)
    timing: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def speedup(self) -> float | None:
        return self.timing.get("speedup")

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["speedup"] = self.speedup
        return json_safe(d)

    def feedback(self) -> str:
        """A one-line summary for the next proposal round (never the check's inputs)."""
        if not self.built:
            if self.stage in ("parse", "signature"):
                return f"rejected before building: {self.reason}"
            return f"build failed: {self.reason}"
        if self.equivalent is False:
            e = self.equivalence
            return f"wrong results ({e.get('distribution', '?')} inputs): max error {e.get('max_error')} > tolerance {e.get('tolerance')}"
        if self.speedup is not None:
            verdict = "accepted" if self.accepted else "rejected"
            return f"{verdict}: speedup {self.speedup:.3f}x (95% CI {self.timing.get('ci_low', 0):.3f}-{self.timing.get('ci_high', 0):.3f})"
        return self.reason
