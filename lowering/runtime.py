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
import hashlib
import logging
import statistics
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.dlpack import from_dlpack, to_dlpack

log = logging.getLogger("mlirforge")


DRIVERS = ("local-sync", "local-task")
# `auto`: both drivers run the first calls, the faster keeps the rest (`AutoDriverModule`).
DRIVER_CHOICES = ("auto", *DRIVERS)
# Parameters live in one scope; the N-th bound weight is key `pN` (see lowering.params).
PARAMETER_SCOPE = "mlirforge"


def parameter_key(index: int) -> str:
    """Name of the N-th parameter inside the archive / index scope."""
    return f"p{index}"

_KDL_CPU = 1
# IREE imports host memory only at this alignment; a view into a batch (`x[1]`) may be off it.
_IMPORT_ALIGNMENT = 64


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
        self._element_types: dict[torch.dtype, object] = {}
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

    def _owned_copy(self, t: torch.Tensor):
        """A buffer view holding a copy of `t` in memory IREE allocated (all access rights).

        An input the module writes into gets one: an imported DLPack buffer only
        allows READ|WRITE, and IREE's in-place queue copies need DISCARD_WRITE.
        """
        t = t.contiguous()
        element_type = self._element_types.get(t.dtype)
        if element_type is None:  # IREE's own dtype mapping, learnt once per dtype from a DLPack import
            element_type = self._device.from_dlpack_capsule(to_dlpack(t)).element_type
            self._element_types[t.dtype] = element_type
        same_size_int = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()]
        return self._device.allocator.allocate_buffer_copy(
            memory_type=self._rt.MemoryType.DEVICE_LOCAL, allowed_usage=self._rt.BufferUsage.DEFAULT,
            device=self._device, buffer=t.view(same_size_int).numpy(), element_type=element_type)

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
                args.push_ref(self._owned_copy(t))
                continue
            if not t.is_contiguous() or t.data_ptr() % _IMPORT_ALIGNMENT:
                t = t.clone(memory_format=torch.contiguous_format)  # fresh allocations are aligned
            args.push_ref(to_device(to_dlpack(t)))
        results = rt.VmVariantList(1)
        with self._lock:
            self._context.invoke(self._function, args, results)
            self.calls += 1
        to_capsule, view_type = self._device.create_dlpack_capsule, rt.HalBufferView
        outs = [from_dlpack(to_capsule(results.get_as_ref(i).deref(view_type), _KDL_CPU, 0))
                for i in range(len(results))]
        if len(outs) > 1:
            # IREE exports one buffer for identical results (`return x + 1, x + 1`);
            # eager's outputs never share memory, so later duplicates are copied.
            seen: set[int] = set()
            for i, out in enumerate(outs):
                if out.data_ptr() in seen:
                    outs[i] = out.clone()
                seen.add(out.data_ptr())
        return outs


class AutoDriverModule:
    """A vmfb on whichever HAL driver runs it faster here, chosen by timing the first calls.

    `local-task` spreads large dispatches over every core (1024^3 matmul and
    3x3 convolutions 1.4-1.8x faster than `local-sync` on 2 cores) but pays a
    worker wake-up per dispatch, which made small ops (softmax, layer_norm,
    a 64x256x512 matmul) 1.3-1.9x slower (docs/lowering-choices.md). Which one
    wins depends on the graph and the machine, so the first
    `2 * (TRIAL_CALLS + 1)` calls alternate between the two (the first call of
    each is warm-up) and the rest go to the faster; `local-task` must be
    `MARGIN` faster to be chosen, since it also competes with PyTorch's own
    threads. A program decided once in this process keeps that driver when it is
    loaded again (`_decided`). Same interface as `IreeModule`.

    The trial calls usually run back to back, but later calls may follow
    eager PyTorch ops, whose OpenMP threads spin-wait on the cores IREE's
    workers need (after each parallel region libgomp's idle threads spin for
    about 9 ms of CPU here, measured with getrusage). There local-task can
    collapse: a 256x4096 max reduction took about 200 µs in its trial and
    240-990 µs interleaved with eager calls, while local-sync stayed near
    260 µs. So local-task stays on watch: when the mean of a window of
    `WATCH_CALLS` calls (less its slowest, a preemption) exceeds `DEMOTE_RATIO`
    times local-sync's trial median, the program moves to local-sync for good
    (one way: local-sync has no workers for a spinning thread to slow down).
    The mean, not the median: such calls are bimodal (MLP, interleaved with
    eager: local-task's median 367 µs, its mean 665 µs, local-sync's 392 µs),
    and the mean is what a loop of calls pays.
    """

    TRIAL_CALLS = 3
    MARGIN = 0.95
    WATCH_CALLS = 16
    DEMOTE_RATIO = 1.1
    _decided: dict[str, str] = {}
    """vmfb digest -> the driver chosen for it in this process: the same program loaded again (a
    recompile, an artifact next to its identical baseline) runs on the same driver instead of
    deciding anew on a few noisy calls, so two identical programs never time differently."""

    def __init__(self, vmfb: bytes, **kwargs):
        self._vmfb, self._kwargs = vmfb, kwargs
        self._digest = hashlib.sha256(vmfb).hexdigest()
        self.chosen: str | None = self._decided.get(self._digest)
        drivers = (self.chosen,) if self.chosen else DRIVERS
        self._modules = {d: IreeModule(vmfb, driver=d, **kwargs) for d in drivers}
        self._seconds: dict[str, list[float]] = {d: [] for d in DRIVERS}
        self._trial: dict[str, float] = {}  # driver -> median seconds per call in the trial
        self._watch: list[float] | None = None  # local-task's latest calls, while it is on watch
        self._params: Sequence[torch.Tensor] | None = None
        self._state = threading.RLock()  # guards the choice; calls themselves run outside it
        self._settled: IreeModule | None = self._modules[self.chosen] if self.chosen else None
        """The module once the choice is final (decided and not on watch): calls then take no lock."""
        self.demoted = False
        self.copy_inputs = self._modules[drivers[0]].copy_inputs

    def bind_parameters(self, params: Sequence[torch.Tensor]) -> None:
        with self._state:
            self._params = params
            modules = list(self._modules.values())
        for m in modules:
            m.bind_parameters(params)

    def refresh_parameters(self, params: Sequence[torch.Tensor]) -> bool:
        with self._state:
            self._params = params
            modules = list(self._modules.values())
        return any([m.refresh_parameters(params) for m in modules])

    def __call__(self, *inputs: torch.Tensor) -> list[torch.Tensor]:
        settled = self._settled  # one attribute read: the per-call path after the choice
        if settled is not None:
            return settled(*inputs)
        with self._state:
            driver = self.chosen or min(DRIVERS, key=lambda d: len(self._seconds[d]))
            module = self._modules[driver]
        start = time.perf_counter()
        outs = module(*inputs)
        elapsed = time.perf_counter() - start
        with self._state:
            if self.chosen is None:
                self._record_trial(driver, elapsed)
            elif self._watch is not None and driver == "local-task":
                self._record_watch(elapsed)
        return outs

    def _record_trial(self, driver: str, elapsed: float) -> None:
        self._seconds[driver].append(elapsed)
        if all(len(s) > self.TRIAL_CALLS for s in self._seconds.values()):
            self._trial = {d: statistics.median(self._seconds[d][1:]) for d in DRIVERS}
            sync, task = self._trial["local-sync"], self._trial["local-task"]
            self.chosen = "local-task" if task < self.MARGIN * sync else "local-sync"
            self._decided[self._digest] = self.chosen
            self._modules = {self.chosen: self._modules[self.chosen]}  # the other's weights and packs go
            if self.chosen == "local-task":
                self._watch = []
            else:
                self._settled = self._modules[self.chosen]

    def _record_watch(self, elapsed: float) -> None:
        self._watch.append(elapsed)
        if len(self._watch) >= self.WATCH_CALLS:
            recent = (sum(self._watch) - max(self._watch)) / (len(self._watch) - 1)
            self._watch = []
            if recent > self.DEMOTE_RATIO * self._trial["local-sync"]:
                self._demote(recent)

    def demote_if_slower(self, observed_s: float) -> bool:
        """Move to local-sync now if local-task, on watch, took `observed_s` seconds per call (measured
        by the caller, e.g. `eager_choice.EagerIfFaster` alternating with eager) over `DEMOTE_RATIO`
        times local-sync's trial; True if it moved."""
        with self._state:
            if self._watch is None or observed_s <= self.DEMOTE_RATIO * self._trial["local-sync"]:
                return False
            self._demote(observed_s)
            return True

    def _demote(self, recent: float) -> None:
        """(With `_state` held.) Calls already running on local-task finish there."""
        module = IreeModule(self._vmfb, driver="local-sync", **self._kwargs)
        if self._params is not None:
            module.bind_parameters(self._params)
        log.info("mlirforge: local-task took %.0f µs per call here against %.0f µs in its trial "
                 "(local-sync: %.0f µs); moving this program to local-sync", recent * 1e6,
                 self._trial["local-task"] * 1e6, self._trial["local-sync"] * 1e6)
        self._modules = {"local-sync": module}
        self.chosen, self._watch, self.demoted = "local-sync", None, True
        self._decided[self._digest] = "local-sync"
        self._settled = module


def load_module(vmfb: bytes, driver: str = "local-sync", **kwargs) -> IreeModule | AutoDriverModule:
    """An `IreeModule` on `driver`, or an `AutoDriverModule` for `driver="auto"`."""
    if driver == "auto":
        return AutoDriverModule(vmfb, **kwargs)
    return IreeModule(vmfb, driver=driver, **kwargs)
