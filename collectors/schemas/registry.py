"""A client for the Confluent schema registry API (Confluent, Apicurio's `/apis/ccompat/v7`,
Karapace, Redpanda): what the collectors need to decode records and what the console's
schema pages show and change.

Every failure is a `RegistryError` whose `retryable` says whether asking again later can
help (the registry is down, slow, refuses the credentials, or does not know the id yet)
or not (the registry rejected what was sent). Schemas by id are immutable, so they are
cached (bounded); nothing else is.
"""

from __future__ import annotations

import ssl
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from collectors.config import SchemaRegistryConfig

SCHEMA_CACHE_SIZE = 2_000
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
SCHEMA_TYPES = ("AVRO", "PROTOBUF", "JSON")
COMPATIBILITY_LEVELS = (
    "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE",
    "FULL", "FULL_TRANSITIVE", "NONE",
)  # fmt: skip

# The registry's error codes (HTTP status times 100 plus a detail) that name a missing thing.
SUBJECT_NOT_FOUND = 40401
VERSION_NOT_FOUND = 40402
SCHEMA_NOT_FOUND = 40403


class RegistryError(Exception):
    """The registry could not answer. `retryable`: asking again later may succeed."""

    def __init__(
        self, message: str, *, retryable: bool, status: int | None = None, code: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status = status
        self.code = code


@dataclass(frozen=True)
class Reference:
    """A schema this one uses: its import name (Protobuf file, Avro type) and where it is."""

    name: str
    subject: str
    version: int


@dataclass(frozen=True)
class RegisteredSchema:
    id: int
    schema_type: str  # AVRO, PROTOBUF or JSON
    text: str
    references: tuple[Reference, ...] = ()


@dataclass(frozen=True)
class SubjectVersion:
    subject: str
    version: int
    schema: RegisteredSchema


@dataclass(frozen=True)
class Compatibility:
    is_compatible: bool
    messages: tuple[str, ...]


class RegistryClient:
    """One registry, shared by threads (httpx's client is thread-safe; the cache is locked)."""

    def __init__(
        self, config: SchemaRegistryConfig, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.config = config
        self.url = config.url.rstrip("/")
        headers = {"Accept": CONTENT_TYPE + ", application/json"}
        auth: httpx.BasicAuth | None = None
        if config.token:
            headers["Authorization"] = f"Bearer {config.token}"
        elif config.username:
            auth = httpx.BasicAuth(config.username, config.password or "")
        self._client_options: dict[str, Any] = {
            "base_url": self.url, "headers": headers, "auth": auth, "timeout": config.timeout_s,
            "verify": _tls(config), "transport": transport, "follow_redirects": False,
        }  # fmt: skip
        self._http: httpx.Client | None = None
        self._schemas: OrderedDict[int, RegisteredSchema] = OrderedDict()
        self._lock = threading.Lock()
        self.lookups = 0  # requests for schemas by id (the cache's misses)

    def close(self) -> None:
        """Close the connections (a later request opens new ones)."""
        http, self._http = self._http, None
        if http is not None:
            http.close()

    def _client(self) -> httpx.Client:
        http = self._http
        if http is None:
            with self._lock:
                if self._http is None:
                    self._http = httpx.Client(**self._client_options)
                http = self._http
        return http

    # --- reading ------------------------------------------------------------------------

    def schema_by_id(self, schema_id: int) -> RegisteredSchema:
        with self._lock:
            cached = self._schemas.get(schema_id)
            if cached is not None:
                self._schemas.move_to_end(schema_id)
                return cached
        self.lookups += 1
        body = self._json("GET", f"/schemas/ids/{schema_id}", what=f"schema {schema_id}")
        schema = _registered(schema_id, body)
        with self._lock:
            self._schemas[schema_id] = schema
            while len(self._schemas) > SCHEMA_CACHE_SIZE:
                self._schemas.popitem(last=False)
        return schema

    def subjects_of(self, schema_id: int) -> list[tuple[str, int]]:
        """The (subject, version) pairs registered with this schema id."""
        body = self._json("GET", f"/schemas/ids/{schema_id}/versions", what=f"schema {schema_id}")
        pairs = []
        for item in body if isinstance(body, list) else []:
            if isinstance(item, Mapping) and isinstance(item.get("version"), int):
                pairs.append((str(item.get("subject", "")), item["version"]))
        return pairs

    def subjects(self) -> list[str]:
        body = self._json("GET", "/subjects", what="the subjects")
        return sorted(str(s) for s in body) if isinstance(body, list) else []

    def versions(self, subject: str) -> list[int]:
        body = self._json("GET", f"/subjects/{_part(subject)}/versions", what=f"subject {subject}")
        return sorted(v for v in body if isinstance(v, int)) if isinstance(body, list) else []

    def version(self, subject: str, version: int | str) -> SubjectVersion:
        what = f"{subject} version {version}"
        body = self._json("GET", f"/subjects/{_part(subject)}/versions/{version}", what=what)
        if not isinstance(body, Mapping) or not isinstance(body.get("id"), int):
            raise RegistryError(f"{what}: unexpected answer", retryable=True)
        return SubjectVersion(
            str(body.get("subject", subject)),
            int(body.get("version", 0)),
            _registered(body["id"], body),
        )

    def compatibility_level(self, subject: str | None = None) -> str | None:
        """The subject's compatibility level (falling back to the global one), or None."""
        path = "/config" if subject is None else f"/config/{_part(subject)}"
        try:
            body = self._json("GET", path, params={"defaultToGlobal": "true"}, what="config")
        except RegistryError as exc:
            if exc.status == 404 and subject is not None:
                return self.compatibility_level(None)
            raise
        if not isinstance(body, Mapping):
            return None
        level = body.get("compatibilityLevel") or body.get("compatibility")
        return str(level) if level else None

    def check_compatibility(
        self, subject: str, text: str, schema_type: str, references: tuple[Reference, ...] = ()
    ) -> Compatibility:
        """Would `text` be accepted as the subject's next version?"""
        body = self._json(
            "POST", f"/compatibility/subjects/{_part(subject)}/versions/latest",
            params={"verbose": "true"}, json=_schema_body(text, schema_type, references),
            what=f"compatibility with {subject}",
        )  # fmt: skip
        if not isinstance(body, Mapping) or not isinstance(body.get("is_compatible"), bool):
            raise RegistryError("compatibility check: unexpected answer", retryable=True)
        messages = body.get("messages") or []
        return Compatibility(body["is_compatible"], tuple(str(m) for m in messages if m)[:50])

    def ping(self) -> None:
        """Raises RegistryError unless the registry answers."""
        self._json("GET", "/subjects", what="the subjects")

    # --- changing -----------------------------------------------------------------------

    def register(
        self, subject: str, text: str, schema_type: str, references: tuple[Reference, ...] = ()
    ) -> int:
        body = self._json(
            "POST", f"/subjects/{_part(subject)}/versions",
            json=_schema_body(text, schema_type, references), what=f"register in {subject}",
        )  # fmt: skip
        if not isinstance(body, Mapping) or not isinstance(body.get("id"), int):
            raise RegistryError("register: unexpected answer", retryable=True)
        return int(body["id"])

    def delete_version(self, subject: str, version: int, *, permanent: bool = False) -> None:
        path = f"/subjects/{_part(subject)}/versions/{version}"
        self._json("DELETE", path, what=f"{subject} version {version}")
        if permanent:
            self._json("DELETE", path, params={"permanent": "true"}, what=path)

    def delete_subject(self, subject: str, *, permanent: bool = False) -> None:
        path = f"/subjects/{_part(subject)}"
        self._json("DELETE", path, what=f"subject {subject}")
        if permanent:
            self._json("DELETE", path, params={"permanent": "true"}, what=f"subject {subject}")

    def set_compatibility(self, subject: str, level: str) -> None:
        if level not in COMPATIBILITY_LEVELS:
            raise RegistryError(f"unknown compatibility level {level!r}", retryable=False)
        self._json(
            "PUT", f"/config/{_part(subject)}", json={"compatibility": level},
            what=f"compatibility of {subject}",
        )  # fmt: skip

    # --- the wire -----------------------------------------------------------------------

    def _json(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> Any:
        headers = {"Content-Type": CONTENT_TYPE} if json is not None else None
        try:
            response = self._client().request(
                method, path, params=params, json=json, headers=headers
            )
        except httpx.TimeoutException:
            raise RegistryError(
                f"registry timeout after {self.config.timeout_s:g} s", retryable=True
            ) from None
        except httpx.HTTPError as exc:
            raise RegistryError(f"registry unreachable ({_brief(exc)})", retryable=True) from None
        if len(response.content) > MAX_RESPONSE_BYTES:
            raise RegistryError(f"registry answer for {what} is over 8 MiB", retryable=False)
        if response.is_success:
            try:
                return response.json()
            except ValueError:
                raise RegistryError(
                    f"registry answered {what} with something that is not JSON", retryable=True
                ) from None
        raise _status_error(response, what)


def _status_error(response: httpx.Response, what: str) -> RegistryError:
    status = response.status_code
    code: int | None = None
    detail = ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping):
        raw_code = body.get("error_code")
        code = raw_code if isinstance(raw_code, int) else None
        detail = str(body.get("message") or "")[:300]
    if status in (401, 403):
        message = f"registry refused the credentials ({status})"
        return RegistryError(message, retryable=True, status=status, code=code)
    if status == 404:
        message = detail or f"{what} not found"
        return RegistryError(f"{message} ({code or 404})", retryable=True, status=404, code=code)
    if status >= 500 or status == 429:
        message = f"registry error {status}" + (f": {detail}" if detail else "")
        return RegistryError(message, retryable=True, status=status, code=code)
    message = f"registry rejected {what} ({code or status})" + (f": {detail}" if detail else "")
    return RegistryError(message, retryable=False, status=status, code=code)


def _registered(schema_id: int, body: Any) -> RegisteredSchema:
    if not isinstance(body, Mapping) or not isinstance(body.get("schema"), str):
        raise RegistryError(f"schema {schema_id}: the registry's answer has no schema text",
                            retryable=False)  # fmt: skip
    schema_type = str(body.get("schemaType") or "AVRO").upper()  # absent means Avro
    references = []
    for ref in body.get("references") or ():
        if isinstance(ref, Mapping) and isinstance(ref.get("version"), int):
            references.append(
                Reference(str(ref.get("name", "")), str(ref.get("subject", "")), ref["version"])
            )
    return RegisteredSchema(schema_id, schema_type, body["schema"], tuple(references))


def _schema_body(text: str, schema_type: str, references: tuple[Reference, ...]) -> dict[str, Any]:
    body: dict[str, Any] = {"schema": text}
    if schema_type != "AVRO":
        body["schemaType"] = schema_type
    if references:
        body["references"] = [
            {"name": r.name, "subject": r.subject, "version": r.version} for r in references
        ]
    return body


def _part(text: str) -> str:
    return quote(text, safe="")


def _tls(config: SchemaRegistryConfig) -> ssl.SSLContext | bool:
    if not config.verify:
        return False
    if config.ca_file:
        return ssl.create_default_context(cafile=config.ca_file)
    return True


def _brief(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "…"
