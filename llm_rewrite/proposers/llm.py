"""The LLM proposer: candidates from any OpenAI-compatible endpoint, one round at a time.

Each call to `propose` is one round for one kernel: the population of that
kernel's history (`population.select`) and the reasons the last answer could
not be used go into the prompt (`prompts/build.py`), one request goes out
through `LLMClient`, and the answer's JSON becomes candidates
(`answers.parse_answer`). The search evaluates them and calls again with the
verdicts added: that is the evolutionary loop. Every request, its attempts
and its answer go to the transcript, which `replay` can run again offline.

A failed request (after the client's retries) is a failed round, fed back
like an unusable answer; a spent budget or an endpoint that refuses us
(401/403/404) stops the search, keeping what was verified.

First rounds need no history, so with `concurrency` > 1 the proposer asks
for the next kernels' first rounds while the current kernel's candidates are
being checked (`prepare`): the model's latency overlaps our compile-and-time
work instead of adding to it.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from pathlib import Path

from mlirforge.llm_rewrite import population
from mlirforge.llm_rewrite.answers import parse_answers
from mlirforge.llm_rewrite.llm_client import BudgetSpent, LLMClient, LLMError, LLMSettings
from mlirforge.llm_rewrite import candidates
from mlirforge.llm_rewrite.candidates.pipeline import KERNEL_PASSES
from mlirforge.llm_rewrite.prompts.build import kernel_messages, module_messages
from mlirforge.llm_rewrite.proposers import History, Proposer, ProposerStopped
from mlirforge.llm_rewrite.transcript import TranscriptWriter, prompt_hash
from mlirforge.llm_rewrite.types import Candidate, Kernel
from mlirforge.lowering.target import host_cpu

log = logging.getLogger("mlirforge.llm_rewrite")

_FATAL_STATUSES = (401, 403, 404)
MODULE_KEY = "module"



class DaemonExecutor:
    """Runs each submitted call on its own daemon thread (the caller bounds how many are in flight)."""

    def submit(self, fn, *args) -> Future:
        future: Future = Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - delivered to whoever waits on the future
                future.set_exception(exc)

        threading.Thread(target=run, name="llm-ahead", daemon=True).start()
        return future

class LLMProposer(Proposer):
    name = "llm"

    def __init__(self, settings: LLMSettings, transcript: str | Path, base_flags: tuple[str, ...] = (),
                 driver: str = "local-sync", cpu=None, client: LLMClient | None = None):
        from mlirforge import __version__
        from mlirforge.lowering.runtime import DRIVERS
        from mlirforge.passes import describe_passes

        self.settings = settings
        self.client = client or LLMClient(settings)
        self.cpu = cpu or host_cpu()
        self.drivers = DRIVERS
        self.passes_text = describe_passes(KERNEL_PASSES)
        self.transcript_file = Path(transcript)
        self.transcript = TranscriptWriter(
            self.transcript_file,
            {"model": settings.model, "model_picked": settings.model_picked, "base_url": settings.base_url,
             "mlirforge": __version__,
             "temperature": settings.temperature, "temperatures": list(settings.temperatures),
             "max_tokens": settings.max_tokens},
            secrets=(settings.api_key,),
        )
        self._rounds: dict[str, int] = {}
        self._rejections: dict[str, list[str]] = {}
        self._pending: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._executor: DaemonExecutor | None = None
        self._upcoming: list[Kernel] = []
        self._prefetched: dict[str, Future] = {}
        self._prefetch_n = 4
        self._timed_under: tuple[list[str], str] = (list(base_flags), driver)
        """The flags and driver kernels are built and timed under: the base ones, then the module round's."""
        self._profile = None  # in_model.ModelProfile, from `inform`

    @property
    def cache_tag(self) -> str:
        return f"llm:{self.settings.model}"

    def usage(self) -> dict:
        return {"model": self.settings.model, **self.client.budget.to_json()}

    wants_model_profile = True

    def inform(self, flags, driver, profile) -> None:
        self._timed_under = (list(flags), driver)
        self._profile = profile

    def drain_rejections(self, kernel_hash: str | None) -> list[str]:
        with self._lock:
            return self._pending.pop(kernel_hash or MODULE_KEY, [])

    def prepare(self, kernels: list[Kernel], n: int) -> None:
        if self.settings.concurrency < 2 or not kernels:
            return
        self._upcoming, self._prefetch_n = list(kernels), n
        self._executor = DaemonExecutor()
        self._top_up(exclude=None)

    def _top_up(self, exclude: str | None) -> None:
        """Keep `concurrency - 1` upcoming kernels' first rounds in flight."""
        if self._executor is None:
            return
        self._upcoming = [k for k in self._upcoming if k.hash != exclude]
        waiting = sum(1 for h, f in self._prefetched.items() if h != exclude)
        while self._upcoming and waiting < self.settings.concurrency - 1:
            kernel = self._upcoming.pop(0)
            if kernel.hash in self._prefetched or kernel.hash in self._rounds:
                continue
            self._prefetched[kernel.hash] = self._executor.submit(self._first_round, kernel, self._prefetch_n)
            waiting += 1

    def _first_round(self, kernel: Kernel, n: int) -> list[Candidate]:
        return self.propose_round(kernel, [], n)

    def propose(self, kernel: Kernel, history: History, n: int) -> list[Candidate]:
        future = self._prefetched.pop(kernel.hash, None) if not history else None
        self._top_up(exclude=kernel.hash)
        if future is not None:
            return future.result()
        return self.propose_round(kernel, history, n)

    def propose_round(self, kernel: Kernel, history: History, n: int) -> list[Candidate]:
        pop = population.select(history)
        messages = kernel_messages(kernel, self.cpu, pop, len(history), self._rejections.get(kernel.hash, []), n,
                                   self.passes_text, self._timed_under,
                                   self._profile.describe(kernel.hash) if self._profile else "")
        parent = pop.parent.id if pop.parent else None
        return self._ask(messages, "kernel", kernel.hash, candidates.names("kernel"), n, parent)

    def propose_module(self, kernels: list[Kernel], history: History, n: int) -> list[Candidate]:
        messages = module_messages(kernels, self.cpu, history, self._rejections.get(MODULE_KEY, []), n,
                                   *self._timed_under, self.drivers, self._profile)
        return self._ask(messages, "module", None, candidates.names("module"), n, None)

    def _ask(self, messages, purpose: str, kernel_hash: str | None, kinds, n: int, parent: str | None) -> list[Candidate]:
        key = kernel_hash or MODULE_KEY
        with self._lock:
            round_no = self._rounds.get(key, 0)
            self._rounds[key] = round_no + 1
        seq = self.transcript.next_seq()
        phash = prompt_hash(messages)
        record = {"seq": seq, "purpose": purpose, "kernel": kernel_hash, "round": round_no, "n": n,
                  "prompt_hash": phash, "model": self.settings.model, "parent": parent, "messages": messages}
        try:
            completion = self.client.complete(messages)
        except BudgetSpent as exc:
            record.update(error=str(exc), attempts=[], stopped=True)
            self.transcript.record(record)
            raise ProposerStopped(str(exc)) from None
        except LLMError as exc:
            fatal = bool(exc.attempts) and exc.attempts[-1].status in _FATAL_STATUSES
            record.update(error=str(exc), attempts=[a.to_json() for a in exc.attempts], stopped=fatal)
            self.transcript.record(record)
            if fatal:
                raise ProposerStopped(f"the LLM endpoint refused the request: {exc}") from None
            self._reject(key, [f"the request failed: {exc}"])
            return []
        parsed = parse_answers(completion.texts or [completion.text], kinds, kernel_hash, n,
                               self.provenance(phash, seq, parent))
        response = {"text": completion.text, "finish_reason": completion.finish_reason,
                    "prompt_tokens": completion.prompt_tokens, "completion_tokens": completion.completion_tokens,
                    "seconds": round(completion.seconds, 3)}
        if len(completion.texts) > 1:
            response["texts"] = completion.texts
        record.update(
            attempts=[a.to_json() for a in completion.attempts], response=response,
            candidates=[c.id for c in parsed.candidates], problems=parsed.problems,
            budget=self.client.budget.to_json(),
        )
        self.transcript.record(record)
        if parsed.declined:  # nothing more to propose: the search of this kernel ends, nothing to re-ask
            self._reject(key, [])
            return []
        self._reject(key, parsed.problems)
        return parsed.candidates

    def provenance(self, phash: str, seq: int, parent: str | None) -> dict:
        return {"proposer": self.name, "model": self.settings.model, "prompt_hash": phash, "request": seq,
                "parent": parent}

    def _reject(self, key: str, reasons: list[str]) -> None:
        """What the next prompt for `key` reports about this round's answer (only the latest round's)."""
        with self._lock:
            self._rejections[key] = reasons
            self._pending.setdefault(key, []).extend(reasons)

    def close(self) -> None:
        """Stop asking: close the client (no new request starts) and the transcript.

        A request made ahead and still in flight runs on a daemon thread: its
        answer is dropped, and it never holds the interpreter at exit (a
        ThreadPoolExecutor's threads are joined at exit, for up to the request
        timeout, and an HTTP read cannot be interrupted from another thread).
        """
        self.client.close()
        self.transcript.close()
