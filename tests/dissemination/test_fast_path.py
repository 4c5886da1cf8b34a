"""The columnar recipient resolution (issue 5: a province in under a second) against the straightforward one.

``resolve.for_areas(columnar=False)`` is the reference: one :class:`Candidate` per register record and
:func:`recipients.merge`. The fast path keeps residents as numpy columns, finds the households of red areas
with ``shapely.intersects_xy`` and merges phones with ``np.unique``. Both must name the same people with
the same reasons, on both backends, in a seeded random world where phones are shared between residents,
households and officials.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from sqlalchemy import insert

from geowarn.admin.models import AdminUnit
from geowarn.db import Database
from geowarn.dissemination import directory, resolve
from geowarn.dissemination.recipients import Candidate, Recipient, Residents, merge, merge_residents
from geowarn.dissemination.resolve import Resolution
from geowarn.inventory.models import HazardSite, Household, Person, Resident, RiskZone, Shelter
from tests.dissemination.world import T0, build

COUNTY = "350922"
TOWNS = [f"{COUNTY}{t:03d}" for t in (100, 101, 102)]
VILLAGES = [f"{t}{v:03d}" for t in TOWNS for v in (1, 2)]


def _random_world(db: Database, seed: int) -> None:
    """Sites, risk zones and households on a 1 x 1 degree square; phones drawn from a small pool so that
    residents, household heads and officials share numbers (written in several spellings)."""
    rng = np.random.default_rng(seed)
    pool = [f"139{k:08d}" for k in range(60)]

    def phone() -> str | None:
        r = rng.random()
        if r < 0.15:
            return None
        p = pool[int(rng.integers(len(pool)))]
        return p if r < 0.8 else (f"+86 {p[:3]}-{p[3:7]}-{p[7:]}" if r < 0.9 else "")

    with db.raw_writer() as conn:
        conn.execute(
            insert(AdminUnit),
            [{"code": COUNTY, "name": "示范县", "level": "county"}]
            + [{"code": t, "name": f"镇{t}", "level": "township", "parent_code": COUNTY} for t in TOWNS]
            + [{"code": v, "name": f"村{v}", "level": "village", "parent_code": v[:9]} for v in VILLAGES],
        )
        persons = [
            {"name": f"人{k}", "phone": phone(), "roles": [role], "unit_code": unit, "active": True}
            for k, (role, unit) in enumerate(
                [("responsible", VILLAGES[k % 6]) for k in range(12)]
                + [("duty_official", u) for u in [COUNTY, *TOWNS, *VILLAGES]]
            )
        ]
        conn.execute(insert(Person), persons)
        conn.execute(
            insert(Shelter),
            [
                {
                    "code": f"SH{k}",
                    "name": f"避险点{k}",
                    "lon": 119.5,
                    "lat": 26.5,
                    "geom": shapely.Point(119.5, 26.5),
                    "capacity": 100,
                    "address": None if k else "向东",
                    "unit_code": VILLAGES[k],
                }
                for k in range(3)
            ],
        )
        zones = []
        for k in range(4):
            x, y = 119 + rng.uniform(0, 0.8), 26 + rng.uniform(0, 0.8)
            zones.append({"code": f"FX{k}", "name": f"风险区{k}", "grade": "high", "unit_code": VILLAGES[k],
                          "geom": shapely.MultiPolygon([shapely.box(x, y, x + 0.2, y + 0.2)])})  # fmt: skip
        conn.execute(insert(RiskZone), zones)
        sites = []
        for k in range(10):
            x, y = 119 + rng.uniform(0, 1), 26 + rng.uniform(0, 1)
            sites.append(
                {
                    "code": f"HP{k}",
                    "name": f"滑坡{k}",
                    "hazard_type": "landslide",
                    "lon": x,
                    "lat": y,
                    "geom": shapely.Point(x, y),
                    "minx": x,
                    "maxx": x,
                    "miny": y,
                    "maxy": y,
                    "unit_code": VILLAGES[k % 6],
                    "township_code": VILLAGES[k % 6][:9],
                    "responsible_person_id": 1 + k,
                    "monitor_id": 1 + (k + 1) % 12 if k % 3 else None,
                    "status": "registered" if k != 7 else "relocated",
                    "extra": {},
                    "threatened_households": 0,
                    "threatened_people": 0,
                    "threatened_property_yuan": 0,
                    "monitoring_mode": "community",
                    "version": 1,
                }
            )
        conn.execute(insert(HazardSite), sites)
        households, residents = [], []
        for h in range(120):
            x, y = 119 + rng.uniform(0, 1), 26 + rng.uniform(0, 1)
            unit = VILLAGES[int(rng.integers(6))]
            households.append(
                {
                    "id": h + 1,
                    "code": f"H{h}",
                    "head_name": f"户主{h}",
                    "phone": phone(),
                    "size": 3,
                    "lon": x,
                    "lat": y,
                    "geom": shapely.Point(x, y),
                    "minx": x,
                    "maxx": x,
                    "miny": y,
                    "maxy": y,
                    "unit_code": unit,
                    "site_id": int(rng.integers(1, 11)) if rng.random() < 0.5 else None,
                    "risk_zone_id": int(rng.integers(1, 5)) if rng.random() < 0.2 else None,
                    "shelter_id": int(rng.integers(1, 4)) if rng.random() < 0.7 else None,
                }
            )
            residents += [
                {"household_id": h + 1, "name": f"居民{h}-{r}", "unit_code": unit, "phone": phone()}
                for r in range(int(rng.integers(0, 4)))
            ]
        conn.execute(insert(Household), households)
        conn.execute(insert(Resident), residents)


def _as_dict(res: Resolution) -> dict[str, tuple[Any, ...]]:
    def row(r: Recipient) -> tuple[Any, ...]:
        return (r.name, r.phone, r.unit_code, r.audience, r.reasons, r.keys, r.household_id, r.shelter_id)

    out = {r.key: row(r) for r in res.all_recipients()}
    assert len(out) == res.total  # one entry per person
    return out


def _same(db: Database, areas: list[tuple[int, Any]]) -> Resolution:
    """The columnar path from the in-memory directory, and from the database, equal the reference."""
    with db.read() as s:
        assert directory.cached(s) is not None
        fast = resolve.for_areas(s, COUNTY, areas)
        ref = resolve.for_areas(s, COUNTY, areas, columnar=False)
        del s.info["database"]  # a session no Database made: no directory, the database is read
        assert directory.cached(s) is None
        from_db = resolve.for_areas(s, COUNTY, areas)
    for got in (fast, from_db):
        assert list(got.households) == ref.households
        assert _as_dict(got) == _as_dict(ref)
        assert (got.townships, got.shelters, [s.id for s in got.sites]) == (
            ref.townships,
            ref.shelters,
            [s.id for s in ref.sites],
        )
    return fast


def test_fast_path_names_the_same_people_with_the_same_reasons(db: Database) -> None:
    _random_world(db, seed=5)
    red = shapely.Polygon([(119.1, 26.1), (119.7, 26.2), (119.6, 26.8), (119.2, 26.6)])
    cases: list[list[tuple[int, Any]]] = [
        [(4, red)],
        [(3, shapely.box(119, 26, 120, 27)), (4, red)],
        [
            (2, shapely.box(119, 26, 119.6, 26.6)),
            (3, shapely.box(119.4, 26.4, 120, 27)),
            (4, shapely.box(119.4, 26.0, 119.5, 26.3)),
        ],
        [(4, shapely.box(119, 26, 120, 27))],
        [(3, shapely.box(119.3, 26.3, 119.9, 26.9))],
        [(1, shapely.box(119, 26, 120, 27))],
    ]
    sizes = []
    for areas in cases:
        res = _same(db, areas)
        sizes.append((res.total, len(res.households), len(res.residents or [])))
    # the cases are not empty: residents are reached, some shared phones are merged
    whole = _same(db, [(4, shapely.box(119, 26, 120, 27))])
    assert whole.residents is not None and len(whole.residents) > 50 and whole.residents.merged
    assert any(len(r.keys) > 1 for r in whole.recipients if r.audience != "resident")
    assert sizes[-1][2] == 0  # blue: no residents


def test_the_dissemination_world_resolves_the_same(db: Database) -> None:
    build(db)
    res = _same(db, [(4, shapely.box(118.99, 25.99, 119.07, 26.03))])
    assert {h["code"] for h in res.households} == {"H1", "H2", "H3"}


def test_merge_residents_equals_merge() -> None:
    rng = np.random.default_rng(7)
    phones = ["13900000001", "+86 139-0000-0001", None, "", "13900000002", "010-1234", "13900000003"]
    persons = [
        Candidate("person:1", "甲", "13900000002", "350922100", "official", "值班"),
        Candidate("person:2", "乙", None, "350922100", "responsible", "责任人"),
    ]
    n = 300
    kind = rng.integers(0, 2, n).astype(np.int8)
    cands = [
        Candidate(
            f"{('household', 'resident')[kind[i]]}:{i}",
            f"名{i}",
            phones[int(rng.integers(len(phones)))],
            "350922100001",
            "resident",
            ("甲", "乙", "户主，甲")[int(rng.integers(3))],
            i // 3,
            None if i % 4 == 0 else i % 4,
        )
        for i in range(n)
    ]
    texts = ["甲", "乙", "户主，甲"]
    cols = Residents(
        kind,
        np.arange(n, dtype=np.int64),
        np.array([c.name for c in cands], dtype=object),
        np.array([c.phone for c in cands], dtype=object),
        np.array([c.unit_code for c in cands], dtype=object),
        np.array([c.household_id for c in cands], dtype=np.int64),
        np.array([c.shelter_id if c.shelter_id is not None else -1 for c in cands], dtype=np.int64),
        np.array([texts.index(c.reason) for c in cands], dtype=np.int64),
        texts,
    )
    got, rows = merge_residents(merge(persons), cols)
    assert [*got, *rows.recipients()] == merge([*persons, *cands])
    assert T0  # the world's clock is shared with the other tests
