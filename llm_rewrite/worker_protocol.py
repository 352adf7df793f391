"""What the evaluator and the evaluation worker say to each other, and how the worker is started.

The evaluator (`llm_rewrite.evaluate`, `llm_rewrite.compose`) writes a
`WorkerRequest` as JSON, starts `python -m mlirforge.llm_rewrite.worker
REQUEST.json` under a wall-clock limit, and reads one JSON reply from its
stdout. Both sides use the dataclasses here, so a field is named in one place.
This module imports only the standard library: the worker loads it, and the
worker must start fast (numpy and the IREE runtime only).

Reply: {"equivalent": bool, "equivalence": {...}, "timing": {...}} (either part
may be absent: `check` / `timing` off), or {"error": "..."}; `run_worker` adds
"seed" and turns a crash or time-out into {"error": ...}.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

DISTRIBUTIONS = ("normal", "wide", "tiny", "large", "all_negative", "edge")
"""Input classes of the equivalence check (see `worker.make_input`), each drawn from a fresh seed."""


@dataclasses.dataclass(frozen=True)
class ModuleSpec:
    """One compiled module the worker loads.

    `copy_inputs`: positions of inputs the module writes into (`lowering.aliasing`);
    the worker passes a fresh copy at each call, as the backend and artifacts do.
    `parameters`: an IREE parameter archive (.irpa) bound under scope `mlirforge`.
    `driver`: the HAL driver for this module (default: the request's).
    """

    vmfb: str
    copy_inputs: tuple[int, ...] = ()
    parameters: str | None = None
    driver: str | None = None
    function: str = "main"

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["copy_inputs"] = list(self.copy_inputs)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ModuleSpec:
        return cls(d["vmfb"], tuple(d.get("copy_inputs", ())), d.get("parameters"), d.get("driver"),
                   d.get("function", "main"))


@dataclasses.dataclass(frozen=True)
class TimingPlan:
    """Interleaved A/B rounds: `rounds` pairs of `inner` calls each, after `warmup` calls of each."""

    rounds: int = 30
    inner: int = 5
    warmup: int = 3
    confidence: float = 0.95
    bootstrap: int = 1000


@dataclasses.dataclass(frozen=True)
class WorkerRequest:
    """One job: check `candidate` against `reference` on fresh inputs, then time them side by side.

    `inputs`/`weights`: [{"shape": [...], "dtype": "f32"}]; weights are bound as
    parameters p0.. of both modules (one draw from `seed`). `reduction_depth`
    scales the tolerance (`worker.tolerance`). `memory_mb` is the worker's own
    address-space limit (0: none).
    """

    reference: ModuleSpec
    candidate: ModuleSpec
    inputs: tuple[dict, ...]
    seed: int
    weights: tuple[dict, ...] = ()
    distributions: tuple[str, ...] = DISTRIBUTIONS
    samples: int = 1
    reduction_depth: int = 1
    check: bool = True
    timing: TimingPlan | None = TimingPlan()
    memory_mb: int = 0
    driver: str = "local-sync"

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["reference"], d["candidate"] = self.reference.to_json(), self.candidate.to_json()
        d["inputs"], d["weights"], d["distributions"] = list(self.inputs), list(self.weights), list(self.distributions)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> WorkerRequest:
        timing = d.get("timing")
        return cls(
            reference=ModuleSpec.from_json(d["reference"]), candidate=ModuleSpec.from_json(d["candidate"]),
            inputs=tuple(d["inputs"]), seed=int(d["seed"]), weights=tuple(d.get("weights", ())),
            distributions=tuple(d.get("distributions", DISTRIBUTIONS)), samples=int(d.get("samples", 1)),
            reduction_depth=int(d.get("reduction_depth", 1)), check=bool(d.get("check", True)),
            timing=TimingPlan(**timing) if timing else None, memory_mb=int(d.get("memory_mb", 0)),
            driver=d.get("driver", "local-sync"),
        )


def new_seed() -> int:
    """A seed no proposer has seen: drawn per request from the OS's randomness."""
    return secrets.randbits(31)


def run_worker(request: WorkerRequest, timeout_s: float, workdir: Path) -> dict:
    """Run the worker subprocess on `request`; its reply, or {"error": ...} on a crash or time-out."""
    path = Path(workdir) / f"request-{secrets.token_hex(4)}.json"
    path.write_text(json.dumps(request.to_json()))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "mlirforge.llm_rewrite.worker", str(path)],
            capture_output=True, text=True, timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:.0f} s"}
    finally:
        path.unlink(missing_ok=True)
    if proc.returncode != 0:
        how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit status {proc.returncode}"
        tail = proc.stderr.strip().splitlines()[-1:] or [""]
        return {"error": f"worker crashed ({how}) {tail[0]}".strip()}
    try:
        reply = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return {"error": "worker gave no result"}
    reply["seed"] = request.seed
    return reply
