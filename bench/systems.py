"""A system under test (eager, or a torch.compile backend with options) and what a bench records of it.

    spec = SystemSpec("mlirforge[local-task]", "mlirforge", {"driver": "local-task"})
    fn = build_callable(spec, model)
    result.record_first_call(first_call_against_eager(fn, model, inputs), spec.is_mlirforge)
    result.timing = summarize(samples, eager_samples)     # median, p10-p90, speedup and its CI

The measuring itself is `mlirforge.benchmarking`; the benches differ in
their systems and in what else they record (subclasses of `SystemResult`).
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mlirforge.benchmarking import FirstCall, one_line, paired_bootstrap
from mlirforge.timing import spread_us


@dataclasses.dataclass(frozen=True)
class SystemSpec:
    """One way of running a model: eager, or a torch.compile backend with options."""

    name: str
    backend: str | None  # None: eager
    options: dict[str, Any] | None = None
    searches: bool = False  # its first call runs the verified search (budget_s)

    @property
    def is_mlirforge(self) -> bool:
        return self.backend == "mlirforge"


def build_callable(spec: SystemSpec, model) -> Callable:
    """The model itself, or a fresh torch.compile wrapper of it for `spec`."""
    import torch

    if spec.backend is None:
        return model
    if spec.backend == "inductor":
        return torch.compile(model)
    return torch.compile(model, backend=spec.backend, options=spec.options or None)


def fresh_mlirforge_cache(root: Path, label: str) -> Path:
    """Give the next mlirforge compilation an empty cache directory under `root`; returns it.

    Cold caches per system: a variant would otherwise hit modules compiled by an
    earlier one (the driver is not part of the module key).
    """
    safe = "".join(c if c.isalnum() else "-" for c in label)
    path = Path(tempfile.mkdtemp(prefix=f"{safe}-", dir=root))
    os.environ["MLIRFORGE_CACHE_DIR"] = str(path)
    return path


@dataclasses.dataclass
class Timing:
    """Seconds-per-call samples of one system, summarised in microseconds."""

    samples_us: list[float]
    median_us: float
    p10_us: float
    p90_us: float
    speedup: float | None = None  # eager median / this median
    ci_low: float | None = None  # 95% paired-bootstrap CI of the speedup
    ci_high: float | None = None
    gflops: float | None = None
    peak_fraction: float | None = None


def summarize(samples_s: Sequence[float], eager_s: Sequence[float] | None = None) -> Timing:
    """Median and p10/p90 of per-call seconds, in microseconds; with eager's samples of the same
    interleaved rounds, the speedup over eager and its CI."""
    median, p10, p90 = spread_us(samples_s)
    t = Timing(samples_us=[s * 1e6 for s in samples_s], median_us=median, p10_us=p10, p90_us=p90)
    if eager_s is not None:
        t.speedup = statistics.median(eager_s) / statistics.median(samples_s)
        t.ci_low, t.ci_high = paired_bootstrap(eager_s, samples_s)
    return t


@dataclasses.dataclass
class SystemResult:
    """What a bench found of one system on one model."""

    name: str
    options: dict[str, Any] | None = None
    error: str | None = None  # the first call raised: no timing
    compile_s: float | None = None
    ok: bool | None = None
    max_abs_error: float | None = None
    check_message: str | None = None
    stats_delta: dict[str, float] | None = None  # mlirforge.stats() change over the first call
    timing: Timing | None = None

    def record_first_call(self, seen: FirstCall, is_mlirforge: bool) -> bool:
        """Take what the first call did; False (the error set, its traceback on stderr) if it raised."""
        self.compile_s = seen.compile_s
        if seen.error is not None:
            traceback.print_exception(seen.error, file=sys.stderr)
            self.error = one_line(seen.error)
            return False
        self.ok, self.max_abs_error, self.check_message = seen.check.ok, seen.check.max_abs_error, seen.check.message
        if is_mlirforge:
            self.stats_delta = seen.stats_delta
        return True
