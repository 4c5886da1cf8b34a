"""Login, tokens, passwords, lockout and user management rules."""

from __future__ import annotations

import datetime as dt

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select

from geowarn.audit.models import AuditEntry
from geowarn.auth import tokens
from geowarn.auth.models import ApiToken, User
from geowarn.auth.passwords import needs_rehash
from geowarn.auth.service import LOCKOUT_FAILURES, authenticate, check_credentials, create_user, resolve_token
from geowarn.db import Database, utcnow
from geowarn.errors import AuthenticationFailed, InvalidInput, PermissionDenied
from tests.api.apiworld import PASSWORD, TOWN_A, TOWN_B, World, login


def _user(db: Database, username: str) -> User:
    with db.read() as s:
        return s.scalars(select(User).where(User.username == username)).one()


def test_login_gives_a_token_that_expires_after_the_ttl(client: TestClient, world: World, db: Database) -> None:
    before = utcnow()
    r = client.post("/api/auth/token", data={"username": "alpha_operator", "password": PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert body["access_token"].startswith("gw_") and body["token_type"] == "bearer"
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert dt.timedelta(hours=11.9) < expires - before < dt.timedelta(hours=12.1)
    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}).json()
    assert me["username"] == "alpha_operator" and "personal_data" in me["permissions"]
    with db.read() as s:
        stored = s.scalars(select(ApiToken.token_hash)).all()
        assert tokens.hash_token(body["access_token"]) in stored and body["access_token"] not in stored
        # expired one second after its expiry
        with pytest.raises(AuthenticationFailed):
            resolve_token(s, body["access_token"], now=expires + dt.timedelta(seconds=1))
        assert (
            resolve_token(s, body["access_token"], now=expires - dt.timedelta(seconds=1)).username == "alpha_operator"
        )


def test_expired_and_revoked_tokens_are_refused(client: TestClient, world: World, db: Database) -> None:
    with db.write() as s:
        u = s.get(User, world.a.users["viewer"])
        old = tokens.issue_token(s, u, name="old", expires_at=utcnow() - dt.timedelta(minutes=1))
    r = client.get("/api/auth/me", headers={"Authorization": f"Bearer {old.secret}"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    h = login(client, "alpha_viewer")
    assert client.post("/api/auth/logout", headers=h).status_code == 204
    assert client.get("/api/auth/me", headers=h).status_code == 401
    assert client.get("/api/auth/me").status_code == 401
    assert client.get("/api/auth/me", headers={"Authorization": "Bearer gw_forged"}).status_code == 401


def test_wrong_password_and_unknown_user_look_the_same(client: TestClient, world: World, db: Database) -> None:
    wrong = client.post("/api/auth/token", data={"username": "alpha_viewer", "password": "not the password"})
    unknown = client.post("/api/auth/token", data={"username": "nobody_here", "password": "not the password"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]
    with db.read() as s:
        entries = s.scalars(select(AuditEntry).where(AuditEntry.action == "login").order_by(AuditEntry.id)).all()
    outcomes = [(e.changes["username"], e.changes["outcome"], e.actor) for e in entries]
    assert ("alpha_viewer", "failure", "anonymous") in outcomes
    assert ("nobody_here", "failure", "anonymous") in outcomes
    assert all("not the password" not in str(e.changes) for e in entries)


def test_successful_login_is_audited_with_the_user(client: TestClient, world: World, db: Database) -> None:
    login(client, "alpha_monitor")
    with db.read() as s:
        e = s.scalars(select(AuditEntry).where(AuditEntry.action == "login")).one()
    assert (e.actor, e.actor_id, e.unit_code) == ("alpha_monitor", world.a.users["monitor"], TOWN_A)
    assert e.changes == {"username": "alpha_monitor", "outcome": "success"}
    assert _user(db, "alpha_monitor").last_login_at is not None


def test_argon2_hash_is_stored_and_weak_hashes_are_renewed(world: World, db: Database) -> None:
    u = _user(db, "alpha_viewer")
    assert u.password_hash.startswith("$argon2id$") and PASSWORD not in u.password_hash
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    with db.write() as s:
        s.get(User, u.id).password_hash = weak  # type: ignore[union-attr]
    assert needs_rehash(weak)
    with db.write() as s:
        authenticate(s, "alpha_viewer", PASSWORD)
    renewed = _user(db, "alpha_viewer").password_hash
    assert renewed != weak and not needs_rehash(renewed)


def test_lockout_after_repeated_failures(world: World, db: Database) -> None:
    for _ in range(LOCKOUT_FAILURES):
        with db.write() as s, pytest.raises(AuthenticationFailed):
            authenticate(s, "alpha_viewer", "wrong password!")
    with db.write() as s:
        assert check_credentials(s, "alpha_viewer", PASSWORD) is None  # locked, even with the right password
        later = utcnow() + dt.timedelta(minutes=16)
        assert check_credentials(s, "alpha_viewer", PASSWORD, now=later) is not None
    with db.write() as s:
        assert check_credentials(s, "alpha_operator", PASSWORD) is not None  # others are not affected


@pytest.mark.parametrize("password", ["short1", "1234567890123", ""])
def test_password_policy(world: World, db: Database, password: str) -> None:
    with db.write() as s, pytest.raises(InvalidInput):
        create_user(s, "newbie", password, "viewer", TOWN_A)


def test_password_policy_through_the_api(client: TestClient, world: World) -> None:
    h = login(client, "alpha_administrator")
    body = {"username": "newbie", "role": "viewer", "unit_code": TOWN_A}
    r = client.post("/api/users", headers=h, json={**body, "password": "0123456789"})
    assert r.status_code == 422 and r.json()["detail_zh"] == "密码不能全部是数字"
    r = client.post("/api/users", headers=h, json={**body, "password": "a good long one"})
    assert r.status_code == 201 and "password" not in r.text
    assert client.post("/api/auth/token", data={"username": "newbie", "password": "a good long one"}).status_code == 200


def test_administrators_stay_within_their_unit_and_rank(world: World, db: Database) -> None:
    with db.read() as s:
        admin = s.get(User, world.a.admin)
        operator = s.get(User, world.a.users["operator"])
        county = s.get(User, world.county_admin)
    with db.write() as s:
        with pytest.raises(PermissionDenied):
            create_user(s, "x1", PASSWORD, "viewer", TOWN_B, created_by=admin)
        with pytest.raises(PermissionDenied):
            create_user(s, "x2", PASSWORD, "viewer", "350922", created_by=admin)
        with pytest.raises(PermissionDenied):
            create_user(s, "x3", PASSWORD, "viewer", TOWN_A, created_by=operator)
        assert (
            create_user(s, "x4", PASSWORD, "administrator", TOWN_B + "001", created_by=county).role == "administrator"
        )


def test_api_tokens_for_integrations(client: TestClient, world: World, db: Database) -> None:
    h = login(client, "alpha_administrator")
    viewer = world.a.users["viewer"]
    r = client.post(f"/api/users/{viewer}/tokens", headers=h, json={"name": "大屏"})
    assert r.status_code == 201 and r.json()["expires_at"] is None
    secret, token_id = r.json()["token"], r.json()["id"]
    th = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/auth/me", headers=th).json()["username"] == "alpha_viewer"
    listed = client.get(f"/api/users/{viewer}/tokens", headers=h).json()
    assert [t["name"] for t in listed] == ["大屏"] and "token" not in listed[0]
    first_use = listed[0]["last_used_at"]
    assert first_use is not None
    client.get("/api/auth/me", headers=th)
    assert client.get(f"/api/users/{viewer}/tokens", headers=h).json()[0]["last_used_at"] == first_use  # < 1 min
    assert client.delete(f"/api/tokens/{token_id}", headers=h).status_code == 204
    assert client.get("/api/auth/me", headers=th).status_code == 401
    past = (utcnow() - dt.timedelta(hours=1)).isoformat()
    assert (
        client.post(f"/api/users/{viewer}/tokens", headers=h, json={"name": "x", "expires_at": past}).status_code == 422
    )


def test_deactivating_a_user_revokes_their_tokens(client: TestClient, world: World) -> None:
    h = login(client, "alpha_administrator")
    vh = login(client, "alpha_viewer")
    r = client.patch(f"/api/users/{world.a.users['viewer']}", headers=h, json={"active": False})
    assert r.status_code == 200 and r.json()["active"] is False
    assert client.get("/api/auth/me", headers=vh).status_code == 401
    assert client.post("/api/auth/token", data={"username": "alpha_viewer", "password": PASSWORD}).status_code == 401
    assert client.patch(f"/api/users/{world.a.admin}", headers=h, json={"active": False}).status_code == 422


def test_permissions_by_role(client: TestClient, world: World) -> None:
    viewer = login(client, "alpha_viewer")
    assert client.get("/api/sites", headers=viewer).status_code == 200
    assert client.get("/api/users", headers=viewer).status_code == 403
    assert client.get("/api/audit", headers=viewer).status_code == 403
    r = client.patch(f"/api/persons/{world.a.person}", headers=viewer, json={"title": "x"})
    assert r.status_code == 403
    operator = login(client, "alpha_operator")
    assert client.get("/api/audit", headers=operator).status_code == 200
    assert client.post("/api/users", headers=operator, json={}).status_code in (403, 422)
