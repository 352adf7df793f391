"""Peak memory of a compile: this process's peak RSS rise and that of the child processes it starts.

Linux only (/proc); elsewhere the figures are 0.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Self


def _status_kb(key: str, pid: str = "self") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                kids = [int(k) for k in Path(f"/proc/{p}/task/{t}/children").read_text().split()]
            except (OSError, ValueError):
                continue
            out += kids
            stack += kids
    return out


def _children_rss_kb(exclude: frozenset[int] = frozenset()) -> int:
    """Summed RSS of this process's descendants, except those in `exclude`."""
    return sum(_status_kb("VmRSS", str(c)) for c in _descendants(os.getpid()) if c not in exclude)


class MemoryTracker:
    """Peak RSS rise of this process (exact, via VmHWM reset) and peak RSS of the child
    processes started meanwhile (sampled; children alive before, such as the compile
    workers an earlier Inductor compile left behind, are not counted)."""

    def __init__(self, interval_s: float = 0.01):
        self.interval_s = interval_s
        self.self_mib: float | None = None
        self.children_mib: float | None = None
        self.method = ""

    def __enter__(self) -> Self:
        try:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
            self.exact = True
        except OSError:
            self.exact = False
        self.base_self = _status_kb("VmRSS")
        self.peak_self_sampled = self.base_self
        self.existing = frozenset(_descendants(os.getpid()))
        self.peak_children = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak_children = max(self.peak_children, _children_rss_kb(self.existing))
            self.peak_self_sampled = max(self.peak_self_sampled, _status_kb("VmRSS"))

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        peak_self = _status_kb("VmHWM") if self.exact else self.peak_self_sampled
        self.self_mib = max(0, peak_self - self.base_self) / 1024
        self.children_mib = self.peak_children / 1024
        self.method = (
            "VmHWM reset via /proc/self/clear_refs" if self.exact else "VmRSS sampled every 10 ms"
        ) + "; children: summed VmRSS of new descendants, sampled every 10 ms"
