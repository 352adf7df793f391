"""The chat messages for one proposal round: what the model is told, and what it is not.

Told: the target (CPU model, ISA features, vector width, cache sizes, cores),
the kernel's MLIR, signature, root op, call count, weight arguments and
baseline time, the candidate kinds with their payloads and legal ranges, our
pass registry, the IREE flag whitelist (module round), and the population
of this kernel's history: the best verified candidates with their speedups,
and the latest failure of each kind with its reason (build errors, numeric
error vs tolerance and the input class that exposed it, speedups that did
not clear the bar).

Never told: the equivalence check's inputs, seeds or tolerance formula, the
timing procedure's internals, other kernels' rewrites, file paths, or any
credential. The verdict text it sees is `Verdict.feedback()`, which carries
none of those.
"""

from __future__ import annotations

from typing import TYPE_CHECKING


from mlirforge.llm_rewrite import candidates
from mlirforge.llm_rewrite.flags import describe_whitelist
from mlirforge.llm_rewrite.population import Population, failure_kind
from mlirforge.llm_rewrite.prompts import render
from mlirforge.llm_rewrite.types import Candidate, Kernel, Verdict
from mlirforge.lowering.target import CpuTarget

if TYPE_CHECKING:
    from mlirforge.llm_rewrite.in_model import ModelProfile



def _size(n: int | None) -> str:
    if not n:
        return "unknown"
    return f"{n // (1 << 20)} MiB" if n >= 1 << 20 else f"{n // 1024} KiB"


def _registers(cpu: CpuTarget) -> str:
    """The vector register file, which bounds a register tile (x86: 32 zmm with AVX-512, else 16)."""
    if cpu.arch != "x86_64":
        return "32 vector registers" if cpu.arch == "aarch64" else "vector registers unknown"
    if "avx512f" in cpu.features:
        return "32 zmm registers"
    return "16 ymm registers" if ("avx2" in cpu.features or "avx" in cpu.features) else "16 xmm registers"


def describe_target(cpu: CpuTarget) -> str:
    isa = [f for f in cpu.features if f.startswith(("avx", "fma", "amx", "sse4", "f16c", "bmi"))]
    return "\n".join([
        f"- CPU: {cpu.model_name or 'unknown'} ({cpu.arch}), {cpu.cores} cores used by IREE's thread pool",
        f"- vector width: {cpu.vector_bits} bits ({cpu.vector_bits // 32} fp32 lanes); {_registers(cpu)}",
        f"- ISA features: {', '.join(isa) or 'baseline'}",
        f"- caches: L1d {_size(cpu.l1d_bytes)}, L2 {_size(cpu.l2_bytes)}, L3 {_size(cpu.l3_bytes)}",
        "- compiler: IREE llvm-cpu backend, target-cpu=host",
    ])


def describe_kinds(kernel: Kernel) -> str:
    """The numbered list of the kernel-scope kinds, each kind's own `prompt` entry."""
    entries = [candidates.get(name).prompt(kernel) for name in candidates.names("kernel")]
    return "\n".join(f"{i}. {text}" for i, text in enumerate(entries, 1))


def describe_module_kinds() -> str:
    """The module-scope kinds, each kind's own `prompt` entry (one per line)."""
    return "\n".join(candidates.get(name).prompt(None) for name in candidates.names("module"))


def _payload_text(cand: Candidate, full: bool) -> str:
    return cand.kind_info.payload_text(cand.payload, full)


def _verdict_text(verdict: Verdict) -> str:
    return verdict.feedback() if verdict.built else verdict.reason


def describe_history(population: Population, tried: int, rejections: list[str]) -> str:
    if not tried and not rejections:
        return "Nothing tried yet."
    lines = [f"{tried} candidate(s) evaluated so far."]
    if population.elite:
        verified = population.elite[0][1].accepted
        lines.append("Best so far (verified faster):" if verified else
                     "Most promising so far (none verified faster yet):")
        for i, (cand, verdict) in enumerate(population.elite):
            lines.append(f"- id {cand.id}: {_payload_text(cand, full=i == 0)}")
            lines.append(f"  verdict: {_verdict_text(verdict)}")
    if population.failures:
        lines.append("Recent failures, one of each kind:")
        for cand, verdict in population.failures:
            lines.append(f"- id {cand.id} [{failure_kind(verdict)}]: {_payload_text(cand, full=False)}")
            lines.append(f"  verdict: {_verdict_text(verdict)}")
    if rejections:
        lines.append("Your previous answer could not be used:")
        lines += [f"- {r}" for r in rejections[-5:]]
    return "\n".join(lines)


def kernel_messages(kernel: Kernel, cpu: CpuTarget, population: Population, tried: int,
                    rejections: list[str], n: int, passes_text: str,
                    timed_under: tuple[list[str], str] = ([], "local-sync"),
                    in_model: str = "") -> list[dict[str, str]]:
    """The messages of one kernel round. `timed_under`: the (flags, driver) the kernel and its
    candidates are built and timed under; `in_model`: what the model's dispatch profile says about
    this kernel (`describe_in_model`), or '' where it was not profiled."""
    weights = ", ".join(f"#{i} {kernel.inputs[i].mlir}" for i in kernel.weight_inputs) or "none"
    signature = "(" + ", ".join(s.mlir for s in kernel.inputs) + ") -> (" + ", ".join(s.mlir for s in kernel.outputs) + ")"
    user = render(
        "kernel",
        target=describe_target(cpu), kernel_name=kernel.name, kernel_hash=kernel.hash, root=kernel.root,
        calls=kernel.calls,
        baseline=f"{kernel.baseline_us:.1f} us per call" if kernel.baseline_us else "not measured",
        signature=signature, weights=weights, reduction_depth=kernel.reduction_depth,
        kernel_mlir=kernel.module.strip(), kinds=describe_kinds(kernel), passes=passes_text,
        history=describe_history(population, tried, rejections), n=n,
        timed_under=f"`iree-compile {' '.join(timed_under[0]) or '(no extra flags)'}`, runtime driver "
                    f"`{timed_under[1]}`",
        in_model=in_model or "not profiled",
    )
    return [{"role": "system", "content": render("system", target_kind="the host CPU", n=n)},
            {"role": "user", "content": user}]


def module_messages(kernels: list[Kernel], cpu: CpuTarget, history: list[tuple[Candidate, Verdict]],
                    rejections: list[str], n: int, base_flags: list[str], driver: str,
                    drivers: tuple[str, ...], profile: ModelProfile | None = None) -> list[dict[str, str]]:
    """The module round's messages. `profile`: the unoptimised model's dispatch profile; the kernels
    are then listed by their measured time in the model, hottest first (without one: by their time
    alone, where measured)."""

    def measured(k: Kernel) -> float:
        return (profile.us(k.hash) if profile else None) or -1.0

    top = sorted(kernels, key=lambda k: (-measured(k), -k.weight))[:8]
    kernel_lines = "\n".join(
        f"- {k.name}: {k.root}, outputs {', '.join(s.mlir for s in k.outputs)}, called {k.calls}x"
        + (f", {k.baseline_us:.1f} us alone" if k.baseline_us else "")
        + (f"; in the model {profile.describe(k.hash)}" if profile and profile.describe(k.hash) else "")
        for k in top
    ) or "- (none)"
    if history or rejections:
        lines = [f"- {c.describe()}: {_verdict_text(v)}" for c, v in history]
        lines += [f"- your answer could not be used: {r}" for r in rejections[-5:]]
        history_text = "\n".join(lines)
    else:
        history_text = "Nothing tried yet."
    user = render(
        "module", target=describe_target(cpu), kernel_count=len(kernels), kernels=kernel_lines,
        kinds=describe_module_kinds(),
        base_flags=" ".join(base_flags) or "(none)", driver=driver, flag_whitelist=describe_whitelist(),
        drivers=", ".join(drivers), history=history_text, n=n,
    )
    return [{"role": "system", "content": render("system", target_kind="the host CPU", n=n)},
            {"role": "user", "content": user}]
