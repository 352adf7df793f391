"""What the evaluator and the evaluation worker say to each other, and how the worker is started.

The evaluator (`llm_rewrite.evaluate`, `llm_rewrite.compose`) writes a
`WorkerRequest` as JSON, starts `python -m mlirforge.llm_rewrite.worker
REQUEST.json` under a wall-clock limit, and reads one JSON reply from its
stdout. Both sides use the dataclasses here, so a field is named in one place.
This module imports only the standard library: the worker loads it, and the
worker must start fast (numpy and the IREE runtime only).

Reply: {"equivalent": bool, "equivalence": {...}, "timing": {...}} (either part
may be absent: `check` / `timing` off), or {"error": "..."}; `run_worker` adds
"seed" and turns a crash or time-out into {"error": ...} naming what the worker
was doing (the worker writes each phase to its stderr as it starts it).

The sandbox: every worker starts with an environment cut to an allow-list
(`sandbox.worker_environment`: no API keys); a Triton candidate's worker also
starts in the candidate's own directory, without network, and confined to that
directory once it has loaded what it needs (`llm_rewrite.sandbox`). The wall-clock limit (`run_worker`'s `timeout_s`,
`EvalSettings.timeout_s`, default 120 s) kills the worker; inside, the worker
limits its own address space (`memory_mb`, `EvalSettings.memory_mb`, default
8192 MB), its CPU time (`cpu_s`, by default the wall-clock limit times the
CPU count plus 10 s: a backstop for a worker whose parent died) and core
files (none), and asks the kernel to kill it when its parent exits.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

DISTRIBUTIONS = ("normal", "wide", "tiny", "large", "all_negative", "edge", "row_scaled", "ties", "subnormal")
"""Input classes of the equivalence check (see `equivalence.make_input`), each drawn from a fresh seed."""

ERROR_BOUNDS = ("auto", "terms", "global")
"""How the worker scales the absolute part of its error bound (`equivalence.term_scales`): `terms`
per element, from the magnitude of the terms that enter it; `global` from the largest output
element, or more where an element is that sensitive to its inputs; `auto` is `terms` when the
worker draws every operand itself (no parameter archive), else `global`."""

PHASE = "mlirforge-worker phase: "
"""The prefix of the worker's stderr lines that say what it starts doing."""


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
class TritonSpec:
    """A Triton kernel the worker runs as the candidate (`candidates.triton`), in place of a module.

    `source`: the path of the kernel's Python file, inside `workdir`, the one
    directory the kernel may read and write (`llm_rewrite.sandbox`). The call is
    `entry[grid](*inputs, *outputs, **constexprs, num_warps=, num_stages=)`:
    inputs in the kernel's argument order (weights at `weight_positions`, as
    parameters are for a module), contiguous row-major; outputs fresh, filled
    with a poison value that changes from call to call. `outputs`: [{"shape",
    "dtype"}]. `device`: "cuda", or "cpu" under Triton's interpreter
    (`TRITON_INTERPRET=1`: correctness only, timing is meaningless there).
    """

    source: str
    workdir: str
    entry: str
    grid: tuple[int, ...]
    outputs: tuple[dict, ...]
    constexprs: dict[str, Any] = dataclasses.field(default_factory=dict)
    num_warps: int = 4
    num_stages: int = 2
    weight_positions: tuple[int, ...] = ()
    device: str = "cpu"

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["grid"], d["outputs"], d["weight_positions"] = list(self.grid), list(self.outputs), list(self.weight_positions)
        return {"triton": d}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TritonSpec:
        t = d["triton"]
        return cls(t["source"], t["workdir"], t["entry"], tuple(t["grid"]), tuple(t["outputs"]),
                   dict(t.get("constexprs", {})), int(t.get("num_warps", 4)), int(t.get("num_stages", 2)),
                   tuple(t.get("weight_positions", ())), t.get("device", "cpu"))


def spec_from_json(d: dict[str, Any]) -> ModuleSpec | TritonSpec:
    return TritonSpec.from_json(d) if "triton" in d else ModuleSpec.from_json(d)


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
    scales the tolerance (`equivalence.tolerance`); `error_bound` is one of
    `ERROR_BOUNDS`. `memory_mb` and `cpu_s` are the worker's own address-space
    and CPU-time limits (0: none; `run_worker` derives `cpu_s` from its
    wall-clock limit when it is 0).
    """

    reference: ModuleSpec
    candidate: ModuleSpec | TritonSpec
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
    error_bound: str = "auto"
    cpu_s: int = 0

    def __post_init__(self) -> None:
        if self.error_bound not in ERROR_BOUNDS:
            raise ValueError(f"error_bound: {self.error_bound!r} is not one of {', '.join(ERROR_BOUNDS)}")

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["reference"], d["candidate"] = self.reference.to_json(), self.candidate.to_json()
        d["inputs"], d["weights"], d["distributions"] = list(self.inputs), list(self.weights), list(self.distributions)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> WorkerRequest:
        timing = d.get("timing")
        return cls(
            reference=ModuleSpec.from_json(d["reference"]), candidate=spec_from_json(d["candidate"]),
            inputs=tuple(d["inputs"]), seed=int(d["seed"]), weights=tuple(d.get("weights", ())),
            distributions=tuple(d.get("distributions", DISTRIBUTIONS)), samples=int(d.get("samples", 1)),
            reduction_depth=int(d.get("reduction_depth", 1)), check=bool(d.get("check", True)),
            timing=TimingPlan(**timing) if timing else None, memory_mb=int(d.get("memory_mb", 0)),
            driver=d.get("driver", "local-sync"), error_bound=d.get("error_bound", "auto"),
            cpu_s=int(d.get("cpu_s", 0)),
        )


def new_seed() -> int:
    """A seed no proposer has seen: drawn per request from the OS's randomness."""
    return secrets.randbits(31)


def cpu_limit_s(timeout_s: float) -> int:
    """The worker's CPU-time limit for a wall-clock limit: every CPU busy the whole time, plus 10 s."""
    return int(math.ceil(timeout_s * (os.cpu_count() or 1))) + 10


def _last_phase(stderr: str | bytes | None) -> str:
    if isinstance(stderr, bytes):
        stderr = stderr.decode(errors="replace")
    phases = [line[len(PHASE):] for line in (stderr or "").splitlines() if line.startswith(PHASE)]
    return f" while {phases[-1]}" if phases else " while starting"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def run_worker(request: WorkerRequest, timeout_s: float, workdir: Path) -> dict:
    """Run the worker subprocess on `request`; its reply, or {"error": ...} on a crash or time-out.

    The error names the limit or signal and what the worker was doing (e.g.
    "while running the candidate on edge inputs").
    """
    if not request.cpu_s:
        request = dataclasses.replace(request, cpu_s=cpu_limit_s(timeout_s))
    path = Path(workdir) / f"request-{secrets.token_hex(4)}.json"
    path.write_text(json.dumps(request.to_json()))
    from mlirforge.llm_rewrite.sandbox import worker_environment

    cwd, env = None, worker_environment()  # no secrets in any worker
    if isinstance(request.candidate, TritonSpec):
        # Python code: it starts in its own directory, which is also its home, temp and Triton cache.
        cwd = request.candidate.workdir
        env.update(HOME=cwd, TMPDIR=cwd, TRITON_CACHE_DIR=str(Path(cwd) / "triton-cache"))
        if request.candidate.device == "cpu":
            env["TRITON_INTERPRET"] = "1"
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "mlirforge.llm_rewrite.worker", str(Path(path).resolve())],
            capture_output=True, text=True, timeout=timeout_s, cwd=cwd, env=env,
        )
    except subprocess.TimeoutExpired as exc:
        return {"error": f"timed out after {timeout_s:g} s{_last_phase(exc.stderr)} (the worker's wall-clock "
                         "limit, EvalSettings.timeout_s): the candidate hangs or is far too slow"}
    finally:
        path.unlink(missing_ok=True)
    if proc.returncode != 0:
        where = _last_phase(proc.stderr)
        if proc.returncode == -signal.SIGXCPU:
            return {"error": f"worker exceeded its CPU-time limit ({request.cpu_s} s){where}"}
        if proc.returncode < 0:
            how = _signal_name(-proc.returncode)
            if -proc.returncode == signal.SIGKILL:
                how += ", perhaps the system's out-of-memory killer"
        else:
            how = f"exit status {proc.returncode}"
        tail = [line for line in proc.stderr.strip().splitlines() if not line.startswith(PHASE)][-1:] or [""]
        return {"error": f"worker crashed ({how}){where} {tail[0]}".strip()}
    try:
        reply = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return {"error": "worker gave no result"}
    reply["seed"] = request.seed
    return reply
