"""The channel registry: one class per way of reaching people; adding a channel is one class.

Every channel sends a batch of :class:`Message` and answers one :class:`SendResult` per message.
Each message carries its idempotency key (``Idempotency-Key`` header, SMS ``key`` field, e-mail
``Message-ID``) so a gateway can recognise a retry. Channels whose gateway can be asked "did you
accept key K?" implement :meth:`Channel.lookup`; the dispatcher uses it after a crash instead of
sending again. Wire formats:

* SMS and voice gateways (configurable HTTP, the shape of the usual Chinese SMS platforms' batch
  APIs): ``POST {url}/send`` ``{"messages": [{"key", "to", "text"}]}`` →
  ``{"results": [{"key", "id", "ok", "error"}]}``; ``POST {url}/lookup`` ``{"keys": [...]}`` →
  ``{"found": {key: id}}``; delivery receipts ``GET {url}/receipts?cursor=N`` →
  ``{"receipts": [{"id", "key", "status": "DELIVRD"|…, "t_ms"}], "cursor": M}``; replies (MO)
  ``GET {url}/replies?cursor=N`` → ``{"replies": [{"from", "text", "t_ms"}], "cursor": M}``.
* WeCom group robot (企业微信群机器人, developer.work.weixin.qq.com "群机器人配置说明"): ``POST`` the
  webhook URL with ``{"msgtype": "text", "text": {"content": …}}``; success is ``errcode == 0``.
* DingTalk custom robot (钉钉自定义机器人, "加签"): ``timestamp`` in ms and
  ``sign = urlencode(base64(HmacSHA256(key=secret, msg=f"{timestamp}\\n{secret}")))`` appended to the
  webhook URL as query parameters; body ``{"msgtype": "text", "text": {"content": …}}``; ``errcode == 0``.
* Generic webhook: JSON body, ``X-Geowarn-Timestamp`` and
  ``X-Geowarn-Signature: sha256=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>``.
* E-mail over SMTP (RFC 5321/5322), ``Message-ID`` derived from the idempotency key.
* In-app inbox: stored already; delivered at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import smtplib
import time
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, ClassVar

import httpx


@dataclass(slots=True)
class Message:
    id: int
    idem_key: str
    channel: str
    address: str
    body: str
    subject: str | None = None
    level: int = 0
    target: dict[str, Any] = field(default_factory=dict)  # endpoint url and secret for group channels


@dataclass(frozen=True, slots=True)
class SendResult:
    ok: bool
    ref: str | None = None
    error: str | None = None
    retry: bool = True  # a failure worth retrying (network, 5xx, rate limited)
    delivered: bool = False  # the channel knows it arrived (inbox)


@dataclass(frozen=True, slots=True)
class Receipt:
    ref: str | None
    key: str | None
    delivered: bool
    t_ms: int
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Reply:
    phone: str
    text: str
    t_ms: int


class Channel(ABC):
    """One way of reaching people."""

    name: ClassVar[str]
    #: Messages a second this channel may send (overridden by settings).
    default_rate: ClassVar[float] = 100.0
    #: Messages per request the gateway accepts.
    batch_size: ClassVar[int] = 1

    @abstractmethod
    def send(self, messages: Sequence[Message]) -> list[SendResult]: ...

    def lookup(self, keys: Sequence[str]) -> dict[str, str] | None:
        """Which of ``keys`` the gateway has accepted (key → its id); None: cannot be asked."""
        return None

    def receipts(self) -> list[Receipt]:
        return []

    def replies(self) -> list[Reply]:
        return []

    def close(self) -> None:
        return None


REGISTRY: dict[str, type[Channel]] = {}


def register(cls: type[Channel]) -> type[Channel]:
    REGISTRY[cls.name] = cls
    return cls


def _http_error(exc: Exception) -> SendResult:
    return SendResult(False, error=f"{type(exc).__name__}: {exc}"[:500], retry=True)


class _HttpGateway(Channel):
    """An SMS-style HTTP gateway with batch send, key lookup, receipts and replies."""

    def __init__(self, url: str, api_key: str | None = None, timeout_s: float = 10.0) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.url = url.rstrip("/")
        self.client = httpx.Client(timeout=timeout_s, headers=headers)
        self.receipt_cursor = 0
        self.reply_cursor = 0

    def send(self, messages: Sequence[Message]) -> list[SendResult]:
        body = {"messages": [{"key": m.idem_key, "to": m.address, "text": m.body} for m in messages]}
        try:
            r = self.client.post(f"{self.url}/send", json=body)
        except httpx.HTTPError as exc:
            return [_http_error(exc)] * len(messages)
        if r.status_code == 429 or r.status_code >= 500:
            return [SendResult(False, error=f"HTTP {r.status_code}", retry=True)] * len(messages)
        if r.status_code >= 400:
            return [SendResult(False, error=f"HTTP {r.status_code}: {r.text[:200]}", retry=False)] * len(messages)
        results = {x["key"]: x for x in r.json().get("results", [])}
        out = []
        for m in messages:
            x = results.get(m.idem_key)
            if x is None:
                out.append(SendResult(False, error="no result for this message", retry=True))
            elif x.get("ok"):
                out.append(SendResult(True, ref=str(x.get("id") or m.idem_key)))
            else:
                out.append(SendResult(False, error=str(x.get("error") or "rejected"), retry=False))
        return out

    def lookup(self, keys: Sequence[str]) -> dict[str, str] | None:
        r = self.client.post(f"{self.url}/lookup", json={"keys": list(keys)})
        r.raise_for_status()
        return {str(k): str(v) for k, v in r.json().get("found", {}).items()}

    def receipts(self) -> list[Receipt]:
        r = self.client.get(f"{self.url}/receipts", params={"cursor": self.receipt_cursor})
        r.raise_for_status()
        data = r.json()
        self.receipt_cursor = int(data.get("cursor", self.receipt_cursor))
        return [
            Receipt(
                x.get("id"), x.get("key"), x.get("status") == "DELIVRD", int(x.get("t_ms", 0)), str(x.get("status"))
            )
            for x in data.get("receipts", [])
        ]

    def replies(self) -> list[Reply]:
        r = self.client.get(f"{self.url}/replies", params={"cursor": self.reply_cursor})
        r.raise_for_status()
        data = r.json()
        self.reply_cursor = int(data.get("cursor", self.reply_cursor))
        return [Reply(str(x["from"]), str(x["text"]), int(x.get("t_ms", 0))) for x in data.get("replies", [])]

    def close(self) -> None:
        self.client.close()


@register
class SmsChannel(_HttpGateway):
    name = "sms"
    default_rate = 5000.0
    batch_size = 200


@register
class VoiceChannel(_HttpGateway):
    """Voice calls (text to speech) for red warnings, through a call gateway of the same shape."""

    name = "voice"
    default_rate = 50.0
    batch_size = 20


class _RobotChannel(Channel):
    """A group robot webhook; ``errcode == 0`` is success."""

    default_rate = 20.0 / 60  # both WeCom and DingTalk robots allow 20 messages a minute

    def __init__(self, timeout_s: float = 10.0) -> None:
        self.client = httpx.Client(timeout=timeout_s)

    def url_for(self, m: Message) -> str:
        return str(m.target.get("url") or m.address)

    def send(self, messages: Sequence[Message]) -> list[SendResult]:
        out = []
        for m in messages:
            body = {"msgtype": "text", "text": {"content": m.body}}
            try:
                r = self.client.post(self.url_for(m), json=body, headers={"Idempotency-Key": m.idem_key})
                data = r.json() if r.status_code == 200 else {}
            except (httpx.HTTPError, ValueError) as exc:
                out.append(_http_error(exc))
                continue
            if r.status_code == 200 and data.get("errcode") == 0:
                out.append(SendResult(True, ref=m.idem_key, delivered=True))
            else:
                out.append(SendResult(False, error=f"HTTP {r.status_code} {data.get('errmsg', '')}"[:300]))
        return out

    def close(self) -> None:
        self.client.close()


@register
class WeComChannel(_RobotChannel):
    name = "wecom"


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's robot signature: base64(HMAC-SHA256(secret, "timestamp\\nsecret")), URL-encoded."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode())


@register
class DingTalkChannel(_RobotChannel):
    name = "dingtalk"

    def url_for(self, m: Message) -> str:
        url = str(m.target.get("url") or m.address)
        secret = m.target.get("secret")
        if not secret:
            return url
        ts = int(time.time() * 1000)
        sep = "&" if "?" in url else "?"
        return f"{url}{sep}timestamp={ts}&sign={dingtalk_sign(str(secret), ts)}"


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


@register
class WebhookChannel(Channel):
    name = "webhook"
    default_rate = 100.0

    def __init__(self, timeout_s: float = 10.0) -> None:
        self.client = httpx.Client(timeout=timeout_s)

    def send(self, messages: Sequence[Message]) -> list[SendResult]:
        out = []
        for m in messages:
            body = json.dumps(
                {"key": m.idem_key, "level": m.level, "subject": m.subject, "text": m.body}, ensure_ascii=False
            ).encode()
            ts = str(int(time.time()))
            headers = {"Content-Type": "application/json", "Idempotency-Key": m.idem_key, "X-Geowarn-Timestamp": ts}
            secret = m.target.get("secret")
            if secret:
                headers["X-Geowarn-Signature"] = webhook_signature(str(secret), ts, body)
            try:
                r = self.client.post(str(m.target.get("url") or m.address), content=body, headers=headers)
            except httpx.HTTPError as exc:
                out.append(_http_error(exc))
                continue
            if 200 <= r.status_code < 300:
                out.append(SendResult(True, ref=m.idem_key, delivered=True))
            else:
                out.append(
                    SendResult(False, error=f"HTTP {r.status_code}", retry=r.status_code >= 500 or r.status_code == 429)
                )
        return out

    def close(self) -> None:
        self.client.close()


@register
class EmailChannel(Channel):
    name = "email"
    default_rate = 20.0
    batch_size = 50

    def __init__(self, host: str, port: int = 25, sender: str = "geowarn@localhost", timeout_s: float = 10.0) -> None:
        self.host, self.port, self.sender, self.timeout = host, port, sender, timeout_s

    def send(self, messages: Sequence[Message]) -> list[SendResult]:
        out: list[SendResult] = []
        try:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        except OSError as exc:
            return [SendResult(False, error=f"SMTP connect: {exc}", retry=True)] * len(messages)
        with smtp:
            for m in messages:
                mail = EmailMessage()
                mail["From"], mail["To"] = self.sender, m.address
                mail["Subject"] = m.subject or m.body[:40]
                mail["Message-ID"] = f"<{m.idem_key.replace(':', '.')}@geowarn>"
                mail.set_content(m.body)
                try:
                    smtp.send_message(mail)
                    out.append(SendResult(True, ref=mail["Message-ID"]))
                except smtplib.SMTPRecipientsRefused as exc:
                    out.append(SendResult(False, error=str(exc)[:300], retry=False))
                except (smtplib.SMTPException, OSError) as exc:
                    out.append(SendResult(False, error=str(exc)[:300], retry=True))
        return out


@register
class InboxChannel(Channel):
    """The in-app inbox: the outbox row is the inbox item, delivered as soon as it is dispatched."""

    name = "inbox"
    default_rate = 100_000.0
    batch_size = 1000

    def send(self, messages: Sequence[Message]) -> list[SendResult]:
        return [SendResult(True, ref=m.idem_key, delivered=True) for m in messages]
