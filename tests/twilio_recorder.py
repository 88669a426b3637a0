"""A local stand-in for Twilio's REST API: records every request, answers like Twilio, and
fails on demand. The real `twilio` client is pointed at it with TWILIO_API_BASE_URL (messages)
and TWILIO_CONTENT_BASE_URL (Content API templates: POST /v1/Content, a JSON body; WhatsApp
approval: POST /v1/Content/HX…/ApprovalRequests/whatsapp, GET /v1/Content/HX…/ApprovalRequests)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


@dataclass
class Recorded:
    path: str
    form: dict
    headers: dict


@dataclass
class Recorder:
    requests: list[Recorded] = field(default_factory=list)
    failures: list = field(default_factory=list)  # queue of 'drop', 'slow' or an HTTP status, used in order
    slow_seconds: float = 1.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""
    # WhatsApp's decision on each template (sid -> status) once its approval is asked for;
    # "received" until a test decides.
    approvals: dict[str, str] = field(default_factory=dict)

    def fail_next(self, count: int, how="drop") -> None:
        """The next `count` requests fail: 'drop' closes the connection, 'slow' does so after
        `slow_seconds` (a client with a shorter timeout has given up by then), a number is that
        status."""
        with self.lock:
            self.failures.extend([how] * count)

    def messages(self) -> list[dict]:
        return [r.form for r in self.requests if r.path.endswith("/Messages.json")]

    def contents(self) -> list[dict]:
        """The Content API create requests (their JSON bodies), in order."""
        return [r.form for r in self.requests if r.path == "/v1/Content"]

    def approval_requests(self) -> list[tuple[str, dict]]:
        """(template sid, JSON body) of each WhatsApp approval request, in order."""
        return [(r.path.split("/")[3], r.form) for r in self.requests if r.path.endswith("/ApprovalRequests/whatsapp")]


def start_recorder() -> tuple[Recorder, ThreadingHTTPServer]:
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode("utf-8")
            if (self.headers.get("Content-Type") or "").startswith("application/json"):
                form = json.loads(raw)
            else:
                form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
            with recorder.lock:
                failure = recorder.failures.pop(0) if recorder.failures else None
            if failure == "slow":
                time.sleep(recorder.slow_seconds)  # longer than the client waits: it gives up
                failure = "drop"
            if failure == "drop":
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if failure is not None:
                body = json.dumps(
                    {"code": 20500 if failure >= 500 else 20429, "message": "failing on purpose", "status": failure}
                )
                self._reply(failure, body)
                return
            with recorder.lock:
                recorder.requests.append(Recorded(self.path, form, dict(self.headers)))
            if self.path == "/v1/Content":
                self._reply(201, json.dumps(_content_created(form)))
                return
            if self.path.endswith("/ApprovalRequests/whatsapp"):
                with recorder.lock:
                    recorder.approvals.setdefault(self.path.split("/")[3], "received")
                self._reply(201, json.dumps({**form, "status": "received", "rejection_reason": ""}))
                return
            sid = f"SM{uuid.uuid4().hex}"
            payload = {
                "sid": sid,
                "status": "queued",
                "to": form.get("To"),
                "from": form.get("From"),
                "body": form.get("Body"),
                "account_sid": self.path.split("/")[3],
                "num_segments": "1",
                "direction": "outbound-api",
            }
            self._reply(201, json.dumps(payload))

        def do_GET(self):
            parts = self.path.split("/")
            if len(parts) != 5 or parts[4] != "ApprovalRequests":
                self._reply(404, json.dumps({"code": 20404, "message": "not found", "status": 404}))
                return
            with recorder.lock:
                recorder.requests.append(Recorded(self.path, {}, dict(self.headers)))
                decided = recorder.approvals.get(parts[3], "unsubmitted")
            whatsapp = {"status": decided, "rejection_reason": "", "category": "UTILITY"}
            if decided == "rejected":
                whatsapp["rejection_reason"] = "Tidak sesuai kebijakan (uji)"
            body = {"sid": parts[3], "account_sid": "AC" + "0" * 32, "whatsapp": whatsapp, "url": ""}
            self._reply(200, json.dumps(body))

        def _reply(self, status: int, body: str) -> None:
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    def _content_created(request: dict) -> dict:
        """Twilio's answer to a created Content template: the request, with its new HX sid."""
        sid = f"HX{uuid.uuid4().hex}"
        return {
            "sid": sid,
            "account_sid": "AC" + "0" * 32,
            "friendly_name": request.get("friendly_name"),
            "language": request.get("language"),
            "variables": request.get("variables"),
            "types": request.get("types"),
            "url": f"https://content.twilio.com/v1/Content/{sid}",
            "date_created": "2026-12-07T14:00:00Z",
            "date_updated": "2026-12-07T14:00:00Z",
            "links": {},
        }

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder.url = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return recorder, server
