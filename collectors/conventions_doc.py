"""The user guide's page on header conventions, rendered from the code itself.

`eventscope docs conventions > docs/conventions.md` regenerates it; a test fails when the
committed page and the code disagree, so the documentation cannot drift.
"""

from __future__ import annotations

from collectors.conventions import Conventions

INTRO = """# Header and payload conventions

Generated from `collectors/conventions.py` by `eventscope docs conventions`; do not edit.

For every column of the index, eventscope tries the sources below in order and keeps the
first non-empty one. Header names match case-insensitively; when a header repeats, the
last one counts. Every list can be replaced in the `[conventions]` table of
`eventscope.toml` (the key is the column name followed by `_headers` or `_json_paths`,
for example `correlation_id_headers = ["x-corr"]`).
"""


def render(conventions: Conventions | None = None) -> str:
    conventions = conventions or Conventions()
    lines = [INTRO, "| index column | sources, first match wins |", "|---|---|"]
    for column, sources in conventions.describe():
        cells = "<br>".join(_cell(source) for source in sources)
        lines.append(f"| `{column}` | {cells} |")
    lines += [
        "",
        f"Values are kept up to {conventions.value_cap:,} bytes (`collector.value_cap`);",
        "longer values are truncated and their original size recorded.",
        "",
    ]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
