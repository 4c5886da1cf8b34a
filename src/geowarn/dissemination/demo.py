"""The demo's dissemination: a built-in local gateway and a dispatcher thread (issue 5, item 8).

``geowarn demo`` sends every channel to :class:`LocalGateway` on a local port, so a newcomer can see
who was told what (``GET <gateway>/messages`` and ``/api/dissemination/warnings/{id}/messages``),
who confirmed (``…/recipients``) and who was moved (``/api/response/tasks``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from geowarn.config import Settings
from geowarn.db import Database
from geowarn.dissemination.channels import REGISTRY, Channel
from geowarn.dissemination.dispatcher import Dispatcher
from geowarn.dissemination.localgw import LocalGateway


@dataclass
class DemoDissemination:
    gateway: LocalGateway
    dispatcher: Dispatcher
    stop_event: threading.Event
    thread: threading.Thread

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(10)
        self.dispatcher.close()
        self.gateway.stop()


def start_demo_dissemination(db: Database, settings: Settings, port: int = 0) -> DemoDissemination:
    """Start the local gateway and a dispatcher sending SMS, voice, robots, webhooks and the inbox to it."""
    gateway = LocalGateway(port=port).start()
    channels: dict[str, Channel] = {
        "sms": REGISTRY["sms"](gateway.url),  # type: ignore[call-arg]
        "voice": REGISTRY["voice"](gateway.url + "/voice"),  # type: ignore[call-arg]
    }
    for name in ("wecom", "dingtalk", "webhook", "inbox"):
        channels[name] = REGISTRY[name]()
    dispatcher = Dispatcher(
        db,
        channels,
        batch=settings.dispatch_batch,
        max_attempts=settings.dispatch_max_attempts,
        backoff_s=settings.dispatch_backoff_s,
        rates=settings.dispatch_rates,
        escalate_after_minutes=settings.escalate_after_minutes,
        public_url=settings.public_url,
    )
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.run, args=(stop,), name="demo-dispatcher", daemon=True)
    thread.start()
    return DemoDissemination(gateway, dispatcher, stop, thread)
