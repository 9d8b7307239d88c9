"""The API guide's redrive example selects what it says it does (docs/guide/api.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from collectors.conventions import Conventions, RawRecord, normalize
from collectors.index.models import events_table
from collectors.index.writer import write_batch
from collectors.kafka.tap import to_row
from console.actions.job_request import parse_request
from console.stores.events import iter_matching

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guide" / "api.md"


def guide_redrive_request() -> dict:
    text = GUIDE.read_text(encoding="utf-8")
    [body] = re.findall(r"-d '(\{\"kind\": \"redrive\".*?\})'", text, flags=re.S)
    return json.loads(body)


def test_the_redrive_example_selects_the_dead_letters_of_its_error(index_db) -> None:
    request = guide_redrive_request()
    topic = request["filter"]["topic"]
    spring = [
        ("kafka_dlt-original-topic", b"payments"),
        ("kafka_dlt-original-partition", b"\x00\x00\x00\x00"),
        ("kafka_dlt-original-offset", b"\x00" * 7 + b"\x05"),
    ]
    records = [
        (b'{"paymentId": "p-1"}', [*spring, ("kafka_dlt-exception-message", b"card declined")]),
        (b'{"paymentId": "p-2"}', [*spring, ("kafka_dlt-exception-message", b"timeout")]),
    ]
    rows = [
        to_row("prod", normalize(RawRecord(topic, 0, n, 1_000, None, value, headers),
                                 Conventions()), 1)
        for n, (value, headers) in enumerate(records)
    ]  # fmt: skip
    write_batch(index_db.engine, "prod", rows, {}, 0)
    job = parse_request(request, ["prod"])
    selected = [
        row["offset"]
        for batch in iter_matching(index_db.engine, job.event_filter(), [events_table.c.offset])
        for row in batch
    ]
    assert selected == [0]
