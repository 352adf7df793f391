"""Reading an LLM's answer: JSON candidates out of whatever text came back.

The prompt asks for `{"candidates": [{"kind": ..., ...}]}`. Models wrap JSON
in prose and code fences, or answer with a bare list or a single object;
all of that is accepted. What is not a usable candidate (no JSON at all,
broken JSON, an unknown kind, a payload of the wrong shape, an oversized
answer) becomes a one-line reason that goes back into the next prompt.

This is only the shape check. Whether a candidate's MLIR parses and verifies,
keeps the signature, names real passes, uses whitelisted flags and legal tile
sizes is the evaluation cascade's first stage (each kind's `build`, in
`llm_rewrite.candidates`), which runs before anything is compiled. The keys a
payload may carry and their JSON types are each kind's `fields` and
`check_payload`.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from mlirforge.llm_rewrite import candidates
from mlirforge.llm_rewrite.candidates.base import nesting_depth
from mlirforge.llm_rewrite.types import Candidate

MAX_ANSWER_CHARS = 400_000
MAX_RATIONALE_CHARS = 500

_META_KEYS = {"kind", "rationale", "parent", "payload"}
_FENCE = re.compile(r"```[a-zA-Z]*\s*\n(.*?)```", re.S)


@dataclasses.dataclass
class ParsedAnswer:
    candidates: list[Candidate]
    problems: list[str]  # why parts of the answer could not be used
    declined: bool = False
    """The answer said, in the asked-for form, that it has nothing to propose (`{"candidates": []}`):
    an honest end of that search, not an unusable answer to re-ask."""


MAX_JSON_NESTING = 64
"""An answer's JSON nests ~5 deep; deeper is refused before the decoder recurses into it."""


def _json_values(text: str) -> list[Any]:
    """JSON values found in `text`: the whole text, fenced blocks, or the first decodable object/list."""
    stripped = text.strip()
    try:
        return [json.loads(stripped)]
    except json.JSONDecodeError:
        pass
    found = []
    for block in _FENCE.findall(text):
        try:
            found.append(json.loads(block))
        except json.JSONDecodeError:
            continue
    if found:
        return found
    decoder = json.JSONDecoder()
    for match in re.finditer(r"[\[{]", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        # Only what could hold candidates: an object, or a list of objects (not `[8, 16, 0]`
        # inside a truncated answer).
        if (isinstance(value, dict) and value) or (
                isinstance(value, list) and value and all(isinstance(v, dict) for v in value)):
            return [value]
    return []


def _entries(value: Any) -> list[Any]:
    if isinstance(value, dict) and "candidates" in value:
        value = value["candidates"]
    if isinstance(value, dict):
        return [value]
    return value if isinstance(value, list) else [value]


def parse_answer(
    text: str, kinds: tuple[str, ...], kernel_hash: str | None, n: int, provenance: dict[str, Any],
) -> ParsedAnswer:
    """Candidates of the allowed `kinds` from an answer; at most `n`, the rest reported as problems."""
    if len(text) > MAX_ANSWER_CHARS:
        return ParsedAnswer([], [f"answer of {len(text)} characters is over the {MAX_ANSWER_CHARS} limit; ignored"])
    if not text.strip():
        return ParsedAnswer([], ["empty answer"])
    if nesting_depth(text, MAX_JSON_NESTING) > MAX_JSON_NESTING:
        return ParsedAnswer([], [f"the answer's brackets nest more than {MAX_JSON_NESTING} deep; ignored"])
    values = _json_values(text)
    if not values:
        hint = "broken JSON" if "{" in text else "no JSON in the answer"
        return ParsedAnswer([], [f"{hint}: expected {{\"candidates\": [{{\"kind\": ...}}]}}"])
    candidates, problems = [], []
    entries = [e for v in values for e in _entries(v)]
    if not entries and any(isinstance(v, dict) and v.get("candidates") == [] for v in values):
        return ParsedAnswer([], [], declined=True)
    for i, entry in enumerate(entries):
        try:
            cand = _candidate(entry, kinds, kernel_hash, provenance)
        except ValueError as exc:
            problems.append(f"candidate {i + 1}: {exc}")
            continue
        if len(candidates) == n:
            problems.append(f"candidate {i + 1}: more than the {n} asked for; ignored")
            continue
        candidates.append(cand)
    if not candidates and not problems:  # `[]`, `{}`, `{"candidates": {}}`: JSON, but nothing in it
        problems.append('the answer held no candidates (to say there is nothing to try: {"candidates": []})')
    return ParsedAnswer(candidates, problems)


def _candidate(entry: Any, kinds: tuple[str, ...], kernel_hash: str | None, provenance: dict[str, Any]) -> Candidate:
    if not isinstance(entry, dict):
        raise ValueError(f"expected an object with a 'kind', got {type(entry).__name__}")
    kind = entry.get("kind")
    if kind not in kinds:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(kinds)}")
    payload = entry.get("payload", {})
    if not isinstance(payload, dict):
        raise ValueError("'payload' must be an object")
    payload = {**payload, **{k: v for k, v in entry.items() if k not in _META_KEYS}}
    info = candidates.get(kind)
    unknown = sorted(set(payload) - info.fields)
    if unknown:
        raise ValueError(f"{kind} candidate with unknown field(s) {', '.join(unknown)} "
                         f"(allowed: {', '.join(sorted(info.fields))})")
    payload = info.check_payload(payload)
    rationale = entry.get("rationale", "")
    parent = entry.get("parent")
    return Candidate(
        kind, payload, kernel_hash,
        rationale=(rationale if isinstance(rationale, str) else "")[:MAX_RATIONALE_CHARS],
        parent=parent if isinstance(parent, str) and re.fullmatch(r"[0-9a-f]{12}", parent) else provenance.get("parent"),
        **{k: v for k, v in provenance.items() if k != "parent"},
    )


def parse_answers(texts: list[str], kinds: tuple[str, ...], kernel_hash: str | None, n: int,
                  provenance: dict[str, Any]) -> ParsedAnswer:
    """Several answers to one prompt (`LLMSettings.samples`): each parsed as `parse_answer`, their
    candidates pooled without repeats (up to `n` from each); declined only if every answer declined."""
    if len(texts) == 1:
        return parse_answer(texts[0], kinds, kernel_hash, n, provenance)
    pooled, problems, seen = [], [], set()
    parts = [parse_answer(t, kinds, kernel_hash, n, provenance) for t in texts]
    for i, part in enumerate(parts, 1):
        problems += [f"answer {i}: {p}" for p in part.problems if not part.declined]
        for cand in part.candidates:
            if cand.id not in seen:
                seen.add(cand.id)
                pooled.append(cand)
    return ParsedAnswer(pooled, problems, all(p.declined for p in parts))
