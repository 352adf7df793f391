"""The LLM transcript: every request and response of a search, as JSON lines.

The first line is a header (model, endpoint, versions); then one `request`
record per request, written and flushed as soon as it completes, so an
interrupted search leaves a usable transcript. A record holds the messages
sent, the sampling parameters, each HTTP attempt (status, error,
`Retry-After`), the response text and token usage, and what became of the
answer (candidate ids, or why it could not be used).

Secrets never reach the file: the API key is not part of any record, and
every string is scrubbed of the key's value, `Authorization`/bearer tokens,
`sk-...` style keys and credentials in URLs before it is written.

`replay` reads a transcript back: the requests of each kernel (and the
module-wide ones), in the order they were made.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

from mlirforge.lowering.errors import UserError

FORMAT_VERSION = 1
REDACTED = "[redacted]"
SUBSTRING_SECRET_CHARS = 8
"""A secret this long is scrubbed wherever it appears, even inside a longer token; a shorter one (a
dummy key for a local server) only where it stands alone, so it cannot mangle names that contain it."""

_SECRET_PATTERNS = [
    re.compile(r"\bsk-[A-Za-z0-9_\-]{12,}"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._\-]{8,}"),
    re.compile(r"(?i)(api[_-]?key[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9._\-]{8,}"),
    re.compile(r"(?<=://)[^/@\s:]+:[^/@\s]+(?=@)"),  # user:password@ in URLs
]


def prompt_hash(messages: list[dict[str, str]]) -> str:
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:16]


def scrub(value: Any, secrets: tuple[str, ...] = ()) -> Any:
    """`value` with every secret string and secret-looking token replaced by [redacted]."""
    if isinstance(value, str):
        for secret in secrets:
            if not secret or len(secret) < 4:
                continue
            if len(secret) >= SUBSTRING_SECRET_CHARS:  # a real key: wherever it appears (`key: sk-...`, `%20sk-...`)
                value = value.replace(secret, REDACTED)
            else:  # a short dummy key (`relay`) only as a token of its own, not inside `relay-expert`
                value = re.sub(rf"(?<![\w\-]){re.escape(secret)}(?![\w\-])", REDACTED, value)
        for pattern in _SECRET_PATTERNS:
            value = pattern.sub(lambda m: (m.group(1) if m.re.groups else "") + REDACTED, value)
        return value
    if isinstance(value, dict):
        return {k: scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v, secrets) for v in value]
    return value


class TranscriptWriter:
    """Appends records to a JSONL file, one flushed line per record."""

    def __init__(self, path: Path, header: dict[str, Any], secrets: tuple[str, ...] = ()):
        self.path = Path(path)
        self.secrets = tuple(s for s in secrets if s)
        self._lock = threading.Lock()
        self._seq = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot write the transcript {self.path}: {exc.strerror or exc}") from None
        self._write({"type": "header", "format": FORMAT_VERSION,
                     "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                     **header})

    def next_seq(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq

    def record(self, record: dict[str, Any]) -> None:
        self._write({"type": "request", **record})

    def _write(self, record: dict[str, Any]) -> None:
        line = json.dumps(scrub(record, self.secrets), sort_keys=True)
        with self._lock:
            if self._file.closed:  # a prefetched request finishing after the search ended
                return
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()


class Transcript:
    """A recorded transcript, read back for replay."""

    def __init__(self, path: Path, header: dict[str, Any], requests: list[dict[str, Any]]):
        self.path = path
        self.header = header
        self.requests = requests
        self._queues: dict[tuple[str, str | None], list[dict[str, Any]]] = defaultdict(list)
        for rec in requests:
            self._queues[(rec.get("purpose", ""), rec.get("kernel"))].append(rec)

    def take(self, purpose: str, kernel: str | None) -> dict[str, Any] | None:
        """The next unreplayed request made for (purpose, kernel), or None when there are no more."""
        queue = self._queues.get((purpose, kernel))
        return queue.pop(0) if queue else None

    @property
    def model(self) -> str:
        return str(self.header.get("model", ""))


def read_transcript(path: str | Path) -> Transcript:
    """Parse a transcript; UserError naming the file and line of anything malformed."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such transcript")
    header, requests = None, []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{lineno}: not a JSON line ({exc.msg})") from None
        if not isinstance(rec, dict):
            raise UserError(f"{path}:{lineno}: expected a JSON object")
        if rec.get("type") == "header":
            if rec.get("format") != FORMAT_VERSION:
                raise UserError(f"{path}:{lineno}: transcript format {rec.get('format')!r}, expected {FORMAT_VERSION}")
            header = rec
        elif rec.get("type") == "request":
            if "purpose" not in rec or "seq" not in rec:
                raise UserError(f"{path}:{lineno}: request record without 'purpose' or 'seq'")
            requests.append(rec)
        else:
            raise UserError(f"{path}:{lineno}: unknown record type {rec.get('type')!r}")
    if header is None:
        raise UserError(f"{path}: no header line: not an mlirforge transcript")
    return Transcript(path, header, requests)
