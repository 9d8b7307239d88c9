"""Decoders for one schema each: bytes in, a JSON-like Python value out.

Avro with fastavro (the schema parsed once, records read without a container), Protobuf
with Google's `protobuf` runtime (a descriptor pool built from the schema's files, one
message class per message-index path), JSON Schema by parsing the JSON (the schema is not
needed to read it, only to say what the record is).

Two kinds of failure, both permanent for the record: `SchemaError` (the schema itself
cannot be used) and `PayloadError` (the bytes do not fit the schema).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import decimal
import io
import os
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import fastavro
import orjson
from fastavro.types import Schema as AvroSchemaType
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, symbol_database
from google.protobuf.descriptor import Descriptor, FileDescriptor
from google.protobuf.message import DecodeError

from collectors.schemas.protobuf_json import message_converter
from collectors.schemas.wire import read_message_indexes

PROTOC_TIMEOUT_S = 60.0
MAX_SCHEMA_CHARS = 1_000_000


class SchemaError(ValueError):
    """The schema cannot be used: not valid Avro, a .proto that does not compile..."""


class PayloadError(ValueError):
    """The record's bytes do not fit its schema."""


Decode = Callable[[bytes, int], Any]  # (value, first body byte) -> document


# --- Avro ---------------------------------------------------------------------------------


def avro_decoder(text: str, named: Sequence[str] = ()) -> Decode:
    """A decoder for Avro records written with schema `text`; `named` holds the texts of
    the schemas it references, dependencies first."""
    named_schemas: dict[str, Any] = {}
    try:
        for reference in named:
            fastavro.parse_schema(orjson.loads(reference), named_schemas=named_schemas)
        parsed = fastavro.parse_schema(orjson.loads(text), named_schemas=named_schemas)
    except orjson.JSONDecodeError as exc:
        raise SchemaError(f"Avro schema is not JSON: {exc}") from None
    except Exception as exc:  # fastavro raises several types for a bad schema
        raise SchemaError(f"not a valid Avro schema: {_brief(exc)}") from None
    return _avro_reader(parsed)


def _avro_reader(parsed: AvroSchemaType) -> Decode:
    reader = fastavro.schemaless_reader

    def decode(value: bytes, start: int) -> Any:
        stream = io.BytesIO(value)
        stream.seek(start)
        try:
            record = reader(stream, parsed, None)
        except (EOFError, StopIteration):
            raise PayloadError("the bytes end before the Avro record does") from None
        except Exception as exc:
            raise PayloadError(f"does not match the Avro schema: {_brief(exc)}") from None
        rest = len(value) - stream.tell()
        if rest:
            raise PayloadError(f"{rest} bytes left after the Avro record: not this schema")
        return record

    return decode


# --- JSON Schema --------------------------------------------------------------------------


def json_decoder() -> Decode:
    def decode(value: bytes, start: int) -> Any:
        try:
            return orjson.loads(value[start:])
        except orjson.JSONDecodeError:
            raise PayloadError("a JSON Schema record whose body is not JSON") from None

    return decode


# --- Protobuf -----------------------------------------------------------------------------


class ProtobufSchema:
    """The message types of one Protobuf schema (a file and the files it imports)."""

    def __init__(self, files: Sequence[descriptor_pb2.FileDescriptorProto], main: str) -> None:
        self.pool = descriptor_pool.DescriptorPool()
        added: set[str] = set()
        by_name = {f.name: f for f in files}

        def add(name: str, trail: tuple[str, ...] = ()) -> None:
            if name in added:
                return
            if name in trail:
                raise SchemaError(f"Protobuf imports form a cycle through {name}")
            proto = by_name.get(name) or _well_known(name)
            if proto is None:
                raise SchemaError(f"Protobuf import {name!r} is neither given nor well known")
            for dependency in proto.dependency:
                add(dependency, (*trail, name))
            try:
                self.pool.Add(proto)
            except Exception as exc:
                raise SchemaError(f"Protobuf file {name}: {_brief(exc)}") from None
            added.add(name)

        add(main)
        try:
            self.file: FileDescriptor = self.pool.FindFileByName(main)
        except KeyError:
            raise SchemaError(f"Protobuf file {main} did not load") from None
        self._decoders: dict[tuple[int, ...], Decode] = {}
        self._lock = threading.Lock()

    def message_by_indexes(self, indexes: tuple[int, ...]) -> Descriptor:
        """The message type that the wire format's indexes name (top-level, then nested)."""
        types = self.file.message_types_by_name
        candidates = list(types.values())
        descriptor: Descriptor | None = None
        for depth, index in enumerate(indexes):
            if index >= len(candidates):
                where = "top-level" if depth == 0 else f"nested in {descriptor.full_name}"  # type: ignore[union-attr]
                raise PayloadError(
                    f"message index {list(indexes)} is not in the schema "
                    f"({len(candidates)} {where} messages)"
                )
            descriptor = candidates[index]
            candidates = list(descriptor.nested_types)
        assert descriptor is not None
        return descriptor

    def decoder_for_indexes(self) -> Decode:
        """A decoder for framed records: message indexes first, then the message.

        The indexes' bytes of the records seen are kept with their message decoder (a
        handful per schema): one slice and one dictionary read instead of parsing varints.
        """
        by_prefix: dict[bytes, Decode] = {}

        def decode(value: bytes, start: int) -> Any:
            # A prefix of one-byte varints is (count * 2) then count bytes.
            prefix = value[start : start + 1 + (value[start] >> 1)] if len(value) > start else b""
            message_decode = by_prefix.get(prefix)
            if message_decode is not None:
                return message_decode(value, start + len(prefix))
            indexes, body_start = read_message_indexes(value, start)
            with self._lock:
                message_decode = self._decoders.get(indexes)
                if message_decode is None:
                    message_decode = message_decoder(self.message_by_indexes(indexes))
                    self._decoders[indexes] = message_decode
                if body_start - start == len(prefix):
                    by_prefix[prefix] = message_decode
            return message_decode(value, body_start)

        return decode

    def decoder_for_name(self, full_name: str) -> Decode:
        try:
            descriptor = self.pool.FindMessageTypeByName(full_name)
        except KeyError:
            known = ", ".join(sorted(self.file.message_types_by_name)) or "none"
            raise SchemaError(
                f"no message {full_name!r} in the descriptors (top-level: {known})"
            ) from None
        return message_decoder(descriptor)


def message_decoder(descriptor: Descriptor) -> Decode:
    message_class = message_factory.GetMessageClass(descriptor)
    convert = message_converter(descriptor)

    def decode(value: bytes, start: int) -> Any:
        message = message_class()
        try:
            message.ParseFromString(value[start:])
        except DecodeError as exc:
            raise PayloadError(f"does not parse as {descriptor.full_name}: {_brief(exc)}") from None
        return convert(message)

    return decode


def protobuf_files(
    text: str, name: str, imports: Mapping[str, str]
) -> list[descriptor_pb2.FileDescriptorProto]:
    """File descriptors of a Protobuf schema given as .proto text or as a base64
    FileDescriptorProto (what some serializers register), and of its imports by name."""
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    texts: dict[str, str] = {}
    for file_name, source in {**imports, name: text}.items():
        proto = _as_file_descriptor(source, file_name)
        if proto is None:
            texts[file_name] = source
        else:
            files[file_name] = proto
    if texts:
        for proto in compile_proto(texts, list(texts)):
            files.setdefault(proto.name, proto)
    return list(files.values())


def _as_file_descriptor(text: str, name: str) -> descriptor_pb2.FileDescriptorProto | None:
    stripped = text.strip()
    if not stripped or any(ch in stripped for ch in " ;{\n"):
        return None  # .proto text always has spaces, semicolons or braces
    try:
        raw = base64.b64decode(stripped, validate=True)
    except (binascii.Error, ValueError):
        return None
    proto = descriptor_pb2.FileDescriptorProto()
    try:
        proto.ParseFromString(raw)
    except DecodeError:
        return None
    if not proto.message_type and not proto.enum_type:
        return None
    proto.name = name
    return proto


def compile_proto(
    texts: Mapping[str, str], mains: Sequence[str]
) -> list[descriptor_pb2.FileDescriptorProto]:
    """Compile .proto texts (by file name) with protoc, the compiler that grpcio-tools
    ships; the well-known types (google/protobuf/*.proto) are on its include path."""
    import grpc_tools

    if any(len(text) > MAX_SCHEMA_CHARS for text in texts.values()):
        raise SchemaError("a Protobuf schema over a million characters")
    include = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory(prefix="eventscope-proto-") as work:
        root = Path(work)
        for file_name, text in texts.items():
            target = (root / "src" / file_name).resolve()
            if not target.is_relative_to(root / "src"):
                raise SchemaError(f"Protobuf file name {file_name!r} leaves the source folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        out = root / "set.pb"
        command = [
            sys.executable, "-m", "grpc_tools.protoc", f"-I{root / 'src'}", f"-I{include}",
            "--include_imports", f"--descriptor_set_out={out}", *mains,
        ]  # fmt: skip
        try:
            result = subprocess.run(
                command, cwd=root / "src", capture_output=True, text=True,
                timeout=PROTOC_TIMEOUT_S, check=False, env=_protoc_env(),
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise SchemaError("the Protobuf compiler took over a minute") from None
        if result.returncode != 0 or not out.is_file():
            lines = (result.stderr or result.stdout).strip().splitlines()
            raise SchemaError("Protobuf schema does not compile: " + " / ".join(lines[-3:]))
        file_set = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    return list(file_set.file)


def _protoc_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "PYTHONPATH")}


def _well_known(name: str) -> descriptor_pb2.FileDescriptorProto | None:
    """google/protobuf/*.proto from the runtime's own descriptors."""
    if not name.startswith("google/"):
        return None
    try:
        found = symbol_database.Default().pool.FindFileByName(name)
    except KeyError:
        _load_well_known_modules()
        try:
            found = symbol_database.Default().pool.FindFileByName(name)
        except KeyError:
            return None
    proto = descriptor_pb2.FileDescriptorProto()
    found.CopyToProto(proto)
    return proto


def _load_well_known_modules() -> None:
    from google.protobuf import (  # noqa: F401  (importing registers them)
        any_pb2,
        duration_pb2,
        empty_pb2,
        field_mask_pb2,
        struct_pb2,
        timestamp_pb2,
        wrappers_pb2,
    )


def descriptor_set_schema(raw: bytes, source: str) -> ProtobufSchema:
    """A schema from a FileDescriptorSet file (protoc --descriptor_set_out)."""
    try:
        file_set = descriptor_pb2.FileDescriptorSet.FromString(raw)
    except DecodeError:
        raise SchemaError(f"{source} is not a Protobuf FileDescriptorSet") from None
    if not file_set.file:
        raise SchemaError(f"{source} holds no Protobuf files")
    return ProtobufSchema(list(file_set.file), file_set.file[-1].name)


# --- turning decoded values into JSON -------------------------------------------------------


def json_default(value: Any) -> Any:
    """What orjson cannot write itself: Avro bytes and fixed (as Avro's JSON encoding
    writes them, one character per byte), decimals (as text, exact), and the rest as
    their text."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("latin-1")
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.time | uuid.UUID):
        return str(value)
    raise TypeError


def to_json(document: Any) -> str:
    return orjson.dumps(document, default=json_default, option=orjson.OPT_NON_STR_KEYS).decode()


def _brief(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "…"
