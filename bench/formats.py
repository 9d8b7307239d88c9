"""The ingest benchmark's record values in each wire format, on the same shapes.

`json` is the record as the ingest benchmark always wrote it; `avro` and `protobuf` are the
same fields in the schema registry's wire format (byte 0, schema id, body; Protobuf with
its message index), their schemas registered under `<topic>-value`.

    python bench/formats.py [--schema-registry URL] [--records 20000]

alone measures what decoding costs per record: the decoder by itself, and the whole
normalisation of a record (headers, identities, decoding) per format.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastavro

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import free_port, report  # noqa: E402
from collectors.config import SchemaRegistryConfig  # noqa: E402
from collectors.conventions import Conventions, RawRecord, normalize  # noqa: E402
from collectors.schemas.decoding import DECODED, RecordDecoder  # noqa: E402
from collectors.schemas.registry import RegistryClient  # noqa: E402
from collectors.schemas.wire import frame  # noqa: E402

FORMATS = ("json", "avro", "protobuf")

ORDER_AVRO = {
    "type": "record", "name": "Order", "namespace": "bench",
    "fields": [
        {"name": "orderId", "type": "string"},
        {"name": "customer", "type": {"type": "record", "name": "Customer", "fields": [
            {"name": "id", "type": "string"}, {"name": "tier", "type": "string"},
            {"name": "country", "type": "string"}]}},
        {"name": "lines", "type": {"type": "array", "items": {
            "type": "record", "name": "Line", "fields": [
                {"name": "sku", "type": "string"}, {"name": "qty", "type": "int"},
                {"name": "price", "type": "double"}]}}},
        {"name": "total", "type": "double"},
        {"name": "currency", "type": "string"},
        {"name": "note", "type": "string"},
    ],
}  # fmt: skip

ORDER_PROTO = """syntax = "proto3";
package bench;
message Order {
  string order_id = 1;
  Customer customer = 2;
  repeated Line lines = 3;
  double total = 4;
  string currency = 5;
  string note = 6;
  message Customer { string id = 1; string tier = 2; string country = 3; }
  message Line { string sku = 1; int32 qty = 2; double price = 3; }
}
"""


def _order_module() -> Any:
    out = Path(tempfile.mkdtemp(prefix="eventscope-bench-pb-"))
    (out / "bench_order.proto").write_text(ORDER_PROTO)
    import grpc_tools

    include = Path(grpc_tools.__file__).parent / "_proto"
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{out}", f"-I{include}",
         f"--python_out={out}", "bench_order.proto"], check=True, cwd=out,
    )  # fmt: skip
    sys.path.insert(0, str(out))
    return importlib.import_module("bench_order_pb2")


class ValueEncoder:
    """Turns the benchmark's JSON values into one format's bytes."""

    def __init__(self, fmt: str, registry_url: str | None, topic: str) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"format: one of {', '.join(FORMATS)}")
        self.format = fmt
        self.encode: Callable[[bytes], bytes] = lambda value: value
        if fmt == "json":
            return
        if registry_url is None:
            raise ValueError(f"{fmt} needs a schema registry")
        registry = RegistryClient(SchemaRegistryConfig(url=registry_url))
        subject = f"{topic}-value"
        if fmt == "avro":
            schema_id = registry.register(subject, json.dumps(ORDER_AVRO), "AVRO")
            parsed = fastavro.parse_schema(ORDER_AVRO)

            def encode_avro(value: bytes) -> bytes:
                body = io.BytesIO()
                fastavro.schemaless_writer(body, parsed, json.loads(value))
                return frame(schema_id, body.getvalue())

            self.encode = encode_avro
        else:
            schema_id = registry.register(subject, ORDER_PROTO, "PROTOBUF")
            order_class = _order_module().Order

            def encode_protobuf(value: bytes) -> bytes:
                data = json.loads(value)
                message = order_class(
                    order_id=data["orderId"], total=data["total"], currency=data["currency"],
                    note=data["note"],
                )  # fmt: skip
                message.customer.id = data["customer"]["id"]
                message.customer.tier = data["customer"]["tier"]
                message.customer.country = data["customer"]["country"]
                for line in data["lines"]:
                    message.lines.add(sku=line["sku"], qty=line["qty"], price=line["price"])
                return frame(schema_id, message.SerializeToString(), (0,))

            self.encode = encode_protobuf
        registry.close()


def decoding_costs(registry_url: str, records: int) -> list[tuple[str, str]]:
    """Per format: the decoder alone and a whole normalisation, in us per record."""
    sys.path.insert(0, str(ROOT / "bench"))
    from bench.ingest import record  # the ingest benchmark's records

    run = uuid.uuid4().hex[:6]
    topic = f"bench-formats-{run}"
    samples = [record(i, run) for i in range(records)]
    conventions = Conventions()
    rows: list[tuple[str, str]] = []
    normalize_us: dict[str, float] = {}
    for fmt in FORMATS:
        encoder = ValueEncoder(fmt, registry_url, f"{topic}-{fmt}")
        values = [encoder.encode(value) for _, value, _ in samples]
        raws = [RawRecord(topic, 0, i, 0, key, values[i], headers)
                for i, (key, _, headers) in enumerate(samples)]  # fmt: skip
        decoder = RecordDecoder(RegistryClient(SchemaRegistryConfig(url=registry_url)))
        if fmt != "json":
            first = decoder.decode(topic, "value", values[0])
            assert first is not None and first.state == DECODED, first
            decode_runs = []
            for _ in range(5):
                started = time.perf_counter()
                for value in values:
                    decoder.decode(topic, "value", value)
                decode_runs.append((time.perf_counter() - started) / len(values) * 1e6)
            rows.append((f"decode alone, {fmt}", f"{statistics.median(decode_runs):.2f} us/record "
                         f"(registry asked {decoder.registry.lookups} time(s) for "  # type: ignore[union-attr]
                         f"{5 * len(values) + 1:,} decodes)"))  # fmt: skip
        normalize_runs = []
        for _ in range(5):
            started = time.perf_counter()
            for raw in raws:
                normalize(raw, conventions, decoder)
            normalize_runs.append((time.perf_counter() - started) / len(raws) * 1e6)
        normalize_us[fmt] = statistics.median(normalize_runs)
        size = statistics.mean(len(v) for v in values)
        added = normalize_us[fmt] - normalize_us["json"]
        extra = "" if fmt == "json" else f", +{added:.2f} us over JSON"
        rows.append((f"normalize, {fmt}", f"{normalize_us[fmt]:.2f} us/record{extra} "
                     f"(values {size:.0f} bytes)"))  # fmt: skip
        decoder.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schema-registry", help="a registry's URL (default: start a local one)")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--summary")
    args = parser.parse_args()
    url = args.schema_registry or start_local_registry()
    report("formats", decoding_costs(url, args.records), args.summary)
    return 0


def start_local_registry() -> str:
    """Start eventscope's local schema registry on a free port; return its URL (it keeps
    running: `eventscope registry stop --data-dir DIR`, the folder is printed)."""
    from collectors.schemas.local_registry import LocalRegistry, start

    data_dir = Path(tempfile.mkdtemp(prefix="eventscope-bench-registry-"))
    registry = LocalRegistry(data_dir=data_dir, port=free_port())
    start(registry)
    print(f"started a local schema registry at {registry.url} (data in {data_dir})", flush=True)
    return registry.url


if __name__ == "__main__":
    raise SystemExit(main())
