"""What the graph tests look at in the browser (static/js/graph.js draws the SVG), and a
console of their own on an empty index, so that a graph holds only what a test wrote."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from collectors.index.engine import create_index_engine
from tests.conftest import make_settings, serve_in_thread

# Every Content-Security-Policy violation of the page, whoever causes it.
WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__csp.push(`${event.violatedDirective} ${event.blockedURI} ${event.sourceFile}`);
});
"""

# The smallest label as rendered (font size times the scale on screen), how much of its
# box the drawing covers, the view's scale, and whether the page scrolls sideways.
GRAPH_FACTS = """
(selector) => {
  const container = document.querySelector(selector);
  const svg = container.querySelector("svg");
  const texts = [...svg.querySelectorAll("text")].filter((t) => {
    const r = t.getBoundingClientRect(), box = svg.getBoundingClientRect();
    return r.right > box.left && r.left < box.right && r.bottom > box.top && r.top < box.bottom;
  });
  const sizes = texts.map((t) => Number(t.getAttribute("font-size")) * t.getScreenCTM().a);
  const box = svg.getBoundingClientRect();
  const drawn = svg.querySelector(".graph-boxes").getBoundingClientRect();
  return {
    smallest_label_px: Math.min(...sizes),
    labels: texts.map((t) => t.textContent),
    fill: Math.max(drawn.width / box.width, drawn.height / box.height),
    box_width: box.width,
    scale: Number(container.dataset.scale),
    page_width: document.documentElement.scrollWidth,
    window_width: window.innerWidth,
  };
}
"""


async def graph_facts(page: Any, selector: str) -> dict[str, Any]:
    await page.locator(f"{selector}[data-rendered='1']").wait_for()
    facts: dict[str, Any] = await page.evaluate(GRAPH_FACTS, selector)
    return facts


async def csp_violations(page: Any) -> list[str]:
    found: list[str] = await page.evaluate("window.__csp")
    return found


@contextmanager
def own_console(folder: Path) -> Iterator[tuple[str, Engine]]:
    """A console (no cluster, no collectors) on an empty SQLite index: (its URL, the index)."""
    from console.app import create_app

    settings = make_settings(None, f"sqlite:///{folder / 'graphs.db'}")
    engine = create_index_engine(settings.index.url)
    app = create_app(settings, mode="console", engine=engine)
    try:
        with serve_in_thread(app) as url:
            yield url, engine
    finally:
        engine.dispose()
