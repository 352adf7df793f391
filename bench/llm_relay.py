"""An OpenAI-compatible relay: a human or an agent answers the mlirforge LLM
proposer's requests by hand.

Each chat request is written to DIR/requests/NNN.json (the request body) and
DIR/requests/NNN.prompt.md (the messages, for reading); the relay then waits
until DIR/answers/NNN.txt appears and returns its content as the assistant's
message. The run's transcript (`transcript.jsonl` in the artifact) is then a
recording of capable answers that `--proposer replay` re-runs offline.

    python bench/llm_relay.py --port 8777 --dir /tmp/relay &
    OPENAI_BASE_URL=http://127.0.0.1:8777/v1 MLIRFORGE_MODEL=relay \\
        mlirforge optimize model.py -o out/ --proposer llm --llm-timeout-s 1800

Stdlib only; one line per request on stderr.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MODEL = "relay"


class Relay:
    def __init__(self, root: Path, poll_s: float) -> None:
        self.requests = root / "requests"
        self.answers = root / "answers"
        self.requests.mkdir(parents=True, exist_ok=True)
        self.answers.mkdir(parents=True, exist_ok=True)
        self.poll_s = poll_s
        self.lock = threading.Lock()
        # continue numbering after requests already on disk (a restarted relay)
        done = [int(p.stem) for p in self.requests.glob("[0-9]*.json") if p.stem.isdigit()]
        self.counter = itertools.count(max(done, default=0) + 1)

    def ask(self, body: dict) -> tuple[str, str]:
        with self.lock:
            name = f"{next(self.counter):03d}"
        (self.requests / f"{name}.json").write_text(json.dumps(body, indent=2) + "\n")
        text = "\n\n".join(f"<!-- {m.get('role', '?')} -->\n{m.get('content') or ''}"
                           for m in body.get("messages", []))
        (self.requests / f"{name}.prompt.md").write_text(text + "\n")
        print(f"relay: request {name} ({len(text)} chars) -> waiting for "
              f"{self.answers / (name + '.txt')}", file=sys.stderr, flush=True)
        answer = self.answers / f"{name}.txt"
        start = time.monotonic()
        while not answer.exists():
            time.sleep(self.poll_s)
        time.sleep(0.2)  # let a writer finish
        content = answer.read_text()
        print(f"relay: request {name} answered ({len(content)} chars, "
              f"{time.monotonic() - start:.0f} s)", file=sys.stderr, flush=True)
        return name, content


def handler(relay: Relay):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet: one line per request is ours
            pass

        def reply(self, code: int, obj: dict) -> None:
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self.reply(200, {"object": "list", "data": [
                    {"id": MODEL, "object": "model", "created": 0, "owned_by": "relay"}]})
            else:
                self.reply(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:
            if not self.path.rstrip("/").endswith("/chat/completions"):
                return self.reply(404, {"error": {"message": f"no route {self.path}"}})
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError as e:
                return self.reply(400, {"error": {"message": f"bad JSON: {e}"}})
            if body.get("stream"):
                return self.reply(400, {"error": {"message": "streaming is not supported"}})
            name, content = relay.ask(body)
            prompt_chars = sum(len(m.get("content") or "") for m in body.get("messages", []))
            usage = {"prompt_tokens": prompt_chars // 4, "completion_tokens": len(content) // 4}
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            self.reply(200, {
                "id": f"relay-{name}", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", MODEL),
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": content}}],
                "usage": usage})

    return Handler


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8777)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/relay"),
                    help="holds requests/ (written) and answers/ (read)")
    ap.add_argument("--poll-s", type=float, default=1.0)
    args = ap.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), handler(Relay(args.dir, args.poll_s)))
    print(f"relay: http://{args.host}:{args.port}/v1, files under {args.dir}",
          file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
