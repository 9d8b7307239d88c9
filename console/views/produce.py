"""Produce a record by hand, or produce an existing one again with edits.

Pages: /produce?cluster=&topic= (the form; ``from=topic/partition/offset`` fills it with
that record, read from Kafka or else from its complete copy in the index) and POST
/produce (sends, then shows the broker's answer). JSON twin: POST /api/produce.
Operator role; every record sent leaves an audit row (where it went, its size, its header
names and where it came from; never its key or value).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from starlette.concurrency import run_in_threadpool

from collectors.config import ClusterConfig
from collectors.schemas.decoders import to_json
from collectors.schemas.decoding import DECODED, REGISTRY_CONTENT_TYPES, RecordDecoder
from collectors.schemas.registry import RegisteredSchema
from collectors.schemas.wire import is_framed
from console.actions.source import SourceRecord, index_copies, read_at, record_reader
from console.auth.roles import OPERATOR
from console.operations import produce
from console.operations.fields import PlanError
from console.stores import audit
from console.stores.schemas import NoRegistry, clusters_with_registry, registry_of
from console.views.operating import chosen_cluster, cluster_names, cluster_of, kafka_refusals
from console.web import urls
from console.web.endpoints import Call, Endpoint, Reply
from console.web.schema import BOOLEAN, STRING, Schema, array_of, enum, q, shape

MAX_BODY = 10 * 1024 * 1024
FORM_FIELDS = ("cluster", "topic", "partition", "key", "value", "value_base64", "headers",
               "compression", "tombstone", "subject", "version", "from")  # fmt: skip


def _source(text: str) -> tuple[str, int, int] | None:
    """`topic/partition/offset` (the topic may contain no '/'), or None."""
    topic, _, rest = text.rpartition("/")
    topic, _, partition = topic.rpartition("/")
    if not topic or not partition.isdigit() or not rest.isdigit():
        return None
    return topic, int(partition), int(rest)


async def _record_at(
    call: Call, cluster: ClusterConfig, where: tuple[str, int, int]
) -> SourceRecord | None:
    async with record_reader(cluster) as consumer:
        found = await read_at(consumer, [where])
    if where not in found:
        found = await run_in_threadpool(index_copies, call.engine, cluster.name, [where])
    return found.get(where)


def _as_form(record: SourceRecord) -> dict[str, str]:
    """A record's parts as the form's fields: text where it is UTF-8, else base64."""
    fields = {"key": "", "value": "", "value_base64": "", "headers": "", "tombstone": ""}
    if record.key is not None:
        fields["key"] = record.key.decode("utf-8", errors="replace")
    if record.value is None:
        fields["tombstone"] = "1"
    else:
        try:
            fields["value"] = record.value.decode("utf-8")
        except UnicodeDecodeError:
            fields["value_base64"] = base64.b64encode(record.value).decode("ascii")
    fields["headers"] = "\n".join(
        f"{name}: {(value or b'').decode('utf-8', errors='replace')}"
        for name, value in record.headers
    )
    return fields


def _decoded_for_editing(
    call: Call, fields: dict[str, str], record: SourceRecord
) -> dict[str, str]:
    """A registry-framed Avro or JSON Schema value as its JSON, with the subject and version
    to encode the edited JSON again; {} when it is not one (it is then sent as it was)."""
    value = record.value
    if (
        not value
        or not is_framed(value)
        or fields["cluster"] not in clusters_with_registry(call.state)
    ):
        return {}
    registry = registry_of(call.state, fields["cluster"])
    decoded = RecordDecoder(registry, cluster=fields["cluster"]).decode(
        fields["topic"], "value", value
    )
    editable = (REGISTRY_CONTENT_TYPES["AVRO"], REGISTRY_CONTENT_TYPES["JSON"])
    if decoded is None or decoded.state != DECODED or decoded.content_type not in editable:
        return {}
    try:
        subjects = registry.subjects_of(decoded.schema_id or 0)
    except Exception:
        return {}
    if not subjects:
        return {}
    # One schema is often registered under several subjects: the topic's own comes first.
    own = [pair for pair in subjects if pair[0] == f"{fields['topic']}-value"]
    subject, version = (own or subjects)[0]
    text = json.dumps(json.loads(to_json(decoded.document)), indent=2, ensure_ascii=False)
    return {"value": text, "value_base64": "", "subject": subject, "version": str(version)}


def _schema(call: Call, request: produce.ProduceRequest) -> RegisteredSchema | None:
    if not request.subject:
        return None
    try:
        registry = registry_of(call.state, request.cluster)
        return registry.version(request.subject, request.version).schema
    except NoRegistry as exc:
        raise PlanError(f"subject: {exc}") from None
    except Exception as exc:
        raise PlanError(f"subject: the registry says: {exc}") from None


async def _send(call: Call, raw: dict[str, Any]) -> produce.ProducedJson:
    with kafka_refusals():
        request = produce.parse_request(raw, cluster_names(call))
        schema = await run_in_threadpool(_schema, call, request)
        sent = await produce.send(cluster_of(call, request.cluster), request, schema)
    detail = {
        "partition": sent["partition"], "offset": sent["offset"], "size": sent["size"],
        "headers": [name for name, _ in request.headers], "schema_id": sent["schema_id"],
        "from": raw.get("from") or None, "tombstone": request.value is None,
    }  # fmt: skip
    await run_in_threadpool(
        audit.record, call.engine, call.actor, "record.produce",
        f"{sent['cluster']}/{sent['topic']}", detail, call.remote,
    )  # fmt: skip
    return sent


async def produce_page(call: Call) -> Reply:
    names = cluster_names(call)
    fields = {name: call.query.get(name, "") for name in FORM_FIELDS}
    fields["cluster"] = chosen_cluster(call, fields["cluster"])
    error = None
    source = _source(fields["from"]) if fields["from"] else None
    if fields["from"] and source is None:
        error = "from: topic/partition/offset of the record to produce again"
    elif source is not None:
        if fields["cluster"] not in names:
            error = f"cluster: one of {', '.join(names)}"
        else:
            record = await _record_at(call, cluster_of(call, fields["cluster"]), source)
            if record is None:
                error = f"{fields['from']} is neither in Kafka nor completely in the index"
            else:
                fields |= _as_form(record)
                fields["topic"] = fields["topic"] or source[0]
                decoded = await run_in_threadpool(_decoded_for_editing, call, fields, record)
                fields |= decoded
    page = {
        "fields": fields, "error": error, "codecs": produce.CODECS, "clusters": names,
        "registry_clusters": clusters_with_registry(call.state),
    }  # fmt: skip
    return Reply({}, page=page, status=400 if error else 200)


async def produce_form(call: Call) -> Reply:
    form = await call.request.form()
    raw: dict[str, Any] = {name: form.get(name) for name in FORM_FIELDS}
    sent = await _send(call, raw)
    event_url = urls.event(sent["cluster"], sent["topic"], sent["partition"], sent["offset"])
    return Reply(sent, page={"event_url": event_url}, template="produce_done.html")


async def produce_api(call: Call) -> Reply:
    body = await call.json_object(MAX_BODY)
    return Reply(await _send(call, body), status=201)


HEADER: Schema = shape(required=False, name=STRING, value=STRING, value_base64=STRING)
PRODUCE_REQUEST: Schema = {
    "type": "object",
    "properties": {
        "cluster": STRING,
        "topic": STRING,
        "partition": {"type": ["integer", "null"], "minimum": 0},
        "key": {"type": ["string", "null"], "description": "UTF-8 text; null: no key"},
        "key_base64": STRING,
        "value": {"type": ["string", "null"], "description": "UTF-8 text (JSON with a "
                                                             "subject); null: a tombstone"},
        "value_base64": STRING,
        "headers": array_of(HEADER),
        "compression": enum(*produce.CODECS),
        "subject": {"type": "string", "description": "encode the value with this subject's "
                                                     "schema (Avro or JSON Schema)"},
        "version": {"type": ["string", "integer"], "description": "a version or latest"},
        "tombstone": BOOLEAN,
    },
    "required": ["topic"],
}  # fmt: skip

ENDPOINTS = [
    Endpoint(
        produce_page, OPERATOR, path="/produce", template="produce.html",
        params=tuple(q(name, STRING) for name in ("cluster", "topic", "from")),
    ),
    Endpoint(produce_form, OPERATOR, path="/produce", method="POST"),
    Endpoint(
        produce_api, OPERATOR, api="/api/produce", method="POST",
        summary="Produce one record; the answer is the broker's partition and offset.",
        description="The topic must exist; the record must fit its max.message.bytes. With "
                    "`subject`, the value is JSON, validated and encoded with that schema.",
        body=PRODUCE_REQUEST, status=201, response=produce.ProducedJson,
        errors=(400, 413, 502),
    ),
]  # fmt: skip
