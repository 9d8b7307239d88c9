"""axe-core, the accessibility checker the browser tests run in every page of the tour.

It is a test-only asset: fetched from the npm registry the way the console fetches its
browser libraries (console/assets.py: the tarball, npm's sha512 integrity pinned here), kept
in the user's cache folder, never committed and never served by the console. The tests
fetch it when it is missing; `python -m tests.axe_core` fetches it ahead (scripts/test.sh).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.async_api import Page

from collectors.cache import cache_dir
from console import assets

AXE_CORE = assets.NpmPackage(
    "axe-core", "4.14.1",
    "sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==",
    (("package/axe.min.js", "axe-core-4.14.1.min.js"),),
)  # fmt: skip

BLOCKING_IMPACTS = ("serious", "critical")

NOT_CHECKED: tuple[str, ...] = ()  # every part of every page is checked

_RUN = """async ([impacts, excluded]) => {
  const context = { include: [document], exclude: excluded.map((selector) => [selector]) };
  const result = await axe.run(context, { resultTypes: ["violations"] });
  return result.violations
    .filter((violation) => impacts.includes(violation.impact))
    .map((violation) => ({
      id: violation.id,
      impact: violation.impact,
      help: violation.help,
      nodes: violation.nodes.slice(0, 5)
        .map((node) => `${node.target.join(" ")}: ${node.failureSummary}`),
    }));
}"""


def axe_path() -> Path:
    """The checker's script, fetched once into the cache folder."""
    directory = cache_dir() / "test-assets"
    assets.fetch(directory, (AXE_CORE,))
    return directory / AXE_CORE.files[0][1]


async def serious_violations(page: Page, source: str) -> list[dict[str, Any]]:
    """axe-core's violations of impact serious or critical on the page as it is shown.

    The script is evaluated through the browser's debugging protocol, which the console's
    Content-Security-Policy (no inline scripts) does not apply to."""
    if not await page.evaluate("() => typeof axe !== 'undefined'"):
        await page.evaluate(source + "\n;0")
    found: list[dict[str, Any]] = await page.evaluate(
        _RUN, [list(BLOCKING_IMPACTS), list(NOT_CHECKED)]
    )
    return found


if __name__ == "__main__":
    print(axe_path())
