"""The producer of replay and redrive jobs: idempotent, acks=all, batched."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaProducer

from collectors.config import ClusterConfig
from collectors.kafka.admin import client_options

MAX_REQUEST_BYTES = 16 * 1024 * 1024


@contextlib.asynccontextmanager
async def idempotent_producer(cluster: ClusterConfig) -> AsyncIterator[AIOKafkaProducer]:
    """Retries inside one producer session never duplicate a record (Kafka's idempotence);
    duplicates across a crash are the runner's to prevent (see runner.py)."""
    options = client_options(cluster)
    options["client_id"] = "eventscope-actions"
    producer = AIOKafkaProducer(
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_batch_size=512 * 1024,
        max_request_size=MAX_REQUEST_BYTES,
        **options,
    )
    await producer.start()
    try:
        yield producer
    finally:
        with contextlib.suppress(Exception):
            await producer.stop()
