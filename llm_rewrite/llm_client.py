"""Talking to an OpenAI-compatible endpoint: timeouts, retries, a concurrency limit and a budget.

The real `openai` package does the HTTP; its own retries are switched off so
that every attempt is ours to see: a 429 or 5xx is retried with exponential
backoff (with jitter), waiting at least what the server's `Retry-After` asks
for; a timeout, a dropped connection, an answer not complete within
`timeout_s` (a stalled stream) and a 200 whose body is not a chat completion
(a proxy's HTML error page) are retried the same way; anything else (400,
401, 404, ...) fails at once with the server's message. Each attempt is
reported to the caller, so the transcript shows what happened.

The budget (requests, tokens, wall-clock seconds) is checked before every
request; when it is spent, `BudgetSpent` is raised and the search stops
cleanly, keeping what it verified. Nothing here knows about kernels.

The model need not be configured when the endpoint serves only one:
`pick_model` asks the endpoint's `GET /models` (OpenAI's "list models", which
vLLM, llama.cpp server and Ollama serve) once per endpoint and process, and
uses the model if exactly one is listed, saying so on the `mlirforge` logger.
Several models, none, or a listing that fails are reported with the names
and how to choose (`MLIRFORGE_MODEL` / `--llm-model`).
"""

from __future__ import annotations

import dataclasses
import email.utils
import logging
import os
import random
import threading
import time
from typing import Any

from mlirforge.lowering.errors import UserError
from mlirforge.llm_rewrite.settings import LLMSettings

ENV_BASE_URL = "OPENAI_BASE_URL"
ENV_API_KEY = "OPENAI_API_KEY"
ENV_MODEL = "MLIRFORGE_MODEL"

ENABLE_HINT = (
    f"to let an LLM propose kernels, point mlirforge at any OpenAI-compatible endpoint: "
    f"export {ENV_BASE_URL}=http://host:port/v1 (and {ENV_MODEL}=<model> unless the endpoint serves only one, "
    f"{ENV_API_KEY} if it needs one); the default proposer `auto` then uses it (or pass --proposer llm)"
)
CHOOSE_MODEL = f"{ENV_MODEL}=<model> or --llm-model <model> (option llm_model)"
LIST_TIMEOUT_S = 30.0
"""At most this long for listing the endpoint's models (no retries)."""

log = logging.getLogger("mlirforge")


class LLMError(RuntimeError):
    """A request failed for good (after the retries it deserved)."""

    def __init__(self, message: str, attempts: list[Attempt] | None = None):
        super().__init__(message)
        self.attempts = attempts or []


class BudgetSpent(RuntimeError):
    """The LLM budget (requests, tokens or seconds) is used up; the search stops here."""


def resolve_llm_settings(settings: LLMSettings) -> LLMSettings:
    """`settings` with the endpoint and model filled in from the environment; without a model,
    the endpoint's only one. Raises UserError saying how to enable the LLM, or why no model
    could be picked and how to choose."""
    base_url = settings.base_url or os.environ.get(ENV_BASE_URL, "")
    model = settings.model or os.environ.get(ENV_MODEL, "")
    if not base_url:
        raise UserError(f"the llm proposer needs {ENV_BASE_URL} (or --llm-base-url, option llm_base_url); "
                        f"{ENABLE_HINT}")
    if not base_url.startswith(("http://", "https://")):
        raise UserError(f"llm endpoint '{base_url}' is not an http(s) URL")
    base_url = base_url.rstrip("/")
    # Many local servers need no key; the openai client insists on a non-empty one.
    api_key = api_key_from_env()
    picked = False
    if not model:
        pick = pick_model(base_url, api_key, min(LIST_TIMEOUT_S, settings.timeout_s))
        if not pick.model:
            raise UserError(pick.error())
        model, picked = pick.model, True
    return dataclasses.replace(settings, base_url=base_url, model=model, api_key=api_key, model_picked=picked)


def api_key_from_env() -> str:
    """$OPENAI_API_KEY, or a placeholder (the openai client insists on one; many local servers need none)."""
    return os.environ.get(ENV_API_KEY, "") or "unused"


@dataclasses.dataclass(frozen=True)
class ModelPick:
    """What the endpoint's model list gave: the model to use, or why there is none."""

    base_url: str
    model: str = ""
    models: tuple[str, ...] = ()
    failure: str = ""
    """Why the list could not be had ("" when it was)."""

    @property
    def problem(self) -> str:
        """Why no model was picked, in a phrase ("" when one was)."""
        if self.model:
            return ""
        if self.failure:
            return f"listing the endpoint's models failed: {self.failure}"
        where = f"the endpoint at {_display_url(self.base_url)}"
        if not self.models:
            return f"{where} lists no models"
        return f"{where} lists {len(self.models)} models: {_names(self.models)}"

    def error(self) -> str:
        """The user error for an LLM proposer that has no model."""
        if self.failure or not self.models:
            return (f"the llm proposer needs a model: set {CHOOSE_MODEL}; it could not be picked automatically "
                    f"because {self.problem}")
        return f"the llm proposer needs a model, and {self.problem}; choose one with {CHOOSE_MODEL}"


_picks: dict[tuple[str, str], ModelPick] = {}
_picks_lock = threading.Lock()


def pick_model(base_url: str, api_key: str = "", timeout_s: float = LIST_TIMEOUT_S) -> ModelPick:
    """The endpoint's only model, or why there is none; asked once per endpoint and process.

    A picked model is announced once (a warning on the `mlirforge` logger, which the CLI prints)."""
    base_url = base_url.rstrip("/")
    key = (base_url, api_key)
    with _picks_lock:
        if key in _picks:
            return _picks[key]
        try:
            models = list_models(base_url, api_key, timeout_s)
        except LLMError as exc:
            pick = ModelPick(base_url, failure=str(exc))
        else:
            pick = ModelPick(base_url, models[0] if len(models) == 1 else "", models)
        _picks[key] = pick
    if pick.model:
        log.warning("using model '%s', the only model the endpoint at %s lists", pick.model, _display_url(base_url))
    return pick


_noted: set[str] = set()


def note_once(message: str) -> None:
    """A warning on the `mlirforge` logger, once per process."""
    with _picks_lock:
        if message in _noted:
            return
        _noted.add(message)
    log.warning("%s", message)


def list_models(base_url: str, api_key: str = "", timeout_s: float = LIST_TIMEOUT_S) -> tuple[str, ...]:
    """The model ids the endpoint lists at GET {base_url}/models (sorted). Raises LLMError saying why not."""
    import openai

    client = openai.OpenAI(base_url=base_url, api_key=api_key or "unused", timeout=timeout_s, max_retries=0)
    url = f"GET {_display_url(base_url)}/models"
    try:
        page = client.models.list()
        data = page.data
    except openai.APIStatusError as exc:
        detail = _short(exc, 200).removeprefix(f"Error code: {exc.status_code} - ")
        raise LLMError(f"{url}: HTTP {exc.status_code} ({detail})") from None
    except openai.APITimeoutError:
        raise LLMError(f"{url}: timed out after {timeout_s:.0f} s") from None
    except openai.APIConnectionError as exc:
        cause = exc.__cause__ or exc
        raise LLMError(f"{url}: connection failed ({_short(cause, 200)})") from None
    except Exception as exc:  # a body that is not JSON, or JSON of another shape
        raise LLMError(f"{url}: the answer is not a model list ({type(exc).__name__}: {_short(exc, 200)})") from None
    ids = [getattr(m, "id", None) for m in data] if isinstance(data, list) else None
    if ids is None or not all(isinstance(i, str) and i for i in ids):
        raise LLMError(url + ': the answer is not a model list (expected {"data": [{"id": "<model>"}, ...]})')
    return tuple(sorted(set(ids)))


def _names(models: tuple[str, ...], limit: int = 20) -> str:
    shown = ", ".join(models[:limit])
    return shown + (f" and {len(models) - limit} more" if len(models) > limit else "")


def _display_url(url: str) -> str:
    """`url` without credentials (user:password@)."""
    from mlirforge.llm_rewrite.transcript import scrub

    return scrub(url)


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
    """The first answer (the only one unless `samples` > 1)."""
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    attempts: list[Attempt]
    seconds: float
    texts: list[str] = dataclasses.field(default_factory=list)
    """Every answer of the request, the first included."""

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
        self._closed = False
        self._n_refused = False

    def close(self) -> None:
        """Close the HTTP connections; a request still in flight in another thread fails at once."""
        self._closed = True
        self._client.close()

    def complete(self, messages: list[dict[str, str]]) -> Completion:
        """One completion, retried as the module docstring says. Raises LLMError or BudgetSpent.

        With `LLMSettings.temperatures`, one request per temperature, sent at once; their answers
        come back as one completion (texts in temperature order, tokens and attempts summed). A
        temperature whose request failed or found no budget left is skipped; if all did, the
        first error is raised.
        """
        if self._closed:
            raise LLMError("the LLM client was closed (the search stopped)")
        temperatures = self.settings.temperatures
        if not temperatures:
            self.budget.take_request()
            with self._slots:
                return self._complete(messages, self.settings.temperature)
        return self._complete_at(messages, temperatures)

    def _complete_at(self, messages: list[dict[str, str]], temperatures: tuple[float, ...]) -> Completion:
        results: list[Completion | BaseException] = [LLMError("not sent")] * len(temperatures)

        def one(i: int, temperature: float) -> None:
            try:
                self.budget.take_request()
                with self._slots:
                    results[i] = self._complete(messages, temperature)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread below
                results[i] = exc

        threads = [threading.Thread(target=one, args=(i, temp), daemon=True) for i, temp in enumerate(temperatures)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        answered = [r for r in results if isinstance(r, Completion)]
        unexpected = [r for r in results if isinstance(r, BaseException) and not isinstance(r, LLMError | BudgetSpent)]
        if unexpected:
            raise unexpected[0]  # a bug or an interrupt: as without temperatures, never swallowed
        if not answered:
            raise next(r for r in results if isinstance(r, BaseException))
        texts = [text for c in answered for text in (c.texts or [c.text])]
        return Completion(
            answered[0].text, answered[0].finish_reason, sum(c.prompt_tokens for c in answered),
            sum(c.completion_tokens for c in answered),
            [a for r in results for a in (r.attempts if isinstance(r, Completion) else getattr(r, "attempts", []))],
            max(c.seconds for c in answered), texts,
        )

    def _complete(self, messages: list[dict[str, str]], temperature: float) -> Completion:
        s, errors = self.settings, self._openai
        attempts: list[Attempt] = []
        started = time.monotonic()
        free_retry = False  # one retry that `max_retries` does not count: the same request without `n`
        for attempt_no in range(s.max_retries + 2):
            t0 = time.monotonic()
            try:
                n = {"n": s.samples} if s.samples > 1 and not self._n_refused else {}
                response = _within(s.timeout_s, lambda: self._client.chat.completions.create(
                    model=s.model, messages=messages, temperature=temperature, max_tokens=s.max_tokens, **n,
                ))
                completion = self._completion(response, [*attempts, Attempt(200, time.monotonic() - t0)],
                                              time.monotonic() - started)
            except errors.APIStatusError as exc:
                status = exc.status_code
                attempt = Attempt(status, time.monotonic() - t0, _short(exc), _retry_after(exc.response.headers))
                retryable = status == 429 or status >= 500
                if status == 400 and n:  # many servers (llama.cpp, some proxies) refuse `n`: ask for one
                    self._n_refused, retryable, free_retry = True, True, True
            except (errors.APITimeoutError, errors.APIConnectionError, TimeoutError) as exc:
                kind = "connection failed" if isinstance(exc, errors.APIConnectionError) and not isinstance(
                    exc, errors.APITimeoutError) else "timed out"
                attempt = Attempt(None, time.monotonic() - t0, f"{kind}: {_short(exc)}")
                retryable = True
            except Exception as exc:  # noqa: BLE001 - a 200 whose body is not a chat completion (HTML, other JSON)
                attempt = Attempt(200, time.monotonic() - t0, f"the answer is not a chat completion: {_short(exc)}")
                retryable = True  # a proxy's error page, a truncated body: worth another try
            else:
                return completion
            attempts.append(attempt)
            if not retryable or attempt_no >= s.max_retries + free_retry:
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
        """The completion in `response`; ValueError if it is not one (a body of another content type
        comes back from the openai package as a plain string)."""
        if not isinstance(getattr(response, "choices", None), list):
            raise ValueError(f"got {type(response).__name__} {_short(repr(response), 80)}")
        choice = response.choices[0] if response.choices else None
        texts = [(c.message.content or "") if c.message is not None else "" for c in response.choices]
        text = texts[0] if texts else ""
        usage = response.usage
        # Servers that report no usage are charged an estimate (4 characters a token).
        prompt_tokens = usage.prompt_tokens if usage else 0
        completion_tokens = usage.completion_tokens if usage else sum(len(t) for t in texts) // 4
        completion = Completion(text, choice.finish_reason if choice else None, prompt_tokens or 0,
                                completion_tokens or 0, attempts, seconds, texts or [text])
        self.budget.add_tokens(completion.tokens)
        return completion


def _within(seconds: float, call):
    """`call()` with a deadline for the whole answer; TimeoutError past it.

    The HTTP client's timeout bounds each read, so a server that trickles an answer a few bytes at
    a time would hold the search for ever; the request runs on a daemon thread and is abandoned
    past the deadline (its connection closes with the client, and a daemon never holds the exit).
    """
    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="llm-request", daemon=True).start()
    if not done.wait(seconds):
        raise TimeoutError(f"no complete answer within {seconds:.0f} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def _short(exc: Exception, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text[:limit] + ("..." if len(text) > limit else "")
