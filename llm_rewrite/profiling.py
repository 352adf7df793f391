"""Find the hot kernels: time each outlined kernel on its own and rank them.

Each kernel is compiled alone (its standalone module, the model's flags) and
timed in this process on random inputs. The search spends its budget on
kernels in order of time x call sites, skipping those below a share of the
total.
"""

from __future__ import annotations

import logging
import statistics
import time

import torch

from mlirforge.llm_rewrite.kernels import runnable_module
from mlirforge.llm_rewrite.types import Kernel
from mlirforge.lowering.iree_compile import ModuleCache, compile_mlir
from mlirforge.lowering.runtime import IreeModule

log = logging.getLogger("mlirforge.llm_rewrite")

_TORCH_DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16, "f64": torch.float64,
                 "i64": torch.int64, "i32": torch.int32, "i8": torch.int8, "i1": torch.bool}


def random_tensors(specs) -> list[torch.Tensor]:
    out = []
    for spec in specs:
        dtype = _TORCH_DTYPES.get(spec.dtype, torch.float32)
        if dtype.is_floating_point:
            out.append(torch.randn(spec.shape, dtype=dtype))
        else:
            out.append(torch.zeros(spec.shape, dtype=dtype))
    return out


def profile_kernels(kernels: list[Kernel], flags: list[str], driver: str = "local-sync",
                    cache: ModuleCache | None = None, calls: int = 20) -> list[Kernel]:
    """Set each kernel's `baseline_us` (weights bound as parameters); returns them hottest first.

    A kernel that cannot be built or run alone keeps `baseline_us = None`
    (weight 0): it is not searched, and the reason is logged.
    """
    for kernel in kernels:
        try:
            compiled = compile_mlir(runnable_module(kernel, kernel.module), "auto", flags, cache)
            module = IreeModule(compiled.vmfb, driver=driver, parameters=random_tensors(kernel.weights),
                                copy_inputs=compiled.copy_inputs())
            inputs = random_tensors(kernel.call_inputs)
            for _ in range(3):
                module(*inputs)
            samples = []
            for _ in range(calls):
                start = time.perf_counter()
                module(*inputs)
                samples.append(time.perf_counter() - start)
            kernel.baseline_us = statistics.median(samples) * 1e6
        except Exception as exc:  # a kernel we cannot run alone is simply not searched
            log.warning("kernel %s cannot be profiled alone (%s); not searching it", kernel.hash, exc)
            kernel.baseline_us = None
    return sorted(kernels, key=lambda k: -k.weight)


def hot_kernels(kernels: list[Kernel], max_kernels: int, min_share: float) -> list[Kernel]:
    """The kernels worth searching: hottest first, each at least `min_share` of the total."""
    total = sum(k.weight for k in kernels) or 1.0
    return [k for k in kernels if k.weight / total >= min_share][:max_kernels]
