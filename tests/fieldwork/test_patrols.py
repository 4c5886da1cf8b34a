"""Patrols from a phone: checklist, GPS flag, photos, idempotent resubmission, scoping, hostile input."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select

from geowarn.config import Settings
from geowarn.db import Database
from geowarn.fieldwork.models import FieldPhoto, HazardEvent, HazardEventVersion, Patrol
from tests.api.apiworld import World, login
from tests.fieldwork.helpers import jpeg, patrol_form

URL = "/api/fieldwork/patrols"


def count(db: Database, model: type) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_normal_patrol_at_the_site(db: Database, client: TestClient, world: World, as_monitor: dict[str, str]) -> None:
    r = client.post(URL, data=patrol_form(world.a.site), headers=as_monitor)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["result"] == "normal" and body["far_from_site"] is False and body["event_id"] is None
    assert body["distance_m"] < 1 and body["reporter"] == "alpha_monitor" and body["unit_code"] == world.a.unit
    assert count(db, HazardEvent) == 0


def test_a_sign_seen_makes_the_patrol_abnormal_and_opens_a_danger_report(
    db: Database, client: TestClient, world: World, as_monitor: dict[str, str]
) -> None:
    form = patrol_form(world.a.site, checklist={"new_cracks": True, "seepage": False}, result="normal")
    r = client.post(URL, data=form, headers=as_monitor)
    assert r.status_code == 201, r.text
    assert r.json()["result"] == "abnormal"
    event_id = r.json()["event_id"]
    with db.read() as s:
        event = s.get(HazardEvent, event_id)
        assert event is not None
        assert (event.kind, event.site_id, event.unit_code) == ("danger", world.a.site, world.a.unit)
        (version,) = s.scalars(select(HazardEventVersion).where(HazardEventVersion.event_id == event_id)).all()
        assert version.kind == "quick" and "裂缝" in version.data["description"]


def test_far_phone_is_flagged(client: TestClient, world: World, as_monitor: dict[str, str]) -> None:
    r = client.post(URL, data=patrol_form(world.a.site, lon=119.06, lat=26.05), headers=as_monitor)  # ~1 km east
    assert r.status_code == 201, r.text
    assert r.json()["far_from_site"] is True and 900 < r.json()["distance_m"] < 1100


def test_resubmission_is_idempotent(db: Database, client: TestClient, world: World, as_monitor: dict[str, str]) -> None:
    form = patrol_form(world.a.site, checklist={"bulging": True})
    photo = ("p.jpg", jpeg(119.05, 26.05), "image/jpeg")
    first = client.post(URL, data=form, files=[("photos", photo)], headers=as_monitor)
    assert first.status_code == 201, first.text
    for _ in range(2):  # the phone did not hear back and sends the same patrol again, photo included
        again = client.post(URL, data=form, files=[("photos", photo)], headers=as_monitor)
        assert again.status_code == 200, again.text
        assert again.json()["id"] == first.json()["id"]
        assert again.json()["event_id"] == first.json()["event_id"]
    assert (count(db, Patrol), count(db, HazardEvent), count(db, FieldPhoto)) == (1, 1, 1)
    # The same uuid for a different site is a conflict, not a silent overwrite.
    body = json.loads(form["data"]) | {"site_id": world.b.site}
    assert client.post(URL, data={"data": json.dumps(body)}, headers=as_monitor).status_code == 409


def test_monitor_cannot_report_outside_their_unit(
    db: Database, client: TestClient, world: World, as_monitor: dict[str, str]
) -> None:
    r = client.post(URL, data=patrol_form(world.b.site), headers=as_monitor)
    assert r.status_code == 404, r.text
    assert "BETA" not in r.text
    assert count(db, Patrol) == 0
    # A viewer may not report at all.
    viewer = login(client, "alpha_viewer")
    assert client.post(URL, data=patrol_form(world.a.site), headers=viewer).status_code == 403
    # The county sees A's patrol; B's monitor does not.
    client.post(URL, data=patrol_form(world.a.site), headers=as_monitor)
    assert client.get(URL, headers=login(client, "county_admin")).json()["total"] == 1
    assert client.get(URL, headers=login(client, "beta_monitor")).json()["total"] == 0


def test_photo_is_stored_without_exif_under_a_generated_name(
    db: Database, client: TestClient, world: World, as_monitor: dict[str, str], settings: Settings
) -> None:
    files = [("photos", ("../../etc/passwd.jpg", jpeg(119.05, 26.05), "image/jpeg"))]
    r = client.post(URL, data=patrol_form(world.a.site), files=files, headers=as_monitor)
    assert r.status_code == 201, r.text
    (photo,) = r.json()["photos"]
    assert photo["exif_distance_m"] < 5 and photo["far_from_site"] is False
    with db.read() as s:
        path = s.scalars(select(FieldPhoto.path)).one()
    assert "passwd" not in path and ".." not in path and path.startswith("photos/")
    stored = (settings.data_dir / path).read_bytes()
    assert b"PhoneModelX" not in stored
    assert not Image.open(io.BytesIO(stored)).getexif()
    assert not (Path("/etc") / "passwd.jpg").exists()
    got = client.get(f"/api/fieldwork/photos/{photo['id']}", headers=as_monitor)
    assert got.status_code == 200 and got.content == stored
    assert client.get(f"/api/fieldwork/photos/{photo['id']}", headers=login(client, "beta_viewer")).status_code == 404


def test_photo_gps_far_from_the_site_is_flagged(client: TestClient, world: World, as_monitor: dict[str, str]) -> None:
    files = [("photos", ("x.jpg", jpeg(116.4, 39.9), "image/jpeg"))]  # Beijing, not the site in Fujian
    r = client.post(URL, data=patrol_form(world.a.site), files=files, headers=as_monitor)
    assert r.status_code == 201, r.text
    (photo,) = r.json()["photos"]
    assert photo["far_from_site"] is True and photo["exif_distance_m"] > 1_000_000


def test_hostile_photos_are_refused_and_nothing_is_stored(
    db: Database, client: TestClient, world: World, as_monitor: dict[str, str], settings: Settings
) -> None:
    big = io.BytesIO()
    Image.effect_noise((1200, 1200), 90).convert("RGB").save(big, "PNG")  # > 0.5 MB of noise
    cases = [
        (("evil.jpg", b"#!/bin/sh\nrm -rf /\n", "image/jpeg"), 422),
        (("x.jpg", jpeg()[:100], "image/jpeg"), 422),  # truncated JPEG
        (("x.gif", _gif(), "image/gif"), 422),  # an image, but not a photo format we keep
        (("big.png", big.getvalue(), "image/png"), 413),
    ]
    for file, status in cases:
        r = client.post(URL, data=patrol_form(world.a.site), files=[("photos", file)], headers=as_monitor)
        assert r.status_code == status, (file[0], r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    assert count(db, Patrol) == 0 and count(db, FieldPhoto) == 0
    assert not (settings.data_dir / "photos").exists() or not any((settings.data_dir / "photos").rglob("*.*"))


def _gif() -> bytes:
    buf = io.BytesIO()
    Image.new("P", (8, 8)).save(buf, "GIF")
    return buf.getvalue()


def test_malformed_json_fields(client: TestClient, world: World, as_monitor: dict[str, str]) -> None:
    good = json.loads(patrol_form(world.a.site)["data"])
    bad = [
        "{not json",
        json.dumps([1, 2]),
        json.dumps(good | {"client_uuid": "not-a-uuid"}),
        json.dumps(good | {"checklist": {"new_cracks": "yes"}}),
        json.dumps(good | {"checklist": {"no_such_item": True}}),
        json.dumps(good | {"lat": 123.0}),
        json.dumps(good | {"kind": "picnic"}),
        json.dumps(good | {"extra_field": 1}),
        json.dumps(good | {"patrolled_at": "2999-01-01T00:00:00+08:00"}),
        json.dumps(good | {"kind": "warning_check"}),  # must name the alert or product
        json.dumps(good | {"kind": "warning_check", "alert_id": 10**6}),
    ]
    for text in bad:
        r = client.post(URL, data={"data": text}, headers=as_monitor)
        assert r.status_code == 422, (text, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")


def test_warning_check_names_an_alert_in_scope(client: TestClient, world: World, as_monitor: dict[str, str]) -> None:
    ok = patrol_form(world.a.site, kind="warning_check", alert_id=world.a.alert)
    assert client.post(URL, data=ok, headers=as_monitor).status_code == 201
    other = patrol_form(world.a.site, kind="warning_check", alert_id=world.b.alert)
    r = client.post(URL, data=other, headers=as_monitor)
    assert r.status_code == 422 and "BETA" not in r.text


def test_photos_sent_later_and_checklists(client: TestClient, world: World, as_monitor: dict[str, str]) -> None:
    r = client.post(URL, data=patrol_form(world.a.site), headers=as_monitor)
    pid = r.json()["id"]
    files = [("photos", ("a.jpg", jpeg(119.05, 26.05), "image/jpeg")), ("photos", ("b.jpg", jpeg(), "image/jpeg"))]
    r = client.post(f"{URL}/{pid}/photos", files=files, headers=as_monitor)
    assert r.status_code == 201, r.text
    assert len(r.json()) == 2
    assert len(client.get(f"{URL}/{pid}", headers=as_monitor).json()["photos"]) == 2
    r = client.get("/api/fieldwork/checklists/debris_flow", headers=as_monitor)
    keys = {i["key"] for i in r.json()}
    assert {"channel_blockage", "seepage"} <= keys and "house_cracks" not in keys
    assert client.get("/api/fieldwork/checklists/volcano", headers=as_monitor).status_code == 422
    assert str(uuid.uuid4())  # (uuid import used by helpers' callers)
