"""Conditional requests on the map's layers: ETag, If-None-Match → 304 (RFC 9110 §13.1.2)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from geowarn.db import Database
from geowarn.inventory.models import HazardSite
from tests.api.apiworld import World, login

LAYERS = ["/api/map/sites", "/api/map/boundaries", "/api/map/zones", "/api/map/stations"]


@pytest.mark.parametrize("path", LAYERS)
def test_an_unchanged_layer_is_revalidated_with_304(client: TestClient, world: World, path: str) -> None:
    h = login(client, "alpha_viewer")
    first = client.get(path, headers=h)
    assert first.status_code == 200 and first.content
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 10
    assert first.headers["cache-control"] == "private, no-cache"
    again = client.get(path, headers={**h, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag and again.headers["cache-control"] == "private, no-cache"
    # weak comparison, lists and "*" (RFC 9110 §13.1.2)
    for value in (f'"x", W/{etag}', "*"):
        assert client.get(path, headers={**h, "If-None-Match": value}).status_code == 304
    other = client.get(path, headers={**h, "If-None-Match": '"not-this-one"'})
    assert other.status_code == 200 and other.content == first.content


def test_a_changed_layer_answers_in_full_with_a_new_tag(client: TestClient, world: World, db: Database) -> None:
    h = login(client, "alpha_viewer")
    first = client.get("/api/map/sites", headers=h)
    with db.write() as s:
        s.get_one(HazardSite, world.a.site).threatened_people = 4321
    after = client.get("/api/map/sites", headers={**h, "If-None-Match": first.headers["etag"]})
    assert after.status_code == 200 and after.headers["etag"] != first.headers["etag"]
    assert 4321 in after.json()["people"]


def test_another_units_tag_gets_that_users_own_layer(client: TestClient, world: World) -> None:
    a, b = login(client, "alpha_viewer"), login(client, "beta_viewer")
    tag_a = client.get("/api/map/sites", headers=a).headers["etag"]
    r = client.get("/api/map/sites", headers={**b, "If-None-Match": tag_a})
    assert r.status_code == 200 and r.headers["etag"] != tag_a
    assert world.a.site not in r.json()["id"] and world.b.site in r.json()["id"]


def test_a_revalidation_still_needs_a_valid_token(client: TestClient, world: World) -> None:
    h = login(client, "alpha_viewer")
    etag = client.get("/api/map/boundaries", headers=h).headers["etag"]
    assert client.get("/api/map/boundaries", headers={"If-None-Match": etag}).status_code == 401
