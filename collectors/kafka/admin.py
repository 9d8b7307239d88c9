"""Read-only views of a Kafka cluster: brokers, topics, partitions, offsets and sizes."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError
from aiokafka.protocol.metadata import MetadataRequest

from collectors.config import ClusterConfig
from collectors.kafka.log_dirs import partition_sizes

REQUEST_TIMEOUT_MS = 10_000


def client_options(cluster: ClusterConfig) -> dict[str, Any]:
    """Connection options shared by every aiokafka client eventscope opens for a cluster."""
    options: dict[str, Any] = {
        "bootstrap_servers": cluster.bootstrap,
        "security_protocol": cluster.security_protocol,
        "request_timeout_ms": REQUEST_TIMEOUT_MS,
        "client_id": "eventscope",
    }
    if cluster.security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = cluster.sasl_mechanism
        options["sasl_plain_username"] = cluster.sasl_username
        options["sasl_plain_password"] = cluster.sasl_password
    if cluster.security_protocol.endswith("SSL"):
        context = ssl.create_default_context(cafile=cluster.ssl_cafile)
        if cluster.ssl_certfile:
            context.load_cert_chain(cluster.ssl_certfile, cluster.ssl_keyfile)
        options["ssl_context"] = context
    return options


PROBE_TIMEOUT_S = 10.0
_CONNECTION_OPTIONS = {
    "client_id", "request_timeout_ms", "security_protocol", "ssl_context",
    "sasl_mechanism", "sasl_plain_username", "sasl_plain_password",
}  # fmt: skip


async def connection_problem(cluster: ClusterConfig) -> str | None:
    """Why the first bootstrap server refuses us, or None if a connection works.

    aiokafka only logs the cause of a failed bootstrap (a refused SASL login, a TLS
    error) and raises "Unable to bootstrap"; this opens one connection to find it.
    """
    from aiokafka.conn import create_conn

    host, _, port = cluster.bootstrap.split(",")[0].strip().rpartition(":")
    options = {k: v for k, v in client_options(cluster).items() if k in _CONNECTION_OPTIONS}
    try:
        connection = await asyncio.wait_for(
            create_conn(host.strip("[]"), int(port), **options), PROBE_TIMEOUT_S
        )
    except Exception as exc:
        return _message(exc)
    connection.close()
    return None


async def explain(cluster: ClusterConfig, exc: BaseException) -> str:
    """An error from starting a client, with the refusal behind "Unable to bootstrap"."""
    text = _message(exc)
    if isinstance(exc, KafkaConnectionError) and "Unable to bootstrap" in text:
        cause = await connection_problem(cluster)
        if cause:
            text = f"{text} ({cause})"
    return text


def _message(exc: BaseException) -> str:
    """aiokafka's errors already start with their class name; others get it added."""
    text = str(exc)
    name = type(exc).__name__
    return text if text.startswith(name) else f"{name}: {text}"


async def _start(cluster: ClusterConfig, client: AIOKafkaAdminClient | AIOKafkaConsumer) -> None:
    try:
        await client.start()
    except KafkaConnectionError as exc:
        with contextlib.suppress(Exception):
            if isinstance(client, AIOKafkaAdminClient):
                await client.close()
            else:
                await client.stop()
        text = (await explain(cluster, exc)).removeprefix("KafkaConnectionError: ")
        raise KafkaConnectionError(text) from exc


async def describe_existing_topics(
    admin: AIOKafkaAdminClient, topics: list[str]
) -> list[dict[str, Any]]:
    """Like `admin.describe_topics(topics)`, without creating them: aiokafka's metadata
    request asks for auto-creation, which a broker with `auto.create.topics.enable` (Kafka's
    default) grants, so a look at a deleted topic would bring it back. A topic that does not
    exist comes back with a non-zero `error_code`."""
    request = MetadataRequest(topics, allow_auto_topic_creation=False)
    response = await admin._send_request(request)
    described: list[dict[str, Any]] = response.to_object()["topics"]
    return described


@contextlib.asynccontextmanager
async def admin_client(cluster: ClusterConfig) -> AsyncIterator[AIOKafkaAdminClient]:
    options = client_options(cluster)
    options.pop("client_id")
    admin = AIOKafkaAdminClient(client_id="eventscope-admin", **options)
    await _start(cluster, admin)
    try:
        yield admin
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


@contextlib.asynccontextmanager
async def offsets_reader(cluster: ClusterConfig) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer without a group: it only asks for offsets, never joins or commits."""
    consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, **client_options(cluster))
    await _start(cluster, consumer)
    try:
        yield consumer
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()


async def begin_and_end_offsets(
    reader: AIOKafkaConsumer, partitions: list[TopicPartition]
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """Begin and end offsets of `partitions`; the ones that do not answer are left out.

    One partition without a leader (a topic being created or deleted) fails the whole
    request, so after a failure each topic is asked on its own, briefly.
    """
    try:
        begin, end = await asyncio.gather(
            reader.beginning_offsets(partitions), reader.end_offsets(partitions)
        )
        return begin, end
    except Exception:
        begin, end = {}, {}
    by_topic: dict[str, list[TopicPartition]] = {}
    for tp in partitions:
        by_topic.setdefault(tp.topic, []).append(tp)
    for own in by_topic.values():
        with contextlib.suppress(Exception):
            topic_begin = await asyncio.wait_for(reader.beginning_offsets(own), 5)
            topic_end = await asyncio.wait_for(reader.end_offsets(own), 5)
            begin.update(topic_begin)
            end.update(topic_end)
    return begin, end


@dataclass
class PartitionInfo:
    partition: int
    leader: int
    replicas: list[int]
    isr: list[int]
    begin_offset: int | None = None
    end_offset: int | None = None
    size_bytes: int | None = None

    @property
    def messages(self) -> int | None:
        if self.begin_offset is None or self.end_offset is None:
            return None
        return max(0, self.end_offset - self.begin_offset)


@dataclass
class TopicInfo:
    name: str
    internal: bool
    partitions: list[PartitionInfo] = field(default_factory=list)

    @property
    def end_offset_total(self) -> int:
        return sum(p.end_offset or 0 for p in self.partitions)

    @property
    def messages(self) -> int:
        return sum(p.messages or 0 for p in self.partitions)

    @property
    def size_bytes(self) -> int | None:
        sizes = [p.size_bytes for p in self.partitions if p.size_bytes is not None]
        return sum(sizes) if sizes else None

    @property
    def replication_factor(self) -> int:
        return max((len(p.replicas) for p in self.partitions), default=0)

    @property
    def under_replicated(self) -> int:
        return sum(1 for p in self.partitions if len(p.isr) < len(p.replicas))


@dataclass
class ClusterOverview:
    name: str
    bootstrap: str
    cluster_id: str | None
    controller_id: int | None
    brokers: list[dict[str, Any]]
    topics: list[TopicInfo]


async def cluster_overview(
    cluster: ClusterConfig, include_internal: bool = True
) -> ClusterOverview:
    async with admin_client(cluster) as admin:
        description = await admin.describe_cluster()
        raw_topics = await admin.describe_topics()
        brokers = [
            {"node_id": b["node_id"], "host": b["host"], "port": b["port"], "rack": b.get("rack")}
            for b in description.get("brokers", [])
        ]
        sizes = await partition_sizes(admin, [b["node_id"] for b in brokers])
    topics: list[TopicInfo] = []
    for raw in raw_topics:
        if raw.get("error_code", 0) != 0:
            continue
        internal = bool(raw.get("is_internal")) or raw["topic"].startswith("__")
        if internal and not include_internal:
            continue
        topic = TopicInfo(name=raw["topic"], internal=internal)
        for part in sorted(raw["partitions"], key=lambda p: p["partition"]):
            topic.partitions.append(
                PartitionInfo(
                    partition=part["partition"],
                    leader=part["leader"],
                    replicas=list(part["replicas"]),
                    isr=list(part["isr"]),
                    size_bytes=sizes.get((raw["topic"], part["partition"])),
                )
            )
        topics.append(topic)
    topics.sort(key=lambda t: (t.internal, t.name))
    await _fill_offsets(cluster, topics)
    return ClusterOverview(
        name=cluster.name,
        bootstrap=cluster.bootstrap,
        cluster_id=description.get("cluster_id"),
        controller_id=description.get("controller_id"),
        brokers=brokers,
        topics=topics,
    )


async def _fill_offsets(cluster: ClusterConfig, topics: list[TopicInfo]) -> None:
    """Begin and end offsets of every partition; a topic deleted meanwhile keeps None."""
    partitions = [TopicPartition(t.name, p.partition) for t in topics for p in t.partitions]
    if not partitions:
        return
    begin: dict[TopicPartition, int] = {}
    end: dict[TopicPartition, int] = {}
    async with offsets_reader(cluster) as reader:
        # Offset requests need every topic in the reader's own metadata. aiokafka has no
        # public call for that; without it each unknown topic costs a metadata round trip
        # with back-off (tens of seconds for a few hundred topics).
        with contextlib.suppress(Exception):
            await reader._client.set_topics([t.name for t in topics])
        begin, end = await begin_and_end_offsets(reader, partitions)
    for topic in topics:
        for part in topic.partitions:
            tp = TopicPartition(topic.name, part.partition)
            part.begin_offset = begin.get(tp)
            part.end_offset = end.get(tp)


async def is_reachable(cluster: ClusterConfig, timeout_s: float = 5.0) -> tuple[bool, str | None]:
    try:
        async with asyncio.timeout(timeout_s), admin_client(cluster) as admin:
            await admin.describe_cluster()
        return True, None
    except Exception as exc:  # readiness reports any failure as text
        return False, f"{type(exc).__name__}: {exc}"[:300]
