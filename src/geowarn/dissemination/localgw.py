"""A local recording gateway: SMS/voice gateway, WeCom/DingTalk robots and webhooks in one HTTP server.

Used by the demo (messages can be read back through ``GET /messages``) and by the tests, where it is
a real server on a local port — the channel code under test speaks real HTTP to it. It implements
the wire formats documented in :mod:`geowarn.dissemination.channels`, and like a real SMS platform it
accepts each idempotency key once (a repeated key is answered with the first id and not delivered
again) while counting every request, so a test can tell "sent twice" from "delivered twice".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from geowarn.dissemination.channels import webhook_signature


@dataclass
class Recorded:
    kind: str  # sms / voice / wecom / dingtalk / webhook
    key: str
    to: str
    text: str
    t_ms: int
    id: str


@dataclass
class GatewayState:
    messages: list[Recorded] = field(default_factory=list)
    by_key: dict[str, Recorded] = field(default_factory=dict)
    key_requests: Counter[str] = field(default_factory=Counter)  # every time a key was submitted
    requests: int = 0
    receipts: list[dict[str, Any]] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)
    rejected_signatures: int = 0
    fail_next: int = 0  # answer the next N send requests with HTTP 503
    undeliverable: set[str] = field(default_factory=set)  # numbers whose receipts say UNDELIV
    secrets: dict[str, str] = field(default_factory=dict)  # robot/webhook name -> secret to verify
    hold_after: int | None = None  # block the response of the request that crosses this many messages
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


class LocalGateway:
    """Start with :meth:`start`; ``url`` is the SMS base, ``url + "/voice"`` the voice base."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = GatewayState()
        self.lock = threading.Lock()
        gw = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(body, ensure_ascii=False).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client died waiting (the crash tests)
                    self.close_connection = True

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                q = urllib.parse.parse_qs(url.query)
                cursor = int(q.get("cursor", ["0"])[0])
                path = url.path.removeprefix("/voice")
                if path == "/receipts":
                    with gw.lock:
                        items = gw.state.receipts[cursor : cursor + 5000]
                    self._reply(200, {"receipts": items, "cursor": cursor + len(items)})
                elif path == "/replies":
                    with gw.lock:
                        items = gw.state.replies[cursor:]
                    self._reply(200, {"replies": items, "cursor": cursor + len(items)})
                elif path == "/stats":
                    with gw.lock:
                        st = gw.state
                        body = {
                            "messages": len(st.messages),
                            "requests": st.requests,
                            "max_key_requests": max(st.key_requests.values(), default=0),
                        }
                    self._reply(200, body)
                elif path == "/messages":
                    with gw.lock:
                        items = [m.__dict__ for m in gw.state.messages[cursor : cursor + 1000]]
                    self._reply(200, {"messages": items, "total": len(gw.state.messages)})
                else:
                    self._reply(404, {"error": "not found"})

            def do_POST(self) -> None:
                raw = self._body()
                url = urllib.parse.urlsplit(self.path)
                kind = "voice" if url.path.startswith("/voice/") else "sms"
                path = url.path.removeprefix("/voice")
                if path == "/send":
                    self._send(kind, json.loads(raw))
                elif path == "/lookup":
                    keys = json.loads(raw).get("keys", [])
                    with gw.lock:
                        found = {k: gw.state.by_key[k].id for k in keys if k in gw.state.by_key}
                    self._reply(200, {"found": found})
                elif path == "/reply":  # a phone sends an SMS to the platform (test and demo helper)
                    body = json.loads(raw)
                    with gw.lock:
                        gw.state.replies.append(
                            {"from": body["from"], "text": body["text"], "t_ms": int(time.time() * 1000)}
                        )
                    self._reply(200, {"ok": True})
                elif path.startswith("/robot/"):
                    self._robot(url, raw)
                elif path.startswith("/hook/"):
                    self._hook(path.split("/")[2], raw)
                else:
                    self._reply(404, {"error": "not found"})

            def _send(self, kind: str, body: dict[str, Any]) -> None:
                hold = False
                with gw.lock:
                    st = gw.state
                    st.requests += 1
                    if st.fail_next > 0:
                        st.fail_next -= 1
                        self._reply(503, {"error": "busy"})
                        return
                    results = []
                    for m in body.get("messages", []):
                        st.key_requests[m["key"]] += 1
                        rec = st.by_key.get(m["key"])
                        if rec is None:
                            rec = gw._accept(kind, m["key"], m["to"], m["text"])
                            if st.hold_after is not None and len(st.messages) >= st.hold_after:
                                hold = True
                        results.append({"key": m["key"], "id": rec.id, "ok": True})
                if hold and not gw.state.held.is_set():
                    gw.state.held.set()
                    gw.state.release.wait(30)
                self._reply(200, {"results": results})

            def _robot(self, url: urllib.parse.SplitResult, raw: bytes) -> None:
                parts = url.path.split("/")  # /robot/<wecom|dingtalk>/<name>
                kind, name = parts[2], parts[3]
                secret = gw.state.secrets.get(name)
                if kind == "dingtalk" and secret:
                    q = urllib.parse.parse_qs(url.query)
                    ts, sign = q.get("timestamp", [""])[0], q.get("sign", [""])[0]
                    digest = hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
                    fresh = ts.isdigit() and abs(int(ts) - time.time() * 1000) < 3_600_000
                    if not fresh or sign != base64.b64encode(digest).decode():
                        with gw.lock:
                            gw.state.rejected_signatures += 1
                        self._reply(200, {"errcode": 310000, "errmsg": "sign not match"})
                        return
                body = json.loads(raw)
                key = self.headers.get("Idempotency-Key") or f"{name}-{time.time_ns()}"
                with gw.lock:
                    gw.state.requests += 1
                    gw.state.key_requests[key] += 1
                    if key not in gw.state.by_key:
                        gw._accept(kind, key, name, body["text"]["content"], receipt=False)
                self._reply(200, {"errcode": 0, "errmsg": "ok"})

            def _hook(self, name: str, raw: bytes) -> None:
                secret = gw.state.secrets.get(name)
                ts = self.headers.get("X-Geowarn-Timestamp", "")
                if secret and self.headers.get("X-Geowarn-Signature") != webhook_signature(secret, ts, raw):
                    with gw.lock:
                        gw.state.rejected_signatures += 1
                    self._reply(401, {"error": "bad signature"})
                    return
                body = json.loads(raw)
                with gw.lock:
                    gw.state.requests += 1
                    gw.state.key_requests[body["key"]] += 1
                    if body["key"] not in gw.state.by_key:
                        gw._accept("webhook", body["key"], name, body["text"], receipt=False)
                self._reply(200, {"ok": True})

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="local-gateway", daemon=True)

    def _accept(self, kind: str, key: str, to: str, text: str, *, receipt: bool = True) -> Recorded:
        st = self.state
        ref = f"{kind[0].upper()}{len(st.messages) + 1:08d}"
        rec = Recorded(kind, key, to, text, int(time.time() * 1000), ref)
        st.messages.append(rec)
        st.by_key[key] = rec
        if receipt:
            status = "UNDELIV" if to in st.undeliverable else "DELIVRD"
            st.receipts.append({"id": rec.id, "key": key, "status": status, "t_ms": rec.t_ms})
        return rec

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalGateway:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.state.release.set()
        self.server.shutdown()
        self.server.server_close()

    def sent_to(self, kind: str = "sms") -> list[Recorded]:
        with self.lock:
            return [m for m in self.state.messages if m.kind == kind]

    def reply(self, phone: str, text: str) -> None:
        with self.lock:
            self.state.replies.append({"from": phone, "text": text, "t_ms": int(time.time() * 1000)})


def main() -> None:
    """``python -m geowarn.dissemination.localgw PORT``: run the gateway on its own (benchmarks, manual tests)."""
    import sys

    gw = LocalGateway(port=int(sys.argv[1]) if len(sys.argv) > 1 else 8025)
    print(gw.url, flush=True)
    gw.server.serve_forever()


if __name__ == "__main__":
    main()
