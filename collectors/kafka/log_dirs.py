"""Partition sizes on disk, from Kafka's DescribeLogDirs API (key 35).

aiokafka's admin client has no call for it, so this module declares the version 1 request
and response with aiokafka's own protocol types (v1 is the oldest version Kafka 4 still
serves and the newest one without flexible encoding). Sizes are best effort: a broker that
refuses the request yields no sizes, never an error for the page.
"""

from __future__ import annotations

import contextlib
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import Array, Boolean, Int16, Int32, Int64, Schema, String


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


class DescribeLogDirsRequest_v1(RequestStruct):
    API_KEY = 35
    API_VERSION = 1
    RESPONSE_TYPE = DescribeLogDirsResponse_v1
    SCHEMA = Schema(
        ("topics", Array(("topic", String("utf-8")), ("partitions", Array(Int32)))),
    )


class DescribeLogDirsRequest(Request[DescribeLogDirsRequest_v1]):
    API_KEY = 35

    def build(self, request_struct_class: type[DescribeLogDirsRequest_v1]) -> Any:
        # A null topic array asks for every partition the broker hosts.
        return request_struct_class(None)


async def partition_sizes(
    admin: AIOKafkaAdminClient, broker_ids: list[int]
) -> dict[tuple[str, int], int]:
    """Bytes on disk per (topic, partition), the leader's copy counted once per broker."""
    sizes: dict[tuple[str, int], int] = {}
    for node_id in broker_ids:
        with contextlib.suppress(Exception):
            response = await admin._send_request_to_node(node_id, DescribeLogDirsRequest())
            for result in response.to_object()["results"]:
                if result["error_code"] != 0:
                    continue
                for topic in result["topics"]:
                    for part in topic["partitions"]:
                        if part["is_future_key"]:
                            continue
                        key = (topic["name"], part["partition_index"])
                        sizes[key] = max(sizes.get(key, 0), part["partition_size"])
    return sizes
