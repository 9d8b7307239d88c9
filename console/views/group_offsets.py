"""Changing a consumer group: reset its offsets (previewed first), delete its offsets for
one topic, or delete it.

Pages: /reset-offsets?cluster=&group= (the form; its preview is an htmx partial; POST
applies and shows per partition what Kafka holds now) and, on the group's page, the forms
that delete a topic's offsets (POST /delete-group-offsets, the topic's name typed to
confirm) and the group (POST /delete-group, the group's name typed to confirm). JSON twins:
POST /api/reset-offsets (``dry_run`` previews),
POST /api/clusters/{cluster}/groups/{group}/offsets/delete and DELETE /api/groups/{group}.
All are operator actions and leave an audit row with the offsets before and after.

The pages take the group in the query string, not in the path: a group id may contain
"/", so `/groups/{group}/reset` could not be told from the page of a group named
"x/reset".
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from typing_extensions import TypedDict

from console.auth.roles import OPERATOR
from console.operations import group_offsets, offset_delete
from console.operations.fields import PlanError, topic_name
from console.operations.offset_plan import STRATEGIES, parse_request
from console.stores import audit
from console.stores import groups as group_store
from console.views.operating import chosen_cluster, cluster_names, cluster_of, kafka_refusals
from console.web import urls
from console.web.endpoints import Call, Endpoint, Reply
from console.web.schema import BOOLEAN, INTEGER, STRING, Schema, array_of, enum, p, q, shape

MAX_BODY = 64 * 1024
REQUEST_FIELDS = ("cluster", "strategy", "value", "topic", "partitions")


class DeletedJson(TypedDict):
    cluster: str
    group: str
    deleted: bool


def _group(raw: Any) -> str:
    group = raw.strip() if isinstance(raw, str) else ""
    if not group or len(group) > 249:
        raise HTTPException(400, "group: a consumer group id of 1 to 249 characters")
    return group


def _audit_reset(call: Call, result: group_offsets.ResetResultJson) -> None:
    audit.record(
        call.engine, call.actor, "group.offsets.reset", f"{result['cluster']}/{result['group']}",
        group_offsets.as_audit_detail(result), call.remote,
    )  # fmt: skip


async def reset_page(call: Call) -> Reply:
    """The form; with a strategy chosen, the preview below it (the htmx partial alone)."""
    group = _group(call.query.get("group"))
    raw = {name: call.query.get(name, "") for name in REQUEST_FIELDS}
    raw["cluster"] = chosen_cluster(call, raw["cluster"])
    error, shown = None, None
    topics = await run_in_threadpool(_topics_of, call, raw["cluster"], group)
    if raw["strategy"]:
        try:
            request = parse_request(raw, cluster_names(call), group)
            shown = await group_offsets.preview(cluster_of(call, request.cluster), request)
        except PlanError as exc:
            error = str(exc)
        except HTTPException as exc:
            error = str(exc.detail)
        except Exception as exc:
            error = f"Kafka: {type(exc).__name__}: {exc}"
    page = {
        "group": group, "raw": raw, "preview": shown, "error": error, "topics": topics,
        "strategies": STRATEGIES, "group_url": urls.group(raw["cluster"], group),
        "browse": _browse_links(shown),
    }  # fmt: skip
    return Reply({}, page=page, status=400 if error else 200)


def _topics_of(call: Call, cluster: str, group: str) -> list[str]:
    """The topics the lag sampler last saw the group on, for the form's choices."""
    rows = group_store.find_groups(call.engine, group, cluster)
    topics = rows[0]["detail"].get("topics", []) if len(rows) == 1 else []
    return [t for t in topics if isinstance(t, str)]


def _browse_links(shown: group_offsets.ResetPreviewJson | None) -> dict[tuple[str, int], str]:
    """Per partition, the events search for the records it would read again or skip."""
    links: dict[tuple[str, int], str] = {}
    if shown is None:
        return links
    for row in shown["partitions"]:
        current, new = row["current"], row["new"]
        if current is None or new is None or current == new:
            continue
        low, high = min(current, new), max(current, new) - 1
        links[(row["topic"], row["partition"])] = urls.events(
            cluster=shown["cluster"], topic=row["topic"],
            partition=row["partition"], offset_from=low, offset_to=high,
        )  # fmt: skip
    return links


async def reset_form(call: Call) -> Reply:
    form = await call.request.form()
    group = _group(form.get("group"))
    raw = {name: form.get(name) for name in REQUEST_FIELDS}
    with kafka_refusals():
        request = parse_request(raw, cluster_names(call), group)
        result = await group_offsets.apply(cluster_of(call, request.cluster), request)
    await run_in_threadpool(_audit_reset, call, result)
    page = {"group_url": urls.group(request.cluster, group)}
    return Reply(result, page=page, template="group_reset_done.html")


async def reset_api(call: Call) -> Reply:
    body = await call.json_object(MAX_BODY)
    with kafka_refusals():
        request = parse_request(body, cluster_names(call), _group(body.get("group")))
        cluster = cluster_of(call, request.cluster)
        if body.get("dry_run") is True:
            return Reply(await group_offsets.preview(cluster, request))
        result = await group_offsets.apply(cluster, request)
    await run_in_threadpool(_audit_reset, call, result)
    return Reply(result, status=200 if result["error"] is None else 502)


async def delete_group(call: Call) -> Reply:
    """The form (the name typed again) or the JSON twin (DELETE /api/groups/{group})."""
    if call.api:
        group, cluster_name = _group(call.path.get("group")), call.query.get("cluster", "")
    else:
        form = await call.request.form()
        group, cluster_name = _group(form.get("group")), str(form.get("cluster") or "")
        if str(form.get("confirm") or "").strip() != group:
            raise HTTPException(400, f"type the group's name, {group}, to delete it")
    cluster = cluster_of(call, chosen_cluster(call, cluster_name))
    with kafka_refusals():
        await group_offsets.delete_group(cluster, group)
    await run_in_threadpool(
        audit.record, call.engine, call.actor, "group.delete", f"{cluster.name}/{group}", {},
        call.remote,
    )  # fmt: skip
    return Reply(
        DeletedJson(cluster=cluster.name, group=group, deleted=True),
        redirect=urls.groups_list(cluster=cluster.name),
    )


async def delete_offsets(call: Call) -> Reply:
    """Delete the group's committed offsets for one topic: the group page's form (the
    topic's name typed again) or its JSON twin (the same fields in the body)."""
    if call.api:
        fields: dict[str, Any] = await call.json_object(MAX_BODY)
        group, cluster_name = _group(call.path.get("group")), str(call.path["cluster"])
        cluster = cluster_of(call, cluster_name, 404)
    else:
        fields = dict(await call.request.form())
        group = _group(fields.get("group"))
        cluster = cluster_of(call, chosen_cluster(call, str(fields.get("cluster") or "")))
    with kafka_refusals():
        topic = topic_name(fields.get("topic"))
        if str(fields.get("confirm") or "").strip() != topic:
            raise PlanError(f"confirm: type the topic's name, {topic}, to delete its offsets")
        try:
            result = await offset_delete.delete_offsets(cluster, group, topic)
        except offset_delete.NotFound as exc:
            raise HTTPException(404, str(exc)) from None
    await run_in_threadpool(
        audit.record, call.engine, call.actor, "group.offsets.delete",
        f"{cluster.name}/{group}", offset_delete.as_audit_detail(result), call.remote,
    )  # fmt: skip
    return Reply(result, redirect=urls.group(cluster.name, group))


RESET_REQUEST: Schema = {
    "type": "object",
    "properties": {
        "cluster": STRING,
        "group": STRING,
        "strategy": enum(*STRATEGIES),
        "value": {"type": ["string", "integer"],
                  "description": "timestamp: ISO 8601 or epoch ms; offset; shift: ±N; "
                                 "group: another group's id"},
        "topic": {"type": "string", "description": "only this topic (default: all of the "
                                                   "group's topics)"},
        "partitions": array_of(INTEGER),
        "dry_run": BOOLEAN,
    },
    "required": ["group", "strategy"],
}  # fmt: skip

ENDPOINTS = [
    Endpoint(
        reset_page, OPERATOR, path="/reset-offsets", template="group_reset.html",
        partial="_group_reset_preview.html",
        params=(q("group", STRING, required=True), *(q(n, STRING) for n in REQUEST_FIELDS)),
    ),
    Endpoint(reset_form, OPERATOR, path="/reset-offsets", method="POST"),
    Endpoint(
        reset_api, OPERATOR, api="/api/reset-offsets", method="POST",
        summary="Reset a consumer group's offsets (dry_run: the preview only).",
        description="Kafka refuses while the group has active members; the answer names "
                    "them. Each partition reports the offset Kafka holds afterwards.",
        body=RESET_REQUEST, response=group_offsets.ResetResultJson,
        other_responses=((200, "dry run: the plan per partition",
                          group_offsets.ResetPreviewJson),),
        errors=(400, 413, 502),
    ),
    Endpoint(
        delete_offsets, OPERATOR, path="/delete-group-offsets", method="POST",
        api="/api/clusters/{cluster}/groups/{group:text}/offsets/delete",
        summary="Delete a consumer group's committed offsets for one topic (all its "
                "partitions).",
        description="Kafka refuses while an active member of the group is subscribed to the "
                    "topic; the answer names the members. Each partition reports the offset "
                    "that was committed and what Kafka holds afterwards (null: none).",
        params=(p("cluster", STRING, "the cluster's name"),
                p("group", STRING, "the consumer group id")),
        body=shape(topic=STRING, confirm={"type": "string",
                                          "description": "the topic's name again"}),
        response=offset_delete.OffsetDeleteResultJson, errors=(400, 404, 413, 502),
    ),
    Endpoint(
        delete_group, OPERATOR, path="/delete-group", method="POST",
        api="/api/groups/{group:text}", api_method="DELETE",
        summary="Delete a consumer group and its committed offsets (no active members).",
        params=(p("group", STRING, "the consumer group id"), q("cluster", STRING)),
        response=DeletedJson, errors=(400, 502),
    ),
]  # fmt: skip
