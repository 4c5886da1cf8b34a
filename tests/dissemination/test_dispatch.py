"""Channels and the dispatcher against real local servers (HTTP gateway, robots, webhooks, SMTP)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message as EmailMsg
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from geowarn.db import Database
from geowarn.dissemination.channels import REGISTRY, Channel, DingTalkChannel, EmailChannel, Message, dingtalk_sign
from geowarn.dissemination.dispatcher import Dispatcher, TokenBucket
from geowarn.dissemination.localgw import LocalGateway
from geowarn.dissemination.models import Endpoint, IssueRecipient, OutboxMessage
from geowarn.warning import alerts
from geowarn.warning.levels import Level
from tests.dissemination.world import COUNTY, T0, TOWN, VILLAGE, build, seed_outbox

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def gw() -> Iterator[LocalGateway]:
    g = LocalGateway().start()
    yield g
    g.stop()


class _Mailbox:
    def __init__(self) -> None:
        self.mails: list[EmailMsg] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[_Mailbox, int]]:
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as probe:  # a free port (the controller checks it can connect to its own port)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    box = _Mailbox()
    ctl = Controller(box, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        yield box, port
    finally:
        ctl.stop()


@pytest.fixture
def make() -> Iterator[Any]:
    """Dispatchers made in a test, closed (their HTTP clients) at its end."""
    made: list[Dispatcher] = []

    def factory(*args: Any, **kw: Any) -> Dispatcher:
        made.append(Dispatcher(*args, **kw))
        return made[-1]

    yield factory
    for d in made:
        d.close()


def _channels(gw: LocalGateway, **extra: Channel) -> dict[str, Channel]:
    return {
        "sms": REGISTRY["sms"](gw.url),  # type: ignore[call-arg]
        "voice": REGISTRY["voice"](gw.url + "/voice"),  # type: ignore[call-arg]
        "inbox": REGISTRY["inbox"](),
        "wecom": REGISTRY["wecom"](),
        "dingtalk": REGISTRY["dingtalk"](),
        "webhook": REGISTRY["webhook"](),
        **extra,
    }


def _statuses(db: Database) -> dict[str, int]:
    with db.read() as s:
        return dict(s.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all())


def test_a_red_alert_reaches_the_gateway_with_receipts_and_replies_confirm(
    db: Database, gw: LocalGateway, make: Any
) -> None:
    w = build(db)
    with db.write("engine") as s:
        alerts.apply_level(
            s,
            kind=alerts.SITE_RULE,
            rule_id="rate",
            unit_code=VILLAGE,
            level=Level.RED,
            now_ms=int(time.time() * 1000) - 60_000,
            site_id=w.site,
            rule_name="位移速率",
        )
    d = make(db, _channels(gw), backoff_s=0.01)
    d.drain(timeout_s=20)
    with db.read() as s:
        rows = s.scalars(select(OutboxMessage)).all()
        sms = [m for m in rows if m.channel == "sms"]
    assert {m.status for m in rows} == {"delivered"}, _statuses(db)
    assert sorted(m.to for m in gw.sent_to("sms")) == sorted(m.address for m in sms)
    assert {m.to for m in gw.sent_to("voice")} == {"13900000001", "13900000002", "13900000010", "13900000020"}
    assert all(n == 1 for n in gw.state.key_requests.values())
    # the resident replies with the code from the SMS; the monitor answers "收到"
    with db.read() as s:
        li_da = s.scalars(select(IssueRecipient).where(IssueRecipient.name == "李大")).one()
    text = next(m.text for m in gw.sent_to("sms") if m.to == "13900000010")
    assert li_da.code in text
    gw.reply("13900000010", f"确认 {li_da.code}")
    gw.reply("+8613900000002", "收到")
    gw.reply("13900000001", "123")  # neither a code nor a yes: ignored
    d.poll()
    with db.read() as s:
        acked = {r.name: r.ack_via for r in s.scalars(select(IssueRecipient)) if r.acked_ms}
    assert acked == {"李大": "reply", "李监测": "reply"}


def test_failures_are_retried_with_backoff_and_sent_once(db: Database, gw: LocalGateway, make: Any) -> None:
    seed_outbox(db, 30)
    gw.state.fail_next = 2
    d = make(db, _channels(gw), batch=100, backoff_s=0.5)
    t0 = int(time.time() * 1000)
    assert d.run_once() == 30  # the gateway answers 503: back to pending with a backoff
    with db.read() as s:
        rows = s.scalars(select(OutboxMessage)).all()
        assert {(m.status, m.attempts) for m in rows} == {("pending", 1)}
        assert all(t0 + 500 <= m.next_attempt_ms <= int(time.time() * 1000) + 500 for m in rows)
        assert rows[0].last_error == "HTTP 503"
    assert d.run_once() == 0  # not due yet
    time.sleep(0.6)
    assert d.run_once() == 30  # second 503: backoff doubles
    with db.read() as s:
        rows = s.scalars(select(OutboxMessage)).all()
        assert {m.attempts for m in rows} == {2}
        assert all(m.next_attempt_ms >= int(time.time() * 1000) + 500 for m in rows)  # 2 × 0.5 s
    d.drain(timeout_s=10)
    with db.read() as s:
        assert {(m.status, m.attempts) for m in s.scalars(select(OutboxMessage))} == {("delivered", 3)}
    assert len(gw.sent_to("sms")) == 30 and set(gw.state.key_requests.values()) == {1}


def test_after_max_attempts_a_message_fails_and_undeliverable_receipts_fail(
    db: Database, gw: LocalGateway, make: Any
) -> None:
    seed_outbox(db, 3)
    gw.state.undeliverable.add("13900000001")
    gw.state.fail_next = 100
    d = make(db, _channels(gw), max_attempts=2, backoff_s=0.01)
    d.drain(timeout_s=5)
    assert _statuses(db) == {"failed": 3}
    gw.state.fail_next = 0
    seed_outbox(db, 2, t=T0 + 1)
    d.drain(timeout_s=5)
    with db.read() as s:
        by_addr = {m.address: m.status for m in s.scalars(select(OutboxMessage).where(OutboxMessage.attempts == 1))}
    assert by_addr == {"13900000000": "delivered", "13900000001": "failed"}


def test_per_channel_rate_limit_defers_without_counting_an_attempt(db: Database, gw: LocalGateway, make: Any) -> None:
    seed_outbox(db, 12)
    d = make(db, _channels(gw), rates={"sms": 5})
    d.run_once()
    assert len(gw.sent_to("sms")) == 5
    with db.read() as s:
        waiting = s.scalars(select(OutboxMessage).where(OutboxMessage.status == "pending")).all()
    assert len(waiting) == 7 and {m.attempts for m in waiting} == {0}
    t0 = time.monotonic()
    d.drain(timeout_s=10, idle_sleep_s=0.02)
    assert len(gw.sent_to("sms")) == 12 and time.monotonic() - t0 >= 1.0  # 7 more at 5/s


def test_token_bucket() -> None:
    t = [0.0]
    b = TokenBucket(2.0, clock=lambda: t[0])
    assert b.take(5) == (2, 0.5)
    t[0] = 0.5
    assert b.take(1) == (1, 0.0)
    assert b.take(1)[0] == 0


def test_robots_webhooks_and_email_are_real_and_signed(
    db: Database, gw: LocalGateway, smtp: tuple[_Mailbox, int], make: Any
) -> None:
    box, port = smtp
    w = build(db)
    gw.state.secrets.update({"county": "SECabc123", "ops": "hook-secret", "bad": "other"})
    with db.write("seed") as s:
        s.add_all(
            [
                Endpoint(
                    unit_code=COUNTY,
                    channel="dingtalk",
                    name="县应急群",
                    url=f"{gw.url}/robot/dingtalk/county",
                    secret="SECabc123",
                    min_level=2,
                ),
                Endpoint(
                    unit_code=TOWN, channel="wecom", name="镇值班群", url=f"{gw.url}/robot/wecom/town", min_level=1
                ),
                Endpoint(
                    unit_code=COUNTY,
                    channel="webhook",
                    name="应急平台",
                    url=f"{gw.url}/hook/ops",
                    secret="hook-secret",
                    min_level=3,
                ),
                Endpoint(
                    unit_code=COUNTY,
                    channel="dingtalk",
                    name="错误密钥群",
                    url=f"{gw.url}/robot/dingtalk/bad",
                    secret="wrong",
                    min_level=1,
                ),
            ]
        )
        from geowarn.dissemination.models import Preference

        s.add(
            Preference(
                person_key=f"person:{w.persons['county']}",
                channels=["sms", "email"],
                email="sun@example.cn",
                unit_code=COUNTY,
            )
        )
    with db.write("engine") as s:
        alerts.apply_level(
            s,
            kind=alerts.SITE_RULE,
            rule_id="rate",
            unit_code=VILLAGE,
            level=Level.ORANGE,
            now_ms=T0,
            site_id=w.site,
            rule_name="位移速率",
        )
    email = EmailChannel("127.0.0.1", port, "geowarn@example.cn")
    d = make(db, _channels(gw, email=email), max_attempts=2, backoff_s=0.01, rates={"dingtalk": 100, "wecom": 100})
    d.drain(timeout_s=20)
    kinds = {(m.kind, m.to) for m in gw.state.messages}
    assert {("dingtalk", "county"), ("wecom", "town"), ("webhook", "ops")} <= kinds
    assert ("dingtalk", "bad") not in kinds and gw.state.rejected_signatures == 2  # two attempts, both refused
    assert "橙色" in next(m.text for m in gw.state.messages if m.kind == "dingtalk")
    assert len(box.mails) == 1 and box.mails[0]["To"] == "sun@example.cn"
    payload = box.mails[0].get_payload(decode=True)
    assert isinstance(payload, bytes) and "上村滑坡" in payload.decode()
    st = _statuses(db)  # SMTP accepted the e-mail ("sent"): no delivery receipt exists for it
    assert st == {"delivered": st["delivered"], "sent": 1, "failed": 1}


def test_dingtalk_signature_matches_the_documented_example() -> None:
    # HmacSHA256(key=secret, msg="timestamp\nsecret"), base64, URL-encoded (钉钉开放平台 自定义机器人 加签)
    import base64
    import hashlib
    import hmac
    import urllib.parse

    secret, ts = "SEC1234567890", 1_700_000_000_000
    expect = base64.b64encode(hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest())
    assert dingtalk_sign(secret, ts) == urllib.parse.quote_plus(expect.decode())
    channel = DingTalkChannel()
    url = channel.url_for(
        Message(
            1, "k", "dingtalk", "endpoint:1", "x", target={"url": "http://h/robot?access_token=t", "secret": secret}
        )
    )
    channel.close()
    assert url.startswith("http://h/robot?access_token=t&timestamp=") and "&sign=" in url


def _env(db: Database, gw: LocalGateway) -> dict[str, str]:
    return {
        **os.environ,
        "GEOWARN_DATABASE_URL": db.url,
        "GEOWARN_SMS_GATEWAY_URL": gw.url,
        "GEOWARN_MODE": "test",
        "GEOWARN_PASSWORD_PROFILE": "fast",
        "GEOWARN_ESCALATE_AFTER_MINUTES": "1440",
        "PYTHONPATH": str(ROOT / "src"),
    }


def test_a_dispatcher_killed_mid_batch_loses_nothing_and_sends_nothing_twice(db: Database, gw: LocalGateway) -> None:
    n = 400
    seed_outbox(db, n)
    gw.state.hold_after = 120  # the request that carries the 120th message never gets its answer
    cmd = [sys.executable, "-m", "geowarn", "dispatch", "--once", "--lease", "1", "--batch", "50", "--timeout", "60"]
    with subprocess.Popen(cmd, env=_env(db, gw), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as proc:
        try:
            held = gw.state.held.wait(60)
            proc.send_signal(signal.SIGKILL)  # mid-batch: 50 claimed, the gateway has them, no answer yet
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
            gw.state.release.set()
        assert held, proc.stderr.read() if proc.stderr else ""
    accepted = len(gw.sent_to("sms"))
    assert accepted == 150  # three requests of 50 reached the gateway; the third one's answer was lost
    st = _statuses(db)
    assert st.get("sending") == 50 and st.get("pending") == n - 150, st
    gw.state.hold_after = None
    out = subprocess.run(cmd, env=_env(db, gw), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "recovered 50 sent / 0 to resend" in out.stderr
    assert len(gw.sent_to("sms")) == n  # nothing lost
    assert max(gw.state.key_requests.values()) == 1 and len(gw.state.key_requests) == n  # nothing sent twice
    assert _statuses(db) == {"delivered": n}


def test_the_demo_sends_every_channel_to_its_built_in_gateway(db: Database) -> None:
    from geowarn.config import Settings
    from geowarn.dissemination.demo import start_demo_dissemination

    w = build(db)
    demo = start_demo_dissemination(db, Settings(mode="test", password_profile="fast"))
    try:
        with db.write("engine") as s:
            alerts.apply_level(
                s,
                kind=alerts.SITE_RULE,
                rule_id="rate",
                unit_code=VILLAGE,
                level=Level.RED,
                now_ms=int(time.time() * 1000),
                site_id=w.site,
                rule_name="位移速率",
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _statuses(db).keys() - {"delivered"}:
            time.sleep(0.05)
        assert set(_statuses(db)) == {"delivered"}
        assert len(demo.gateway.sent_to("sms")) == 8 and len(demo.gateway.sent_to("voice")) == 4
    finally:
        demo.stop()
