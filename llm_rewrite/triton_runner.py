"""A `triton` candidate loaded in the evaluation worker, callable like a module's `worker.Runner`.

Imported by the worker only for a `TritonSpec` candidate (torch and triton take
seconds to import; module candidates never pay for them). Everything the
worker needs is imported and, on a GPU, Triton's driver is warmed up before
the sandbox closes (`sandbox.confine`); only then is the candidate's file
imported, so the kernel's module-level code already runs confined.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import shutil
from pathlib import Path

import numpy as np

from mlirforge.llm_rewrite import sandbox
from mlirforge.llm_rewrite.equivalence import numpy_dtype
from mlirforge.llm_rewrite.worker_protocol import TritonSpec

_POISON = {True: (float("nan"), -3.0e38), False: (-1234567, 7654321)}
"""Values an output holds before the kernel writes it, alternating between calls: an element the
kernel leaves unwritten then differs between two calls on the same inputs (or from the reference)."""


def _torch_dtype(torch, mlir: str):
    return {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16, "f64": torch.float64,
            "i64": torch.int64, "i32": torch.int32, "i16": torch.int16, "i8": torch.int8, "i1": torch.bool}[mlir]


def programs_triton_runs() -> tuple[str, ...]:
    """On a GPU, Triton builds its launcher with the C compiler and assembles PTX with ptxas."""
    found = [shutil.which(os.environ.get("CC", "")) if os.environ.get("CC") else None,
             shutil.which("cc"), shutil.which("gcc"), shutil.which("clang")]
    try:
        import triton

        ptxas = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "ptxas"
        found.append(str(ptxas) if ptxas.exists() else None)
    except ImportError:
        pass
    return tuple(p for p in found if p)


class TritonRunner:
    """`spec`'s kernel on torch tensors: `device_inputs`, call, `to_host`, `read_back`, `sync`."""

    def __init__(self, spec: TritonSpec, weights: list[np.ndarray]):
        import torch

        importlib.import_module("triton")  # before the sandbox closes: it reads its own files

        if spec.device == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
            raise RuntimeError("a Triton kernel on the CPU needs TRITON_INTERPRET=1 (Triton's interpreter)")
        if spec.device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("a Triton kernel for the GPU, but torch sees no CUDA device")
        self.torch = torch
        self.spec = spec
        self.device = torch.device(spec.device)
        self.weights = {pos: self._tensor(w) for pos, w in zip(spec.weight_positions, weights)}
        self._poison = itertools.cycle((0, 1))
        if spec.device == "cuda":
            self._warm_up()
        sandbox.confine(spec.workdir, programs_triton_runs() if spec.device == "cuda" else ())
        module_spec = importlib.util.spec_from_file_location("mlirforge_triton_candidate", spec.source)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        self._stop_if_caught()
        self.kernel = getattr(module, spec.entry, None)
        if self.kernel is None:
            raise ValueError(f"the Triton source defines no {spec.entry!r}")

    def _warm_up(self) -> None:
        """Load Triton's CUDA driver (it reads system paths and runs ldconfig) while that is still allowed."""
        from triton.runtime import driver

        driver.active.get_current_device()

    def _tensor(self, a: np.ndarray):
        torch = self.torch
        a = np.ascontiguousarray(a)
        if a.dtype.name == "bfloat16":
            t = torch.from_numpy(a.view(np.uint16).copy()).view(torch.bfloat16)
        else:
            t = torch.from_numpy(a.copy())
        return t.to(self.device)

    def _array(self, t) -> np.ndarray:
        t = t.detach().to("cpu").contiguous()
        if t.dtype == self.torch.bfloat16:
            return t.view(self.torch.uint16).numpy().copy().view(numpy_dtype("bf16"))
        return t.numpy().copy()

    def device_inputs(self, arrays) -> list:
        return [(a, self._tensor(a)) for a in arrays]

    def _outputs(self) -> list:
        which = next(self._poison)
        outs = []
        for o in self.spec.outputs:
            dtype = _torch_dtype(self.torch, o["dtype"])
            value = _POISON[dtype.is_floating_point][which] if dtype != self.torch.bool else bool(which)
            outs.append(self.torch.full(tuple(o["shape"]), value, dtype=dtype, device=self.device))
        return outs

    def __call__(self, dev_inputs) -> list:
        given = iter(t for _, t in dev_inputs)
        count = len(dev_inputs) + len(self.weights)
        args = [self.weights[i] if i in self.weights else next(given) for i in range(count)]
        outs = self._outputs()
        s = self.spec
        self.kernel[tuple(s.grid)](*args, *outs, **s.constexprs, num_warps=s.num_warps, num_stages=s.num_stages)
        self._stop_if_caught()
        return outs

    @staticmethod
    def _stop_if_caught() -> None:
        """A refused attempt fails the candidate even if its code caught the PermissionError."""
        if sandbox.violations:
            raise PermissionError(f"stopped by the sandbox: the candidate tried to {sandbox.violations[0]}")

    def read_back(self, dev_inputs) -> list[np.ndarray]:
        """The inputs as the kernel left them (a write into one is a wrong result)."""
        return [self._array(t) for _, t in dev_inputs]

    def to_host(self, views) -> list[np.ndarray]:
        return [self._array(t) for t in views]

    def sync(self) -> None:
        if self.spec.device == "cuda":
            self.torch.cuda.synchronize()
