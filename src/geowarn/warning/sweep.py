"""The device-health sweep: offline events, then the device-offline and no-data alarms they raise.

Every long-running process that may be the only one of its deployment runs it about once a minute:
each MQTT worker, the ``geowarn engine`` process and ``geowarn serve`` (a county ingesting over HTTP
alone has no worker). Running it in several processes at once is safe: one open event per device is
kept by a unique index (``check_offline`` inserts with ``ON CONFLICT DO NOTHING``) and one open
alarm per device and rule by the alerts' own key; a sweep that loses a race fails and the next one
finds the work done.
"""

from __future__ import annotations

import logging
import threading
import time

from geowarn.db import Database
from geowarn.monitoring.health import check_offline
from geowarn.warning.alerts import sync_device_alarms, sync_no_data_alarms

log = logging.getLogger(__name__)

#: Seconds between sweeps.
EVERY_S = 60.0


def health_sweep(db: Database, now_ms: int, *, missed_intervals: int) -> None:
    """Open and close offline events, then bring the device alarms in line with them."""
    with db.writer_engine.begin() as conn:
        check_offline(conn, now_ms, missed_intervals=missed_intervals)
    with db.write("warning-engine") as session:
        sync_device_alarms(session, now_ms)
        sync_no_data_alarms(session, now_ms, missed_intervals=missed_intervals)


def start_sweeping(
    db: Database, missed_intervals: int, stop: threading.Event, every_s: float = EVERY_S
) -> threading.Thread:
    """A daemon thread that sweeps every ``every_s`` seconds until ``stop`` is set; a failed sweep is
    logged and the next one tries again."""

    def run() -> None:
        while not stop.wait(every_s):
            try:
                health_sweep(db, int(time.time() * 1000), missed_intervals=missed_intervals)
            except Exception:
                log.exception("device-health sweep failed; trying again in %.0f s", every_s)

    thread = threading.Thread(target=run, name="health-sweep", daemon=True)
    thread.start()
    return thread
