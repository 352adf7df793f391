"""Running a vmfb with the IREE runtime, with tensors crossing by DLPack.

Inputs are handed to IREE as DLPack capsules of the torch tensors (no copy for
contiguous CPU tensors) and results come back the same way, so a call costs the
VM invocation plus a few microseconds of wrapping; see docs/lowering.md for the
measured overhead.

Parameters (weights) are supplied through an in-memory `ParameterIndex` that
points at the torch tensors' own storage, or through a `.irpa` archive for
artifacts. IREE reads them when the context is created (and hoists work on
them into initialisers), so a context is rebuilt when a weight tensor changes.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.dlpack import from_dlpack, to_dlpack


DRIVERS = ("local-sync", "local-task")
# Parameters live in one scope; the N-th bound weight is key `pN` (see lowering.params).
PARAMETER_SCOPE = "mlirforge"


def parameter_key(index: int) -> str:
    """Name of the N-th parameter inside the archive / index scope."""
    return f"p{index}"

_KDL_CPU = 1


@functools.cache
def _runtime(driver: str):
    """One VM instance and HAL device per driver for the whole process."""
    import iree.runtime as rt

    if driver not in DRIVERS:
        raise ValueError(f"unknown IREE driver {driver!r}; expected one of {DRIVERS}")
    # Compiled modules live as long as dynamo's caches, i.e. until interpreter
    # exit; nanobind would report them as leaks on every exit otherwise.
    from iree._runtime_libs import _runtime

    _runtime.disable_leak_checker()
    config = rt.Config(driver)
    return rt, config.vm_instance, config.device


def tensor_bytes_view(t: torch.Tensor):
    """A host buffer over the tensor's bytes (any dtype, bf16 included)."""
    t = t.detach()
    if not t.is_contiguous():
        t = t.contiguous()
    return t.reshape(-1).view(torch.uint8).numpy()


def write_parameter_archive(path: Path, parameters: Sequence[torch.Tensor]) -> Path | None:
    """Write weights as an IREE parameter archive (`.irpa`) with keys p0, p1, ...; None if there are none."""
    if not parameters:
        return None
    import iree.runtime as rt

    index = rt.ParameterIndex()
    for k, tensor in enumerate(parameters):
        index.add_buffer(parameter_key(k), tensor_bytes_view(tensor))
    index.create_archive_file(str(path))
    return path


class IreeModule:
    """A loaded vmfb with a callable entry point.

    `parameters` are the tensors bound to `#stream.parameter.named` globals, in
    key order (`p0`, `p1`, ...); `archive` is an alternative `.irpa` file.
    With `parameters=None` the context is created by the first
    `refresh_parameters` call, once the real weight tensors are known.
    `copy_inputs` are the input positions the module may write into
    (`CompileResult.copy_inputs()`, from `lowering.aliasing`): those are handed
    to IREE as fresh copies, so the caller's tensors are never modified.
    """

    def __init__(
        self,
        vmfb: bytes,
        driver: str = "local-sync",
        function: str = "main",
        parameters: Sequence[torch.Tensor] | None = (),
        archive: Path | None = None,
        copy_inputs: Sequence[int] = (),
    ):
        rt, instance, device = _runtime(driver)
        self.copy_inputs = frozenset(copy_inputs)
        self._rt = rt
        self._device = device
        self._instance = instance
        self._module = rt.VmModule.copy_buffer(instance, vmfb)
        self._function = self._module.lookup_function(function)
        if self._function is None:
            raise ValueError(f"the module has no function @{function}")
        self._lock = threading.Lock()  # VM contexts are not re-entrant
        self._param_sig: tuple | None = None
        self._context = None
        self.calls = 0
        if archive is not None:
            index = rt.ParameterIndex()
            index.load(str(archive))
            self._make_context(index)
            self._param_sig = ()
        elif parameters is not None:
            self.bind_parameters(parameters)

    def _make_context(self, index) -> None:
        rt = self._rt
        modules = []
        if index is not None:
            provider = index.create_provider(scope=PARAMETER_SCOPE)
            modules.append(rt.create_io_parameters_module(self._instance, provider))
        modules.append(rt.create_hal_module(self._instance, self._device))
        modules.append(self._module)
        self._context = rt.VmContext(self._instance, modules)

    @staticmethod
    def _signature(params: Sequence[torch.Tensor]) -> tuple:
        return tuple((p.data_ptr(), p._version) for p in params)

    def parameters_current(self, params: Sequence[torch.Tensor]) -> bool:
        """True if these are the bound weights, unmodified: the per-call check, cheaper than a rebind test."""
        return self._signature(params) == self._param_sig

    def bind_parameters(self, params: Sequence[torch.Tensor]) -> None:
        """(Re)create the VM context reading weights from these tensors."""
        index = None
        if params:
            index = self._rt.ParameterIndex()
            for k, p in enumerate(params):
                index.add_buffer(parameter_key(k), tensor_bytes_view(p))
        self._make_context(index)
        self._param_sig = self._signature(params)

    def refresh_parameters(self, params: Sequence[torch.Tensor]) -> bool:
        """Rebind if any weight was replaced or modified in place; True if it did."""
        if self._signature(params) == self._param_sig:
            return False
        self.bind_parameters(params)
        return True

    def __call__(self, *inputs: torch.Tensor) -> list[torch.Tensor]:
        # The per-call path: every line here is paid on each call (about 3.5 µs
        # of it is IREE's invoke and the DLPack crossings; docs/lowering.md).
        rt = self._rt
        to_device = self._device.from_dlpack_capsule
        args = rt.VmVariantList(len(inputs))
        copy_inputs = self.copy_inputs
        for i, t in enumerate(inputs):
            if t.requires_grad:
                t = t.detach()
            if copy_inputs and i in copy_inputs:
                t = t.clone(memory_format=torch.contiguous_format)
            elif not t.is_contiguous():
                t = t.contiguous()
            args.push_ref(to_device(to_dlpack(t)))
        results = rt.VmVariantList(1)
        with self._lock:
            self._context.invoke(self._function, args, results)
            self.calls += 1
        to_capsule, view_type = self._device.create_dlpack_capsule, rt.HalBufferView
        return [from_dlpack(to_capsule(results.get_as_ref(i).deref(view_type), _KDL_CPU, 0))
                for i in range(len(results))]
