"""Every error is an RFC 9457 problem document (application/problem+json)."""

from __future__ import annotations

import httpx2
from fastapi.testclient import TestClient

from tests.api.apiworld import TOWN_B, World, login


def assert_problem(r: httpx2.Response, status: int) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert {"type", "title", "status", "detail", "detail_zh"} <= set(body)
    assert body["status"] == status and str(body["type"]).startswith("urn:geowarn:problem:")
    return body


def test_problem_shapes(client: TestClient, world: World) -> None:
    body = assert_problem(client.get("/api/sites"), 401)
    assert body["detail_zh"] == "请先登录"
    viewer = login(client, "alpha_viewer")
    assert_problem(client.get("/api/audit", headers=viewer), 403)
    assert_problem(client.get("/api/sites/999999", headers=viewer), 404)
    assert_problem(client.get("/api/no-such-route", headers=viewer), 404)
    op = login(client, "alpha_operator")
    site = f"/api/sites/{world.a.site}"
    assert_problem(client.patch(site, headers=op, json={"name": "x", "version": 7}), 409)
    body = assert_problem(client.post("/api/sites", headers=op, json={"code": "bad code!"}), 422)
    assert isinstance(body["errors"], list) and body["errors"]
    assert_problem(client.post("/api/persons", headers=op, json={"name": "x", "unit_code": TOWN_B}), 403)
    assert_problem(client.patch(site, headers=op, json={"name": "x"}), 428)


def test_health_needs_no_token(client: TestClient, db: object) -> None:
    body = client.get("/api/health").json()
    assert body["status"] == "ok" and body["backend"] in ("sqlite", "postgresql") and body["migration"]
    docs = client.get("/api/openapi.json").json()
    assert docs["info"]["title"] == "geowarn" and "/api/sites/{site_id}/status" in docs["paths"]
    assert client.get("/api/docs").status_code == 200
