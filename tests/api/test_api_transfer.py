"""File import and export through the API: problems as 422, size limit, safe names, masking."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from fastapi.testclient import TestClient

from geowarn.api.routes.transfer import safe_filename, safe_suffix
from tests.api.apiworld import TOWN_A, World, login

pytest.importorskip("geowarn.io.importer", reason="geowarn.io.importer is not written yet")


def _fc(hazard_type: str) -> bytes:
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [119.04, 26.04]},
        "properties": {"code": "ALPHA-IMP1", "name": "导入点", "hazard_type": hazard_type, "unit_code": TOWN_A},
    }
    return json.dumps({"type": "FeatureCollection", "features": [feature]}, ensure_ascii=False).encode()


def test_import_rejected_file_is_a_problem_with_rows(client: TestClient, world: World) -> None:
    h = login(client, "alpha_operator")
    files = {"file": ("../../etc/passwd.geojson", _fc("火山"), "application/geo+json")}
    r = client.post("/api/import/sites", headers=h, files=files)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    problems = r.json()["problems"]
    assert problems and {"row", "field", "reason", "value"} <= set(problems[0])
    assert problems[0]["row"] == 1


def test_import_then_list_batches(client: TestClient, world: World) -> None:
    h = login(client, "alpha_operator")
    r = client.post(
        "/api/import/sites", headers=h, files={"file": ("台账.geojson", _fc("滑坡"), "application/geo+json")}
    )
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 1
    batches = client.get("/api/import/batches", headers=h).json()["items"]
    assert batches[0]["filename"] == "台账.geojson" and batches[0]["actor"] == "alpha_operator"
    assert client.get("/api/sites", headers=h, params={"q": "ALPHA-IMP1"}).json()["total"] == 1
    viewer = login(client, "alpha_viewer")
    assert (
        client.post(
            "/api/import/sites", headers=viewer, files={"file": ("a.geojson", b"{}", "application/json")}
        ).status_code
        == 403
    )


def test_upload_size_limit(client: TestClient, world: World) -> None:
    h = login(client, "alpha_operator")
    big = b"x" * (2 * 1024 * 1024 + 10)  # the test app allows 1 MB
    r = client.post("/api/import/sites", headers=h, files={"file": ("big.csv", big, "text/csv")})
    assert r.status_code == 413 and r.json()["status"] == 413


def test_export_masks_for_viewers(client: TestClient, world: World) -> None:
    pytest.importorskip("geowarn.io.exporter", reason="geowarn.io.exporter is not written yet")
    viewer = login(client, "alpha_viewer")
    r = client.get("/api/export/households", headers=viewer, params={"format": "csv"})
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    assert "13811112222" not in r.text
    operator = login(client, "alpha_operator")
    assert "13811112222" in client.get("/api/export/households", headers=operator, params={"format": "csv"}).text
    z = client.get("/api/export/sites", headers=operator, params={"format": "shp"})
    assert z.status_code == 200 and z.content[:2] == b"PK"
    names = zipfile.ZipFile(io.BytesIO(z.content)).namelist()
    assert {"sites.shp", "sites.shx", "sites.dbf", "sites.prj"} <= set(names)


def test_safe_names() -> None:
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("C:\\Users\\x\\台账.xlsx") == "台账.xlsx"
    assert safe_filename("") == "upload"
    assert safe_suffix("a.SHP.ZIP") == ".shp.zip"
    assert safe_suffix("evil.c$v") == ""
