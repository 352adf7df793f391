"""Whether a problem fits: its memory bound, and its size estimated on the `meta` device.

A problem's child process runs under an address-space bound (RLIMIT_AS); a
problem whose parameters, inputs and outputs would not fit under it, or in
the RAM available, is skipped before anything real is allocated.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mlirforge.benchmarking import one_line

# RLIMIT_AS bounds virtual memory, not resident memory. On the reference
# machine (2 cores) a trivial problem (an 8x64 linear layer) peaks at 1.35 GB
# of address space (torch 0.64 GB, + mlirforge/torch-mlir/IREE 0.98 GB, + the
# compile and the IREE runtime) while only 0.53 GB is resident, and fails to
# import below ~1.2 GB. The iree-compile child inherits the limit. 8 GB leaves
# ~6.5 GB of address space for the problem's data and matches the evaluation
# worker's default bound (llm_rewrite.evaluate.EvalSettings.memory_mb).
DEFAULT_MAX_MEMORY_MB = 8192
MIN_MAX_MEMORY_MB = 1536
BASELINE_MB = 1536
"""Address space a trivial problem needs (measured 1.35 GB peak, rounded up)."""
DATA_COPIES = 3
"""The size estimate counts parameters + inputs + outputs this many times: the
eager model's tensors, IREE's bound/packed copy of the weights, and the
compiled outputs next to the eager reference."""

MIB = 2**20


@dataclasses.dataclass
class SizeEstimate:
    """Bytes a problem's tensors take, from building it on the `meta` device."""

    param_bytes: int
    input_bytes: int
    output_bytes: int | None  # None: the forward could not run on meta tensors
    note: str = ""

    @property
    def data_bytes(self) -> int:
        return self.param_bytes + self.input_bytes + (self.output_bytes or 0)

    @property
    def needed_mb(self) -> float:
        """Address space the child is expected to need: baseline + copies of the data."""
        return BASELINE_MB + DATA_COPIES * self.data_bytes / MIB


def _tensor_bytes(tree) -> int:
    import torch
    import torch.utils._pytree as pytree

    return sum(t.numel() * t.element_size() for t in pytree.tree_leaves(tree) if isinstance(t, torch.Tensor))


def estimate_size(path: Path) -> SizeEstimate:
    """Parameters + inputs + outputs, built under `torch.device("meta")`.

    Meta tensors have shapes and dtypes but no storage, so a 64 GB model costs
    nothing to measure. Raises whatever the problem file raises.
    """
    import torch
    from mlirforge.kernelbench import import_model_module

    module = import_model_module(path)
    with torch.device("meta"), torch.no_grad():
        model = module.Model(*module.get_init_inputs())
        inputs = list(module.get_inputs())
        param_bytes = _tensor_bytes(list(model.parameters()) + list(model.buffers()))
        input_bytes = _tensor_bytes(inputs)
        try:
            output_bytes: int | None = _tensor_bytes(model(*inputs))
            note = ""
        except Exception as exc:  # ops without meta kernels, data-dependent code
            output_bytes, note = None, f"outputs not estimated ({one_line(exc, 120)})"
    return SizeEstimate(param_bytes, input_bytes, output_bytes, note)


def available_ram_mb() -> float | None:
    """MemAvailable from /proc/meminfo (None where there is none)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _size(mb: float) -> str:
    return f"{mb / 1024:.1f} GB" if mb >= 1024 else f"{mb:.1f} MB"


def skip_reason(estimate: SizeEstimate, max_memory_mb: int, available_mb: float | None) -> str | None:
    """Why a problem must not be run, or None if it fits."""
    data_mb = estimate.data_bytes / MIB
    outputs = "?" if estimate.output_bytes is None else _size(estimate.output_bytes / MIB)
    what = (f"params {_size(estimate.param_bytes / MIB)} + inputs {_size(estimate.input_bytes / MIB)}"
            f" + outputs {outputs}")
    if max_memory_mb > 0 and estimate.needed_mb > max_memory_mb:  # 0: no bound (child's --one only)
        return (f"too large: needs ~{_size(estimate.needed_mb)} > --max-memory-mb {max_memory_mb} "
                f"({what}; {BASELINE_MB} MB + {DATA_COPIES} x data)")
    if available_mb is not None and DATA_COPIES * data_mb > available_mb:
        return (f"too large: {DATA_COPIES} x data = {_size(DATA_COPIES * data_mb)} > {_size(available_mb)} "
                f"of available RAM ({what})")
    return None
