"""Log directories and partition sizes on disk, from Kafka's DescribeLogDirs API (key 35).

aiokafka's admin client has no call for it, so this module declares the request and
response with aiokafka's own protocol types: version 4 (flexible encoding; it adds each
directory's total and usable bytes) and version 1 (the oldest version Kafka 4 still serves,
for brokers before 3.3). aiokafka sends the newest of the two the broker serves. Sizes are
best effort: a broker that refuses the request yields no sizes, never an error for the
topics page; the brokers page reports the refusal.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    Array,
    Boolean,
    CompactArray,
    CompactString,
    Int16,
    Int32,
    Int64,
    Schema,
    String,
    TaggedFields,
)


class DescribeLogDirsResponse_v1(Response):
    API_KEY = 35
    API_VERSION = 1
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "results",
            Array(
                ("error_code", Int16),
                ("log_dir", String("utf-8")),
                (
                    "topics",
                    Array(
                        ("name", String("utf-8")),
                        (
                            "partitions",
                            Array(
                                ("partition_index", Int32),
                                ("partition_size", Int64),
                                ("offset_lag", Int64),
                                ("is_future_key", Boolean),
                            ),
                        ),
                    ),
                ),
            ),
        ),
    )


class DescribeLogDirsResponse_v4(Response):
    API_KEY = 35
    API_VERSION = 4
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("error_code", Int16),
        (
            "results",
            CompactArray(
                ("error_code", Int16),
                ("log_dir", CompactString("utf-8")),
                (
                    "topics",
                    CompactArray(
                        ("name", CompactString("utf-8")),
                        (
                            "partitions",
                            CompactArray(
                                ("partition_index", Int32),
                                ("partition_size", Int64),
                                ("offset_lag", Int64),
                                ("is_future_key", Boolean),
                                ("tags", TaggedFields),
                            ),
                        ),
                        ("tags", TaggedFields),
                    ),
                ),
                ("total_bytes", Int64),
                ("usable_bytes", Int64),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class DescribeLogDirsRequest_v1(RequestStruct):
    API_KEY = 35
    API_VERSION = 1
    RESPONSE_TYPE = DescribeLogDirsResponse_v1
    SCHEMA = Schema(
        ("topics", Array(("topic", String("utf-8")), ("partitions", Array(Int32)))),
    )


class DescribeLogDirsRequest_v4(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 35
    API_VERSION = 4
    RESPONSE_TYPE = DescribeLogDirsResponse_v4
    SCHEMA = Schema(
        (
            "topics",
            CompactArray(
                ("topic", CompactString("utf-8")),
                ("partitions", CompactArray(Int32)),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class DescribeLogDirsRequest(Request[DescribeLogDirsRequest_v1 | DescribeLogDirsRequest_v4]):
    API_KEY = 35

    def build(
        self, request_struct_class: type[DescribeLogDirsRequest_v1 | DescribeLogDirsRequest_v4]
    ) -> Any:
        # A null topic array asks for every partition the broker hosts.
        if request_struct_class is DescribeLogDirsRequest_v4:
            return DescribeLogDirsRequest_v4(None, {})
        return DescribeLogDirsRequest_v1(None)


@dataclass(frozen=True)
class LogDir:
    """One log directory of a broker: what it holds, and its disk (v4 only, else None)."""

    path: str
    error: str | None  # e.g. KafkaStorageError for an offline directory
    size_bytes: int  # the partitions in it (future replicas aside)
    partitions: int
    total_bytes: int | None
    usable_bytes: int | None


async def _describe(admin: AIOKafkaAdminClient, node_id: int) -> list[dict[str, Any]]:
    response = await admin._send_request_to_node(node_id, DescribeLogDirsRequest())
    answer = response.to_object()
    if answer.get("error_code"):  # v3+: the whole request refused (e.g. not authorized)
        raise for_code(answer["error_code"])()
    results: list[dict[str, Any]] = answer["results"]
    return results


async def log_dirs(admin: AIOKafkaAdminClient, node_id: int) -> list[LogDir]:
    """The broker's log directories, sorted by path; raises what Kafka or the connection
    raise."""
    found = []
    for result in await _describe(admin, node_id):
        live = [p for t in result["topics"] for p in t["partitions"] if not p["is_future_key"]]
        total, usable = result.get("total_bytes", -1), result.get("usable_bytes", -1)
        found.append(
            LogDir(
                path=result["log_dir"],
                error=for_code(result["error_code"]).__name__ if result["error_code"] else None,
                size_bytes=sum(p["partition_size"] for p in live),
                partitions=len(live),
                total_bytes=total if total >= 0 else None,
                usable_bytes=usable if usable >= 0 else None,
            )
        )
    return sorted(found, key=lambda d: d.path)


async def partition_sizes(
    admin: AIOKafkaAdminClient, broker_ids: list[int]
) -> dict[tuple[str, int], int]:
    """Bytes on disk per (topic, partition), the leader's copy counted once per broker."""
    sizes: dict[tuple[str, int], int] = {}
    for node_id in broker_ids:
        with contextlib.suppress(Exception):
            for result in await _describe(admin, node_id):
                if result["error_code"] != 0:
                    continue
                for topic in result["topics"]:
                    for part in topic["partitions"]:
                        if part["is_future_key"]:
                            continue
                        key = (topic["name"], part["partition_index"])
                        sizes[key] = max(sizes.get(key, 0), part["partition_size"])
    return sizes
