"""A local OpenAI-compatible chat-completions server serving scripted responses.

Tests start it on 127.0.0.1 with a free port; nothing leaves the machine. A
script is a function `respond(request) -> Step` called for each POST to
`/v1/chat/completions` (the parsed JSON body, plus headers); a Step says what
to send back:

    Step(content="...")                       200 with a chat completion holding `content`
    Step(status=429, headers={"Retry-After": "1"})
    Step(status=500)
    Step(delay_s=5, content="...")             answer late (past the client's timeout)
    Step(raw=b"not json", status=200)          a body that is not a completion
    Step(drop=True)                            close the connection without answering
    Step(trickle_s=1.0, content="...")         the answer in 16-byte pieces, 1 s apart
    Step(content_type="text/html", raw=b"<html>")   a body of another content type

Every request is logged with its arrival and reply times, so tests can check
retries, backoff and concurrency.

`GET /v1/models` (OpenAI's "list models") lists `models` (default: one,
"scripted-model"); `models_status=404` answers 404 instead, as servers without
the route do, and `models_raw` sends those bytes as the body (garbage). Those
requests go to `model_requests`, not `log`.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclasses.dataclass
class Step:
    content: str | None = None
    status: int = 200
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    delay_s: float = 0.0
    raw: bytes | None = None
    usage: tuple[int, int] | None = None  # (prompt, completion) tokens; default: a character estimate
    drop: bool = False  # close the connection without an answer (a proxy or server that died mid-request)
    trickle_s: float = 0.0  # send the answer in 16-byte pieces, this long apart (a stalled stream)
    content_type: str = "application/json"
    contents: list[str] | None = None  # one answer per choice when the request asks for n > 1
    refuse_n: bool = False  # answer 400 to a request with n > 1, as servers without `n` do


@dataclasses.dataclass
class Logged:
    body: dict[str, Any]
    headers: dict[str, str]
    arrived: float
    step: Step
    replied: float | None = None


class ScriptedLLM:
    def __init__(self, respond: Callable[[dict[str, Any]], Step], port: int = 0,
                 models: Sequence[str] = ("scripted-model",), models_status: int = 200,
                 models_raw: bytes | None = None):
        self.respond = respond
        self.models = list(models)
        self.models_status = models_status
        self.models_raw = models_raw
        self.log: list[Logged] = []
        self.model_requests: list[Logged] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                entry = Logged({"path": self.path}, {k.lower(): v for k, v in self.headers.items()},
                               time.monotonic(), Step(status=server.models_status, raw=server.models_raw))
                server.model_requests.append(entry)
                if self.path.rstrip("/") != "/v1/models":
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                elif server.models_raw is not None:
                    self._send_bytes(server.models_status, server.models_raw)
                elif server.models_status != 200:
                    self._send(server.models_status, {"error": {"message": f"scripted {server.models_status}",
                                                                "type": "scripted"}})
                else:
                    self._send(200, {"object": "list", "data": [
                        {"id": m, "object": "model", "created": 0, "owned_by": "scripted"} for m in server.models]})
                entry.replied = time.monotonic()

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                with server._lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    step = server.respond(body)
                    entry = Logged(body, {k.lower(): v for k, v in self.headers.items()}, time.monotonic(), step)
                    server.log.append(entry)
                    if step.delay_s:
                        time.sleep(step.delay_s)
                    if step.refuse_n and int(body.get("n") or 1) > 1:
                        step = Step(status=400)
                    if step.drop:
                        self.close_connection = True
                        self.connection.shutdown(2)  # both directions: the client sees a reset, no status
                        entry.replied = time.monotonic()
                        return
                    try:
                        if step.raw is not None:
                            self._send_bytes(step.status, step.raw, step.headers, step)
                        elif step.status != 200:
                            self._send(step.status, {"error": {"message": f"scripted {step.status}",
                                                               "type": "scripted"}}, step.headers)
                        else:
                            self._send(200, _completion(body, step), step.headers, step)
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # the client gave up (timeout): that is the point of a slow step
                    entry.replied = time.monotonic()
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _send(self, status, obj, headers=None, step: Step | None = None):
                self._send_bytes(status, json.dumps(obj).encode(), headers, step)

            def _send_bytes(self, status, data, headers=None, step: Step | None = None):
                self.send_response(status)
                self.send_header("Content-Type", step.content_type if step else "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                if step is not None and step.trickle_s:
                    for i in range(0, len(data), 16):
                        self.wfile.write(data[i:i + 16])
                        self.wfile.flush()
                        time.sleep(step.trickle_s)
                else:
                    self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> ScriptedLLM:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _completion(body: dict[str, Any], step: Step) -> dict[str, Any]:
    n = int(body.get("n") or 1)
    contents = (step.contents or [step.content or ""] * n)[:n]
    content = "".join(contents)
    prompt_chars = sum(len(m.get("content", "")) for m in body.get("messages", []))
    prompt_tokens, completion_tokens = step.usage or (prompt_chars // 4, len(content) // 4)
    return {
        "id": "chatcmpl-scripted", "object": "chat.completion", "created": int(time.time()),
        "model": body.get("model", "scripted"),
        "choices": [{"index": i, "finish_reason": "stop", "message": {"role": "assistant", "content": c}}
                    for i, c in enumerate(contents)],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def purpose_of(body: dict[str, Any]) -> str:
    """'module' or 'kernel', from the prompt the proposer sent."""
    user = body["messages"][-1]["content"]
    return "module" if "Module-wide candidates only" in user else "kernel"


def kernel_mlir_of(body: dict[str, Any]) -> str:
    """The kernel's MLIR as shown in the prompt (the first ```mlir block)."""
    user = body["messages"][-1]["content"]
    return user.split("```mlir\n", 1)[1].split("\n```", 1)[0]


class Queues:
    """Scripted steps per purpose (module / kernel), served in arrival order; `then` when empty."""

    def __init__(self, then: Callable[[dict[str, Any]], Step], **queues: list):
        self.queues = {k: list(v) for k, v in queues.items()}
        self.then = then

    def __call__(self, body: dict[str, Any]) -> Step:
        queue = self.queues.get(purpose_of(body), [])
        if not queue:
            return self.then(body)
        step = queue.pop(0)
        return step(body) if callable(step) else step
