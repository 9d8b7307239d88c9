"""Planning a redrive or replay against the sagas its records belong to (no broker needed:
the plan is read from the index)."""

from __future__ import annotations

from collectors.conventions import Conventions, RawRecord, normalize
from collectors.index.writer import write_batch
from collectors.kafka.tap import to_row
from collectors.saga_rules import SagaStatus
from collectors.saga_state import SagaState
from collectors.sagas import saga_row, upsert_sagas
from console.actions.job_request import parse_request
from console.stores import jobs

SPRING = [("kafka_dlt-original-topic", b"payments"),
          ("kafka_dlt-exception-message", b"gateway timeout")]  # fmt: skip


def dead_letter(offset: int, saga_id: str) -> dict:
    headers = [*SPRING, ("saga_id", saga_id.encode()), ("ce_type", b"ChargePayment")]
    raw = RawRecord("payments.DLT", 0, offset, 1_000 + offset, None, b"{}", headers)
    return to_row("c", normalize(raw, Conventions()), 1)


def test_records_of_sagas_that_are_over_are_held_back_unless_included(index_db) -> None:
    engine = index_db.engine
    write_batch(engine, "c", [dead_letter(0, "checkout-1"), dead_letter(1, "checkout-2")], {}, 0)
    with engine.begin() as connection:
        upsert_sagas(connection, [
            saga_row("c", SagaState("checkout-1", status=SagaStatus.COMPENSATED, last_ms=5_000), 9),
            saga_row("c", SagaState("checkout-2", status=SagaStatus.STUCK, last_ms=5_000), 9),
        ])  # fmt: skip
    request = {"kind": "redrive", "cluster": "c", "filter": {"topic": "payments.DLT"}}

    held = jobs.preview(engine, parse_request(request, ["c"]))
    assert (held["to_send"], held["skipped"], held["saga_over"]) == (1, 1, 1)
    [note] = held["saga_notes"]
    assert note.startswith("payments.DLT/0@0: saga checkout-1 was compensated (last event ")
    assert "re-runs ChargePayment after the saga ended" in note
    would = {s["source"]["offset"]: s["would"] for s in held["sample"]}
    assert would == {0: "skipped", 1: "pending"}  # a stuck saga may need exactly this

    included = jobs.preview(engine, parse_request({**request, "include_ended_sagas": "1"}, ["c"]))
    assert (included["to_send"], included["skipped"], included["saga_over"]) == (2, 0, 1)

    job_id = jobs.create_job(engine, parse_request(request, ["c"]), "ada", None)
    items = {
        i["source_offset"]: (i["state"], i["note"]) for i in jobs.job_items(engine, job_id, None)
    }
    assert items[0][0] == "skipped" and "was compensated" in (items[0][1] or "")
    assert items[1][0] == "pending"
