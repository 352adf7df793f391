"""Never slower than eager: each compiled graph is timed against the graph run eagerly, and the faster kept.

A compiled module can lose to PyTorch's own kernels on this machine: a tiny
graph pays dynamo's and IREE's per-call costs for a few microseconds of work,
and PyTorch's oneDNN matmuls and convolutions use the cores better than
IREE's codegen does here (docs/lowering-choices.md). Which one wins depends
on the graph, its shapes and the machine, so it is measured where it runs:
once the compiled graph has settled (its driver chosen, see
`lowering.runtime.AutoDriverModule`), the next calls alternate between it and
the eager graph, and after `TRIALS` timed calls of each (after a warm-up call
of each) the faster is kept for good. Eager must be clearly faster
(`MARGIN`): on a tie the compiled graph stays, so the search's rewrites and
`mlirforge.stats()` still see it. TorchInductor makes the same kind of
choice when it benchmarks an extern kernel against its own. A compiled graph
on `local-task` that is slow only because it now runs right after eager calls
(their OpenMP threads spin on its workers' cores) first moves to `local-sync`
and is timed again (`AutoDriverModule.demote_if_slower`).

Both compute the same values (eager is the reference the equivalence checks
use), so the choice changes speed only. Option `eager_if_faster` (default
true) turns it off.
"""

from __future__ import annotations

import logging
import statistics
import time
import warnings
from collections.abc import Callable

from mlirforge.lowering.runtime import AutoDriverModule

log = logging.getLogger("mlirforge")


class EagerIfFaster:
    """`compiled(*args)` or `eager(*args)`, whichever measures faster here after the first calls."""

    SETTLE_CALLS = 2 * (AutoDriverModule.TRIAL_CALLS + 1)  # the driver trials alternate over these calls
    TRIALS = 5
    """Calls of each, after one warm-up call each. With 3 the median was one outlier from a wrong choice:
    in one suite run the softmax graph kept IREE (0.30x eager) where four other runs chose eager (0.65x)."""
    MARGIN = 0.9  # eager is chosen only if its median is below 90% of the compiled one

    def __init__(self, compiled: Callable, eager: Callable, name: str = "graph"):
        self.compiled, self.eager, self.name = compiled, eager, name
        self.calls = 0
        self.seconds: dict[str, list[float]] = {"compiled": [], "eager": []}
        self.chosen: Callable | None = None

    def __call__(self, *args):
        if self.chosen is not None:
            return self.chosen(*args)
        self.calls += 1
        if self.calls <= self.SETTLE_CALLS:
            return self.compiled(*args)
        which = min(self.seconds, key=lambda k: len(self.seconds[k]))  # compiled first, then alternate
        fn = self.compiled if which == "compiled" else self.eager
        start = time.perf_counter()
        out = fn(*args)
        self.seconds[which].append(time.perf_counter() - start)
        if all(len(s) > self.TRIALS for s in self.seconds.values()):
            self._choose()
        return out

    def _choose(self) -> None:
        from mlirforge.backend import FallbackWarning
        from mlirforge.lowering.graph_compiler import STATS

        compiled, eager = (statistics.median(self.seconds[k][1:]) for k in ("compiled", "eager"))
        demote = getattr(self.compiled, "demote_if_slower", None)
        if eager < self.MARGIN * compiled and demote is not None and demote(compiled):
            # Right after eager calls, local-task was slower than local-sync had been in its own trial
            # (eager's OpenMP threads spin on the cores its workers need): the module moved to
            # local-sync, so eager is measured again against that.
            log.info("mlirforge: %s: compiled %.1f µs next to eager calls; trying again on local-sync",
                     self.name, compiled * 1e6)
            self.seconds = {"compiled": [], "eager": []}
            return
        if eager < self.MARGIN * compiled:
            self.chosen = self.eager
            STATS.eager_if_faster_graphs += 1
            warnings.warn(FallbackWarning(
                f"mlirforge: {self.name} runs in eager PyTorch: it measured {compiled / eager:.2f}x faster than "
                f"its compiled module here ({eager * 1e6:.0f} vs {compiled * 1e6:.0f} µs per call, median of "
                f"{self.TRIALS}); option eager_if_faster=False keeps it compiled", kind="faster-eager"),
                stacklevel=3)
        else:
            self.chosen = self.compiled
        log.info("mlirforge: %s: compiled %.1f µs, eager %.1f µs per call; keeping %s", self.name,
                 compiled * 1e6, eager * 1e6, "eager" if self.chosen is self.eager else "compiled")
        self.seconds = {}
