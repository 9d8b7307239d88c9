"""Records as real shops write them: the Confluent client's Avro, Protobuf and JSON Schema
serializers against the session's registry, with schemas that exercise what decoding must
handle (nested records, logical types, nested Protobuf messages, maps, enums, well-known
types, references)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import tempfile
import types
import uuid
from functools import cache
from pathlib import Path
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient, record_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

ORDER_AVRO = {
    "type": "record",
    "name": "OrderPlaced",
    "namespace": "shop.avro",
    "fields": [
        {"name": "metadata", "type": {
            "type": "record", "name": "Metadata",
            "fields": [
                {"name": "eventId", "type": "string"},
                {"name": "correlationId", "type": "string"},
                {"name": "causationId", "type": ["null", "string"], "default": None},
            ],
        }},
        {"name": "eventType", "type": "string"},
        {"name": "orderId", "type": "string"},
        {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10,
                                    "scale": 2}},
        {"name": "placedAt", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "email", "type": "string"},
        {"name": "lines", "type": {"type": "array", "items": {
            "type": "record", "name": "Line",
            "fields": [{"name": "sku", "type": "string"}, {"name": "qty", "type": "int"}],
        }}},
    ],
}  # fmt: skip

KEY_AVRO = {"type": "string"}

CUSTOMER_JSON_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "CustomerRegistered",
    "type": "object",
    "properties": {
        "eventId": {"type": "string"},
        "eventType": {"type": "string"},
        "correlationId": {"type": "string"},
        "name": {"type": "string"},
    },
    "required": ["eventId", "correlationId"],
}

SHOP_PROTO = """syntax = "proto3";
package shop.v1;

import "google/protobuf/timestamp.proto";

message Metadata {
  string event_id = 1;
  string correlation_id = 2;
}

message PaymentCaptured {
  Metadata metadata = 1;
  string payment_id = 2;
  int64 amount_cents = 3;
  google.protobuf.Timestamp captured_at = 4;
  repeated Line lines = 5;
  map<string, string> labels = 6;
  Status status = 7;
  message Line {
    string sku = 1;
    Discount discount = 2;
    message Discount {
      string code = 1;
      int32 percent = 2;
      Metadata metadata = 3;
    }
  }
  enum Status {
    STATUS_UNSPECIFIED = 0;
    CAPTURED = 1;
  }
}
"""


@cache
def shop_pb2() -> types.ModuleType:
    """The generated module of SHOP_PROTO (protoc's Python output, as a shop builds it)."""
    out = Path(tempfile.mkdtemp(prefix="eventscope-pb2-"))
    (out / "shop_v1.proto").write_text(SHOP_PROTO)
    import grpc_tools

    include = Path(grpc_tools.__file__).parent / "_proto"
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{out}", f"-I{include}",
         f"--python_out={out}", "shop_v1.proto"],
        cwd=out, check=True, capture_output=True,
    )  # fmt: skip
    sys.path.insert(0, str(out))
    try:
        return importlib.import_module("shop_v1_pb2")
    finally:
        sys.path.remove(str(out))


class Serializers:
    """The Confluent serializers for one topic, registering their schemas on first use."""

    def __init__(self, registry_url: str, topic: str) -> None:
        self.topic = topic
        # The client waits forever by default: a request whose answer is lost would hang the
        # suite (seen once in CI); with a timeout it is retried by the client instead.
        self.client = SchemaRegistryClient({"url": registry_url, "timeout": 10})
        self.avro = AvroSerializer(self.client, json.dumps(ORDER_AVRO))
        self.avro_key = AvroSerializer(self.client, json.dumps(KEY_AVRO))
        # One subject holds one schema type (Apicurio keeps the type per subject, and
        # Confluent refuses a change of type), so the Protobuf and JSON Schema records of a
        # topic are registered by record name, as shops mixing formats on a topic do.
        by_record = {"subject.name.strategy": record_subject_name_strategy}
        self.json = JSONSerializer(json.dumps(CUSTOMER_JSON_SCHEMA), self.client, conf=by_record)
        pb2 = shop_pb2()
        config = {"use.deprecated.format": False, **by_record}
        self.payment = ProtobufSerializer(pb2.PaymentCaptured, self.client, config)
        self.discount = ProtobufSerializer(pb2.PaymentCaptured.Line.Discount, self.client, config)

    def close(self) -> None:
        self.client.close()

    def value(self, serializer: Any, record: Any) -> bytes:
        return bytes(serializer(record, SerializationContext(self.topic, MessageField.VALUE)))

    def key(self, serializer: Any, record: Any) -> bytes:
        return bytes(serializer(record, SerializationContext(self.topic, MessageField.KEY)))


def order(
    correlation_id: str, order_id: str = "o-1", email: str = "ada@example.com"
) -> dict[str, Any]:
    import datetime
    import decimal

    return {
        "metadata": {"eventId": f"evt-{uuid.uuid4().hex[:8]}", "correlationId": correlation_id,
                     "causationId": None},
        "eventType": "OrderPlaced",
        "orderId": order_id,
        "amount": decimal.Decimal("79.90"),
        "placedAt": datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC),
        "email": email,
        "lines": [{"sku": "sku-1", "qty": 2}],
    }  # fmt: skip


def payment(correlation_id: str) -> Any:
    pb2 = shop_pb2()
    message = pb2.PaymentCaptured(
        metadata=pb2.Metadata(
            event_id=f"evt-{uuid.uuid4().hex[:8]}", correlation_id=correlation_id
        ),
        payment_id="p-1",
        amount_cents=7990,
        status=pb2.PaymentCaptured.CAPTURED,
    )
    message.captured_at.FromSeconds(1_796_000_000)
    line = message.lines.add(sku="sku-1")
    line.discount.code = "WINTER"
    line.discount.percent = 10
    message.labels["channel"] = "web"
    return message


def discount(correlation_id: str) -> Any:
    pb2 = shop_pb2()
    return pb2.PaymentCaptured.Line.Discount(
        code="WINTER",
        percent=15,
        metadata=pb2.Metadata(event_id="evt-d", correlation_id=correlation_id),
    )
