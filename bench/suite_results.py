"""The suite's systems, and the record of one workload under each of them (as its JSON holds it)."""

from __future__ import annotations

import dataclasses
from typing import Any

from systems import SystemResult, SystemSpec, Timing

EAGER = "eager"
REPLAY = "mlirforge[llm-replay]"
IREE_ONLY = "mlirforge[iree-only]"
SYSTEM_NAMES = (EAGER, "inductor", "turbine_cpu", "mlirforge", IREE_ONLY, "mlirforge[heuristic]", REPLAY)


def systems_for(budget_s: float, transcript: str | None) -> list[SystemSpec]:
    specs = [
        SystemSpec(EAGER, None),
        SystemSpec("inductor", "inductor"),
        SystemSpec("turbine_cpu", "turbine_cpu"),
        # The plain build must come before the searches: fallback warnings are
        # issued once per op per process, so it is the one that sees them.
        SystemSpec("mlirforge", "mlirforge"),
        # The default keeps a graph eager where it measures faster; this row is what IREE alone gives.
        SystemSpec(IREE_ONLY, "mlirforge", {"eager_if_faster": False}),
        SystemSpec(
            "mlirforge[heuristic]", "mlirforge", {"optimize": True, "budget_s": budget_s}, True
        ),
    ]
    if transcript:
        specs.append(
            SystemSpec(
                REPLAY,
                "mlirforge",
                {
                    "optimize": True,
                    "proposer": "replay",
                    "transcript": str(transcript),
                    "budget_s": budget_s,
                },
                True,
            )
        )
    return specs


# CPU and its fp32 peak ------------------------------------------------------------------


@dataclasses.dataclass
class SuiteSystemResult(SystemResult):
    """One system on one workload: `SystemResult` plus the suite's status, memory and notes."""

    backend: str | None = None
    status: str = "ok"  # ok | error | not available | not run
    peak_self_mib: float | None = None
    peak_children_mib: float | None = None
    notes: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class WorkloadResult:
    name: str
    group: str
    description: str
    input_shapes: list[list[int]]
    flops: float | None
    is_matmul: bool
    inner: int | None = None
    rounds: int | None = None
    seconds: float | None = None
    error: str | None = None  # the workload's process died or the model could not be built
    torch_threads: int | None = None
    other_cpu_share: float | None = None
    """Share of the machine's CPU time that OTHER processes used while this workload ran
    (/proc/stat busy time minus this workload's own process tree): noisy neighbours."""
    systems: list[SuiteSystemResult] = dataclasses.field(default_factory=list)


def workload_from_json(d: dict[str, Any]) -> WorkloadResult:
    systems = []
    for s in d.pop("systems"):
        t = s.pop("timing")
        systems.append(SuiteSystemResult(**s, timing=Timing(**t) if t else None))
    return WorkloadResult(**d, systems=systems)
