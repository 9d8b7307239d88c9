"""The schema registries the console shows and changes, and what the index knows of which
topics use which schema (`schema_usage`, written by the tap).

Registry calls are blocking (views run them in the thread pool); what a page reads in
bulk runs on a few threads at once. A change (register, delete, compatibility level) is
written to the audit log once the registry accepted it.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import json
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import descriptor_pb2, text_format
from google.protobuf.message import DecodeError
from sqlalchemy import Engine, select

from collectors.config import ClusterConfig
from collectors.index.models import schema_usage_table
from collectors.schemas.registry import (
    COMPATIBILITY_LEVELS,
    Compatibility,
    RegistryClient,
    RegistryError,
    SubjectVersion,
)
from console.state import AppState
from console.stores import audit as audit_store

SUBJECTS_PER_PAGE = 50
LOOKUP_THREADS = 8
SUBJECTS_OF_TTL_S = 300.0
MAX_SCHEMA_CHARS = 256 * 1024
SCHEMA_TYPES = ("AVRO", "PROTOBUF", "JSON")


class NoRegistry(LookupError):
    """The cluster has no schema registry configured (or the cluster is unknown)."""


_lock = threading.Lock()


def registry_of(state: AppState, cluster: str) -> RegistryClient:
    """The cluster's registry client, made once per process."""
    with _lock:
        client = state.registries.get(cluster)
        if client is not None:
            return client
        config = _cluster(state, cluster).schema_registry
        if config is None:
            raise NoRegistry(f"cluster {cluster!r} has no schema registry configured")
        client = state.registries[cluster] = RegistryClient(config)
        return client


def _cluster(state: AppState, name: str) -> ClusterConfig:
    try:
        return state.settings.cluster(name)
    except KeyError:
        raise NoRegistry(f"no cluster named {name!r}") from None


def clusters_with_registry(state: AppState) -> list[str]:
    return [c.name for c in state.settings.clusters if c.schema_registry is not None]


# --- what a schema id is ---------------------------------------------------------------------

_subjects_of: dict[tuple[str, int], tuple[float, list[tuple[str, int]]]] = {}


def subjects_of(state: AppState, cluster: str, schema_id: int) -> list[tuple[str, int]]:
    """(subject, version) pairs of a schema id, remembered for five minutes ([] when the
    registry cannot say)."""
    key = (cluster, schema_id)
    cached = _subjects_of.get(key)
    if cached is not None and time.monotonic() - cached[0] < SUBJECTS_OF_TTL_S:
        return cached[1]
    try:
        pairs = registry_of(state, cluster).subjects_of(schema_id)
    except (NoRegistry, RegistryError):
        return []
    _subjects_of[key] = (time.monotonic(), pairs)
    return pairs


def reachability(state: AppState, cluster: ClusterConfig) -> str | None:
    """None when the cluster's registry answers (or none is configured), else why not."""
    if cluster.schema_registry is None:
        return None
    try:
        registry_of(state, cluster.name).ping()
    except RegistryError as exc:
        return exc.message
    return None


# --- subjects -------------------------------------------------------------------------------


@dataclass
class SubjectSummary:
    subject: str
    latest_version: int | None = None
    schema_id: int | None = None
    schema_type: str | None = None
    compatibility: str | None = None
    topics: list[str] = field(default_factory=list)
    error: str | None = None


def list_subjects(
    state: AppState, cluster: str, contains: str | None, page: int
) -> tuple[list[SubjectSummary], int]:
    """One page of subjects (filtered by a substring) with their latest version, type,
    compatibility level and the topics using them; and how many subjects matched."""
    registry = registry_of(state, cluster)
    names = registry.subjects()
    if contains:
        names = [n for n in names if contains.lower() in n.lower()]
    chosen = names[page * SUBJECTS_PER_PAGE : (page + 1) * SUBJECTS_PER_PAGE]
    usage = usage_by_schema(state.engine, cluster)
    topic_names = {topic for topic, _ in _topics_seen(usage)}
    with ThreadPoolExecutor(LOOKUP_THREADS) as pool:
        summaries = list(pool.map(lambda s: _summary(registry, s), chosen))
        ids = sorted({row[2] for row in usage})  # the schema ids records were written with
        owners = dict(
            zip(ids, pool.map(lambda i: subjects_of(state, cluster, i), ids), strict=True)
        )
    for summary in summaries:
        summary.topics = topics_of_subject(summary.subject, owners, usage, topic_names)
    return summaries, len(names)


def _summary(registry: RegistryClient, subject: str) -> SubjectSummary:
    summary = SubjectSummary(subject)
    try:
        latest = registry.version(subject, "latest")
        summary.latest_version = latest.version
        summary.schema_id = latest.schema.id
        summary.schema_type = latest.schema.schema_type
        summary.compatibility = registry.compatibility_level(subject)
    except RegistryError as exc:
        summary.error = exc.message
    return summary


UsageRow = tuple[str, str, int, int, int]  # topic, part, schema id, first seen, last seen


def usage_by_schema(engine: Engine, cluster: str) -> list[UsageRow]:
    t = schema_usage_table.c
    query = (
        select(t.topic, t.part, t.schema_id, t.first_seen_ms, t.last_seen_ms)
        .where(t.cluster == cluster)
        .order_by(t.topic, t.part, t.schema_id)
    )
    with engine.connect() as connection:
        return [(r[0], r[1], r[2], r[3], r[4]) for r in connection.execute(query)]


def _topics_seen(usage: Iterable[UsageRow]) -> set[tuple[str, str]]:
    return {(row[0], row[1]) for row in usage}


def topics_of_subject(
    subject: str,
    owners: dict[int, list[tuple[str, int]]],
    usage: Sequence[UsageRow],
    known_topics: set[str],
) -> list[str]:
    """Topics whose records were written with one of the subject's schemas (any naming
    strategy), plus the topic that TopicNameStrategy names (`<topic>-value`/`-key`)."""
    found = {
        f"{topic} ({part})"
        for topic, part, schema_id, *_ in usage
        if any(name == subject for name, _ in owners.get(schema_id, []))
    }
    for part in ("value", "key"):
        topic = subject.removesuffix(f"-{part}")
        if topic != subject and topic in known_topics:
            found.add(f"{topic} ({part})")
    return sorted(found)


# --- one subject ----------------------------------------------------------------------------


@dataclass
class SubjectDetail:
    subject: str
    versions: list[int]
    shown: SubjectVersion
    compatibility: str | None
    text: str  # pretty
    usage: list[UsageRow]
    diff: list[tuple[str, str]] | None = None  # (css class, line)
    compared_with: int | None = None


def subject_detail(
    state: AppState, cluster: str, subject: str, version: str, compare: int | None
) -> SubjectDetail:
    registry = registry_of(state, cluster)
    versions = registry.versions(subject)
    shown = registry.version(subject, version)
    detail = SubjectDetail(
        subject=shown.subject,
        versions=versions,
        shown=shown,
        compatibility=registry.compatibility_level(subject),
        text=pretty_schema(shown.schema.text, shown.schema.schema_type),
        usage=[row for row in usage_by_schema(state.engine, cluster) if row[2] == shown.schema.id],
    )
    if compare is not None and compare != shown.version:
        other = registry.version(subject, compare)
        detail.diff = schema_diff(
            pretty_schema(other.schema.text, other.schema.schema_type), detail.text,
            f"version {other.version}", f"version {shown.version}",
        )  # fmt: skip
        detail.compared_with = other.version
    return detail


def pretty_schema(text: str, schema_type: str) -> str:
    """Avro and JSON Schema indented; Protobuf as .proto text, or a registered descriptor
    (base64, as some serializers register it) in the descriptor's text form."""
    if schema_type in ("AVRO", "JSON"):
        try:
            return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except (ValueError, RecursionError):
            return text
    stripped = text.strip()
    if stripped and not any(ch in stripped for ch in " ;{\n"):
        try:
            proto = descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(stripped))
        except (binascii.Error, ValueError, DecodeError):
            return text
        described: str = text_format.MessageToString(proto)
        return "# registered as a serialized FileDescriptorProto\n" + described
    return text


def schema_diff(old: str, new: str, old_name: str, new_name: str) -> list[tuple[str, str]]:
    lines = []
    for line in difflib.unified_diff(
        old.splitlines(), new.splitlines(), old_name, new_name, lineterm="", n=3
    ):
        kind = (
            "hunk"
            if line.startswith("@@")
            else "add"
            if line.startswith("+")
            else ("del" if line.startswith("-") else "same")
        )
        lines.append((kind, line))
    return lines


# --- checks and changes ------------------------------------------------------------------------


def check_compatibility(
    state: AppState, cluster: str, subject: str, text: str, schema_type: str
) -> Compatibility:
    return registry_of(state, cluster).check_compatibility(subject, text, schema_type)


def register_audited(
    state: AppState,
    cluster: str,
    subject: str,
    text: str,
    schema_type: str,
    actor: str,
    remote: str | None,
) -> tuple[int, int]:
    """Register a version; (schema id, version)."""
    registry = registry_of(state, cluster)
    schema_id = registry.register(subject, text, schema_type)
    version = next((v for s, v in registry.subjects_of(schema_id) if s == subject), None) or max(
        registry.versions(subject), default=0
    )
    audit_store.record(
        state.engine, actor, "schema.register", f"{cluster}/{subject}",
        {"schema_id": schema_id, "version": version, "type": schema_type}, remote,
    )  # fmt: skip
    _subjects_of.clear()
    return schema_id, version


def delete_version_audited(
    state: AppState,
    cluster: str,
    subject: str,
    version: int,
    permanent: bool,
    actor: str,
    remote: str | None,
) -> None:
    registry_of(state, cluster).delete_version(subject, version, permanent=permanent)
    audit_store.record(
        state.engine, actor, "schema.delete_version", f"{cluster}/{subject}",
        {"version": version, "permanent": permanent}, remote,
    )  # fmt: skip
    _subjects_of.clear()


def delete_subject_audited(
    state: AppState, cluster: str, subject: str, permanent: bool, actor: str, remote: str | None
) -> None:
    registry_of(state, cluster).delete_subject(subject, permanent=permanent)
    audit_store.record(
        state.engine, actor, "schema.delete_subject", f"{cluster}/{subject}",
        {"permanent": permanent}, remote,
    )  # fmt: skip
    _subjects_of.clear()


def set_compatibility_audited(
    state: AppState, cluster: str, subject: str, level: str, actor: str, remote: str | None
) -> None:
    registry = registry_of(state, cluster)
    before = registry.compatibility_level(subject)
    registry.set_compatibility(subject, level)
    audit_store.record(
        state.engine, actor, "schema.compatibility", f"{cluster}/{subject}",
        {"from": before, "to": level}, remote,
    )  # fmt: skip


def valid_schema_request(text: Any, schema_type: Any) -> tuple[str, str]:
    """The schema text and type of a check or registration, or ValueError saying why not."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("schema: give the schema text")
    if len(text) > MAX_SCHEMA_CHARS:
        raise ValueError(f"schema: over {MAX_SCHEMA_CHARS // 1024} KiB")
    kind = str(schema_type or "AVRO").upper()
    if kind not in SCHEMA_TYPES:
        raise ValueError(f"schema_type: one of {', '.join(SCHEMA_TYPES)}")
    return text, kind


def valid_level(level: Any) -> str:
    text = str(level or "").upper()
    if text not in COMPATIBILITY_LEVELS:
        raise ValueError(f"compatibility: one of {', '.join(COMPATIBILITY_LEVELS)}")
    return text
