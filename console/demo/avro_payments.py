"""The shop's payment commands in Avro, through a schema registry, as many real shops write
them: the schema is registered under `<topic>-value` (TopicNameStrategy) and every value is
the registry's wire format (byte 0, the schema id, the Avro body). Retries and dead letters
carry those bytes on unchanged, so the DLQ holds Avro too.

Without a registry the shop writes JSON everywhere, as it always did.
"""

from __future__ import annotations

import io
import json
from typing import Any

import fastavro

from collectors.config import SchemaRegistryConfig
from collectors.schemas.decoding import DECODED, RecordDecoder
from collectors.schemas.registry import RegistryClient
from collectors.schemas.wire import MAGIC_BYTE, frame

PAYMENT_COMMAND = {
    "type": "record",
    "name": "PaymentCommand",
    "namespace": "shop.payments",
    "doc": "A command to the payment service (ChargePayment).",
    "fields": [
        {"name": "metadata", "type": {
            "type": "record", "name": "Metadata",
            "fields": [
                {"name": "eventType", "type": "string"},
                {"name": "correlationId", "type": "string"},
                {"name": "causationId", "type": ["null", "string"], "default": None},
            ],
        }},
        {"name": "order", "type": {
            "type": "record", "name": "Order",
            "fields": [
                {"name": "order_id", "type": "string"},
                {"name": "customer_id", "type": "string"},
                {"name": "items", "type": {"type": "array", "items": {
                    "type": "record", "name": "Item",
                    "fields": [
                        {"name": "sku", "type": "string"},
                        {"name": "quantity", "type": "int"},
                        {"name": "unit_price_cents", "type": "long"},
                    ],
                }}},
                {"name": "total_cents", "type": "long"},
                {"name": "currency", "type": "string"},
            ],
        }},
    ],
}  # fmt: skip


class PaymentCodec:
    """Encodes the payment commands topic's values in Avro; decodes any registry record."""

    def __init__(self, registry_url: str, topic: str) -> None:
        self.topic = topic
        self._registry = RegistryClient(SchemaRegistryConfig(url=registry_url))
        self._schema = fastavro.parse_schema(PAYMENT_COMMAND)
        self._decoder = RecordDecoder(self._registry)
        self.schema_id = self._registry.register(
            f"{topic}-value", json.dumps(PAYMENT_COMMAND), "AVRO"
        )

    def close(self) -> None:
        self._registry.close()

    def encode(self, data: dict[str, Any], metadata: dict[str, Any]) -> bytes:
        body = io.BytesIO()
        fastavro.schemaless_writer(body, self._schema, {"metadata": metadata, **data})
        return frame(self.schema_id, body.getvalue())

    def decode(self, value: bytes | None) -> dict[str, Any] | None:
        """The record of a registry-framed value; None for anything else."""
        if not value or value[0] != MAGIC_BYTE:
            return None
        decoded = self._decoder.decode(self.topic, "value", value)
        if decoded is None or decoded.state != DECODED or not isinstance(decoded.document, dict):
            return None
        return decoded.document
