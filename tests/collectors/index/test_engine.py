"""The engine's set-up (what it changes must not change what is stored) and its SQL helpers."""

from __future__ import annotations

import sqlite3
import time

import pytest
from sqlalchemy import select, text

from collectors.index.engine import (
    StatementTimeout,
    bind_common_types_directly,
    one_of,
    statement_deadline,
)
from collectors.index.models import positions_table


def test_direct_binding_stores_null_blobs_and_flags_as_before() -> None:
    row = (None, b"\x00\xffraw", b"", True, False, 7, "text")

    def stored() -> list[tuple]:
        connection = sqlite3.connect(":memory:")
        connection.execute("CREATE TABLE t (a, b, c, d, e, f, g)")
        connection.execute("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?)", row)
        typed = connection.execute(
            "SELECT typeof(a), typeof(b), b, typeof(c), c, typeof(d), d, typeof(e), e, "
            "typeof(f), f, typeof(g), g FROM t"
        ).fetchall()
        connection.close()
        return typed

    # Whether or not another test registered the adapters before, the rows are the same.
    expected = [
        ("null", "blob", b"\x00\xffraw", "blob", b"", "integer", 1, "integer", 0,
         "integer", 7, "text", "text"),
    ]  # fmt: skip
    assert stored() == expected
    bind_common_types_directly()
    bind_common_types_directly()  # idempotent
    assert stored() == expected


def test_one_of_selects_the_listed_values_on_both_backends(index_db) -> None:
    c = positions_table.c
    rows = [
        {"cluster": "local", "topic": topic, "partition": 0, "next_offset": 1, "updated_at_ms": 1}
        for topic in ("a", "b", "it's", "d")
    ]
    with index_db.engine.begin() as connection:
        connection.execute(positions_table.insert(), rows)
    with index_db.engine.connect() as connection:
        dialect = connection.dialect.name

        def chosen(values: list[str]) -> list[str]:
            query = select(c.topic).where(one_of(c.topic, values, dialect))
            return sorted(connection.scalars(query))

        assert chosen(["a", "it's", "zzz"]) == ["a", "it's"]
        assert chosen([]) == []


# A statement that runs for minutes unless stopped: counting to ten billion.
ENDLESS = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1e10) " \
    "SELECT count(*) FROM n"  # fmt: skip


def test_a_statement_past_its_deadline_is_stopped_and_the_connection_stays_usable(
    index_db,
) -> None:
    engine = index_db.engine
    endless = ENDLESS if index_db.backend == "sqlite" else "SELECT pg_sleep(30)"
    started = time.monotonic()
    with (
        engine.connect() as connection,
        pytest.raises(StatementTimeout),
        statement_deadline(connection, 0.3),
    ):
        connection.execute(text(endless)).all()
    assert time.monotonic() - started < 3
    with engine.connect() as connection, statement_deadline(connection, 5):
        assert connection.execute(text("SELECT 1")).scalar() == 1
    with engine.connect() as connection:  # no deadline left behind on the pooled connection
        assert connection.execute(text("SELECT 2")).scalar() == 2
