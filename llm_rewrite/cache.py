"""The rewrite cache: verified rewrites in SQLite, keyed by kernel, target and tools.

A rewrite verified for a kernel hash on one CPU with one set of tool versions
is reused, without searching, by any later compile that meets the same kernel
there. A kernel searched without a winner is remembered too (with the budget
spent), so a second compile does not search it again. WAL mode lets several
processes read while one writes; each write is its own transaction, so a
search interrupted by Ctrl-C keeps what it had verified.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
import time
from pathlib import Path

from mlirforge.llm_rewrite.types import Candidate, Verdict
from mlirforge.lowering.stages import cache_root, pipeline_fingerprint

log = logging.getLogger("mlirforge.llm_rewrite")

SCHEMA = """
CREATE TABLE IF NOT EXISTS rewrites (
    kernel_hash TEXT NOT NULL,
    context     TEXT NOT NULL,
    candidate   TEXT NOT NULL,
    verdict     TEXT NOT NULL,
    speedup     REAL NOT NULL,
    created     REAL NOT NULL,
    PRIMARY KEY (kernel_hash, context)
);
CREATE TABLE IF NOT EXISTS searched (
    kernel_hash TEXT NOT NULL,
    context     TEXT NOT NULL,
    evaluations INTEGER NOT NULL,
    seconds     REAL NOT NULL,
    created     REAL NOT NULL,
    PRIMARY KEY (kernel_hash, context)
);
"""


def context_key(base_flags: list[str] | tuple[str, ...] = ()) -> str:
    """The compile pipeline's fingerprint (stages, tool versions, target CPU) with the flags (and
    driver, proposer) kernels were compiled and timed with."""
    return pipeline_fingerprint(list(base_flags))[:16]


def _read_row(candidate: str, verdict: str, kernel_hash: str) -> tuple[Candidate, Verdict] | None:
    """A stored rewrite, or None (a miss) for one this mlirforge cannot read: the cache is shared, and
    another version or a plugin's candidate kind may have written it."""
    fields = {f.name for f in dataclasses.fields(Verdict)}
    try:
        stored = json.loads(verdict)
        return (Candidate.from_json(json.loads(candidate)),
                Verdict(**{k: v for k, v in stored.items() if k in fields}))
    except (ValueError, TypeError, KeyError) as exc:
        log.warning("mlirforge: ignoring the cached rewrite of kernel %s (%s)", kernel_hash[:8], exc)
        return None


class RewriteCache:
    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else cache_root() / "rewrites.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30)
        # Two processes opening a new cache at once: SQLite can answer the switch to WAL (which
        # needs the file to itself for a moment) with "database is locked" at once, without
        # waiting on its busy timeout (seen in CI). Retry for as long as that timeout.
        deadline = time.monotonic() + 30
        while True:
            try:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.executescript(SCHEMA)
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        self.db.close()

    def lookup(self, kernel_hash: str, context: str) -> tuple[Candidate, Verdict] | None:
        row = self.db.execute(
            "SELECT candidate, verdict FROM rewrites WHERE kernel_hash = ? AND context = ?", (kernel_hash, context)
        ).fetchone()
        if row is None:
            return None
        return _read_row(row[0], row[1], kernel_hash)

    def was_searched(self, kernel_hash: str, context: str) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM searched WHERE kernel_hash = ? AND context = ?", (kernel_hash, context)
        ).fetchone()
        return row is not None

    def store(self, kernel_hash: str, context: str, candidate: Candidate, verdict: Verdict) -> None:
        """Keep an accepted rewrite (the faster one wins if one is already stored)."""
        if not verdict.accepted:
            raise ValueError("only accepted rewrites are cached")
        # One statement, so two processes storing the same kernel at once cannot both read the old
        # row and let the slower write land last.
        with self.db:
            self.db.execute(
                "INSERT INTO rewrites VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kernel_hash, context) DO UPDATE SET "
                "candidate = excluded.candidate, verdict = excluded.verdict, speedup = excluded.speedup, "
                "created = excluded.created WHERE excluded.speedup > rewrites.speedup",
                (kernel_hash, context, json.dumps(candidate.to_json()), json.dumps({**verdict.to_json(), "source": verdict.source}),
                 verdict.speedup or 0.0, time.time()),
            )

    def mark_searched(self, kernel_hash: str, context: str, evaluations: int, seconds: float) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO searched VALUES (?, ?, ?, ?, ?)",
                (kernel_hash, context, evaluations, seconds, time.time()),
            )

    def forget(self, kernel_hash: str, context: str) -> None:
        """Drop a rewrite that did not pay off end to end."""
        with self.db:
            self.db.execute("DELETE FROM rewrites WHERE kernel_hash = ? AND context = ?", (kernel_hash, context))

    def entries(self) -> list[dict]:
        rows = self.db.execute(
            "SELECT kernel_hash, context, candidate, speedup, created FROM rewrites ORDER BY created"
        ).fetchall()
        out = []
        for kernel_hash, context, cand, speedup, created in rows:
            try:
                c = Candidate.from_json(json.loads(cand))
                what, proposer = c.describe(), c.proposer
            except (ValueError, TypeError, KeyError) as exc:
                what, proposer = f"(unreadable here: {exc})", "?"
            out.append({"kernel": kernel_hash, "context": context, "candidate": what,
                        "proposer": proposer, "speedup": speedup, "created": created})
        return out

    def searched_count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM searched").fetchone()[0]

    def clear(self) -> int:
        with self.db:
            n = self.db.execute("SELECT COUNT(*) FROM rewrites").fetchone()[0]
            self.db.execute("DELETE FROM rewrites")
            self.db.execute("DELETE FROM searched")
        return n
