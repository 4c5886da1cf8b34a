"""Ids reserved for bulk inserts are exactly the ones drawn, in order, also when they are not one run."""

from __future__ import annotations

from geowarn.db import Database
from geowarn.io.store import _reserve_ids


def test_reserved_ids_are_unique_ordered_and_below_later_ones(db: Database) -> None:
    with db.write("test") as s:
        conn = s.connection()
        first = _reserve_ids(conn, "person", 1000)
        assert first == list(range(first[0], first[0] + 1000))
        if conn.dialect.name == "postgresql":  # a sequence that steps by 3 gives no run: the ids are read back
            conn.exec_driver_sql("ALTER SEQUENCE person_id_seq INCREMENT BY 3")
            gappy = _reserve_ids(conn, "person", 500)
            assert gappy == list(range(gappy[0], gappy[0] + 1500, 3)) and gappy[0] > first[-1]
            conn.exec_driver_sql("ALTER SEQUENCE person_id_seq INCREMENT BY 1")
            after = conn.exec_driver_sql("SELECT nextval('person_id_seq')").scalar_one()
            assert after > gappy[-1]
        assert _reserve_ids(conn, "person", 0) == []
