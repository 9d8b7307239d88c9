"""The shape of an event type, learned from sample payloads: a JSON Schema that every
sample satisfies (objects with their properties, arrays with their items, each value's
types), and the same as a flat list of paths (`$.order.items[].sku: string`) for reading.

Pure and bounded: payloads deeper than MAX_DEPTH or with more than MAX_PROPERTIES keys per
object are cut (the schema then says so with `additionalProperties: true`), and a property
is `required` only when every sample that had the object had it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from console.payload_view import parsed_json

MAX_DEPTH = 8
MAX_PROPERTIES = 100
MAX_PATHS = 300
MAX_PAYLOAD_BYTES = 256 * 1024


def payload_of(row: Mapping[str, Any]) -> Any:
    """A record's payload as data: its decoded form, else its value read as JSON (None when
    it is neither, or larger than MAX_PAYLOAD_BYTES)."""
    decoded = parsed_json(row.get("decoded_value"))
    if decoded is not None:
        return decoded
    value = row.get("value")
    if not value or len(value) > MAX_PAYLOAD_BYTES:
        return None
    try:
        return json.loads(value)
    except (ValueError, RecursionError, UnicodeDecodeError):
        return None


_JSON_TYPES = (
    (bool, "boolean"),  # before int: True is an int in Python
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (type(None), "null"),
    (dict, "object"),
    (list, "array"),
)


def json_type(value: Any) -> str:
    for python_type, name in _JSON_TYPES:
        if isinstance(value, python_type):
            return name
    return "string"


class _Node:
    """What the samples showed at one place of the payload."""

    def __init__(self) -> None:
        self.types: set[str] = set()
        self.properties: dict[str, _Node] = {}
        self.seen_in: dict[str, int] = {}  # property -> how many objects had it
        self.objects = 0
        self.items: _Node | None = None
        self.cut = False

    def add(self, value: Any, depth: int) -> None:
        kind = json_type(value)
        self.types.add(kind)
        if depth >= MAX_DEPTH and kind in ("object", "array"):
            self.cut = True
            return
        if kind == "object":
            self.objects += 1
            for key, item in list(value.items())[:MAX_PROPERTIES]:
                name = str(key)
                if name not in self.properties and len(self.properties) >= MAX_PROPERTIES:
                    self.cut = True
                    continue
                self.properties.setdefault(name, _Node()).add(item, depth + 1)
                self.seen_in[name] = self.seen_in.get(name, 0) + 1
            self.cut |= len(value) > MAX_PROPERTIES
        elif kind == "array":
            for item in value[:MAX_PROPERTIES]:
                if self.items is None:
                    self.items = _Node()
                self.items.add(item, depth + 1)

    def schema(self) -> dict[str, Any]:
        types = sorted(self.types)
        found: dict[str, Any] = {"type": types[0] if len(types) == 1 else types}
        if self.properties:
            found["properties"] = {k: v.schema() for k, v in sorted(self.properties.items())}
            required = sorted(k for k, n in self.seen_in.items() if n == self.objects)
            if required:
                found["required"] = required
        if "object" in self.types and self.cut:
            found["additionalProperties"] = True
        if self.items is not None:
            found["items"] = self.items.schema()
        return found

    def paths(self, prefix: str, out: list[tuple[str, str]]) -> None:
        if len(out) >= MAX_PATHS:
            return
        out.append((prefix, " | ".join(sorted(self.types))))
        for name, node in sorted(self.properties.items()):
            node.paths(f"{prefix}.{name}", out)
        if self.items is not None:
            self.items.paths(f"{prefix}[]", out)


def learn(samples: Iterable[Any]) -> _Node | None:
    root: _Node | None = None
    for sample in samples:
        if root is None:
            root = _Node()
        root.add(sample, 0)
    return root


def json_schema(samples: Iterable[Any]) -> dict[str, Any]:
    """A JSON Schema (draft 7 subset, as AsyncAPI payloads use) all samples satisfy; `{}`
    (anything) when there are none."""
    root = learn(samples)
    return root.schema() if root is not None else {}


def paths(samples: Iterable[Any]) -> list[tuple[str, str]]:
    """[(path, its types)], `$` first, at most MAX_PATHS."""
    root = learn(samples)
    out: list[tuple[str, str]] = []
    if root is not None:
        root.paths("$", out)
    return out


def readable(rows: Iterable[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], Any]]:
    """(row, its payload) for the rows whose payload can be read as data."""
    return [(row, payload) for row in rows if (payload := payload_of(row)) is not None]


# --- drift ---------------------------------------------------------------------------------

RECENT_SAMPLES = 20  # a path none of the newest this many had is reported as gone


def signature(sample: Any) -> set[tuple[str, str]]:
    """The (path, type) pairs of one payload."""
    root = learn([sample])
    out: list[tuple[str, str]] = []
    if root is not None:
        root.paths("$", out)
    return set(out)


def drift(samples: list[tuple[Any, Any]]) -> list[dict[str, Any]]:
    """Where the shape changed, from (reference, payload) pairs oldest first: a path that
    appears after the first sample (`added`), a path seen with a type it did not have
    (`type`), each with the first sample that showed it; and a path none of the newest
    RECENT_SAMPLES had while older ones did (`removed`), with the last sample that had it."""
    if len(samples) < 2:
        return []
    first_types: dict[str, set[str]] = {}
    for path, kind in signature(samples[0][1]):
        first_types.setdefault(path, set()).add(kind)
    seen = {path: set(kinds) for path, kinds in first_types.items()}
    last_with: dict[str, Any] = {path: samples[0][0] for path in seen}
    changes: list[dict[str, Any]] = []
    for reference, payload in samples[1:]:
        added_now: list[str] = []
        for path, kind in sorted(signature(payload)):
            known = seen.get(path)
            if known is None:
                if not any(_under(path, parent) for parent in added_now):  # its parent says it
                    changes.append({"change": "added", "path": path, "types": kind,
                                    "at": reference})  # fmt: skip
                added_now.append(path)
                seen[path] = {kind}
            elif kind not in known:
                changes.append({"change": "type", "path": path, "types": kind,
                                "was": " | ".join(sorted(known)), "at": reference})  # fmt: skip
                known.add(kind)
            last_with[path] = reference
    if len(samples) > RECENT_SAMPLES:
        recent: set[str] = set()
        for _, payload in samples[-RECENT_SAMPLES:]:
            recent |= {path for path, _ in signature(payload)}
        for path in sorted(set(seen) - recent):
            if not any(_under(path, other) for other in set(seen) - recent):
                changes.append({"change": "removed", "path": path,
                                "types": " | ".join(sorted(seen[path])),
                                "at": last_with[path]})  # fmt: skip
    return changes[:MAX_PATHS]


def _under(path: str, parent: str) -> bool:
    return path.startswith(parent + ".") or path.startswith(parent + "[")
