"""Each kernel's time inside the whole model, from IREE's per-dispatch profile.

A kernel timed alone is not the kernel that runs in the model: there IREE may
fuse a neighbour's ops into its dispatch (or its ops into a neighbour's),
hoist weight packing out of it, or split it. `kernel_times` compiles the model
as it is built for the artifact, profiles its dispatches
(`lowering.dispatch_profile`) and charges each dispatch to the kernel its root
op came from (name locations `kernel:<hash>`, `passes.tag_kernel_locations`),
listing the other kernels whose ops were fused into it. `explain` turns the
baseline's and the optimised model's figures for one kernel into the sentence
the summary and the report show when the speedup alone and in the model differ.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from pathlib import Path

import numpy as np

from mlirforge.llm_rewrite.types import TensorSpec
from mlirforge.llm_rewrite.equivalence import make_input
from mlirforge.lowering.dispatch_profile import dispatch_sources, profile_dispatches
from mlirforge.lowering.iree_compile import ModuleCache, compile_flags, compile_mlir
from mlirforge.passes import KERNEL_TAG_PREFIX

log = logging.getLogger("mlirforge.llm_rewrite")

PROFILE_CALLS = 30


@dataclasses.dataclass(frozen=True)
class KernelInModel:
    us: float
    """Summed median time per model call of the dispatches rooted at this kernel, µs."""
    dispatches: tuple[str, ...]
    fused: tuple[str, ...]
    """Other kernels (hashes) whose ops IREE fused into those dispatches."""

    def to_json(self) -> dict:
        return {"us": self.us, "dispatches": list(self.dispatches), "fused": list(self.fused)}


def kernel_times(tagged_mlir: str, mlir: str, flags: list[str], driver: str, parameters: Path | None,
                 inputs: list[TensorSpec], cache: ModuleCache | None) -> dict[str, KernelInModel]:
    """kernel hash -> its time in the model. `tagged_mlir` and `mlir` are the same program, with
    and without kernel tags (`compose.apply_winners(..., tagged=True)` / `tagged=False`)."""
    return model_kernel_profile(tagged_mlir, mlir, flags, driver, parameters, inputs, cache).kernels


@dataclasses.dataclass(frozen=True)
class ModelProfile:
    """The unoptimised model's dispatch profile, charged to its kernels (what prompts show)."""

    kernels: dict[str, KernelInModel]
    model_us: float
    """The model's summed dispatch time per call, µs."""

    def us(self, kernel_hash: str) -> float | None:
        k = self.kernels.get(kernel_hash)
        return k.us if k else None

    def describe(self, kernel_hash: str) -> str:
        return describe_in_model(self.kernels.get(kernel_hash), self.model_us)


def describe_in_model(k: KernelInModel | None, model_us: float) -> str:
    """One line for a kernel's prompt: its dispatches' time in the model, their share of the model's
    dispatch time `model_us`, and which other kernels IREE fused into them ('' if not profiled)."""
    if k is None or model_us <= 0:
        return ""
    text = (f"its dispatches take {k.us:.1f} us per model call, {100 * k.us / model_us:.0f}% of the "
            f"model's {model_us:.0f} us of dispatches ({len(k.dispatches)} dispatch(es))")
    if k.fused:
        text += f"; IREE fuses ops of kernel(s) {', '.join(h[:12] for h in k.fused)} into them"
    return text


def model_kernel_profile(tagged_mlir: str, mlir: str, flags: list[str], driver: str, parameters: Path | None,
                         inputs: list[TensorSpec], cache: ModuleCache | None) -> ModelProfile:
    """`kernel_times` with the model's summed dispatch time per call."""
    sources = dispatch_sources(tagged_mlir, compile_flags("auto", flags), prefix=KERNEL_TAG_PREFIX)
    compiled = compile_mlir(mlir, "auto", flags, cache)
    rng = np.random.default_rng(0)
    arrays = [make_input(rng, list(s.shape), s.dtype, "normal") for s in inputs]
    with tempfile.TemporaryDirectory(prefix="mlirforge-in-model-") as tmp:
        vmfb = Path(tmp) / "model.vmfb"
        vmfb.write_bytes(compiled.vmfb)
        profile = profile_dispatches(vmfb, arrays, parameters, driver, PROFILE_CALLS)
    by_kernel: dict[str, dict] = {}
    for d in profile.dispatches:
        source = sources.get(d.name)
        if source is None or source.root is None:
            continue  # e.g. a weight-encoding dispatch of the initializer, or one with no tagged root
        kernel = source.root.removeprefix(KERNEL_TAG_PREFIX)
        entry = by_kernel.setdefault(kernel, {"us": 0.0, "dispatches": [], "fused": []})
        entry["us"] += d.median_us
        entry["dispatches"].append(d.name)
        entry["fused"] += [t.removeprefix(KERNEL_TAG_PREFIX) for t in source.tags[1:]
                           if t.removeprefix(KERNEL_TAG_PREFIX) not in entry["fused"]]
    return ModelProfile({k: KernelInModel(v["us"], tuple(v["dispatches"]), tuple(f for f in v["fused"] if f != k))
                         for k, v in by_kernel.items()}, profile.call_us)


# Built alone, a kernel's reference more than this much slower than its dispatches in the model
# means the alone A/B measured work the model does not do there (1.25: beyond timing noise).
ALONE_CONTEXT_RATIO = 1.25


def explain(kernel: str, alone: float | None, before: KernelInModel | None, after: KernelInModel | None,
            alone_us: float | None = None) -> str:
    """Why a kernel's speedup alone and in the model differ, from the two models' profiles ('' if unknown).
    `alone_us`: the unoptimised kernel's time built alone (the reference of its A/B alone), µs per call."""
    if before is None:
        return ""
    parts = []
    if alone_us and before.us > 0 and alone_us > ALONE_CONTEXT_RATIO * before.us:
        parts.append(f"alone the unoptimised kernel takes {alone_us:.1f} µs but its dispatches in the model "
                     f"{before.us:.1f} µs: alone it pays for work the model fuses elsewhere or hoists (its "
                     "inputs' data-tiling packs), so its speedup alone overstates what the model can gain")
    if after is not None and after.us > 0:
        inside = before.us / after.us
        parts.append(f"its dispatches took {before.us:.1f} µs per call in the unoptimised model and "
                     f"{after.us:.1f} µs in the optimised one ({inside:.2f}x"
                     + (f"; {alone:.2f}x alone)" if alone else ")"))
    if before.fused:
        lost = [f for f in before.fused if after is None or f not in after.fused]
        if lost:
            parts.append(f"in the unoptimised model IREE fused kernel(s) {', '.join(h[:8] for h in lost)} into "
                         "its dispatch, which the rewrite does not get")
    if after is not None and after.fused and set(after.fused) - set(before.fused):
        parts.append(f"the rewritten kernel has kernel(s) {', '.join(h[:8] for h in set(after.fused) - set(before.fused))} "
                     "fused into it")
    return "; ".join(parts)
