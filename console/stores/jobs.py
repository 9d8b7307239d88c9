"""Replay and redrive jobs in the index: resolve a request's selection into items, preview
it (dry run), create, list, inspect and cancel jobs, and answer "was this record already
redriven, and where to?" (what a request asks for is read in console/actions/job_request.py).
One store for both sides of the queue (the views that fill it, the runner that empties it),
hence its length.

A request selects records either by explicit coordinates or by an event filter (the one the
events page uses: `console/event_store.py`). Redrive sends each DLQ record to the original
topic named in its headers unless a target topic is given; replay sends each record to its
own topic unless a target is given.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, NotRequired

from sqlalchemy import Connection, Engine, and_, func, insert, or_, select, update
from typing_extensions import TypedDict

from collectors.index.action_models import items_table, jobs_table, journal_table
from collectors.index.models import events_table
from collectors.index.saga_models import sagas_table
from console.actions.job_request import (
    Coordinates,
    JobRequest,
)
from console.stores import audit as audit_store
from console.stores import events as event_store
from console.stores.events import format_time
from console.stores.sagas import SAGA_OVER

ACTIVE = ("pending", "running", "cancelling")
FINISHED = ("done", "cancelled", "failed")
SAMPLE_SIZE = 20


class SentCopy(TypedDict):
    """The copy a job sent of a record: where it went, when, by which job."""

    target_topic: str
    target_partition: int
    target_offset: int
    at_ms: int | None
    job_id: int


class RedriveState(TypedDict):
    state: str  # the latest redrive item's state; "sent" once a copy was sent
    job_id: int
    sent_to: NotRequired[SentCopy]


# One earlier round of a record that came back to a DLQ ("from" is a keyword: the
# functional form).
RedriveRound = TypedDict(
    "RedriveRound",
    {"job_id": int, "at_ms": int | None, "actor": str, "from": list[Any], "to": list[Any]},
)


# --- resolving a selection ------------------------------------------------------------------

_ROW_COLUMNS = [
    events_table.c.topic, events_table.c.partition, events_table.c.offset,
    events_table.c.is_dlq, events_table.c.dlq_original_topic, events_table.c.timestamp_ms,
    events_table.c.dlq_error_class, events_table.c.saga_id, events_table.c.event_type,
]  # fmt: skip


@dataclass
class PlannedItem:
    source: Coordinates
    target_topic: str | None
    state: str  # pending | skipped | failed
    note: str | None = None
    error_class: str | None = None
    saga_over: bool = False  # its saga has ended (see SAGA_OVER): held back unless included


def planned_items(engine: Engine, request: JobRequest) -> Iterator[list[PlannedItem]]:
    """The items of a request, in send order (oldest first), in batches."""
    for rows, missing in _selected_rows(engine, request):
        batch = [_plan(request, row) for row in rows]
        _check_sagas(engine, request, rows, batch)
        batch += [PlannedItem(coords, None, "failed", "not in the index") for coords in missing]
        yield batch


def _check_sagas(
    engine: Engine, request: JobRequest, rows: Sequence[Mapping[str, Any]],
    batch: list[PlannedItem],
) -> None:  # fmt: skip
    """Mark the items whose saga is over: held back (skipped, the note says why) unless the
    request includes them, then sent with the same warning."""
    wanted = {row["saga_id"] for row, item in zip(rows, batch, strict=True)
              if item.state == "pending" and row["saga_id"]}  # fmt: skip
    if not wanted:
        return
    s = sagas_table.c
    with engine.connect() as connection:
        ended = {
            row.saga_id: (row.status, row.last_ms)
            for row in connection.execute(
                select(s.saga_id, s.status, s.last_ms).where(
                    s.cluster == request.cluster, s.saga_id.in_(sorted(wanted)),
                    s.status.in_(SAGA_OVER),
                )
            )
        }  # fmt: skip
    for row, item in zip(rows, batch, strict=True):
        if item.state != "pending" or row["saga_id"] not in ended:
            continue
        status, last_ms = ended[row["saga_id"]]
        item.saga_over = True
        item.note = (
            f"saga {row['saga_id']} was {status.replace('_', ' ')} (last event "
            f"{format_time(last_ms)}): sending this re-runs {row['event_type'] or 'its step'} "
            "after the saga ended"
        )
        if not request.options.include_ended_sagas:
            item.state = "skipped"


def _selected_rows(
    engine: Engine, request: JobRequest
) -> Iterator[tuple[list[dict[str, Any]], list[Coordinates]]]:
    if not request.items:
        for rows in event_store.iter_matching(engine, request.event_filter(), _ROW_COLUMNS):
            yield rows, []
        return
    c = events_table.c
    ordered = list(dict.fromkeys(request.items))
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        match = source_match(c.topic, c.partition, c.offset, chunk)
        with engine.connect() as connection:
            found = {
                (row["topic"], row["partition"], row["offset"]): row
                for row in (
                    dict(r._mapping)
                    for r in connection.execute(
                        select(*_ROW_COLUMNS).where(c.cluster == request.cluster, match)
                    )
                )
            }
        rows = [found[coords] for coords in chunk if coords in found]
        rows.sort(key=lambda r: (r["topic"], r["partition"], r["offset"]))
        yield rows, [coords for coords in chunk if coords not in found]


def _plan(request: JobRequest, row: Mapping[str, Any]) -> PlannedItem:
    source = (row["topic"], row["partition"], row["offset"])
    if request.kind == "redrive" and not row["is_dlq"]:
        return PlannedItem(source, None, "skipped", "not a dead-letter record")
    if request.target_topic:
        target: str | None = request.target_topic
    elif request.kind == "redrive":
        target = row["dlq_original_topic"]
    else:
        target = row["topic"]
    if not target:
        return PlannedItem(
            source, None, "skipped", "no original topic in its headers: choose a target topic"
        )
    return PlannedItem(source, target, "pending", error_class=row.get("dlq_error_class"))


# --- redrive status ---------------------------------------------------------------------------


def source_match(
    topic_col: Any, partition_col: Any, offset_col: Any, coords: Sequence[Coordinates]
) -> Any:
    """WHERE for a set of coordinates: one IN list per partition, so the index is used."""
    by_partition: dict[tuple[str, int], list[int]] = {}
    for topic, partition, offset in coords:
        by_partition.setdefault((topic, partition), []).append(offset)
    return or_(
        *(
            and_(topic_col == t, partition_col == p, offset_col.in_(offsets))
            for (t, p), offsets in by_partition.items()
        )
    )


def sent_copies(
    connection: Connection, cluster: str, sources: Sequence[Coordinates], kind: str = "redrive"
) -> dict[Coordinates, SentCopy]:
    """The latest copy sent by a job of `kind` for each source: target, job, time."""
    if not sources:
        return {}
    i, j = items_table.c, jobs_table.c
    found: dict[Coordinates, SentCopy] = {}
    for start in range(0, len(sources), 500):
        chunk = sources[start : start + 500]
        match = source_match(i.source_topic, i.source_partition, i.source_offset, chunk)
        query = (
            select(
                i.source_topic,
                i.source_partition,
                i.source_offset,
                i.target_topic,
                i.target_partition,
                i.target_offset,
                i.done_at_ms,
                i.job_id,
            )
            .join(jobs_table, j.id == i.job_id)
            .where(i.cluster == cluster, i.state == "sent", j.kind == kind, match)
            .order_by(i.done_at_ms)
        )
        for row in connection.execute(query):
            found[(row.source_topic, row.source_partition, row.source_offset)] = SentCopy(
                target_topic=row.target_topic,
                target_partition=row.target_partition,
                target_offset=row.target_offset,
                at_ms=row.done_at_ms,
                job_id=row.job_id,
            )
    return found


def describe_copy(copy: Mapping[str, Any]) -> str:
    return (
        f"already redriven to {copy['target_topic']}/{copy['target_partition']}"
        f"@{copy['target_offset']} (job {copy['job_id']})"
    )


def redrive_states(
    engine: Engine, cluster: str, sources: Sequence[Coordinates]
) -> dict[Coordinates, RedriveState]:
    """For the DLQ list: each record's latest redrive item (any state) and its copy."""
    if not sources:
        return {}
    i, j = items_table.c, jobs_table.c
    states: dict[Coordinates, RedriveState] = {}
    with engine.connect() as connection:
        match = source_match(i.source_topic, i.source_partition, i.source_offset, sources)
        query = (
            select(i.source_topic, i.source_partition, i.source_offset, i.state, i.job_id, i.id)
            .join(jobs_table, j.id == i.job_id)
            .where(i.cluster == cluster, j.kind == "redrive", match)
            .order_by(i.id)
        )
        for row in connection.execute(query):
            states[(row.source_topic, row.source_partition, row.source_offset)] = RedriveState(
                state=row.state, job_id=row.job_id
            )
        for coords, copy in sent_copies(connection, cluster, list(sources)).items():
            states.setdefault(coords, RedriveState(state="sent", job_id=copy["job_id"]))
            states[coords]["sent_to"] = copy
    return states


def redrive_history(
    engine: Engine, cluster: str, event: Mapping[str, Any], depth: int = 10
) -> list[RedriveRound]:
    """Earlier rounds of a record that came back to a DLQ: its original record was itself a
    redriven copy of an older DLQ record, and so on (newest round first)."""
    rounds: list[RedriveRound] = []
    i, j = items_table.c, jobs_table.c
    original = (
        event.get("dlq_original_topic"),
        event.get("dlq_original_partition"),
        event.get("dlq_original_offset"),
    )
    with engine.connect() as connection:
        for _ in range(depth):
            if None in original:
                break
            row = connection.execute(
                select(
                    i.source_topic,
                    i.source_partition,
                    i.source_offset,
                    i.job_id,
                    i.done_at_ms,
                    j.actor,
                )
                .join(jobs_table, j.id == i.job_id)
                .where(
                    i.cluster == cluster,
                    i.target_topic == original[0],
                    i.target_partition == original[1],
                    i.target_offset == original[2],
                )
                .limit(1)
            ).first()
            if row is None:
                break
            rounds.append(RedriveRound({
                "job_id": row.job_id, "at_ms": row.done_at_ms, "actor": row.actor,
                "from": [row.source_topic, row.source_partition, row.source_offset],
                "to": list(original),
            }))  # fmt: skip
            source = connection.execute(
                select(
                    events_table.c.dlq_original_topic,
                    events_table.c.dlq_original_partition,
                    events_table.c.dlq_original_offset,
                ).where(
                    events_table.c.cluster == cluster,
                    events_table.c.topic == row.source_topic,
                    events_table.c.partition == row.source_partition,
                    events_table.c.offset == row.source_offset,
                )
            ).first()
            if source is None:
                break
            original = (source[0], source[1], source[2])
    return rounds


# --- preview, create, inspect, cancel ------------------------------------------------------


class JobPreview(TypedDict):
    """A dry run: how many records would be sent to which topic, skipped or refused."""

    dry_run: bool
    kind: str
    cluster: str
    total: int
    to_send: int
    skipped: int
    already_redriven: int
    saga_over: int  # records of sagas that are over: held back unless include_ended_sagas
    saga_notes: list[str]  # what the first of them would re-run, in words
    failed: int
    targets: dict[str, int]
    sample: list[dict[str, Any]]  # source, target_topic, would, note, error_class


def preview(engine: Engine, request: JobRequest, sample: int = SAMPLE_SIZE) -> JobPreview:
    """What a job would do: counts per target, skipped and failed counts, a sample."""
    total = skipped = failed = already = saga_over = 0
    targets: dict[str, int] = {}
    examples: list[dict[str, Any]] = []
    saga_notes: list[str] = []
    for batch in planned_items(engine, request):
        if request.kind == "redrive" and not request.options.force:
            with engine.connect() as connection:
                copies = sent_copies(
                    connection, request.cluster, [p.source for p in batch if p.state == "pending"]
                )
        else:
            copies = {}
        for item in batch:
            total += 1
            saga_over += item.saga_over
            if item.saga_over and len(saga_notes) < 5 and item.note:
                saga_notes.append(
                    f"{item.source[0]}/{item.source[1]}@{item.source[2]}: {item.note}"
                )
            state, note = item.state, item.note
            if state == "pending" and item.source in copies:
                already += 1
                copy = copies[item.source]
                state = "skipped"
                note = describe_copy(copy)
            if state == "pending":
                targets[item.target_topic or ""] = targets.get(item.target_topic or "", 0) + 1
            elif state == "skipped":
                skipped += 1
            else:
                failed += 1
            if len(examples) < sample:
                examples.append({
                    "source": {"topic": item.source[0], "partition": item.source[1],
                               "offset": item.source[2]},
                    "target_topic": item.target_topic, "would": state, "note": note,
                    "error_class": item.error_class,
                })  # fmt: skip
    return JobPreview(
        dry_run=True,
        kind=request.kind,
        cluster=request.cluster,
        total=total,
        to_send=sum(targets.values()),
        skipped=skipped,
        already_redriven=already,
        saga_over=saga_over,
        saga_notes=saga_notes,
        failed=failed,
        targets=targets,
        sample=examples,
    )


def _now_ms() -> int:
    return int(time.time() * 1000)


def add_journal(connection: Connection, job_id: int, level: str, message: str) -> None:
    connection.execute(
        insert(journal_table).values(
            job_id=job_id, at_ms=_now_ms(), level=level, message=message[:2000]
        )
    )


def create_job(engine: Engine, request: JobRequest, actor: str, remote: str | None) -> int:
    """Store the job and its items in one transaction; the runner picks it up."""
    now = _now_ms()
    options = asdict(request.options)
    with engine.begin() as connection:
        result = connection.execute(
            insert(jobs_table).values(
                action_id=uuid.uuid4().hex, kind=request.kind, cluster=request.cluster,
                status="pending", actor=actor, remote=remote,
                selection=json.dumps(request.selection_json()),
                target_topic=request.target_topic, options=json.dumps(options),
                total=0, sent=0, skipped=0, failed=0, target_starts="{}",
                created_at_ms=now, updated_at_ms=now,
            )
        )  # fmt: skip
        key = result.inserted_primary_key
        assert key is not None
        job_id = int(key[0])
        seq = total = skipped = failed = 0
        for batch in planned_items(engine, request):
            rows = []
            for item in batch:
                rows.append({
                    "job_id": job_id, "seq": seq, "cluster": request.cluster,
                    "source_topic": item.source[0], "source_partition": item.source[1],
                    "source_offset": item.source[2], "state": item.state,
                    "target_topic": item.target_topic, "note": item.note,
                    "done_at_ms": None if item.state == "pending" else now,
                })  # fmt: skip
                seq += 1
                skipped += item.state == "skipped"
                failed += item.state == "failed"
            if rows:
                connection.execute(insert(items_table), rows)
            total += len(rows)
        connection.execute(
            update(jobs_table)
            .where(jobs_table.c.id == job_id)
            .values(total=total, skipped=skipped, failed=failed)
        )
        target = request.target_topic or (
            "original topics" if request.kind == "redrive" else "own topics"
        )
        add_journal(
            connection, job_id, "info",
            f"{request.kind} of {total} records to {target} created by {actor}",
        )  # fmt: skip
        audit_store.record(
            connection, actor, f"action.{request.kind}", f"job {job_id}",
            {"selection": request.selection_json(), "target_topic": request.target_topic,
             "options": options, "total": total, "cluster": request.cluster},
            remote,
        )  # fmt: skip
    return job_id


def cancel_job(engine: Engine, job_id: int, actor: str, remote: str | None) -> str | None:
    """Ask a job to stop; returns its status afterwards (None: no such job).

    A pending job is cancelled at once; a running one stops after its current chunk.
    Cancelling never undoes what was already sent.
    """
    j = jobs_table.c
    now = _now_ms()
    with engine.begin() as connection:
        status = connection.execute(select(j.status).where(j.id == job_id)).scalar()
        if status is None:
            return None
        if status in FINISHED or status == "cancelling":
            return str(status)
        new = "cancelled" if status == "pending" else "cancelling"
        values: dict[str, Any] = {"status": new, "updated_at_ms": now}
        if new == "cancelled":
            values["finished_at_ms"] = now
        connection.execute(
            update(jobs_table).where(j.id == job_id, j.status == status).values(**values)
        )
        add_journal(connection, job_id, "info", f"cancel requested by {actor}")
        audit_store.record(
            connection, actor, "action.cancel", f"job {job_id}", {"was": status}, remote
        )
    return new


class Job(TypedDict):
    """A job as pages and the API show it, with its rate and progress."""

    id: int
    action_id: str
    kind: str  # replay | redrive
    cluster: str
    status: str
    actor: str
    remote: str | None
    selection: dict[str, Any]
    target_topic: str | None
    options: dict[str, Any]
    total: int
    sent: int
    skipped: int
    failed: int
    done: int
    percent: float
    rate: float | None  # records sent per second
    error: str | None
    created_at_ms: int
    started_at_ms: int | None
    finished_at_ms: int | None
    elapsed_s: float | None


class JobItem(TypedDict):
    """One record of a job: where it comes from, its state, where its copy went."""

    id: int
    job_id: int
    seq: int
    cluster: str
    source_topic: str
    source_partition: int
    source_offset: int
    state: str
    target_topic: str | None
    target_partition: int | None
    target_offset: int | None
    note: str | None
    done_at_ms: int | None


class JournalLine(TypedDict):
    at_ms: int
    level: str  # info | warning | error
    message: str


def job_view(row: Mapping[str, Any], now_ms: int | None = None) -> Job:
    """A job row as pages and the API show it, with its rate and progress."""
    now_ms = now_ms or _now_ms()
    started, finished = row["started_at_ms"], row["finished_at_ms"]
    elapsed = ((finished or now_ms) - started) / 1000 if started else None
    done = row["sent"] + row["skipped"] + row["failed"]
    return Job(
        id=row["id"],
        action_id=row["action_id"],
        kind=row["kind"],
        cluster=row["cluster"],
        status=row["status"],
        actor=row["actor"],
        remote=row["remote"],
        selection=json.loads(row["selection"]),
        target_topic=row["target_topic"],
        options=json.loads(row["options"]),
        total=row["total"],
        sent=row["sent"],
        skipped=row["skipped"],
        failed=row["failed"],
        done=done,
        percent=round(100 * done / row["total"], 1) if row["total"] else 100.0,
        rate=round(row["sent"] / elapsed, 1) if elapsed and elapsed > 0 else None,
        error=row["error"],
        created_at_ms=row["created_at_ms"],
        started_at_ms=started,
        finished_at_ms=finished,
        elapsed_s=elapsed,
    )


def list_jobs(engine: Engine, limit: int = 100, status: str | None = None) -> list[Job]:
    j = jobs_table.c
    query = select(jobs_table).order_by(j.id.desc()).limit(limit)
    if status == "active":
        query = query.where(j.status.in_(ACTIVE))
    elif status == "finished":
        query = query.where(j.status.in_(FINISHED))
    with engine.connect() as connection:
        return [job_view(dict(r._mapping)) for r in connection.execute(query)]


def get_job(engine: Engine, job_id: int) -> Job | None:
    with engine.connect() as connection:
        row = connection.execute(select(jobs_table).where(jobs_table.c.id == job_id)).first()
    return job_view(dict(row._mapping)) if row else None


def job_journal(engine: Engine, job_id: int, limit: int = 200) -> list[JournalLine]:
    c = journal_table.c
    query = (
        select(c.at_ms, c.level, c.message).where(c.job_id == job_id).order_by(c.id.desc())
    ).limit(limit)
    with engine.connect() as connection:
        rows = [JournalLine(at_ms=r.at_ms, level=r.level, message=r.message)
                for r in connection.execute(query)]  # fmt: skip
    return rows[::-1]


def job_items(
    engine: Engine, job_id: int, state: str | None = None, limit: int = 100
) -> list[JobItem]:
    c = items_table.c
    query = select(items_table).where(c.job_id == job_id)
    if state:
        query = query.where(c.state == state)
    query = query.order_by(c.seq).limit(limit)
    with engine.connect() as connection:
        return [JobItem(**r._mapping) for r in connection.execute(query)]  # type: ignore[typeddict-item]


def item_counts(engine: Engine, job_id: int) -> dict[str, int]:
    c = items_table.c
    query = select(c.state, func.count()).where(c.job_id == job_id).group_by(c.state)
    with engine.connect() as connection:
        return {state: count for state, count in connection.execute(query)}
