"""Talking to an OpenAI-compatible endpoint: timeouts, retries, a concurrency limit and a budget.

The real `openai` package does the HTTP; its own retries are switched off so
that every attempt is ours to see: a 429 or 5xx is retried with exponential
backoff (with jitter), waiting at least what the server's `Retry-After` asks
for; a timeout or a dropped connection is retried the same way; anything else
(400, 401, 404, ...) fails at once with the server's message. Each attempt is
reported to the caller, so the transcript shows what happened.

The budget (requests, tokens, wall-clock seconds) is checked before every
request; when it is spent, `BudgetSpent` is raised and the search stops
cleanly, keeping what it verified. Nothing here knows about kernels.
"""

from __future__ import annotations

import dataclasses
import email.utils
import os
import random
import threading
import time
from typing import Any

from mlirforge.lowering.errors import UserError

ENV_BASE_URL = "OPENAI_BASE_URL"
ENV_API_KEY = "OPENAI_API_KEY"
ENV_MODEL = "MLIRFORGE_MODEL"

ENABLE_HINT = (
    f"to let an LLM propose kernels, point mlirforge at any OpenAI-compatible endpoint: "
    f"export {ENV_BASE_URL}=http://host:port/v1 {ENV_MODEL}=<model> (and {ENV_API_KEY} if it needs one), "
    f"then pass --proposer llm"
)


class LLMError(RuntimeError):
    """A request failed for good (after the retries it deserved)."""

    def __init__(self, message: str, attempts: list[Attempt] | None = None):
        super().__init__(message)
        self.attempts = attempts or []


class BudgetSpent(RuntimeError):
    """The LLM budget (requests, tokens or seconds) is used up; the search stops here."""


@dataclasses.dataclass(frozen=True)
class LLMSettings:
    base_url: str
    model: str
    api_key: str = ""
    timeout_s: float = 120.0
    max_retries: int = 4
    backoff_s: float = 1.0
    """First backoff; doubled per retry, with up to 50% jitter."""
    max_backoff_s: float = 60.0
    concurrency: int = 2
    temperature: float = 0.7
    max_tokens: int = 8192
    """Completion tokens per request."""
    max_requests: int = 60
    max_total_tokens: int = 400_000
    max_seconds: float = 1800.0

    @classmethod
    def resolve(cls, base_url: str = "", model: str = "", **overrides: Any) -> LLMSettings:
        """Settings from explicit values, else the environment; UserError saying how to enable it."""
        base_url = base_url or os.environ.get(ENV_BASE_URL, "")
        model = model or os.environ.get(ENV_MODEL, "")
        missing = [name for name, value in ((ENV_BASE_URL, base_url), (ENV_MODEL, model)) if not value]
        if missing:
            raise UserError(f"the llm proposer needs {' and '.join(missing)} (or llm_base_url/llm_model in the "
                            f"config); {ENABLE_HINT}")
        if not base_url.startswith(("http://", "https://")):
            raise UserError(f"llm endpoint '{base_url}' is not an http(s) URL")
        # Many local servers need no key; the openai client insists on a non-empty one.
        api_key = os.environ.get(ENV_API_KEY, "") or "unused"
        return cls(base_url=base_url.rstrip("/"), model=model, api_key=api_key, **overrides)


@dataclasses.dataclass
class Attempt:
    """One HTTP attempt, as the transcript records it."""

    status: int | None  # HTTP status; None for a timeout or a connection error
    seconds: float
    error: str = ""
    retry_after_s: float | None = None
    waited_s: float = 0.0  # how long we slept before the next attempt

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Completion:
    text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    attempts: list[Attempt]
    seconds: float

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Budget:
    """Requests, tokens and wall-clock seconds, shared by all requests of one search."""

    def __init__(self, max_requests: int, max_tokens: int, max_seconds: float):
        self.max_requests = max_requests
        self.max_tokens = max_tokens
        self.max_seconds = max_seconds
        self.requests = 0
        self.tokens = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def remaining_s(self) -> float:
        return self.max_seconds - self.seconds

    def spent(self) -> str | None:
        """Why the budget is spent, or None."""
        if self.requests >= self.max_requests:
            return f"LLM budget spent: {self.requests}/{self.max_requests} requests"
        if self.tokens >= self.max_tokens:
            return f"LLM budget spent: {self.tokens}/{self.max_tokens} tokens"
        if self.seconds >= self.max_seconds:
            return f"LLM budget spent: {self.seconds:.0f}/{self.max_seconds:.0f} s"
        return None

    def take_request(self) -> None:
        with self._lock:
            why = self.spent()
            if why:
                raise BudgetSpent(why)
            self.requests += 1

    def add_tokens(self, n: int) -> None:
        with self._lock:
            self.tokens += n

    def to_json(self) -> dict[str, Any]:
        return {"requests": self.requests, "max_requests": self.max_requests, "tokens": self.tokens,
                "max_tokens": self.max_tokens, "seconds": round(self.seconds, 2), "max_seconds": self.max_seconds}


def _retry_after(headers: Any) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if headers is None:
        return None
    value = headers.get("retry-after") or headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class LLMClient:
    """Chat completions with our retry policy, a concurrency limit and a shared budget."""

    def __init__(self, settings: LLMSettings, budget: Budget | None = None):
        import openai

        self.settings = settings
        self.budget = budget or Budget(settings.max_requests, settings.max_total_tokens, settings.max_seconds)
        self._slots = threading.BoundedSemaphore(max(1, settings.concurrency))
        self._client = openai.OpenAI(base_url=settings.base_url, api_key=settings.api_key or "unused",
                                     timeout=settings.timeout_s, max_retries=0)
        self._openai = openai

    def complete(self, messages: list[dict[str, str]]) -> Completion:
        """One completion, retried as the module docstring says. Raises LLMError or BudgetSpent."""
        self.budget.take_request()
        with self._slots:
            return self._complete(messages)

    def _complete(self, messages: list[dict[str, str]]) -> Completion:
        s, errors = self.settings, self._openai
        attempts: list[Attempt] = []
        started = time.monotonic()
        for attempt_no in range(s.max_retries + 1):
            t0 = time.monotonic()
            try:
                response = self._client.chat.completions.create(
                    model=s.model, messages=messages, temperature=s.temperature, max_tokens=s.max_tokens,
                )
            except errors.APIStatusError as exc:
                status = exc.status_code
                attempt = Attempt(status, time.monotonic() - t0, _short(exc), _retry_after(exc.response.headers))
                retryable = status == 429 or status >= 500
            except (errors.APITimeoutError, errors.APIConnectionError) as exc:
                kind = "timed out" if isinstance(exc, errors.APITimeoutError) else "connection failed"
                attempt = Attempt(None, time.monotonic() - t0, f"{kind}: {_short(exc)}")
                retryable = True
            else:
                attempts.append(Attempt(200, time.monotonic() - t0))
                return self._completion(response, attempts, time.monotonic() - started)
            attempts.append(attempt)
            if not retryable or attempt_no == s.max_retries:
                break
            wait = min(s.max_backoff_s, s.backoff_s * 2 ** attempt_no * (1 + 0.5 * random.random()))
            if attempt.retry_after_s is not None:
                wait = max(wait, attempt.retry_after_s)
            if wait >= self.budget.remaining_s():
                raise BudgetSpent(f"LLM budget spent: the server asked to wait {wait:.0f} s, "
                                  f"{max(0.0, self.budget.remaining_s()):.0f} s left")
            attempt.waited_s = round(wait, 3)
            time.sleep(wait)
        last = attempts[-1]
        what = f"HTTP {last.status}" if last.status else "no response"
        raise LLMError(f"{s.base_url}: {what} after {len(attempts)} attempt(s): {last.error}", attempts)

    def _completion(self, response: Any, attempts: list[Attempt], seconds: float) -> Completion:
        choice = response.choices[0] if response.choices else None
        text = (choice.message.content or "") if choice is not None and choice.message is not None else ""
        usage = response.usage
        # Servers that report no usage are charged an estimate (4 characters a token).
        prompt_tokens = usage.prompt_tokens if usage else 0
        completion_tokens = usage.completion_tokens if usage else len(text) // 4
        completion = Completion(text, choice.finish_reason if choice else None, prompt_tokens or 0,
                                completion_tokens or 0, attempts, seconds)
        self.budget.add_tokens(completion.tokens)
        return completion


def _short(exc: Exception, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text[:limit] + ("..." if len(text) > limit else "")
