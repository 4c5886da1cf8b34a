"""The field routes' entries of the scoping walk (``tests/api/test_api_scoping.py`` ROUTE_TABLE).

The shared world has no field records, so each entry puts township B's records in place with Core
statements (no ORM flush, hence no audit rows) before exercising the route as A's administrator and
removes them afterwards, leaving B's snapshot exactly as it was.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert

from geowarn.fieldwork.models import (
    FieldPhoto,
    HazardEvent,
    HazardEventVersion,
    Patrol,
    PhoneCheck,
    ResponsePeriod,
    WriteOff,
    ZeroReport,
)
from tests.api.apiworld import TOWN_A, TOWN_B

NOW = dt.datetime(2026, 7, 1, 1, 0, tzinfo=dt.UTC)
BETA_DAY = dt.date(2026, 7, 1)


@dataclass
class BRecords:
    patrol: int = 1001
    photo: int = 1001
    event: int = 1001
    write_off: int = 1001
    zero_report: int = 1001
    response: int = 1001


@contextmanager
def b_records(c: Any) -> Iterator[BRecords]:
    """B's field records (marked BETA), present only while the block runs."""
    b, ids = c.w.b, BRecords()
    rows: list[tuple[Any, dict[str, Any]]] = [
        (Patrol, dict(id=ids.patrol, client_uuid=str(uuid.uuid4()), site_id=b.site, unit_code=TOWN_B,
                      kind="in_season", patrolled_at=NOW, received_at=NOW, reporter="beta_monitor",
                      person_id=b.person, checklist={}, result="abnormal", remarks="BETA裂缝",
                      far_from_site=False)),
        (HazardEvent, dict(id=ids.event, client_uuid=str(uuid.uuid4()), unit_code=TOWN_B, kind="disaster",
                           hazard_type="landslide", place="BETA村后山", occurred_at=NOW, site_id=b.site, dead=0,
                           missing=0, injured=0, threatened_people=3, transferred_people=3, loss_yuan=0,
                           status="open", versions_count=1, reported_by="beta_monitor", reported_at=NOW,
                           updated_at=NOW)),
        (HazardEventVersion, dict(event_id=ids.event, number=1, kind="quick", client_uuid=str(uuid.uuid4()),
                                  data={"description": "BETA滑坡"}, reported_by="beta_monitor", reported_at=NOW)),
        (FieldPhoto, dict(id=ids.photo, unit_code=TOWN_B, patrol_id=ids.patrol, path="photos/beta/x.jpg",
                          sha256="0" * 64, media_type="image/jpeg", size=1, width=1, height=1,
                          far_from_site=False, uploaded_by="beta_monitor", uploaded_at=NOW)),
        (WriteOff, dict(id=ids.write_off, site_id=b.site, unit_code=TOWN_B, basis="relocation",
                        evidence="BETA搬迁", status="applied", applied_by="beta_operator", applied_at=NOW)),
        (ZeroReport, dict(id=ids.zero_report, client_uuid=str(uuid.uuid4()), unit_code=TOWN_B,
                          report_date=BETA_DAY, slot=1, nothing_new=False, summary="BETA险情", event_ids=[],
                          submitted_at=NOW, submitted_by="beta_monitor", late=False)),
        (ResponsePeriod, dict(id=ids.response, unit_code=TOWN_B, level=4, start_date=BETA_DAY, end_date=BETA_DAY,
                              declared_by="beta_administrator", reason="BETA红色")),
        (PhoneCheck, dict(person_id=b.person, unit_code=TOWN_B, phone="13987654321", method="call",
                          checked_at=NOW, checked_by="beta_operator")),
    ]  # fmt: skip
    with c.w_db.write(actor="seed") as s:
        for model, values in rows:
            s.execute(insert(model).values(**values))
    try:
        yield ids
    finally:
        with c.w_db.write(actor="seed") as s:
            for model, _ in reversed(rows):
                s.execute(delete(model).where(model.unit_code == TOWN_B) if hasattr(model, "unit_code")
                          else delete(model).where(model.event_id == ids.event))  # fmt: skip


def _hidden(c: Any, method: str, url: str, **kw: Any) -> None:
    from tests.api.test_api_scoping import hidden

    hidden(c.send(method, url, **kw))


def _clean(c: Any, url: str, **params: Any) -> Any:
    from tests.api.test_api_scoping import clean

    r = c.get(url, params=params)
    clean(r)
    return r


def _refused(c: Any, method: str, url: str, *statuses: int, **kw: Any) -> None:
    """Refused, echoing at most the unit code the caller sent."""
    r = c.send(method, url, **kw)
    assert r.status_code in statuses, r.text
    assert "beta" not in r.text.lower().replace(TOWN_B, "")


def _other_unit(c: Any, url: str, **params: Any) -> None:
    """A query naming B's unit answers 404 (it echoes only the code the caller sent)."""
    _refused(c, "GET", url, 404, params={"unit": TOWN_B, **params})


def walk(action: Callable[[Any, BRecords], None]) -> Callable[[Any], None]:
    def run(c: Any) -> None:
        with b_records(c) as ids:
            action(c, ids)

    return run


def _patrol_form(site: int) -> dict[str, str]:
    body = {"client_uuid": str(uuid.uuid4()), "site_id": site, "kind": "in_season",
            "patrolled_at": "2026-07-01T09:00:00+08:00", "checklist": {}, "result": "normal"}  # fmt: skip
    return {"data": json.dumps(body)}


def _event(unit: str) -> dict[str, Any]:
    return {"client_uuid": str(uuid.uuid4()), "kind": "danger", "hazard_type": "landslide", "unit_code": unit,
            "place": "新发现", "occurred_at": "2026-07-01T09:00:00+08:00"}  # fmt: skip


_PHOTO = [("photos", ("x.jpg", b"not read", "image/jpeg"))]
_DAY = {"date": BETA_DAY.isoformat()}


def _lists(c: Any, ids: BRecords) -> None:
    for url in ("/api/fieldwork/patrols", "/api/fieldwork/events", "/api/fieldwork/write-offs",
                "/api/fieldwork/zero-reports", "/api/fieldwork/responses"):  # fmt: skip
        r = _clean(c, url)
        body = r.json()
        items = body["items"] if isinstance(body, dict) else body
        assert all(i.get("unit_code", "").startswith(TOWN_A) for i in items), url


def _status(c: Any, ids: BRecords) -> None:
    r = _clean(c, "/api/fieldwork/zero-reports/status", **_DAY)
    assert r.json()["townships"] == 1
    _other_unit(c, "/api/fieldwork/zero-reports/status")


def _reminders(c: Any, ids: BRecords) -> None:
    _clean(c, "/api/fieldwork/zero-reports/reminders")
    _other_unit(c, "/api/fieldwork/zero-reports/reminders")


def _post_event(c: Any, ids: BRecords) -> None:
    _refused(c, "POST", "/api/fieldwork/events", 403, json=_event(TOWN_B))
    _hidden(c, "POST", "/api/fieldwork/events", json=_event(TOWN_A) | {"site_id": c.w.b.site})


def _township_cards(c: Any) -> None:
    for kind in ("households", "sites"):
        _refused(c, "GET", f"/api/fieldwork/cards/townships/{TOWN_B}/{kind}", 404)


def _progress(c: Any, ids: BRecords) -> None:
    r = _clean(c, "/api/fieldwork/write-off-progress", year=2026)
    assert [t["code"] for t in r.json()["townships"]] == [TOWN_A]
    _other_unit(c, "/api/fieldwork/write-off-progress")


def _hygiene(c: Any, ids: BRecords) -> None:
    _clean(c, "/api/fieldwork/hygiene")
    _clean(c, "/api/fieldwork/hygiene", format="csv")
    _other_unit(c, "/api/fieldwork/hygiene")


ROUTES: dict[tuple[str, str], Callable[[Any], None]] = {
    ("POST", "/api/fieldwork/patrols"): walk(
        lambda c, ids: _hidden(c, "POST", "/api/fieldwork/patrols", data=_patrol_form(c.w.b.site))
    ),
    ("GET", "/api/fieldwork/patrols"): walk(_lists),
    ("GET", "/api/fieldwork/patrols/{patrol_id}"): walk(
        lambda c, ids: _hidden(c, "GET", f"/api/fieldwork/patrols/{ids.patrol}")
    ),
    ("POST", "/api/fieldwork/patrols/{patrol_id}/photos"): walk(
        lambda c, ids: _hidden(c, "POST", f"/api/fieldwork/patrols/{ids.patrol}/photos", files=_PHOTO)
    ),
    ("GET", "/api/fieldwork/photos/{photo_id}"): walk(
        lambda c, ids: _hidden(c, "GET", f"/api/fieldwork/photos/{ids.photo}")
    ),
    ("GET", "/api/fieldwork/checklists/{hazard_type}"): lambda c: _clean(c, "/api/fieldwork/checklists/landslide"),
    ("POST", "/api/fieldwork/zero-reports"): walk(
        lambda c, ids: _refused(
            c,
            "POST",
            "/api/fieldwork/zero-reports",
            403,
            json={"client_uuid": str(uuid.uuid4()), "unit_code": TOWN_B, "report_date": dt.date.today().isoformat()},
        )
    ),
    ("GET", "/api/fieldwork/zero-reports"): walk(lambda c, ids: _lists(c, ids)),
    ("GET", "/api/fieldwork/zero-reports/status"): walk(_status),
    ("GET", "/api/fieldwork/zero-reports/reminders"): walk(_reminders),
    ("POST", "/api/fieldwork/responses"): walk(
        lambda c, ids: _refused(
            c,
            "POST",
            "/api/fieldwork/responses",
            403,
            json={"unit_code": TOWN_B, "level": 3, "start_date": "2026-07-01", "end_date": "2026-07-02"},
        )
    ),
    ("GET", "/api/fieldwork/responses"): walk(_lists),
    ("POST", "/api/fieldwork/events"): walk(_post_event),
    ("GET", "/api/fieldwork/events"): walk(_lists),
    ("GET", "/api/fieldwork/events/summary"): walk(
        lambda c, ids: _clean(c, "/api/fieldwork/events/summary", start="2026-06-01", end="2026-07-31", by="county")
    ),
    ("GET", "/api/fieldwork/events/{event_id}"): walk(
        lambda c, ids: _hidden(c, "GET", f"/api/fieldwork/events/{ids.event}")
    ),
    ("POST", "/api/fieldwork/events/{event_id}/follow-ups"): walk(
        lambda c, ids: _hidden(
            c,
            "POST",
            f"/api/fieldwork/events/{ids.event}/follow-ups",
            json={"client_uuid": str(uuid.uuid4()), "injured": 5},
        )
    ),
    ("POST", "/api/fieldwork/events/{event_id}/alert"): walk(
        lambda c, ids: _hidden(c, "POST", f"/api/fieldwork/events/{ids.event}/alert", json={"level": 4})
    ),
    ("POST", "/api/fieldwork/events/{event_id}/photos"): walk(
        lambda c, ids: _hidden(c, "POST", f"/api/fieldwork/events/{ids.event}/photos", files=_PHOTO)
    ),
    ("POST", "/api/fieldwork/events/{event_id}/register-site"): walk(
        lambda c, ids: _hidden(
            c, "POST", f"/api/fieldwork/events/{ids.event}/register-site", json={"code": "NEW-S9", "name": "新点"}
        )
    ),
    ("GET", "/api/fieldwork/cards/sites/{site_id}"): lambda c: _hidden(
        c, "GET", f"/api/fieldwork/cards/sites/{c.w.b.site}"
    ),
    ("GET", "/api/fieldwork/cards/households/{household_id}"): lambda c: _hidden(
        c, "GET", f"/api/fieldwork/cards/households/{c.w.b.household}"
    ),
    ("GET", "/api/fieldwork/cards/townships/{code}/{kind}"): _township_cards,
    ("POST", "/api/fieldwork/write-offs"): walk(
        lambda c, ids: _hidden(
            c,
            "POST",
            "/api/fieldwork/write-offs",
            json={"site_id": c.w.b.site, "basis": "relocation", "evidence": "搬迁完成", "effective_on": "2026-07-01"},
        )
    ),
    ("GET", "/api/fieldwork/write-offs"): walk(_lists),
    ("POST", "/api/fieldwork/write-offs/{write_off_id}/decision"): walk(
        lambda c, ids: _refused(
            c,
            "POST",
            f"/api/fieldwork/write-offs/{ids.write_off}/decision",
            403,
            404,
            json={"approve": True, "effective_on": "2026-07-01"},
        )
    ),
    ("PUT", "/api/fieldwork/write-off-targets/{code}/{year}"): lambda c: _refused(
        c, "PUT", f"/api/fieldwork/write-off-targets/{TOWN_B}/2026", 403, json={"target": 9}
    ),
    ("GET", "/api/fieldwork/write-off-progress"): walk(_progress),
    ("GET", "/api/fieldwork/hygiene"): walk(_hygiene),
    ("POST", "/api/fieldwork/persons/{person_id}/phone-checks"): walk(
        lambda c, ids: _hidden(
            c, "POST", f"/api/fieldwork/persons/{c.w.b.person}/phone-checks", json={"method": "call"}
        )
    ),
}
