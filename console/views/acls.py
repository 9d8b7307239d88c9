"""A cluster's ACLs: the list (filtered by principal or resource), create and delete.

Page: /clusters/{cluster}/acls (listing for every role; the forms for admins). JSON twins:
GET and POST /api/clusters/{cluster}/acls, POST /api/clusters/{cluster}/acls/delete (an
ACL has no id: the body names it whole). Creating and deleting are audited.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from typing_extensions import TypedDict

from collectors.config import ClusterConfig
from console.auth.roles import ADMIN, VIEWER
from console.operations import acls
from console.operations.fields import PlanError
from console.stores import audit
from console.views.operating import cluster_of, kafka_refusals
from console.web.endpoints import Call, Endpoint, Reply
from console.web.schema import STRING, Schema, enum, p, q, text

MAX_BODY = 16 * 1024


class AclsJson(TypedDict):
    cluster: str
    acls: list[acls.AclJson]
    error: str | None  # e.g. the cluster has no authorizer


class AclChangeJson(TypedDict):
    cluster: str
    acl: acls.AclJson
    deleted: int | None


def _cluster(call: Call) -> ClusterConfig:
    return cluster_of(call, call.path["cluster"], 404)


def _matches(acl: acls.AclJson, principal: str, resource: str) -> bool:
    return principal.lower() in acl["principal"].lower() and (
        resource.lower() in acl["resource_name"].lower()
    )


async def acls_page(call: Call) -> Reply:
    cluster = _cluster(call)
    principal = call.query.get("principal", "").strip()[:200]
    resource = call.query.get("resource", "").strip()[:249]
    error = None
    try:
        found = await acls.list_acls(cluster)
    except PlanError as exc:
        found, error = [], str(exc)
    except Exception as exc:
        if call.api:
            raise HTTPException(502, f"Kafka: {type(exc).__name__}: {exc}") from None
        found, error = [], f"Kafka: {type(exc).__name__}: {exc}"
    shown = [acl for acl in found if _matches(acl, principal, resource)]
    page = {"filters": {"principal": principal, "resource": resource}, "total": len(found),
            "choices": {"resource_type": acls.RESOURCE_TYPES, "pattern_type": acls.PATTERN_TYPES,
                        "operation": acls.OPERATIONS, "permission": acls.PERMISSIONS}}  # fmt: skip
    return Reply(AclsJson(cluster=cluster.name, acls=shown, error=error), page=page)


async def _acl_change(call: Call, delete: bool) -> Reply:
    cluster = _cluster(call)
    raw: dict[str, Any] = (
        await call.json_object(MAX_BODY) if call.api else dict(await call.request.form())
    )
    with kafka_refusals():
        acl = acls.parse_acl(raw)
        deleted = await acls.delete_acl(cluster, acl) if delete else None
        if not delete:
            await acls.create_acl(cluster, acl)
    action = "acl.delete" if delete else "acl.create"
    await run_in_threadpool(
        audit.record, call.engine, call.actor, action, cluster.name,
        {"acl": acl, "deleted": deleted}, call.remote,
    )  # fmt: skip
    body = AclChangeJson(cluster=cluster.name, acl=acl, deleted=deleted)
    return Reply(body, status=200 if delete else 201, redirect=f"/clusters/{cluster.name}/acls")


async def create_acl(call: Call) -> Reply:
    return await _acl_change(call, delete=False)


async def delete_acl(call: Call) -> Reply:
    return await _acl_change(call, delete=True)


ACL: Schema = {
    "type": "object",
    "properties": {
        "resource_type": enum(*acls.RESOURCE_TYPES),
        "resource_name": {"type": "string", "description": "a name, a prefix, or '*'"},
        "pattern_type": enum(*acls.PATTERN_TYPES),
        "principal": {"type": "string", "description": "e.g. User:alice"},
        "host": {"type": "string", "description": "an address, or * (the default)"},
        "operation": enum(*acls.OPERATIONS),
        "permission": enum(*acls.PERMISSIONS),
    },
    "required": ["resource_type", "principal", "operation"],
}
CLUSTER = p("cluster", STRING, "the cluster's name")
SHORT = text(249)

ENDPOINTS = [
    Endpoint(
        acls_page, VIEWER, path="/clusters/{cluster}/acls", api="/api/clusters/{cluster}/acls",
        template="acls.html", summary="The cluster's ACLs, filtered by principal or resource.",
        params=(CLUSTER, q("principal", SHORT, "the principal contains this text"),
                q("resource", SHORT, "the resource name contains this text")),
        response=AclsJson, errors=(404, 502),
    ),
    Endpoint(
        create_acl, ADMIN, path="/clusters/{cluster}/acls", api="/api/clusters/{cluster}/acls",
        method="POST", summary="Create an ACL.", params=(CLUSTER,), body=ACL, status=201,
        response=AclChangeJson, errors=(400, 404, 413, 502),
    ),
    Endpoint(
        delete_acl, ADMIN, path="/clusters/{cluster}/acls/delete",
        api="/api/clusters/{cluster}/acls/delete", method="POST",
        summary="Delete the ACL the body names (its every field).", params=(CLUSTER,),
        body=ACL, response=AclChangeJson, errors=(400, 404, 413, 502),
    ),
]  # fmt: skip
