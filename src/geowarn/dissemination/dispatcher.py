"""The dispatcher: sends the outbox with leases, retries, backoff, rate limits, receipts and recovery.

The transactional-outbox pattern: messages were committed with the decision; the dispatcher

1. **claims** a batch of due rows in one short transaction (``pending`` → ``sending`` with a lease
   and ``attempts + 1``; ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so several dispatchers share the
   work; SQLite's single writer serialises claims), ordered by due time;
2. **sends** them channel by channel within each channel's rate (token bucket; messages beyond it go
   back to ``pending`` for when tokens are available, without counting an attempt);
3. **records** the results in one transaction: ``sent`` (or ``delivered`` when the channel knows),
   or back to ``pending`` at ``now + backoff · 2^(attempts−1)`` (capped at one hour), or ``failed``
   after ``max_attempts`` or a permanent refusal.

**Crash safety.** A dispatcher killed between 1 and 3 leaves rows in ``sending``. When their lease
has expired, :meth:`Dispatcher.recover` asks the channel's gateway which of their idempotency keys
it accepted (:meth:`Channel.lookup`): those become ``sent`` without being sent again; the others
return to ``pending``. Channels that cannot be asked re-send with the same ``Idempotency-Key`` so the
receiver can discard the duplicate. Nothing committed is lost (rows only leave ``pending`` through
``sending``) and no accepted message is sent twice to a gateway that can be asked.

Delivery receipts (polled from the gateways) move ``sent`` to ``delivered`` (or ``failed``) by
gateway id or key; replies are handed to :func:`geowarn.dissemination.ack.by_reply`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, or_, select, update
from sqlalchemy.engine import Connection

from geowarn.config import Settings
from geowarn.db import Database
from geowarn.dissemination import ack
from geowarn.dissemination.channels import REGISTRY, Channel, Message, SendResult
from geowarn.dissemination.models import Endpoint, OutboxMessage

log = logging.getLogger(__name__)
O = cast(Table, OutboxMessage.__table__)  # noqa: E741
MAX_BACKOFF_MS = 3_600_000


def now_ms() -> int:
    return int(time.time() * 1000)


def _many(conn: Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """``executemany`` through the driver; ``sql`` is written with ``?`` placeholders."""
    if rows:
        conn.exec_driver_sql(sql if conn.dialect.paramstyle == "qmark" else sql.replace("?", "%s"), rows)


class TokenBucket:
    """``rate`` messages a second with a burst of one second's worth (at least one message)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.capacity, self.clock = rate, max(1.0, rate), clock
        self.tokens, self.t = self.capacity, clock()

    def take(self, n: int) -> tuple[int, float]:
        """Take up to ``n`` tokens; returns (taken, seconds until the next token)."""
        t = self.clock()
        self.tokens = min(self.capacity, self.tokens + (t - self.t) * self.rate)
        self.t = t
        k = min(n, int(self.tokens))
        self.tokens -= k
        wait = 0.0 if k == n else (1 - (self.tokens - int(self.tokens))) / self.rate
        return k, wait


@dataclass(slots=True)
class Stats:
    claimed: int = 0
    sent: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    deferred: int = 0
    recovered_sent: int = 0
    recovered_pending: int = 0
    receipts: int = 0
    replies_confirmed: int = 0
    escalated: int = 0
    by_channel: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def channels_from_settings(settings: Settings) -> dict[str, Channel]:
    """The channels this installation can use (a channel without its gateway configured is absent)."""
    out: dict[str, Channel] = {}
    key = settings.sms_gateway_key.get_secret_value() if settings.sms_gateway_key else None
    if settings.sms_gateway_url:
        out["sms"] = REGISTRY["sms"](settings.sms_gateway_url, key)  # type: ignore[call-arg]
    if settings.voice_gateway_url:
        out["voice"] = REGISTRY["voice"](settings.voice_gateway_url, key)  # type: ignore[call-arg]
    if settings.smtp_host:
        out["email"] = REGISTRY["email"](settings.smtp_host, settings.smtp_port, settings.smtp_sender)  # type: ignore[call-arg]
    for name in ("wecom", "dingtalk", "webhook", "inbox"):
        out[name] = REGISTRY[name]()
    return out


class Dispatcher:
    """Sends due outbox rows; safe to run as several processes on PostgreSQL."""

    def __init__(
        self,
        db: Database,
        channels: dict[str, Channel],
        *,
        batch: int = 1000,
        lease_s: float = 30.0,
        max_attempts: int = 8,
        backoff_s: float = 2.0,
        rates: dict[str, float] | None = None,
        escalate_after_minutes: int | None = None,
        public_url: str = "",
        clock: Callable[[], int] = now_ms,
        tasks: Sequence[Callable[[], object]] = (),
    ) -> None:
        self.db, self.channels, self.batch, self.lease_ms = db, channels, batch, int(lease_s * 1000)
        self.max_attempts, self.backoff_ms, self.clock = max_attempts, int(backoff_s * 1000), clock
        rates = rates or {}
        self.buckets = {n: TokenBucket(rates.get(n, type(c).default_rate)) for n, c in channels.items()}
        self.escalate_after = escalate_after_minutes
        self.public_url = public_url
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self.stats = Stats()
        #: Periodic work run with the housekeeping (zero-report reminders: geowarn.fieldwork.reminders);
        #: each task decides itself whether anything is due, cheaply.
        self.tasks = list(tasks)

    @classmethod
    def from_settings(cls, db: Database, settings: Settings, **kw: Any) -> Dispatcher:
        return cls(
            db,
            channels_from_settings(settings),
            batch=settings.dispatch_batch,
            max_attempts=settings.dispatch_max_attempts,
            backoff_s=settings.dispatch_backoff_s,
            rates=settings.dispatch_rates,
            escalate_after_minutes=settings.escalate_after_minutes,
            public_url=settings.public_url,
            **kw,
        )

    # --- claiming and recording ---------------------------------------------------------------

    def _claim(self, conn: Connection, now: int) -> list[Message]:
        sub = (
            select(O.c.id)
            .where(O.c.status == "pending", O.c.next_attempt_ms <= now)
            .order_by(O.c.next_attempt_ms, O.c.id)
            .limit(self.batch)
        )
        if self.db.is_postgres:
            sub = sub.with_for_update(skip_locked=True)
        stmt = (
            update(O)
            .where(O.c.id.in_(sub.scalar_subquery()))
            .values(status="sending", lease_ms=now + self.lease_ms, attempts=O.c.attempts + 1)
            .returning(O.c.id, O.c.idem_key, O.c.channel, O.c.address, O.c.body, O.c.subject, O.c.level, O.c.attempts)
        )
        rows = conn.execute(stmt).all()
        msgs = [Message(r.id, r.idem_key, r.channel, r.address, r.body, r.subject, r.level) for r in rows]
        self._attempts = {r.id: r.attempts for r in rows}
        endpoint_ids = {int(m.address.split(":")[1]) for m in msgs if m.address.startswith("endpoint:")}
        if endpoint_ids:
            eps = {e.id: e for e in conn.execute(select(Endpoint.__table__).where(Endpoint.id.in_(endpoint_ids)))}
            for m in msgs:
                if m.address.startswith("endpoint:"):
                    e = eps.get(int(m.address.split(":")[1]))
                    if e is not None:
                        m.target = {"url": e.url, "secret": e.secret}
        return sorted(msgs, key=lambda m: m.id)

    def _record(self, results: list[tuple[Message, SendResult | None, int]], now: int) -> None:
        sent: list[dict[str, Any]] = []
        delivered: list[dict[str, Any]] = []
        retry: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        deferred: list[dict[str, Any]] = []
        for m, res, wait_ms in results:
            attempts = self._attempts.get(m.id, 1)
            if res is None:  # not attempted (rate limit): back to pending, attempt not counted
                deferred.append({"i": m.id, "due": now + wait_ms})
            elif res.ok:
                (delivered if res.delivered else sent).append({"i": m.id, "ref": res.ref, "t": now})
            elif res.retry and attempts < self.max_attempts:
                due = now + min(MAX_BACKOFF_MS, self.backoff_ms * 2 ** (attempts - 1))
                retry.append({"i": m.id, "due": due, "err": res.error})
            else:
                failed.append({"i": m.id, "err": res.error})
        i: Any = bindparam("i")
        sending = and_(O.c.id == i, O.c.status == "sending")
        with self.db.raw_writer() as conn:
            # The common paths go straight to the driver's executemany (SQLAlchemy's per-row parameter
            # processing cost more than the database at thousands of messages a second).
            _many(
                conn,
                "UPDATE dissemination_outbox SET status = 'sent', sent_ms = ?, gateway_ref = ?, lease_ms = NULL, "
                "last_error = NULL WHERE id = ? AND status = 'sending'",
                [(x["t"], x["ref"], x["i"]) for x in sent],
            )
            # A receipt may have come first: keep "delivered", fill in what is missing.
            _many(
                conn,
                "UPDATE dissemination_outbox SET sent_ms = ?, gateway_ref = ? WHERE id = ? "
                "AND status = 'delivered' AND sent_ms IS NULL",
                [(x["t"], x["ref"], x["i"]) for x in sent],
            )
            _many(
                conn,
                "UPDATE dissemination_outbox SET status = 'delivered', sent_ms = ?, delivered_ms = ?, "
                "gateway_ref = ?, lease_ms = NULL WHERE id = ? AND status = 'sending'",
                [(x["t"], x["t"], x["ref"], x["i"]) for x in delivered],
            )
            if retry:
                conn.execute(
                    update(O)
                    .where(sending)
                    .values(
                        status="pending", next_attempt_ms=bindparam("due"), last_error=bindparam("err"), lease_ms=None
                    ),
                    retry,
                )
            if failed:
                conn.execute(
                    update(O).where(sending).values(status="failed", last_error=bindparam("err"), lease_ms=None), failed
                )
            if deferred:
                conn.execute(
                    update(O)
                    .where(sending)
                    .values(
                        status="pending", next_attempt_ms=bindparam("due"), attempts=O.c.attempts - 1, lease_ms=None
                    ),
                    deferred,
                )
        st = self.stats
        st.sent += len(sent) + len(delivered)
        st.delivered += len(delivered)
        st.retried, st.failed, st.deferred = (
            st.retried + len(retry),
            st.failed + len(failed),
            st.deferred + len(deferred),
        )

    def _send(self, msgs: Sequence[Message]) -> list[tuple[Message, SendResult | None, int]]:
        out: list[tuple[Message, SendResult | None, int]] = []
        by_channel: dict[str, list[Message]] = defaultdict(list)
        for m in msgs:
            by_channel[m.channel].append(m)
        for name, group in by_channel.items():
            channel = self.channels.get(name)
            if channel is None:
                err = SendResult(False, error=f"channel {name} is not configured", retry=True)
                out += [(m, err, 0) for m in group]
                continue
            taken, wait = self.buckets[name].take(len(group))
            wait_ms = max(1, int(wait * 1000))
            for m in group[taken:]:
                out.append((m, None, wait_ms))
            group = group[:taken]
            size = type(channel).batch_size
            for k in range(0, len(group), size):
                chunk = group[k : k + size]
                try:
                    results = channel.send(chunk)
                except Exception as exc:  # a channel bug must not stop the others
                    log.exception("channel %s failed", name)
                    results = [SendResult(False, error=f"{type(exc).__name__}: {exc}"[:300])] * len(chunk)
                out += [(m, r, 0) for m, r in zip(chunk, results, strict=True)]
                self.stats.by_channel[name] += len(chunk)
        return out

    def run_once(self) -> int:
        """Claim, send and record one batch; returns the number of messages claimed."""
        now = self.clock()
        with self.db.raw_writer() as conn:
            msgs = self._claim(conn, now)
        if not msgs:
            return 0
        self.stats.claimed += len(msgs)
        results = self._send(msgs)
        self._record(results, self.clock())
        return len(msgs)

    # --- recovery, receipts, replies, escalation ----------------------------------------------

    def recover(self) -> int:
        """Settle rows left ``sending`` by a dispatcher that died (lease expired)."""
        now = self.clock()
        with self.db.read() as s:
            rows = s.execute(
                select(O.c.id, O.c.idem_key, O.c.channel).where(O.c.status == "sending", O.c.lease_ms < now)
            ).all()
        by_channel: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for rid, key, ch in rows:
            by_channel[ch].append((rid, key))
        settled = 0
        for name, items in by_channel.items():
            channel = self.channels.get(name)
            found: dict[str, str] = {}
            if channel is not None:
                for k in range(0, len(items), 1000):
                    got = channel.lookup([key for _, key in items[k : k + 1000]])
                    if got is None:
                        break
                    found.update(got)
            sent = [{"i": rid, "ref": found[key], "t": now} for rid, key in items if key in found]
            back = [{"i": rid} for rid, key in items if key not in found]
            i: Any = bindparam("i")
            with self.db.raw_writer() as conn:
                if sent:
                    conn.execute(
                        update(O)
                        .where(O.c.id == i, O.c.status == "sending")
                        .values(status="sent", sent_ms=bindparam("t"), gateway_ref=bindparam("ref"), lease_ms=None),
                        sent,
                    )
                if back:
                    conn.execute(
                        update(O)
                        .where(O.c.id == i, O.c.status == "sending")
                        .values(status="pending", next_attempt_ms=now, lease_ms=None),
                        back,
                    )
            self.stats.recovered_sent += len(sent)
            self.stats.recovered_pending += len(back)
            settled += len(items)
        return settled

    def poll(self) -> int:
        """Apply delivery receipts and replies from every channel that has them."""
        n = 0
        for name, channel in self.channels.items():
            try:
                receipts, replies = channel.receipts(), channel.replies()
            except Exception:
                log.warning("polling %s failed", name, exc_info=True)
                continue
            if receipts:
                live = or_(O.c.status == "sending", O.c.status == "sent")
                with self.db.raw_writer() as conn:
                    for ok in (True, False):
                        for col, attr in ((O.c.idem_key, "key"), (O.c.gateway_ref, "ref")):
                            rows = [
                                {"m": getattr(r, attr), "t": r.t_ms, "d": r.detail}
                                for r in receipts
                                if r.delivered is ok and getattr(r, attr) and (attr == "key" or not r.key)
                            ]
                            if not rows:
                                continue
                            values: dict[str, Any] = (
                                {"status": "delivered", "delivered_ms": bindparam("t")}
                                if ok
                                else {"status": "failed", "last_error": bindparam("d")}
                            )
                            conn.execute(update(O).where(col == bindparam("m"), live).values(**values), rows)
                self.stats.receipts += len(receipts)
                n += len(receipts)
            if replies:
                with self.db.write(actor="dispatcher") as s:
                    for rep in replies:
                        if ack.by_reply(s, rep.phone, rep.text, rep.t_ms or self.clock()) is not None:
                            self.stats.replies_confirmed += 1
                n += len(replies)
        return n

    def escalate(self) -> int:
        if self.escalate_after is None:
            return 0
        with self.db.write(actor="dispatcher") as s:
            created = ack.escalate_due(s, self.clock(), self.escalate_after, self.public_url)
        self.stats.escalated += len(created)
        return len(created)

    def run_tasks(self) -> None:
        for task in self.tasks:
            try:
                task()
            except Exception:  # one task's failure must not stop sending
                log.exception("dispatcher task %r failed", task)

    def pending_due(self) -> int:
        from sqlalchemy import func

        with self.db.read() as s:
            return int(s.scalar(select(func.count()).select_from(O).where(O.c.status.in_(("pending", "sending")))) or 0)

    def drain(self, timeout_s: float = 60.0, idle_sleep_s: float = 0.05) -> Stats:
        """Send until nothing is pending or sending (or the timeout); for tests, benchmarks and ``--once``."""
        end = time.monotonic() + timeout_s
        self.run_tasks()
        self.recover()
        while time.monotonic() < end:
            if self.run_once():
                continue
            self.recover()
            self.poll()
            if self.pending_due() == 0:
                break
            time.sleep(idle_sleep_s)
        self.poll()
        return self.stats

    def run(self, stop: threading.Event, interval_s: float = 0.2, housekeeping_s: float = 5.0) -> None:
        """The dispatcher loop (``geowarn dispatch``): send, and every few seconds recover, poll, escalate
        and run the periodic tasks."""
        last = 0.0
        while not stop.is_set():
            busy = self.run_once()
            if time.monotonic() - last >= housekeeping_s or not busy:
                try:
                    self.recover()
                    self.poll()
                    self.escalate()
                except Exception:
                    log.exception("dispatcher housekeeping failed")
                self.run_tasks()
                last = time.monotonic()
            if not busy:
                stop.wait(interval_s)

    def close(self) -> None:
        for c in self.channels.values():
            c.close()
