"""The dissemination routes in the scoping walk of ``tests/api/test_api_scoping.py``.

``seed`` gives both townships of the API world a disseminated warning (their open yellow alerts),
a transfer order, a group endpoint and a template override before B's rows are snapshot;
``ROUTES`` says how each route is exercised against B.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from geowarn.db import Database
from geowarn.dissemination.hook import on_alert
from geowarn.dissemination.models import Endpoint, IssueRecipient, ResponseTask, TemplateOverride
from geowarn.warning.levels import Level
from geowarn.warning.models import Alert
from tests.api.apiworld import TOWN_B, World

IDS: dict[str, dict[str, int]] = {}


def seed(db: Database, w: World) -> None:
    for tag, side in (("a", w.a), ("b", w.b)):
        with db.write(actor="seed") as s:
            alert = s.get(Alert, side.alert)
            assert alert is not None
            issue = on_alert(s, alert, "opened", Level.NONE, alert.opened_ms)
            assert issue is not None
            rec = s.scalars(select(IssueRecipient).where(IssueRecipient.issue_id == issue.id)).first()
            assert rec is not None
            task = ResponseTask(
                issue_id=issue.id,
                subject=issue.subject,
                kind="transfer",
                unit_code=side.unit,
                status="open",
                created_ms=alert.opened_ms,
                households=1,
                people=3,
                plan={
                    "households": [
                        {
                            "household_id": side.household,
                            "head": "x",
                            "people": 3,
                            "shelter_id": side.shelter,
                            "unit_code": side.unit,
                        }
                    ]
                },
            )
            s.add_all(
                [
                    task,
                    Endpoint(
                        unit_code=side.unit,
                        channel="wecom",
                        name={"a": "ALPHA群", "b": "BETA群"}[tag],
                        url="http://127.0.0.1:9/robot",
                        min_level=1,
                    ),
                    TemplateOverride(unit_code=side.unit, key="site.resident", body=f"{tag}模板{{{{ code }}}}"),
                ]
            )
            s.flush()
            IDS[tag] = {"issue": issue.id, "recipient": rec.id, "task": task.id, "person": side.person}


def _ctx_helpers() -> Any:
    from tests.api import test_api_scoping as t

    return t


def _item(suffix: str) -> Callable[[Any], None]:
    def run(c: Any) -> None:
        t = _ctx_helpers()
        t.hidden(c.get(f"/api/dissemination/warnings/{IDS['b']['issue']}{suffix}"))
        r = c.get(f"/api/dissemination/warnings/{IDS['a']['issue']}{suffix}")
        t.clean(r)

    return run


def _list_warnings(c: Any) -> None:
    t = _ctx_helpers()
    r = c.get("/api/dissemination/warnings")
    t.clean(r)
    assert {i["id"] for i in r.json()["items"]} == {IDS["a"]["issue"]}


def _confirm(c: Any) -> None:
    t = _ctx_helpers()
    a, b = IDS["a"], IDS["b"]
    t.hidden(c.send("POST", f"/api/dissemination/warnings/{b['issue']}/recipients/{b['recipient']}/confirm"))
    # B's recipient through A's warning is not found either
    r = c.send("POST", f"/api/dissemination/warnings/{a['issue']}/recipients/{b['recipient']}/confirm")
    assert r.status_code == 404, r.text


def _feed(c: Any) -> None:
    t = _ctx_helpers()
    r = c.get("/api/dissemination/feed.atom")
    t.clean(r)
    assert r.text.count("<entry>") == 1


def _ack_link(c: Any) -> None:
    assert c.client.get("/api/dissemination/ack/not-a-token").status_code == 404


def _ack_code(c: Any) -> None:
    r = c.client.post("/api/dissemination/ack", json={"phone": "13987654321", "code": "000000"})
    assert r.status_code in (404, 422), r.text  # a guessed code for B's phone confirms nothing


def _templates(c: Any) -> None:
    t = _ctx_helpers()
    r = c.get("/api/dissemination/templates")
    t.clean(r)
    assert [o["body"] for o in r.json()["overrides"]] == ["a模板{{ code }}"]


def _put_template(c: Any) -> None:
    t = _ctx_helpers()
    t.refused(c.send("PUT", "/api/dissemination/templates/site.resident", json={"body": "x", "unit_code": TOWN_B}), 403)


def _endpoints(c: Any) -> None:
    t = _ctx_helpers()
    r = c.get("/api/dissemination/endpoints")
    t.clean(r)
    assert len(r.json()["items"]) == 1


def _create_endpoint(c: Any) -> None:
    t = _ctx_helpers()
    body = {"unit_code": TOWN_B, "channel": "wecom", "name": "x", "url": "http://127.0.0.1:9/x"}
    t.refused(c.send("POST", "/api/dissemination/endpoints", json=body), 403)


def _preference(c: Any) -> None:
    t = _ctx_helpers()
    t.hidden(c.send("PUT", f"/api/dissemination/preferences/person:{IDS['b']['person']}", json={"channels": ["sms"]}))


def _tasks(c: Any) -> None:
    t = _ctx_helpers()
    r = c.get("/api/response/tasks")
    t.clean(r)
    ids = {x["id"] for x in r.json()["items"]}
    assert IDS["a"]["task"] in ids and IDS["b"]["task"] not in ids


def _task(c: Any) -> None:
    t = _ctx_helpers()
    t.hidden(c.get(f"/api/response/tasks/{IDS['b']['task']}"))
    t.clean(c.get(f"/api/response/tasks/{IDS['a']['task']}"))


def _transfer(c: Any) -> None:
    t = _ctx_helpers()
    t.hidden(c.send("POST", f"/api/response/tasks/{IDS['b']['task']}/transfers", json={"people": 1}))
    body = {"people": 1, "shelter_id": c.w.b.shelter, "household_id": c.w.a.household}
    t.refused(c.send("POST", f"/api/response/tasks/{IDS['a']['task']}/transfers", json=body), 422)


def _return(c: Any) -> None:
    t = _ctx_helpers()
    t.hidden(c.send("POST", f"/api/response/tasks/{IDS['b']['task']}/return"))


def _shelters(c: Any) -> None:
    t = _ctx_helpers()
    r = c.get("/api/response/shelters")
    t.clean(r)
    assert [s["id"] for s in r.json()["items"]] == [c.w.a.shelter]


ROUTES: dict[tuple[str, str], Callable[[Any], None]] = {
    ("GET", "/api/dissemination/warnings"): _list_warnings,
    ("GET", "/api/dissemination/warnings/{issue_id}"): _item(""),
    ("GET", "/api/dissemination/warnings/{issue_id}/recipients"): _item("/recipients"),
    ("GET", "/api/dissemination/warnings/{issue_id}/messages"): _item("/messages"),
    ("GET", "/api/dissemination/warnings/{issue_id}/cap"): _item("/cap"),
    ("GET", "/api/dissemination/warnings/{issue_id}/timeline"): _item("/timeline"),
    ("POST", "/api/dissemination/warnings/{issue_id}/recipients/{recipient_id}/confirm"): _confirm,
    ("GET", "/api/dissemination/feed.atom"): _feed,
    ("GET", "/api/dissemination/inbox"): lambda c: _ctx_helpers().clean(c.get("/api/dissemination/inbox")),
    ("GET", "/api/dissemination/ack/{token}"): _ack_link,
    ("POST", "/api/dissemination/ack"): _ack_code,
    ("GET", "/api/dissemination/templates"): _templates,
    ("PUT", "/api/dissemination/templates/{key}"): _put_template,
    ("GET", "/api/dissemination/endpoints"): _endpoints,
    ("POST", "/api/dissemination/endpoints"): _create_endpoint,
    ("PUT", "/api/dissemination/preferences/{person_key}"): _preference,
    ("GET", "/api/response/tasks"): _tasks,
    ("GET", "/api/response/tasks/{task_id}"): _task,
    ("POST", "/api/response/tasks/{task_id}/transfers"): _transfer,
    ("POST", "/api/response/tasks/{task_id}/return"): _return,
    ("GET", "/api/response/shelters"): _shelters,
}
