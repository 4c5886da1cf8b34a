"""GeoJSON parsed a piece at a time gives exactly what one parse of the whole file gives.

The cuts are only trusted when the JSON grammar proves them (see ``geowarn.io.geojson_pieces``):
these tests put feature-like text inside strings, nest values, vary the layout, repeat members and
break the syntax, and compare every split that was accepted with the whole parse.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import orjson
import pyproj
import pytest
from sqlalchemy import select

from geowarn.db import Database
from geowarn.errors import FileRejected
from geowarn.inventory.models import HazardSite
from geowarn.io import readers
from geowarn.io.geojson_pieces import PiecesDisagree, split_features
from geowarn.io.importer import import_file
from geowarn.io.models import ImportBatch
from tests.io.ioworld import COUNTY, EAST_BOX

TRICKY = [
    "},{",
    '}, {"type": "Feature"',
    '"},{"',
    "\\",
    '\\"},{',
    "]}",
    '],"features":[{',
    "滑坡}\n,\n{",
    "",
]


def _random_feature(rng: random.Random, i: int) -> dict[str, Any]:
    props: dict[str, Any] = {"统一编号": f"S{i:04d}", "名称": rng.choice(TRICKY) + f"点{i}" + rng.choice(TRICKY)}
    if rng.random() < 0.3:
        props["nested"] = {"a": [1, {"b": rng.choice(TRICKY)}], "c": None}
    if rng.random() < 0.2:
        props["list"] = [rng.choice(TRICKY), [], {}]
    if rng.random() < 0.1:
        props["late_" + str(i % 3)] = i
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [118.7 + i * 1e-4, 26.5]},
        "properties": props,
    }


def _layouts(doc: dict[str, Any]) -> list[bytes]:
    return [
        orjson.dumps(doc),
        json.dumps(doc, ensure_ascii=False).encode(),
        json.dumps(doc, ensure_ascii=True, indent=2).encode(),
        json.dumps(doc, ensure_ascii=False, separators=(" ,\r\n ", " : ")).encode(),
    ]


def _in_pieces(data: bytes, first_bytes: int, per: int) -> tuple[dict[str, Any], list[Any]] | None:
    pieces = split_features(data, first_bytes)
    if pieces is None:
        return None
    feats = list(pieces.first)
    for piece in pieces.rest(per):
        feats.extend(piece)
    return pieces.members, feats


def _never_accepted(data: bytes, first_bytes: int, per: int) -> None:
    """An invalid document: no split (the caller parses it whole and fails) or a syntax error, never features."""
    try:
        got = _in_pieces(data, first_bytes, per)
    except orjson.JSONDecodeError:
        return
    assert got is None


@pytest.mark.parametrize("seed", range(6))
def test_every_accepted_split_is_the_whole_parse(seed: int) -> None:
    rng = random.Random(seed)
    doc = {
        "type": "FeatureCollection",
        "name": "隐患点 },{",
        "features": [_random_feature(rng, i) for i in range(rng.randint(2, 60))],
    }
    if seed % 2:
        doc["bbox"] = [118.6, 26.5, 118.8, 26.6]  # a member after the features
    for data in _layouts(doc):
        whole = orjson.loads(data)
        accepted = 0
        for first_bytes in sorted({1, 20, 100, *(rng.randrange(len(data)) for _ in range(15))}):
            got = _in_pieces(data, first_bytes, rng.randint(1, 7))
            if got is None:
                continue
            accepted += 1
            members, feats = got
            assert feats == whole["features"]
            assert members == {k: v for k, v in whole.items() if k != "features"}
        assert accepted > 0


def test_text_like_features_inside_one_huge_string() -> None:
    """Every candidate cut for a while lies inside a string: each is refused, then the rest is parsed whole."""
    feats = [
        {"type": "Feature", "geometry": None, "properties": {"note": '{"x":1},{"y":2}' * 20_000}},
        *({"type": "Feature", "geometry": None, "properties": {"i": i}} for i in range(50)),
    ]
    data = orjson.dumps({"type": "FeatureCollection", "features": feats})
    for first_bytes in (10, 1_000, 100_000):
        got = _in_pieces(data, first_bytes, 3)
        assert got is None or got[1] == feats


def test_a_later_features_member_is_not_mistaken_for_more_features() -> None:
    """Duplicate members: the whole parse keeps the last ``features``; pieces must agree or say so."""
    a = [{"type": "Feature", "properties": {"i": i}, "geometry": None} for i in range(30)]
    b = [{"type": "Feature", "properties": {"j": j}, "geometry": None} for j in range(30)]
    data = (
        b'{"type":"FeatureCollection","features":'
        + orjson.dumps(a)
        + b',"features":'
        + orjson.dumps(b)
        + b',"bbox":[1,2,3,4]}'
    )
    assert orjson.loads(data)["features"] == b
    outcomes = set()
    for first_bytes in range(1, len(data), 37):
        try:
            got = _in_pieces(data, first_bytes, 4)
        except PiecesDisagree:
            outcomes.add("disagree")
            continue
        if got is not None:
            assert got[1] == b
            outcomes.add("same")
    assert outcomes == {"disagree", "same"}  # cuts in the first array are caught, cuts in the last are right


def test_a_syntax_error_in_the_tail_is_the_files() -> None:
    feats = [{"type": "Feature", "properties": {"i": i}, "geometry": None} for i in range(40)]
    data = orjson.dumps({"type": "FeatureCollection", "features": feats})[:-30] + b"}}]}"
    pieces = split_features(data, 100)
    assert pieces is not None
    with pytest.raises(orjson.JSONDecodeError):
        for _ in pieces.rest(5):
            pass


def test_what_cannot_be_split() -> None:
    assert split_features(b'{"type":"Feature","properties":{},"geometry":null}', 1) is None
    assert split_features(b'{"type":"FeatureCollection","features":[]}', 1) is None
    # a cut proved in some other array than the features
    other = b'{"type":"FeatureCollection","x":[' + b'{"a":1},' * 50 + b'{"a":1}],"features":[]}'
    assert split_features(other, 5) is None


# --------------------------------------------------------------------------- through the importer


@pytest.fixture
def in_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any GeoJSON file is parsed in pieces of three features (on SQLite: PostgreSQL reads whole)."""
    monkeypatch.setattr(readers, "STREAM_MIN_BYTES", 0)
    monkeypatch.setattr(readers, "FIRST_PIECE_BYTES", 500)
    monkeypatch.setattr(readers, "PIECE_FEATURES", 3)


def _site(i: int, x: float, y: float, **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [x, y]},
        "properties": {"统一编号": f"P{i:03d}", "名称": f"点{i}", "灾害类型": "滑坡", **props},
    }


def _stored(db: Database) -> dict[str, tuple[Any, ...]]:
    with db.read() as s:
        rows = s.execute(select(HazardSite.code, HazardSite.lon, HazardSite.lat, HazardSite.threatened_people))
        return {r[0]: (round(r[1], 7), round(r[2], 7), r[3]) for r in rows}


def test_a_crs_after_the_features_reads_the_file_again(county: Database, in_pieces: None, tmp_path: Path) -> None:
    """Gauss–Krüger coordinates whose ``crs`` member follows the features (the first pieces were read as degrees)."""
    to_gk = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:4528", always_xy=True)
    lonlat = [(EAST_BOX[0] + 0.001 * (i + 1), EAST_BOX[1] + 0.002 * (i + 1)) for i in range(20)]
    feats = [_site(i, *to_gk.transform(x, y)) for i, (x, y) in enumerate(lonlat)]
    crs = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4528"}}
    path = tmp_path / "gk.geojson"
    path.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": feats, "crs": crs}))
    res = import_file(county, path, scope_unit=COUNTY)
    assert (res.created, res.problems, res.source_crs) == (20, [], "EPSG:4528")
    stored = _stored(county)
    for i, (x, y) in enumerate(lonlat):
        assert stored[f"P{i:03d}"][:2] == pytest.approx((x, y), abs=1e-7)


def test_a_field_first_named_by_later_features_reads_the_file_again(
    county: Database, in_pieces: None, tmp_path: Path
) -> None:
    """Features that omit empty properties: 威胁人数 appears only after the first pieces."""
    feats = [_site(i, EAST_BOX[0] + 0.001 * (i + 1), EAST_BOX[1] + 0.01) for i in range(12)]
    feats += [_site(i, EAST_BOX[0] + 0.001 * (i + 1), EAST_BOX[1] + 0.01, 威胁人数=i) for i in range(12, 24)]
    path = tmp_path / "late.geojson"
    path.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": feats}))
    res = import_file(county, path, scope_unit=COUNTY)
    assert (res.created, res.problems) == (24, [])
    stored = _stored(county)
    assert [stored[f"P{i:03d}"][2] for i in range(24)] == [0] * 12 + list(range(12, 24))
    with county.read() as s:
        assert s.scalars(select(ImportBatch.status)).all() == ["committed"]  # one batch: the first try left nothing


def test_an_unmapped_property_of_later_features_goes_to_extra(
    county: Database, in_pieces: None, tmp_path: Path
) -> None:
    feats = [_site(i, EAST_BOX[0] + 0.001 * (i + 1), EAST_BOX[1] + 0.01) for i in range(15)]
    feats[-1]["properties"]["巡查备注"] = "汛期加密"
    path = tmp_path / "extra.geojson"
    path.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": feats}))
    assert import_file(county, path, scope_unit=COUNTY).created == 15
    with county.read() as s:
        extra = {code: e for code, e in s.execute(select(HazardSite.code, HazardSite.extra))}
    assert extra["P014"] == {"巡查备注": "汛期加密"} and extra["P000"] == {}


def test_a_syntax_error_late_in_the_file_keeps_nothing(county: Database, in_pieces: None, tmp_path: Path) -> None:
    feats = [_site(i, EAST_BOX[0] + 0.001 * (i + 1), EAST_BOX[1] + 0.01) for i in range(20)]
    path = tmp_path / "broken.geojson"
    path.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": feats})[:-40])
    with pytest.raises(FileRejected) as exc:
        import_file(county, path, scope_unit=COUNTY)
    assert exc.value.problems[0].reason == "GeoJSON 格式错误"
    assert "line 1" in (exc.value.problems[0].value or "")  # the whole file's own position
    assert _stored(county) == {}
    with county.read() as s:
        assert s.scalars(select(ImportBatch.status)).all() == ["rejected"]


def test_pieces_and_whole_store_the_same(county: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(7)
    feats = [
        _site(i, EAST_BOX[0] + 0.001 * (i + 1), EAST_BOX[1] + 0.01, 威胁人数=i, 备注=rng.choice(TRICKY) or None)
        for i in range(40)
    ]
    path = tmp_path / "same.geojson"
    path.write_bytes(json.dumps({"type": "FeatureCollection", "features": feats}, indent=1).encode())
    import_file(county, path, scope_unit=COUNTY)
    whole = _stored(county)
    monkeypatch.setattr(readers, "STREAM_MIN_BYTES", 0)
    monkeypatch.setattr(readers, "FIRST_PIECE_BYTES", 300)
    monkeypatch.setattr(readers, "PIECE_FEATURES", 4)
    res = import_file(county, path, scope_unit=COUNTY)
    assert (res.created, res.updated, res.unchanged) == (0, 0, 40)
    assert _stored(county) == whole


def test_only_json_whitespace_separates_features() -> None:
    """A vertical tab or form feed between two features is not JSON whitespace: the file is invalid."""
    feats = [{"type": "Feature", "properties": {"i": i}, "geometry": None} for i in range(40)]
    text = orjson.dumps({"type": "FeatureCollection", "features": feats})
    for bad in (b"}\x0b,{", b"},\x0c{"):
        data = text.replace(b"},{", bad, 1).replace(b"},{", b"}, {")
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(data)
        for first_bytes in (1, 30, 200):
            _never_accepted(data, first_bytes, 3)


def test_the_nesting_limit_holds_in_every_piece() -> None:
    """orjson refuses a document nested deeper than 1,024 levels; a middle piece must not get one level more."""
    feats = [{"type": "Feature", "properties": {"i": i}, "geometry": None} for i in range(30)]
    deep = b"[" * 1021 + b"1" + b"]" * 1021  # with the collection, the features array and the feature: 1,025
    text = orjson.dumps({"type": "FeatureCollection", "features": feats})
    data = text.replace(b'{"i":15}', b'{"i":15,"deep":' + deep + b"}")
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(data)
    for first_bytes in (1, 100, 500):
        _never_accepted(data, first_bytes, 2)


@pytest.mark.parametrize("position", [[118.7, 26.5, 10.0, 1.0], [], [118.7]])
def test_a_point_means_the_same_whatever_shares_its_chunk(position: list[float]) -> None:
    """Where a chunk's bounds fall (pieces move them) must not change how a point is read."""
    odd = {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": position}}
    plain = {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [118.7, 26.5]}}
    null = {"type": "Feature", "properties": {}, "geometry": None}

    def outcome(feats: list[dict[str, Any]]) -> Any:
        try:
            geoms = readers._geojson_chunk(feats, [{} for _ in feats], []).geoms
        except Exception as exc:  # as read_chunks would turn it into a whole-file problem
            return type(exc).__name__
        assert geoms is not None
        return geoms[0] is None

    assert outcome([odd, plain]) == outcome([odd, null])
    if not position:
        assert outcome([odd, plain]) is True  # no position: as a null geometry (a row problem later)


def test_a_required_column_missing_from_the_first_piece(county: Database, in_pieces: None, tmp_path: Path) -> None:
    """名称 is required; the first features leave it out. Read whole, those rows are bad, the others import."""
    feats = [_site(i, EAST_BOX[0] + 0.001 * (i + 1), EAST_BOX[1] + 0.01) for i in range(20)]
    for f in feats[:8]:
        del f["properties"]["名称"]
    path = tmp_path / "late_name.geojson"
    path.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": feats}))
    res = import_file(county, path, scope_unit=COUNTY, skip_bad=True)
    assert res.created == 12 and res.rejected == 8
    assert {p.field for p in res.problems} == {"名称"}
