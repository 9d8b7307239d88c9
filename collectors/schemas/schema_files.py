"""Schemas read from files for topics whose records carry no registry frame (as AKHQ's
per-topic descriptor files): an Avro schema (.avsc) or a Protobuf FileDescriptorSet and
the full name of the message in it."""

from __future__ import annotations

from pathlib import Path

from collectors.config import SchemaFileConfig
from collectors.schemas.decoders import Decode, SchemaError, avro_decoder, descriptor_set_schema

MAX_FILE_BYTES = 8 * 1024 * 1024


class SchemaFileError(ValueError):
    """`key` names the setting at fault (avro, protobuf or message)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


def load_schema_file(spec: SchemaFileConfig) -> Decode:
    """A decoder for whole (unframed) records described by `spec`."""
    key = "avro" if spec.avro is not None else "protobuf"
    path = Path(spec.avro or spec.protobuf or "")
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise SchemaFileError(key, f"{path} is over 8 MiB")
        raw = path.read_bytes()
    except OSError as exc:
        raise SchemaFileError(key, f"cannot read {path}: {exc.strerror}") from None
    try:
        if spec.avro is not None:
            return avro_decoder(raw.decode("utf-8", "replace"))
        schema = descriptor_set_schema(raw, str(path))
    except SchemaError as exc:
        raise SchemaFileError(key, f"{path}: {exc}") from None
    try:
        return schema.decoder_for_name(spec.message or "")
    except SchemaError as exc:
        raise SchemaFileError("message", str(exc)) from None
