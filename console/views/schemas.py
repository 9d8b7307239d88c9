"""Schemas: the subjects of each cluster's schema registry, a subject's versions, their
text and diff, the topics that use them, a compatibility check for a candidate schema,
and (admins) registering and deleting versions and changing the compatibility level.

Pages: /schemas, /schemas/{cluster}/{subject}; JSON twins under /api/schemas. Every
change is audited (console/stores/schemas.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NotRequired

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from typing_extensions import TypedDict

from collectors.schemas.registry import COMPATIBILITY_LEVELS, RegistryError
from console.auth.roles import ADMIN, VIEWER
from console.stores import schemas as store
from console.web import urls
from console.web.endpoints import Call, Endpoint, Reply
from console.web.schema import BOOLEAN, STRING, enum, integer, p, q, shape, text

MAX_FILTER_CHARS = 200


class SubjectJson(TypedDict):
    subject: str
    latest_version: int | None
    schema_id: int | None
    schema_type: str | None
    compatibility: str | None
    topics: list[str]
    error: str | None
    link: str


class SubjectsJson(TypedDict):
    cluster: str | None
    clusters: list[str]
    subjects: list[SubjectJson]
    total: int
    page: int
    per_page: int
    error: str | None


class UsageJson(TypedDict):
    topic: str
    part: str
    schema_id: int
    first_seen_ms: int
    last_seen_ms: int


class SubjectDetailJson(TypedDict):
    cluster: str
    subject: str
    versions: list[int]
    version: int
    schema_id: int
    schema_type: str
    compatibility: str | None
    schema: str
    references: list[dict[str, Any]]
    used_by: list[UsageJson]
    compared_with: int | None
    diff: NotRequired[list[str]]


class CompatibilityJson(TypedDict):
    is_compatible: bool
    messages: list[str]


def _registry_error(exc: RegistryError) -> HTTPException:
    """A 404 when the registry says the subject or version does not exist; else a 502:
    the registry failed, not the request."""
    if exc.status == 404:
        return HTTPException(404, exc.message)
    if exc.status is not None and 400 <= exc.status < 500 and not exc.retryable:
        return HTTPException(422, exc.message)
    return HTTPException(502, f"schema registry: {exc.message}")


def _cluster_arg(call: Call) -> tuple[str | None, list[str]]:
    clusters = store.clusters_with_registry(call.state)
    chosen = call.query.get("cluster") or (clusters[0] if clusters else None)
    if chosen is not None and chosen not in clusters:
        raise HTTPException(404, f"cluster {chosen!r} has no schema registry configured")
    return chosen, clusters


async def subjects_page(call: Call) -> Reply:
    cluster, clusters = _cluster_arg(call)
    contains = (call.query.get("q") or "").strip()[:MAX_FILTER_CHARS] or None
    try:
        page = max(0, int(call.query.get("page", "0")))
    except ValueError:
        raise HTTPException(400, "page: not an integer") from None
    subjects: list[SubjectJson] = []
    total, error = 0, None
    if cluster is not None:
        try:
            found, total = await run_in_threadpool(
                store.list_subjects, call.state, cluster, contains, page
            )
        except RegistryError as exc:
            error = exc.message
        else:
            subjects = [
                SubjectJson(**vars(s), link=urls.schema(cluster, s.subject))  # type: ignore[typeddict-item]
                for s in found
            ]
    data = SubjectsJson(
        cluster=cluster, clusters=clusters, subjects=subjects, total=total, page=page,
        per_page=store.SUBJECTS_PER_PAGE, error=error,
    )  # fmt: skip
    pages = {
        "previous": urls.schemas(cluster=cluster, q=contains, page=page - 1) if page else None,
        "next": urls.schemas(cluster=cluster, q=contains, page=page + 1)
        if (page + 1) * store.SUBJECTS_PER_PAGE < total else None,
    }  # fmt: skip
    return Reply(data, page={"q": contains or "", "pages": pages})


def _version_arg(call: Call, name: str) -> int | None:
    raw = call.query.get(name)
    if raw in (None, "", "latest"):
        return None
    try:
        value = int(raw)
    except ValueError:
        raise HTTPException(400, f"{name}: a version number or 'latest'") from None
    if value < 1:
        raise HTTPException(400, f"{name}: versions start at 1")
    return value


async def subject_page(call: Call) -> Reply:
    cluster, subject = call.path["cluster"], call.path["subject"]
    version, compare = _version_arg(call, "version"), _version_arg(call, "compare")
    try:
        detail = await run_in_threadpool(
            store.subject_detail, call.state, cluster, subject,
            str(version) if version else "latest", compare,
        )  # fmt: skip
    except store.NoRegistry as exc:
        raise HTTPException(404, str(exc)) from None
    except RegistryError as exc:
        raise _registry_error(exc) from None
    shown = detail.shown
    data = SubjectDetailJson(
        cluster=cluster, subject=detail.subject, versions=detail.versions,
        version=shown.version, schema_id=shown.schema.id, schema_type=shown.schema.schema_type,
        compatibility=detail.compatibility, schema=shown.schema.text,
        references=[vars(r) for r in shown.schema.references],
        used_by=[
            UsageJson(topic=t, part=part, schema_id=i, first_seen_ms=first, last_seen_ms=last)
            for t, part, i, first, last in detail.usage
        ],
        compared_with=detail.compared_with,
    )  # fmt: skip
    if detail.diff is not None:
        data["diff"] = [line for _, line in detail.diff]
    page = {
        "pretty": detail.text,
        "diff_lines": detail.diff,
        "levels": COMPATIBILITY_LEVELS,
        "types": store.SCHEMA_TYPES,
        "error": call.query.get("error"),
        "done": call.query.get("done"),
        "version_links": {
            v: urls.schema(cluster, detail.subject, version=v) for v in detail.versions
        },
        "compare_links": {
            v: urls.schema(cluster, detail.subject, version=shown.version, compare=v)
            for v in detail.versions if v != shown.version
        },
    }  # fmt: skip
    return Reply(data, page=page)


async def _body(call: Call) -> dict[str, Any]:
    if call.api:
        return await call.json_object()
    form = await call.request.form()
    return {k: str(v) for k, v in form.items() if k != "csrf_token"}


def _back(call: Call, **query: Any) -> str:
    return urls.schema(call.path["cluster"], call.path["subject"], **query)


def _candidate(call: Call, body: dict[str, Any]) -> tuple[str, str] | str:
    """The candidate schema's (text, type) from a form or JSON body; for a page, the
    message that says what is wrong with it (the JSON twin answers 400)."""
    try:
        return store.valid_schema_request(body.get("schema"), body.get("schema_type"))
    except ValueError as exc:
        if call.api:
            raise HTTPException(400, str(exc)) from None
        return str(exc)


async def _ask_registry(
    call: Call, action: Callable[..., Any], *args: Any
) -> tuple[Any, str | None]:
    """Run a store function on the path's subject: (its result, None), or (None, why the
    registry refused) for a page; the JSON twin answers a refusal with its status."""
    cluster, subject = call.path["cluster"], call.path["subject"]
    try:
        result = await run_in_threadpool(action, call.state, cluster, subject, *args)
    except store.NoRegistry as exc:
        raise HTTPException(404, str(exc)) from None
    except RegistryError as exc:
        if call.api:
            raise _registry_error(exc) from None
        return None, exc.message
    return result, None


async def _change(call: Call, action: Callable[..., Any], *args: Any) -> tuple[Any, str | None]:
    """An audited change: the store function gets who asked and from where."""
    return await _ask_registry(call, action, *args, call.actor, call.remote)


async def check_compatibility(call: Call) -> Reply:
    """Would a candidate schema be accepted as the subject's next version?"""
    candidate = _candidate(call, await _body(call))
    if isinstance(candidate, str):
        return Reply({"error": candidate}, template="_schema_compatibility.html")
    result, error = await _ask_registry(call, store.check_compatibility, *candidate)
    if error is not None:
        return Reply({"error": error}, template="_schema_compatibility.html")
    data = CompatibilityJson(is_compatible=result.is_compatible, messages=list(result.messages))
    return Reply(data, template="_schema_compatibility.html")


async def register_version(call: Call) -> Reply:
    candidate = _candidate(call, await _body(call))
    if isinstance(candidate, str):
        return Reply({}, redirect=_back(call, error=candidate))
    result, error = await _change(call, store.register_audited, *candidate)
    if error is not None:
        return Reply({}, redirect=_back(call, error=error))
    schema_id, version = result
    done = f"version {version} registered (schema id {schema_id})"
    return Reply({"id": schema_id, "version": version}, status=201,
                 redirect=_back(call, version=version, done=done))  # fmt: skip


def _permanent(body: dict[str, Any], call: Call) -> bool:
    raw = body.get("permanent", call.query.get("permanent", False))
    return raw is True or str(raw).lower() in ("1", "true", "on", "yes")


async def delete_version(call: Call) -> Reply:
    body = {} if call.api else await _body(call)
    version = int(call.path["version"])
    _, error = await _change(call, store.delete_version_audited, version, _permanent(body, call))
    if error is not None:
        return Reply({}, redirect=_back(call, error=error))
    return Reply({"deleted": version}, redirect=_back(call, done=f"version {version} deleted"))


async def delete_subject(call: Call) -> Reply:
    body = {} if call.api else await _body(call)
    _, error = await _change(call, store.delete_subject_audited, _permanent(body, call))
    if error is not None:
        return Reply({}, redirect=_back(call, error=error))
    subject = call.path["subject"]
    return Reply({"deleted": subject}, redirect=urls.schemas(cluster=call.path["cluster"]))


async def set_compatibility(call: Call) -> Reply:
    body = await _body(call)
    try:
        level = store.valid_level(body.get("compatibility"))
    except ValueError as exc:
        if call.api:
            raise HTTPException(400, str(exc)) from None
        return Reply({}, redirect=_back(call, error=str(exc)))
    _, error = await _change(call, store.set_compatibility_audited, level)
    if error is not None:
        return Reply({}, redirect=_back(call, error=error))
    return Reply({"compatibility": level}, redirect=_back(call, done=f"compatibility {level}"))


CLUSTER = p("cluster", STRING, "a cluster with a schema registry")
SUBJECT = p("subject", STRING, "a subject (e.g. orders-value)")
VERSION = p("version", integer(1), "a version of the subject")
CANDIDATE = shape(
    schema=text(store.MAX_SCHEMA_CHARS), schema_type=enum(*store.SCHEMA_TYPES), required=False
)
# A subject may hold "/" (Protobuf imports are registered under their file names, e.g.
# google/type/money.proto). The action routes end in fixed words after the subject; the
# version routes are declared before the subject's, so ".../versions/3" is a version.
SUBJECT_PATH = "/schemas/{cluster}/{subject:path}"

ENDPOINTS = [
    Endpoint(
        subjects_page, VIEWER, path="/schemas", api="/api/schemas", template="schemas.html",
        summary="The subjects of a cluster's schema registry: latest version, type, "
        "compatibility level and the topics whose records use them.",
        params=(q("cluster", STRING, "default: the first cluster with a registry"),
                q("q", text(MAX_FILTER_CHARS), "subjects containing this text"),
                q("page", integer(0), "page number, from 0")),
        response=SubjectsJson, errors=(400, 404),
    ),
    Endpoint(
        subject_page, VIEWER, path=SUBJECT_PATH, api="/api" + SUBJECT_PATH,
        template="schema.html",
        summary="One subject: its versions, a version's schema, the diff against another "
        "version and the topics that use it.",
        params=(CLUSTER, SUBJECT, q("version", STRING, "a version number or latest"),
                q("compare", integer(1), "diff against this version")),
        response=SubjectDetailJson, errors=(400, 404, 502),
    ),
    Endpoint(
        check_compatibility, VIEWER, path=SUBJECT_PATH + "/compatibility",
        api="/api" + SUBJECT_PATH + "/compatibility", method="POST",
        template="_schema_compatibility.html",
        summary="Check whether a candidate schema is compatible with the subject's latest "
        "version, under its compatibility level.",
        params=(CLUSTER, SUBJECT), body=CANDIDATE, response=CompatibilityJson,
        errors=(400, 404, 502),
    ),
    Endpoint(
        register_version, ADMIN, path=SUBJECT_PATH + "/versions",
        api="/api" + SUBJECT_PATH + "/versions", method="POST",
        summary="Register a schema as the subject's next version (audited).",
        params=(CLUSTER, SUBJECT), body=CANDIDATE, status=201,
        response=shape(id=integer(), version=integer()), errors=(400, 404, 422, 502),
    ),
    Endpoint(
        delete_version, ADMIN, path=SUBJECT_PATH + "/versions/{version:int}/delete",
        api="/api" + SUBJECT_PATH + "/versions/{version:int}", method="POST",
        api_method="DELETE",
        summary="Delete one version of the subject (soft, or permanent after a soft delete; "
        "audited).",
        params=(CLUSTER, SUBJECT, VERSION, q("permanent", BOOLEAN, "delete for good")),
        response=shape(deleted=integer()), errors=(404, 422, 502),
    ),
    Endpoint(
        delete_subject, ADMIN, path=SUBJECT_PATH + "/delete", api="/api" + SUBJECT_PATH,
        method="POST", api_method="DELETE",
        summary="Delete the subject with all its versions (audited).",
        params=(CLUSTER, SUBJECT, q("permanent", BOOLEAN, "delete for good")),
        response=shape(deleted=STRING), errors=(404, 422, 502),
    ),
    Endpoint(
        set_compatibility, ADMIN, path=SUBJECT_PATH + "/compatibility-level",
        api="/api" + SUBJECT_PATH + "/config", method="POST", api_method="PUT",
        summary="Set the subject's compatibility level (audited).",
        params=(CLUSTER, SUBJECT), body=shape(compatibility=enum(*COMPATIBILITY_LEVELS)),
        response=shape(compatibility=STRING), errors=(400, 404, 422, 502),
    ),
]  # fmt: skip
