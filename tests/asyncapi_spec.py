"""AsyncAPI 3.0's JSON Schema, which the catalog's export is validated against in the tests.

A test-only asset, like axe-core (tests/axe_core.py): the `@asyncapi/specs` tarball from
the npm registry (npm's sha512 integrity pinned here), its bundled 3.0.0 schema kept in the
user's cache folder, never committed. `python -m tests.asyncapi_spec` fetches it ahead
(scripts/test.sh).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from collectors.cache import cache_dir
from console import assets

ASYNCAPI_SPECS = assets.NpmPackage(
    "@asyncapi/specs", "6.11.1",
    "sha512-A3WBLqAKGoJ2+6FWFtpjBlCQ1oFCcs4GxF7zsIGvNqp/klGUHjlA3aAcZ9XMMpLGE8zPeYDz2x9FmO6DSuKraQ==",
    (("package/schemas/3.0.0-without-$id.json", "asyncapi-3.0.0.schema.json"),),
)  # fmt: skip


def schema_path() -> Path:
    directory = cache_dir() / "test-assets"
    assets.fetch(directory, (ASYNCAPI_SPECS,))
    return directory / ASYNCAPI_SPECS.files[0][1]


def asyncapi_3_schema() -> dict[str, Any]:
    found: dict[str, Any] = json.loads(schema_path().read_text(encoding="utf-8"))
    return found


if __name__ == "__main__":
    print(schema_path())
