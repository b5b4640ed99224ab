"""A slow OpenAI-compatible chat endpoint on localhost, for the LLM deadline test and the fault bench."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class SlowServer:
    """A tiny OpenAI-compatible chat endpoint that streams `tokens`, one every `interval` seconds;
    `sent` counts the tokens written, `url` is the base URL to give a client."""

    def __init__(self, tokens: list[str], interval: float):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                try:
                    for tok in owner.tokens:
                        chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "slow",
                                 "choices": [{"index": 0, "delta": {"content": tok}, "finish_reason": None}]}
                        self.wfile.write(f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode())
                        self.wfile.flush()
                        owner.sent += 1
                        if owner.closed.wait(owner.interval):
                            return
                    self.wfile.write(b"data: [DONE]\n\n")
                except (BrokenPipeError, ConnectionResetError):  # the client hung up: what the deadline does
                    return

            def log_message(self, *args):
                pass

        self.tokens, self.interval, self.sent = tokens, interval, 0
        self.closed = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.closed.set()
        self.httpd.shutdown()
        self.httpd.server_close()
