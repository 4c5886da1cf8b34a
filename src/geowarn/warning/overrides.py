"""Rule overrides stored in the database, served to the evaluator with a short cache.

A hazard-type override belongs to a unit and applies to the sites in it (the most specific unit
wins); a site override applies to one site. Writes through the API call :meth:`invalidate`; other
processes pick the change up within ``ttl_s``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import select

from geowarn.admin.codes import contains, prefix_of
from geowarn.db import Database
from geowarn.warning.engine import SiteInfo
from geowarn.warning.models import RuleOverride
from geowarn.warning.ruleset import RuleSet, parse_rules


class DbOverrides:
    def __init__(self, db: Database, ttl_s: float = 10.0) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._loaded = 0.0
        self._types: list[tuple[str, str, RuleSet]] = []  # (unit, hazard type, rules), most specific first
        self._sites: dict[int, RuleSet] = {}

    def invalidate(self) -> None:
        with self._lock:
            self._loaded = 0.0

    def _refresh(self) -> None:
        with self._lock:
            if time.monotonic() - self._loaded < self.ttl_s:
                return
            with self.db.read() as s:
                rows: list[Any] = list(s.scalars(select(RuleOverride)))
            types, sites = [], {}
            for r in rows:
                rules = parse_rules(r.body, f"override {r.id}")
                if r.scope == "site" and r.site_id is not None:
                    sites[r.site_id] = rules
                elif r.hazard_type:
                    types.append((r.unit_code, r.hazard_type, rules))
            types.sort(key=lambda x: -len(prefix_of(x[0])))
            self._types, self._sites, self._loaded = types, sites, time.monotonic()

    def __call__(self, site: SiteInfo) -> tuple[RuleSet | None, RuleSet | None]:
        self._refresh()
        by_type = next(
            (rules for unit, kind, rules in self._types if kind == site.hazard_type and contains(unit, site.unit_code)),
            None,
        )
        return by_type, self._sites.get(site.id)
