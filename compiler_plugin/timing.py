"""Side-by-side timing: candidates timed in interleaved rounds in one process."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence


def interleaved_times(
    fns: Sequence[Callable[[], object]], rounds: int = 30, inner: int = 5, warmup: int = 3
) -> list[list[float]]:
    """Per function, `rounds` samples of seconds per call, taken in rounds A,B,C then B,C,A, ...

    Interleaving makes frequency changes and noisy neighbours hit every
    function alike, so the comparison never rests on a number measured earlier.
    The order rotates each round, so no function always runs right after the
    same other one: a thread pool one leaves spinning (PyTorch's OpenMP
    threads spin ~9 ms after a parallel region) slows whatever comes next, and
    with a fixed order the same system paid for it every round. Round *i* of
    every function is still taken back to back, so rounds pair.
    """
    for fn in fns:
        for _ in range(warmup):
            fn()
    samples: list[list[float]] = [[] for _ in fns]
    n = len(fns)
    for r in range(rounds):
        for k in range(n):
            i = (r + k) % n
            start = time.perf_counter()
            for _ in range(inner):
                fns[i]()
            samples[i].append((time.perf_counter() - start) / inner)
    return samples


def median_us(samples: Sequence[float]) -> float:
    return statistics.median(samples) * 1e6


def spread_us(samples: Sequence[float]) -> tuple[float, float, float]:
    """(median, p10, p90) of per-call seconds, in microseconds (p10 = p90 = the one sample if alone)."""
    us = [s * 1e6 for s in samples]
    if len(us) < 2:
        return us[0], us[0], us[0]
    deciles = statistics.quantiles(us, n=10, method="inclusive")
    return statistics.median(us), deciles[0], deciles[-1]
