"""The shared vocabulary of the search: Kernel, Candidate, Verdict."""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from typing import Any

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
    """One proposed change: a `kind` (one module of `llm_rewrite.candidates` each, which
    documents its payload) and its JSON payload, with where it came from."""

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
        self.kind_info  # raises ValueError for an unknown kind

    @property
    def kind_info(self):
        """The `CandidateKind` of this candidate (`llm_rewrite.candidates`)."""
        from mlirforge.llm_rewrite import candidates

        return candidates.get(self.kind)

    @property
    def id(self) -> str:
        text = json.dumps([self.kind, self.payload, self.kernel_hash], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def describe(self) -> str:
        return self.kind_info.describe(self.payload)

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["id"] = self.id
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Candidate:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in fields})


class Stage(str, enum.Enum):
    """The stages of the evaluation cascade, in order; a Verdict records the last one reached.

    A `str` enum: it compares equal to its value and is written to JSON as it.
    """

    PARSE = "parse"          # the payload parses, verifies and passes the kind's own checks
    SIGNATURE = "signature"  # a replacement keeps the kernel's argument and result types
    BUILD = "build"          # IREE compiles it
    NUMERICS = "numerics"    # equal to the reference on fresh inputs of every distribution
    TIMING = "timing"        # timed side by side with the reference
    DONE = "done"            # significantly faster: accepted

    def __str__(self) -> str:
        return self.value

    @property
    def before_build(self) -> bool:
        """Rejected without compiling anything (the payload itself was unusable)."""
        return self in (Stage.PARSE, Stage.SIGNATURE)


EQUIVALENCE_METHODS = ("proved", "tested", "refuted")
"""How a verdict's equivalence was decided, its `equivalence["method"]`: `proved` by the formal
check (`llm_rewrite.formal`) and passed by randomized testing too, `tested` by randomized testing
alone, `refuted` by a formal counter-example. Verdicts and manifests without it read as `tested`."""


@dataclasses.dataclass
class Verdict:
    """What evaluating one candidate found. The first failing stage stops the cascade."""

    candidate_id: str
    stage: Stage = Stage.PARSE  # the last stage reached
    built: bool = False
    equivalent: bool | None = None
    accepted: bool = False
    reason: str = ""
    equivalence: dict[str, Any] = dataclasses.field(default_factory=dict)
    timing: dict[str, Any] = dataclasses.field(default_factory=dict)
    source: str | None = None
    """MLIR of the standalone module that was built, checked and timed (kernel candidates):
    composition substitutes exactly this, never a rebuild. Not part of `to_json()`."""

    @property
    def speedup(self) -> float | None:
        return self.timing.get("speedup")

    @property
    def method(self) -> str | None:
        """How equivalence was decided (`EQUIVALENCE_METHODS`); None when no check ran."""
        return self.equivalence.get("method") or ("tested" if self.equivalent is not None else None)

    def __post_init__(self) -> None:
        self.stage = Stage(self.stage)  # a name read back from JSON, or a typo caught here

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        del d["source"]
        d["stage"] = self.stage.value
        d["speedup"] = self.speedup
        return json_safe(d)

    def feedback(self) -> str:
        """A one-line summary for the next proposal round (never the check's inputs)."""
        if not self.built:
            if self.stage.before_build:
                return f"rejected before building: {self.reason}"
            return f"build failed: {self.reason}"
        if self.equivalent is False:
            e = self.equivalence
            return f"wrong results ({e.get('distribution', '?')} inputs): max error {e.get('max_error')} > tolerance {e.get('tolerance')}"
        if self.speedup is not None:
            verdict = "accepted" if self.accepted else "rejected"
            text = (f"{verdict}: speedup {self.speedup:.3f}x (95% CI {self.timing.get('ci_low', 0):.3f}-"
                    f"{self.timing.get('ci_high', 0):.3f})")
            inside = self.timing.get("in_model") or {}
            if inside.get("speedup") is not None:
                # Where it runs decides: a kernel faster alone can be slower in the model.
                text += (f" alone, {inside['speedup']:.3f}x in the model (95% CI {inside['ci_low']:.3f}-"
                         f"{inside['ci_high']:.3f})" + ("" if self.accepted else ": slower where it runs"))
            return text
        return self.reason
