"""Register statistics: the pure core against hand-computed figures, and the scoped adapter."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import orjson
import pytest
from rich.console import Console

from geowarn.admin.models import AdminUnit
from geowarn.db import Database
from geowarn.inventory.models import HazardSite
from geowarn.inventory.service import set_site_location
from geowarn.inventory.stats import Totals, compute_stats, render_stats, summarize

# township, type, scale, status, mode, households, people, property (yuan)
ROWS = [
    ("350922001", "landslide", "small", "registered", "community", 3, 10, 150_000),
    ("350922001", "rockfall", "small", "under_treatment", "both", 2, 7, 99_999),
    ("350922002", "landslide", "medium", "registered", "instrumented", 30, 120, 2_000_001),
    ("350922002", "landslide", None, "treated", "community", 1, 4, 5),
    ("350922002", "steep_cut_slope", "small", "registered", "community", 2, 6, 300_000),
    ("350922001", "steep_cut_slope", "small", "relocated", "community", 1, 3, 10_000),
    ("350922002", "debris_flow", "small", "written_off", "community", 9, 40, 1_000_000),
]


def _summary(**kw: object) -> object:
    cols = list(zip(*ROWS, strict=True))
    return summarize(*cols[:5], households=cols[5], people=cols[6], property_yuan=cols[7], **kw)  # type: ignore[arg-type]


def test_core_by_hand() -> None:
    st = _summary()
    hs = st.hazard_sites  # type: ignore[attr-defined]
    # the register: everything but the written-off debris flow; slopes apart
    assert hs.totals == Totals(sites=4, households=36, people=141, property_yuan=2_250_005)
    assert hs.totals.property_wan == Decimal("225.0005")
    assert hs.active == Totals(3, 35, 137, 2_250_000)
    assert hs.not_counted == Totals(1, 9, 40, 1_000_000)
    assert st.steep_slopes.totals == Totals(2, 3, 9, 310_000)  # type: ignore[attr-defined]
    assert st.steep_slopes.active == Totals(1, 2, 6, 300_000)  # type: ignore[attr-defined]
    assert st.combined.totals == Totals(6, 39, 150, 2_560_005)  # type: ignore[attr-defined]
    assert [(g.key, g.totals.sites, g.totals.people) for g in hs.by_township] == [
        ("350922001", 2, 17),
        ("350922002", 2, 124),
    ]
    assert [(g.key, g.totals.sites) for g in hs.by_hazard_type] == [("landslide", 3), ("rockfall", 1)]
    assert [(g.key, g.totals.sites) for g in hs.by_scale] == [("small", 2), ("medium", 1), ("unknown", 1)]
    assert [g.key for g in hs.by_status] == ["registered", "under_treatment", "treated"]
    assert hs.group("monitoring_mode", "community") == Totals(2, 4, 14, 150_005)
    assert hs.group("monitoring_mode", "nothing") == Totals()
    # every breakdown adds up to the totals
    for dim in ("township", "hazard_type", "scale", "status", "monitoring_mode"):
        groups = hs.breakdown(dim)
        assert sum(g.totals.people for g in groups) == hs.totals.people
        assert sum(g.totals.property_yuan for g in groups) == hs.totals.property_yuan


def test_core_active_only_and_cube_weights() -> None:
    st = _summary(counted_statuses=["registered", "under_treatment"])
    assert st.hazard_sites.totals == Totals(3, 35, 137, 2_250_000)  # type: ignore[attr-defined]
    assert st.hazard_sites.not_counted == Totals(2, 10, 44, 1_000_005)  # type: ignore[attr-defined]
    assert st.counted_statuses == ("registered", "under_treatment")  # type: ignore[attr-defined]
    # two cube cells standing for 5 and 7 sites
    cube = summarize(
        ["350922001", "350922001"],
        ["landslide", "rockfall"],
        ["small", "small"],
        ["registered", "registered"],
        ["community", "community"],
        households=[10, 20],
        people=[30, 60],
        property_yuan=[10**12, 1],
        sites=[5, 7],
    )
    assert cube.hazard_sites.totals == Totals(12, 30, 90, 10**12 + 1)
    assert cube.hazard_sites.totals.property_wan == Decimal("100000000.0001")


def test_core_empty_and_bad_lengths() -> None:
    st = summarize([], [], [], [], [], [], [], [])
    assert st.combined.totals == Totals()
    assert st.combined.by_township == ()
    with pytest.raises(ValueError):
        summarize(["a"], ["landslide"], ["small"], ["registered"], ["community"], [1, 2], [1], [1])


def _fill(db: Database) -> None:
    with db.write("tester") as s:
        s.add(AdminUnit(code="350922", name="示范县", level="county"))
        s.add(AdminUnit(code="350922001", name="城东街道", level="township", parent_code="350922"))
        s.add(AdminUnit(code="350922002", name="城西街道", level="township", parent_code="350922"))
        for i, (town, ht, scale, status, mode, hh, pp, prop) in enumerate(ROWS):
            site = HazardSite(
                code=f"S{i}",
                name=f"site {i}",
                hazard_type=ht,
                scale=scale,
                status=status,
                monitoring_mode=mode,
                threatened_households=hh,
                threatened_people=pp,
                threatened_property_yuan=prop,
                unit_code=town + "201",
                township_code=town if i != 3 else None,  # falls back to the unit code's township
            )
            set_site_location(site, 118.9 + i / 100, 26.6)
            s.add(site)
        # another county's site must never show up
        other = HazardSite(code="X", name="x", hazard_type="landslide", unit_code="350921100201", threatened_people=999)
        set_site_location(other, 118.0, 26.0)
        s.add(other)


def test_adapter_matches_core_and_scope(db: Database) -> None:
    _fill(db)
    with db.read() as s:
        county = compute_stats(s, "350922")
        west = compute_stats(s, "350922002")
        east = compute_stats(s, "350922001")
    orjson.dumps(county)  # JSON-ready
    assert county["scope"] == {"unit_code": "350922", "name": "示范县", "level": "county"}
    assert county["basis_zh"] == "在册隐患点（不含已核销）"
    hs = county["hazard_sites"]
    assert (hs["sites"], hs["people"], hs["property_yuan"], hs["property_wan"]) == (4, 141, 2_250_005, "225.0005")
    assert county["steep_slopes"]["sites"] == 2 and county["combined"]["people"] == 150
    assert hs["not_counted"]["sites"] == 1
    assert hs["by_hazard_type"][0] == {
        "hazard_type": "landslide",
        "label": "滑坡",
        "sites": 3,
        "households": 34,
        "people": 134,
        "property_yuan": 2_150_006,
        "property_wan": "215.0006",
    }
    assert [(t["township_code"], t["label"], t["sites"]) for t in hs["by_township"]] == [
        ("350922001", "城东街道", 2),
        ("350922002", "城西街道", 2),
    ]
    assert [g["label"] for g in hs["by_status"]] == ["在册", "治理中", "已治理"]
    # a township sees only its own figures
    assert west["scope"]["name"] == "城西街道" and west["scope"]["level"] == "township"
    assert [t["township_code"] for t in west["combined"]["by_township"]] == ["350922002"]
    assert west["hazard_sites"]["people"] == 124 and east["hazard_sites"]["people"] == 17
    assert west["steep_slopes"]["people"] == 6 and east["steep_slopes"]["people"] == 3
    assert west["hazard_sites"]["not_counted"]["people"] == 40
    assert west["combined"]["people"] + east["combined"]["people"] == county["combined"]["people"]


def test_adapter_empty_scope_and_render(db: Database) -> None:
    _fill(db)
    with db.read() as s:
        empty = compute_stats(s, "350923")
        county = compute_stats(s, "350922")
    assert empty["combined"]["sites"] == 0 and empty["hazard_sites"]["by_township"] == []
    console = Console(record=True, width=140)
    console.print(render_stats(county))
    out = console.export_text()
    for heading in ("地质灾害隐患点", "房前屋后高陡边坡", "合计", "按行政区划分", "城西街道", "滑坡", "225.0005"):
        assert heading in out
    console.print(render_stats(empty))


def test_summarize_large_arrays_exact() -> None:
    rng = np.random.default_rng(3)
    n = 50_000
    prop = rng.integers(0, 10**9, n)
    st = summarize(
        rng.choice(["350922001", "350922002"], n),
        rng.choice(["landslide", "rockfall", "steep_cut_slope"], n),
        rng.choice(["small", "medium"], n),
        rng.choice(["registered", "written_off"], n),
        rng.choice(["community", "both"], n),
        households=np.ones(n, int),
        people=np.full(n, 3),
        property_yuan=prop,
    )
    assert st.combined.totals.property_yuan + st.combined.not_counted.property_yuan == int(prop.sum())
    assert st.hazard_sites.totals.sites + st.steep_slopes.totals.sites == st.combined.totals.sites
