"""A stub OpenAI-compatible server on 127.0.0.1 (a thread) serving canned JSON, for tests.

`responder(messages) -> str` writes the assistant text; `malformed=True` answers non-JSON;
`reject_forms` answers `reject_status` to those `response_format` types (llama-cpp-python
answers 500 to json_schema); `stop()` takes it down (an endpoint dying mid-run). Requests
are recorded.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StubServer:
    def __init__(self, responder: Callable[[list], str]):
        self.responder = responder
        self.malformed = False
        self.reject_forms: set[str] = set()  # response_format types answered with an error
        self.reject_status = 422  # llama-cpp-python answers 500 with a validation message
        self.requests: list[dict] = []
        self.hold = 0  # > 0: the first `hold` requests wait until all have arrived (races)
        self._gate = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(n) or b"{}")
                stub.requests.append({"path": self.path, "body": body})
                if stub.hold:
                    if len(stub.requests) >= stub.hold:
                        stub._gate.set()
                    stub._gate.wait(5.0)
                if not self.path.endswith("/chat/completions"):
                    self.send_response(404)
                    self.end_headers()
                    return
                form = (body.get("response_format") or {}).get("type")
                if form in stub.reject_forms:
                    data = b'{"error": "body.response_format.type: unsupported"}'
                    self.send_response(stub.reject_status)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                text = "Sure! here you go: achieved=yes" if stub.malformed else None
                if text is None:
                    text = stub.responder(body.get("messages", []))
                out = {"choices": [{"message": {"role": "assistant", "content": text}}]}
                data = json.dumps(out).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
