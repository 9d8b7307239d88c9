"""The re-decode pass: records indexed while their schema was out of reach get decoded.

A record whose registry could not answer (down, slow, refusing the credentials, not
knowing the id) was indexed with its raw bytes and `decode_state = 'pending'`. This
service walks those rows of one cluster (a partial index holds exactly them), rebuilds
each Kafka record from the stored key, value and headers, normalizes it again with the
same conventions and decoder as the tap, and writes the new derived columns back (the
coordinates, bytes and headers stay as they are), with batch hooks seeing the rows as if
they had just arrived: schema usage, and the sagas (the saga follower may have passed a
row while it had no saga id yet; deriving an event twice changes nothing). Nothing is
inserted, so nothing can be duplicated; a row still pending stays for the next round.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, bindparam, func, select, update

from collectors.conventions import Conventions, RawRecord, normalize
from collectors.index.event_row import COLUMN_INDEX, EventTuple
from collectors.index.models import events_table
from collectors.index.writer import BatchHook
from collectors.kafka.tap import to_row
from collectors.schemas.decoding import PENDING, RecordDecoder
from collectors.services import PeriodicService

log = logging.getLogger("eventscope.schemas")

BATCH_ROWS = 500
IDLE_S = 10.0
BUSY_S = 0.2
PENDING_COUNT_CAP = 100_000

# What decoding may change: everything derived, not the record itself.
_KEPT = {"cluster", "indexed_at_ms", "topic", "partition", "offset", "timestamp_ms", "key",
         "value", "value_size", "value_truncated", "is_tombstone", "headers"}  # fmt: skip
UPDATED_COLUMNS = tuple(name for name in COLUMN_INDEX if name not in _KEPT)
_READ_COLUMNS = ("id", "topic", "partition", "offset", "timestamp_ms", "indexed_at_ms", "key",
                 "value", "headers")  # fmt: skip


def stored_headers(headers_json: str) -> list[tuple[str, bytes | None]]:
    """The wire headers again, from the `headers` column (collectors/conventions.py wrote
    it: text, {"b64"}, {"text"|"b64", "truncated"} for long values, and a closing
    ["…", "<n> more headers"] past the stored count)."""
    try:
        entries = json.loads(headers_json)
    except ValueError:
        return []
    headers: list[tuple[str, bytes | None]] = []
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        if not isinstance(entry, list) or len(entry) != 2:
            continue
        name, value = entry
        if name == "…" and index == len(entries) - 1:
            continue
        if value is None:
            headers.append((str(name), None))
        elif isinstance(value, str):
            headers.append((str(name), value.encode("utf-8", "surrogatepass")))
        elif isinstance(value, dict) and "text" in value:
            headers.append((str(name), str(value["text"]).encode("utf-8", "surrogatepass")))
        elif isinstance(value, dict) and "b64" in value:
            try:
                headers.append((str(name), base64.b64decode(str(value["b64"]))))
            except (binascii.Error, ValueError):
                continue
    return headers


def redecode_rows(
    engine: Engine,
    cluster: str,
    conventions: Conventions,
    decoder: RecordDecoder,
    hooks: Sequence[BatchHook],
    after_id: int,
    limit: int = BATCH_ROWS,
) -> tuple[int, int, int]:
    """One batch of pending rows after `after_id`: (rows read, rows decoded or failed for
    good, the last id read)."""
    c = events_table.c
    query = (
        select(*(c[name] for name in _READ_COLUMNS))
        .where(c.cluster == cluster, c.decode_state == PENDING, c.id > after_id)
        .order_by(c.id)
        .limit(limit)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    if not rows:
        return 0, 0, after_id
    settled: list[dict[str, Any]] = []
    new_rows: list[EventTuple] = []
    notes: list[dict[str, Any]] = []
    for row in rows:
        raw = RawRecord(row.topic, row.partition, row.offset, row.timestamp_ms, row.key,
                        row.value, stored_headers(row.headers))  # fmt: skip
        event = normalize(raw, conventions, decoder)
        new = to_row(cluster, event, row.indexed_at_ms)
        if event.decode_state == PENDING:
            notes.append({"row_id": row.id, "note": event.decode_note})
            continue
        settled.append({"row_id": row.id, **{n: new[COLUMN_INDEX[n]] for n in UPDATED_COLUMNS}})
        new_rows.append(new)
    with engine.begin() as connection:
        if settled:
            statement = (
                update(events_table)
                .where(c.id == bindparam("row_id"))
                .values({name: bindparam(name) for name in UPDATED_COLUMNS})
            )
            connection.execute(statement, settled)
            for hook in hooks:
                hook.collect(cluster, new_rows)
                hook.flush(connection, cluster)
        if notes:
            statement = (
                update(events_table)
                .where(
                    c.id == bindparam("row_id"), c.decode_note.is_distinct_from(bindparam("note"))
                )
                .values(decode_note=bindparam("note"))
            )
            connection.execute(statement, notes)
    return len(rows), len(settled), rows[-1].id


def pending_count(engine: Engine, cluster: str, cap: int = PENDING_COUNT_CAP) -> int:
    """Rows of the cluster still waiting to be decoded (counted up to `cap`)."""
    c = events_table.c
    inner = (
        select(c.id).where(c.cluster == cluster, c.decode_state == PENDING).limit(cap).subquery()
    )
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(inner)).scalar_one())


class Redecoder(PeriodicService):
    """Re-decodes one cluster's pending records while its registry answers."""

    def __init__(
        self,
        cluster: str,
        engine: Engine,
        conventions: Conventions,
        decoder: RecordDecoder,
        hooks: Sequence[BatchHook] = (),
        idle_s: float = IDLE_S,
    ) -> None:
        super().__init__()
        self.name = f"redecode[{cluster}]"
        self.cluster = cluster
        self.engine = engine
        self.conventions = conventions
        self.decoder = decoder
        self.hooks = list(hooks)
        self.idle_s = idle_s
        self.retry_s = idle_s
        self.max_backoff_s = 60.0  # the registry is asked again at least once a minute
        self.decoded = 0  # since start
        self._after_id = 0
        self._pass: asyncio.Future[tuple[int, int, int]] | None = None

    async def stop(self) -> None:
        """Stop, and let a pass already in its thread finish: the decoder it uses is
        closed by the tap right after."""
        await super().stop()
        if self._pass is not None:
            with contextlib.suppress(Exception):
                await self._pass
            self._pass = None

    async def step(self) -> float:
        down = self.decoder.registry_down
        if down is not None:
            raise RuntimeError(f"schema registry unavailable: {down}")
        started = time.monotonic()
        self._pass = asyncio.ensure_future(asyncio.to_thread(
            redecode_rows, self.engine, self.cluster, self.conventions, self.decoder,
            self.hooks, self._after_id,
        ))  # fmt: skip
        read, settled, last_id = await asyncio.shield(self._pass)
        self.decoded += settled
        if settled:
            log.info("%s decoded %d pending records in %.1f s", self.name, settled,
                     time.monotonic() - started)  # fmt: skip
        if read < BATCH_ROWS:
            self._after_id = 0  # the end: the next round starts over
            return self.idle_s
        self._after_id = last_id
        return BUSY_S
