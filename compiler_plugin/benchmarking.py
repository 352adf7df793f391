"""Measuring a compiled model against eager PyTorch: what `bench-problems` and bench/ share.

    seen = first_call_against_eager(compiled, model, inputs)   # compile time, fallbacks, check
    seen.error, seen.check.ok, seen.compile_s, seen.fallback_ops, seen.stats_delta, ran_in(...)
    iree_calls_of(lambda: compiled(*inputs))                   # 0: a later call ran all eagerly
    timing = time_against_eager(eager_call, compiled_call, rounds=20)   # interleaved, one process
    paired_bootstrap(eager_samples, samples), geomean(speedups)
    with OtherCpu() as other: ...; other.share                # a busy machine skews timings

The interleaving itself is `mlirforge.timing.interleaved_times`; the output
comparison is `mlirforge.numerics.check_against_eager`. Nothing here imports
torch at module level: the problem child (`python -m mlirforge.problems
--one`) bounds its address space before torch is imported.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import statistics
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

# --------------------------------------------------------------------------- failures


def one_line(exc: BaseException, limit: int = 240) -> str:
    """`Type: first line` of the innermost meaningful exception.

    Dynamo wraps backend failures ("backend='mlirforge' raised:"), so the
    wrapper's own first line says nothing; the inner exception does.
    """
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "inner_exception", None) or exc.__cause__
        if inner is None:
            break
        exc = inner
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- fallbacks

EAGER_OPS = "these ops run in eager PyTorch"
"""How the backend's FallbackWarning text names ops it keeps eager (`backend._report_fallback`)."""


def fallback_ops(messages: Iterable[str]) -> list[str]:
    """Op names from FallbackWarning texts ("...: aten.erfinv (1 node at m.py:3); the rest ...").

    For the texts alone (a recorded result's `fallback_warnings`); a live
    warning carries its ops as `FallbackWarning.ops`, from the graph's `FallbackReport`.
    """
    ops = []
    for msg in messages:
        m = re.search(rf"{EAGER_OPS}(?: by choice)?: (.*?); (?:the rest|so does|why)", msg)
        if m:
            ops += [re.sub(r"\s*\(\d+ nodes?[^)]*\)$", "", part.strip())
                    for part in re.split(r", (?=[\w.]+ \()", m.group(1))]
    return ops


def ran_in(stats_delta: dict[str, float]) -> str:
    """Where a compiled model's first call ran, from the change in `mlirforge.stats()` over it:
    "IREE", "IREE+eager" (partitioned around unsupported ops) or "eager (fallback)"."""
    if stats_delta.get("graphs_compiled", 0) == 0:
        return "eager (fallback)"
    if stats_delta.get("partitions_compiled") or stats_delta.get("eager_graphs"):
        return "IREE+eager"
    return "IREE"


# --------------------------------------------------------------------------- the first call


@dataclasses.dataclass
class FirstCall:
    """What the first call of a compiled model did: it traces and compiles."""

    output: Any = None
    error: Exception | None = None  # what the call raised; then `output` is None
    compile_s: float = 0.0  # wall time of the call
    stats_delta: dict[str, float] = dataclasses.field(default_factory=dict)  # mlirforge.stats() change
    fallback_warnings: list[str] = dataclasses.field(default_factory=list)  # FallbackWarning texts
    fallback_ops: list[str] = dataclasses.field(default_factory=list)  # the ATen ops they name
    other_fallbacks: list[str] = dataclasses.field(default_factory=list)  # texts of those naming no op
    search_failures: list[str] = dataclasses.field(default_factory=list)  # texts of kind "search"
    graph_breaks: list[str] = dataclasses.field(default_factory=list)  # dynamo's reasons, new ones
    check: Any = None  # `numerics.EagerCheck`, from `first_call_against_eager` when the call worked


def _stats() -> dict[str, float]:
    import mlirforge

    return dataclasses.asdict(mlirforge.stats())


def _graph_breaks() -> dict[str, int]:
    from torch._dynamo.utils import counters

    return dict(counters["graph_break"])


def observe_first_call(call: Callable[[], Any]) -> FirstCall:
    """Run `call()` once, recording its wall time, FallbackWarnings, stats change and graph breaks.

    An exception from the call is kept in `.error` (the time is still
    recorded); KeyboardInterrupt and other non-Exceptions propagate.
    """
    from mlirforge.backend import FallbackWarning

    seen = FirstCall()
    before, breaks_before = _stats(), _graph_breaks()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        try:
            seen.output = call()
        except Exception as exc:  # the caller decides: a broken system must not stop the others
            seen.error = exc
        finally:
            seen.compile_s = time.perf_counter() - start
    after = _stats()
    seen.stats_delta = {k: round(after[k] - before[k], 3) for k in after}
    fallbacks = [w.message for w in caught if issubclass(w.category, FallbackWarning)]
    seen.fallback_warnings = [str(w) for w in fallbacks]
    seen.fallback_ops = [op for w in fallbacks for op in w.ops]  # the backend's structured record
    seen.other_fallbacks = [str(w) for w in fallbacks if not w.ops]
    seen.search_failures = [str(w) for w in fallbacks if getattr(w, "kind", "") == "search"]
    seen.graph_breaks = sorted(k for k, n in _graph_breaks().items() if n > breaks_before.get(k, 0))
    return seen


def first_call_against_eager(compiled: Callable, eager: Callable, inputs: Sequence) -> FirstCall:
    """Eager on copies of `inputs`, then the observed first call of `compiled` on `inputs`, compared.

    `.check` is `numerics.check_against_eager`'s verdict (outputs match, inputs
    unchanged); it is None when the compiled call raised (see `.error`).
    Exceptions from `eager` propagate: the model itself is broken.
    """
    from mlirforge.numerics import check_against_eager

    observed: list[FirstCall] = []

    def first(*args):
        seen = observe_first_call(lambda: compiled(*args))
        observed.append(seen)
        if seen.error is not None:
            raise seen.error
        return seen.output

    try:
        check = check_against_eager(first, eager, inputs)
    except Exception:
        if observed and observed[0].error is not None:
            return observed[0]
        raise
    observed[0].check = check
    return observed[0]


def iree_calls_of(call: Callable[[], Any]) -> int:
    """IREE invocations one `call()` of an already-compiled model makes (0: it ran eagerly)."""
    import mlirforge

    before = mlirforge.stats().iree_calls
    call()
    return mlirforge.stats().iree_calls - before


# --------------------------------------------------------------------------- timing


def per_call_s(call: Callable[[], Any], calls: int = 3,
               statistic: Callable[[list[float]], float] = statistics.median) -> float:
    """Seconds one `call()` takes: `statistic` of `calls` timed calls (at least 1e-7)."""
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return max(statistic(times), 1e-7)


def calls_per_sample(eager_s: float, sample_s: float, slowest_s: float | None = None, cap: int = 200) -> int:
    """Calls per timing sample: one eager sample lasts about `sample_s`, but no
    system's sample lasts much more than 10 x `sample_s` (or one call); 1 to `cap`.

    A fast model needs several calls per sample to rise above the timer's
    noise; a slow one must not multiply the run time.
    """
    slowest_s = eager_s if slowest_s is None else slowest_s
    inner = math.ceil(sample_s / eager_s)
    inner = min(inner, max(1, math.floor(10 * sample_s / slowest_s)))
    return max(1, min(cap, inner))


@dataclasses.dataclass
class AgainstEager:
    """Interleaved samples (seconds per call) of eager and a compiled model."""

    eager_s: list[float]
    compiled_s: list[float]
    rounds: int
    inner: int

    @property
    def eager_us(self) -> float:
        return statistics.median(self.eager_s) * 1e6

    @property
    def compiled_us(self) -> float:
        return statistics.median(self.compiled_s) * 1e6

    @property
    def speedup(self) -> float | None:
        """Eager median / compiled median (above 1: the compiled model is faster)."""
        return self.eager_us / self.compiled_us if self.compiled_us > 0 else None


def settle_calls() -> int:
    """Calls after which a compiled model's per-graph choices are fixed (its driver,
    `lowering.runtime.AutoDriverModule`; eager or compiled, `mlirforge.eager_choice`), with room to spare:
    timing starts after them, so it measures what the user's later calls get."""
    from mlirforge.eager_choice import EagerIfFaster

    return 2 * (EagerIfFaster.SETTLE_CALLS + 2 * (EagerIfFaster.TRIALS + 1))


def time_against_eager(eager: Callable[[], Any], compiled: Callable[[], Any], rounds: int,
                       inner: int | None = None, warmup: int | None = None) -> AgainstEager:
    """Eager and compiled timed side by side (`mlirforge.timing.interleaved_times`).

    `inner` calls per sample; by default enough for ~2 ms a sample, 1 to 10,
    judged from the fastest of 3 calls of each, so that one preempted call
    does not decide it.
    """
    from mlirforge.timing import interleaved_times

    warmup = settle_calls() if warmup is None else warmup
    if inner is None:
        slowest = max(per_call_s(fn, statistic=min) for fn in (eager, compiled))
        inner = calls_per_sample(slowest, 0.002, cap=10)
    eager_s, compiled_s = interleaved_times([eager, compiled], rounds=rounds, inner=inner, warmup=warmup)
    return AgainstEager(eager_s, compiled_s, rounds, inner)


# --------------------------------------------------------------------------- statistics


def paired_bootstrap(base: Sequence[float], other: Sequence[float], resamples: int = 2000,
                     confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """CI of median(base)/median(other), resampling rounds (pairs) with replacement.

    Round i of both was taken back to back (interleaved), so they are resampled together.
    """
    import numpy as np

    a, b = np.asarray(base), np.asarray(other)
    n = min(len(a), len(b))
    if n < 2:
        r = float(np.median(a) / np.median(b))
        return r, r
    a, b = a[:n], b[:n]
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    ratios = np.median(a[idx], axis=1) / np.median(b[idx], axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(ratios, [alpha, 1 - alpha])
    return float(low), float(high)


def paired_ratio(base: Sequence[float], other: Sequence[float]) -> tuple[float, float, float]:
    """(median(base) / median(other), 95% CI low, high) of interleaved samples (`paired_bootstrap`).

    The one figure a speedup is printed as: a ratio of rounds taken back to back, with its CI.
    """
    return (statistics.median(base) / statistics.median(other), *paired_bootstrap(base, other))


def geomean(values: Iterable[float]) -> float | None:
    """Geometric mean of positive values (speedups); None for none."""
    values = list(values)
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


# --------------------------------------------------------------------------- a busy machine


def busy_cpu_seconds() -> float | None:
    """CPU seconds all processes (and the hypervisor's steal) have used since boot, from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU seconds of this process and of its children that have been waited for (iree-compile, workers)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + r.ru_utime + r.ru_stime


class OtherCpu:
    """CPU time that OTHER processes used while a `with` block ran: noisy neighbours.

    Eager PyTorch on all cores is hit far harder by a neighbour than IREE on
    one, so a speedup measured on a busy machine means little. `cores` is
    their average number of busy cores, `share` that over the machine's
    cores; both None where /proc/stat is missing.
    """

    cores: float | None = None
    share: float | None = None

    def __enter__(self) -> OtherCpu:
        self._busy, self._own, self._wall = busy_cpu_seconds(), own_cpu_seconds(), time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        busy = busy_cpu_seconds()
        if self._busy is None or busy is None:
            return
        wall = max(time.perf_counter() - self._wall, 1e-9)
        self.cores = max(0.0, (busy - self._busy) - (own_cpu_seconds() - self._own)) / wall
        self.share = self.cores / (os.cpu_count() or 1)


def load_average() -> float | None:
    """The 1-minute load average (None where there is none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None
