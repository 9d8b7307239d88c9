from __future__ import annotations

import base64
import io
import json
import math
from pathlib import Path

import fastavro
import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.json_format import MessageToDict

from collectors.config import SchemaFileConfig
from collectors.schemas.decoders import (
    PayloadError,
    ProtobufSchema,
    SchemaError,
    avro_decoder,
    compile_proto,
    json_decoder,
    protobuf_files,
    to_json,
)
from collectors.schemas.protobuf_json import message_converter
from collectors.schemas.schema_files import SchemaFileError, load_schema_file
from collectors.schemas.wire import frame
from tests.schema_fixtures import ORDER_AVRO, SHOP_PROTO, order, payment, shop_pb2


def avro_bytes(schema: dict, record: dict) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), record)
    return out.getvalue()


def test_avro_record_decodes_with_logical_types_as_json() -> None:
    decode = avro_decoder(json.dumps(ORDER_AVRO))
    document = decode(frame(7, avro_bytes(ORDER_AVRO, order("c-1"))), 5)
    assert document["metadata"]["correlationId"] == "c-1"
    assert json.loads(to_json(document))["amount"] == "79.90"  # exact, as text
    assert json.loads(to_json(document))["placedAt"] == "2026-12-01T12:00:00+00:00"


def test_avro_references_are_named_types_given_first() -> None:
    money = {"type": "record", "name": "Money", "namespace": "shop",
             "fields": [{"name": "cents", "type": "long"}]}  # fmt: skip
    invoice = {"type": "record", "name": "Invoice", "namespace": "shop",
               "fields": [{"name": "total", "type": "shop.Money"}]}  # fmt: skip
    decode = avro_decoder(json.dumps(invoice), [json.dumps(money)])
    parsed = fastavro.parse_schema(
        invoice, named_schemas={"shop.Money": fastavro.parse_schema(money)}
    )
    body = io.BytesIO()
    fastavro.schemaless_writer(body, parsed, {"total": {"cents": 995}})
    assert decode(b"\x00\x00\x00\x00\x01" + body.getvalue(), 5) == {"total": {"cents": 995}}


def test_avro_bytes_that_do_not_fit_the_schema() -> None:
    decode = avro_decoder(json.dumps(ORDER_AVRO))
    good = avro_bytes(ORDER_AVRO, order("c-1"))
    with pytest.raises(PayloadError, match="bytes left after the Avro record"):
        decode(frame(7, good + b"\x00\x00"), 5)
    with pytest.raises(PayloadError):
        decode(frame(7, good[:10]), 5)


def test_malformed_avro_schema() -> None:
    with pytest.raises(SchemaError, match="not JSON"):
        avro_decoder("{nope")
    with pytest.raises(SchemaError, match="not a valid Avro schema"):
        avro_decoder(
            json.dumps({"type": "record", "name": "X", "fields": [{"name": "a", "type": "nosuch"}]})
        )


def test_json_schema_records_are_their_json() -> None:
    decode = json_decoder()
    assert decode(frame(3, b'{"a": 1}'), 5) == {"a": 1}
    with pytest.raises(PayloadError, match="not JSON"):
        decode(frame(3, b"\x01\x02"), 5)


def _shop_schema() -> ProtobufSchema:
    files = protobuf_files(SHOP_PROTO, "shop.proto", {})
    return ProtobufSchema(files, "shop.proto")


def test_protobuf_text_schema_compiles_and_decodes_nested_messages_by_index() -> None:
    schema = _shop_schema()
    decode = schema.decoder_for_indexes()
    message = payment("c-9")
    document = decode(frame(4, b"\x02\x02" + message.SerializeToString()), 5)  # [1]
    assert document["metadata"] == {"eventId": message.metadata.event_id, "correlationId": "c-9"}
    assert document["amountCents"] == 7990
    assert document["status"] == "CAPTURED"
    discount = message.lines[0].discount
    # [1, 1, 0]: PaymentCaptured, its second nested type (the map's entry type comes first,
    # as protoc declares it), Discount.
    nested = decode(frame(4, b"\x06\x02\x02\x00" + discount.SerializeToString()), 5)
    assert nested["code"] == "WINTER"
    with pytest.raises(
        PayloadError, match=r"message index \[5\] is not in the schema \(2 top-level"
    ):
        decode(frame(4, b"\x02\x0a" + discount.SerializeToString()), 5)
    with pytest.raises(PayloadError, match=r"does not parse as shop\.v1\.Metadata"):
        decode(frame(4, b"\x00\xff\xff\xff"), 5)


def test_protobuf_registered_as_a_base64_descriptor() -> None:
    proto = descriptor_pb2.FileDescriptorProto()
    shop_pb2().DESCRIPTOR.CopyToProto(proto)
    text = base64.b64encode(proto.SerializeToString()).decode()
    files = protobuf_files(text, "main.proto", {})  # no compiler: the descriptor is given
    schema = ProtobufSchema(files, "main.proto")
    decode = schema.decoder_for_name("shop.v1.PaymentCaptured")
    assert decode(payment("c-2").SerializeToString(), 0)["metadata"]["correlationId"] == "c-2"


def test_protobuf_schema_that_does_not_compile() -> None:
    with pytest.raises(SchemaError, match="does not compile"):
        compile_proto({"bad.proto": 'syntax = "proto3"; message A { strin x = 1; }'}, ["bad.proto"])
    with pytest.raises(SchemaError, match="leaves the source folder"):
        compile_proto({"../evil.proto": 'syntax = "proto3";'}, ["../evil.proto"])


def test_protobuf_json_matches_the_runtime_json_mapping() -> None:
    pb2 = shop_pb2()
    full = payment("c-3")
    empty = pb2.PaymentCaptured()
    with_nan = pb2.PaymentCaptured.Line.Discount(percent=0)
    for message in (full, empty, with_nan, full.lines[0]):
        expected = MessageToDict(
            message, always_print_fields_with_no_presence=True, unquote_int64_if_possible=True
        )
        assert message_converter(message.DESCRIPTOR)(message) == expected


def test_protobuf_float_and_timestamp_forms() -> None:
    from google.protobuf import wrappers_pb2
    from google.protobuf.timestamp_pb2 import Timestamp

    from collectors.schemas.protobuf_json import _float32, _timestamp

    stamp = Timestamp(seconds=1_796_000_000, nanos=5_000_000)
    assert _timestamp(stamp) == stamp.ToJsonString()
    assert _timestamp(Timestamp(seconds=1, nanos=1)) == Timestamp(seconds=1, nanos=1).ToJsonString()
    assert _float32(9.989999771118164) == 9.99
    assert _float32(math.inf) == "Infinity"
    value = wrappers_pb2.Int64Value(value=5)
    assert message_converter(value.DESCRIPTOR)(value) == 5


def test_schema_files_avro_and_descriptor_set(tmp_path: Path) -> None:
    avsc = tmp_path / "order.avsc"
    avsc.write_text(json.dumps(ORDER_AVRO))
    decode = load_schema_file(SchemaFileConfig(avro=str(avsc)))
    assert decode(avro_bytes(ORDER_AVRO, order("c-5")), 0)["orderId"] == "o-1"

    file_set = descriptor_pb2.FileDescriptorSet()
    file_set.file.extend(compile_proto({"shop.proto": SHOP_PROTO}, ["shop.proto"]))
    desc = tmp_path / "shop.desc"
    desc.write_bytes(file_set.SerializeToString())
    decode = load_schema_file(
        SchemaFileConfig(protobuf=str(desc), message="shop.v1.PaymentCaptured")
    )
    assert decode(payment("c-6").SerializeToString(), 0)["metadata"]["correlationId"] == "c-6"

    with pytest.raises(SchemaFileError, match=r"no message 'shop\.v1\.Nope'"):
        load_schema_file(SchemaFileConfig(protobuf=str(desc), message="shop.v1.Nope"))
    with pytest.raises(SchemaFileError, match="cannot read"):
        load_schema_file(SchemaFileConfig(avro=str(tmp_path / "missing.avsc")))
    (tmp_path / "junk.desc").write_bytes(b"\xff\xff\xff")
    with pytest.raises(SchemaFileError, match="not a Protobuf FileDescriptorSet"):
        load_schema_file(SchemaFileConfig(protobuf=str(tmp_path / "junk.desc"), message="x"))
