"""End to end on real components: a rain reading published to Mosquitto (the machine's broker on 1883)
crosses a threshold → alert → recipients → the SMS arrives at the local HTTP gateway → the responsible
person's reply with the code closes the loop. On both backends."""

from __future__ import annotations

import threading
import time

import orjson
from sqlalchemy import select

from geowarn.db import Database
from geowarn.dissemination.channels import REGISTRY
from geowarn.dissemination.dispatcher import Dispatcher
from geowarn.dissemination.localgw import LocalGateway
from geowarn.dissemination.models import IssueRecipient, OutboxMessage
from geowarn.inventory.models import HazardSite, Person
from geowarn.monitoring.ingest import Ingestor
from geowarn.monitoring.mqtt import BrokerAddress, MqttWorker
from geowarn.warning.engine import SiteWarningEngine, attach
from geowarn.warning.models import Alert
from tests.monitoring.mqtt_helpers import Publisher
from tests.monitoring.network import build_network
from tests.warning.test_engine import HourRain


def test_mqtt_reading_to_sms_to_confirmation(db: Database) -> None:
    net = build_network(db, n_rain=1, n_gnss=0)
    dev, key = next(iter(net.keys.items()))
    with db.write("seed") as s:
        p = Person(name="林责任", phone="13700000001", roles=["responsible"], unit_code="350922100", active=True)
        s.add(p)
        s.flush()
        site = s.scalars(select(HazardSite)).one()
        site.responsible_person_id = p.id
    ingestor = Ingestor(db)
    engine = SiteWarningEngine(db, HourRain())
    attach(engine, ingestor)
    topic_id = f"e2e{time.time_ns()}"
    worker = MqttWorker(
        ingestor,
        BrokerAddress.parse("mqtt://127.0.0.1:1883"),
        topic=f"{topic_id}/+/up",
        group="gwe2e",
        client_id=f"gw-e2e-{topic_id}",
        batch_size=10,
        batch_ms=20,
    )
    runner = threading.Thread(target=worker.run, daemon=True)
    runner.start()
    gw = LocalGateway().start()
    d = Dispatcher(db, {"sms": REGISTRY["sms"](gw.url), "inbox": REGISTRY["inbox"]()})  # type: ignore[call-arg]
    pub = Publisher(1883, client_id=f"pub-{topic_id}")
    try:
        assert worker.connected.wait(10)
        time.sleep(0.3)  # the subscription is registered after CONNACK
        now = int(time.time() * 1000)
        payload = orjson.dumps({"deviceId": dev, "apikey": key, "data": {"ts": now - 60_000, "value": 25.0}})
        t_pub = time.monotonic()
        pub.publish(f"{topic_id}/{dev}/up", payload)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            engine.drain()
            with db.read() as s:
                if s.scalar(select(OutboxMessage.id).limit(1)) is not None:
                    break
            time.sleep(0.05)
        d.drain(timeout_s=10)
        sms = gw.sent_to("sms")
        assert [m.to for m in sms] == ["13700000001"]
        assert time.monotonic() - t_pub < 20
        with db.read() as s:
            alert = s.scalars(select(Alert)).one()
            rec = s.scalars(select(IssueRecipient)).one()
        assert alert.level == 3 and rec.code in sms[0].text and "橙色" in sms[0].text
        gw.reply("13700000001", f"收到 {rec.code}")
        d.poll()
        with db.read() as s:
            rec = s.scalars(select(IssueRecipient)).one()
        assert rec.ack_via == "reply" and rec.acked_ms is not None
    finally:
        worker.stop()
        runner.join(10)
        pub.client.loop_stop()
        pub.client.disconnect()
        d.close()
        gw.stop()
