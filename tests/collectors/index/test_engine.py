"""The SQLite engine's set-up: what it changes must not change what is stored."""

from __future__ import annotations

import sqlite3

from collectors.index.engine import bind_common_types_directly


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
