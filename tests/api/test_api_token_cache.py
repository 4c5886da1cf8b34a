"""The cache of verified bearer tokens (geowarn.auth.token_cache): what it may and may not change.

The cache's clock is replaced by a hand-moved one, so nothing here depends on real time passing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, select, update

from geowarn.api import create_app
from geowarn.auth import token_cache, tokens
from geowarn.auth.models import ApiToken, User
from geowarn.config import Settings
from geowarn.db import Database, utcnow
from geowarn.errors import AuthenticationFailed
from tests.api.apiworld import TOWN_A, TOWN_B, World, login

TTL = Settings().token_cache_seconds


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    c = Clock()
    monkeypatch.setattr(token_cache.CACHE, "clock", c)
    token_cache.CACHE.clear()
    yield c
    token_cache.CACHE.clear()


def _revoke_elsewhere(db: Database, **where: object) -> None:
    """Revoke as another process would: straight in the database, this process's cache not told."""
    stmt = update(ApiToken).values(revoked=True)
    for k, v in where.items():
        stmt = stmt.where(getattr(ApiToken, k) == v)
    with db.raw_writer() as conn:
        conn.execute(stmt)


def _token_id(db: Database, headers: dict[str, str]) -> int:
    digest = tokens.hash_token(headers["Authorization"].removeprefix("Bearer "))
    with db.read() as s:
        return int(s.scalars(select(ApiToken.id).where(ApiToken.token_hash == digest)).one())


def test_a_token_revoked_in_another_process_stops_working_within_the_ttl(
    client: TestClient, world: World, db: Database, clock: Clock
) -> None:
    h = login(client, "alpha_viewer")
    assert client.get("/api/auth/me", headers=h).status_code == 200
    _revoke_elsewhere(db, id=_token_id(db, h))
    # the documented window: still served from this process's cache until the TTL has passed
    clock.t += TTL - 0.5
    assert client.get("/api/auth/me", headers=h).status_code == 200
    clock.t += 0.5
    assert client.get("/api/auth/me", headers=h).status_code == 401
    clock.t -= TTL  # the refusal is not cached: an old clock finds nothing to serve
    assert client.get("/api/auth/me", headers=h).status_code == 401


def test_revocation_in_this_process_is_immediate(client: TestClient, world: World, db: Database) -> None:
    h = login(client, "alpha_viewer")
    other = login(client, "alpha_viewer")
    assert client.get("/api/auth/me", headers=h).status_code == 200
    assert client.get("/api/auth/me", headers=other).status_code == 200
    assert client.post("/api/auth/logout", headers=h).status_code == 204
    assert client.get("/api/auth/me", headers=h).status_code == 401
    # a token revoked by its id (DELETE /api/tokens/{id}) goes too; the user's other token stays
    admin = login(client, "alpha_administrator")
    assert client.get("/api/auth/me", headers=other).status_code == 200
    assert client.delete(f"/api/tokens/{_token_id(db, other)}", headers=admin).status_code == 204
    assert client.get("/api/auth/me", headers=other).status_code == 401


def test_user_changes_in_this_process_are_immediate(client: TestClient, world: World, db: Database) -> None:
    admin = login(client, "alpha_administrator")
    h = login(client, "alpha_operator")
    uid = world.a.users["operator"]
    assert client.get("/api/auth/me", headers=h).json()["role"] == "operator"
    r = client.patch(f"/api/users/{uid}", headers=admin, json={"role": "viewer"})
    assert r.status_code == 200, r.text
    assert client.get("/api/auth/me", headers=h).json()["role"] == "viewer"
    # an ORM change made outside the API (a CLI command in this process) is seen at once as well
    with db.write() as s:
        s.get_one(User, uid).display_name = "改名"
    assert client.get("/api/auth/me", headers=h).json()["display_name"] == "改名"
    assert client.patch(f"/api/users/{uid}", headers=admin, json={"active": False}).status_code == 200
    assert client.get("/api/auth/me", headers=h).status_code == 401


def test_expiry_is_exact_for_a_cached_token(world: World, db: Database, clock: Clock) -> None:
    now = utcnow()
    expires = now + dt.timedelta(hours=1)
    with db.write() as s:
        issued = tokens.issue_token(s, s.get_one(User, world.a.users["viewer"]), name="short", expires_at=expires)
    token_id, _ = tokens.verify(db, issued.secret, cache_seconds=TTL, now=now)
    assert token_id == issued.record.id
    _revoke_elsewhere(db, id=token_id)  # from here on only the cache can answer yes
    second = dt.timedelta(seconds=1)
    assert tokens.verify(db, issued.secret, cache_seconds=TTL, now=expires - second)[0] == token_id
    with pytest.raises(AuthenticationFailed):
        tokens.verify(db, issued.secret, cache_seconds=TTL, now=expires)
    with pytest.raises(AuthenticationFailed):
        tokens.verify(db, issued.secret, cache_seconds=TTL, now=expires - second)  # the entry is gone


def test_a_token_is_only_ever_answered_with_its_own_user(client: TestClient, world: World, db: Database) -> None:
    a, b = login(client, "alpha_administrator"), login(client, "beta_administrator")
    for _ in range(3):
        me_a, me_b = client.get("/api/auth/me", headers=a).json(), client.get("/api/auth/me", headers=b).json()
        assert (me_a["username"], me_a["unit_code"]) == ("alpha_administrator", TOWN_A)
        assert (me_b["username"], me_b["unit_code"]) == ("beta_administrator", TOWN_B)
        sites_a = {s["unit_code"] for s in client.get("/api/sites", headers=a).json()["items"]}
        sites_b = {s["unit_code"] for s in client.get("/api/sites", headers=b).json()["items"]}
        assert sites_a == {TOWN_A} and sites_b == {TOWN_B}
    # moved to the other township: the cached user is dropped and the new scope applies at once
    with db.write() as s:
        s.get_one(User, world.a.users["administrator"]).unit_code = TOWN_B
    assert client.get("/api/auth/me", headers=a).json()["unit_code"] == TOWN_B
    assert {s["unit_code"] for s in client.get("/api/sites", headers=a).json()["items"]} == {TOWN_B}


def test_each_use_gets_its_own_detached_user(world: World, db: Database) -> None:
    with db.write() as s:
        issued = tokens.issue_token(s, s.get_one(User, world.b.users["viewer"]))
    _, first = tokens.verify(db, issued.secret, cache_seconds=TTL)
    _, second = tokens.verify(db, issued.secret, cache_seconds=TTL)
    assert len(token_cache.CACHE) == 1
    assert first is not second and first.id == second.id == world.b.users["viewer"]
    assert inspect(second).detached and second.unit_code == TOWN_B
    second.role = "administrator"  # a caller scribbling on its copy changes nothing for the next
    assert tokens.verify(db, issued.secret, cache_seconds=TTL)[1].role == "viewer"


def test_a_ttl_of_zero_turns_the_cache_off(world: World, db: Database) -> None:
    app = create_app(db, settings=Settings(token_cache_seconds=0, warning_engine=False))
    with TestClient(app) as c:
        h = login(c, "alpha_viewer")
        assert c.get("/api/auth/me", headers=h).status_code == 200
        assert len(token_cache.CACHE) == 0
        _revoke_elsewhere(db, id=_token_id(db, h))
        assert c.get("/api/auth/me", headers=h).status_code == 401
