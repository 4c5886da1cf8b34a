"""The interactive API docs work with no internet: every asset is served by geowarn itself."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from geowarn.api.app import create_app
from geowarn.db import Database


def test_docs_page_loads_only_local_assets(db: Database) -> None:
    with TestClient(create_app(db)) as client:
        page = client.get("/api/docs")
        assert page.status_code == 200
        urls = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]|url: ?['"]([^'"]+)['"]""", page.text)
        assets = [a or b for a, b in urls]
        assert assets, page.text
        for url in assets:
            assert url.startswith("/"), f"external asset {url}"
            assert client.get(url).status_code == 200, url
        assert client.get("/api/openapi.json").json()["info"]["title"] == "geowarn"
