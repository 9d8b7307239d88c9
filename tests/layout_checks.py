"""What a page's layout must never do, measured in the browser: scroll the page sideways,
or break a word of a table heading across two lines ("Partitio / n")."""

from __future__ import annotations

from playwright.async_api import Page

_SIDEWAYS = "() => [document.documentElement.scrollWidth, window.innerWidth]"

# Each word of each heading (a run of letters, digits and dots inside one text node; a
# heading may still wrap between words or after a hyphen) must sit on one line.
_BROKEN_HEADING_WORDS = r"""() => {
  const broken = [];
  for (const heading of document.querySelectorAll("th")) {
    if (!heading.getClientRects().length) continue;
    const walker = document.createTreeWalker(heading, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const word of node.data.matchAll(/[\p{L}\p{N}.]+/gu)) {
        const range = document.createRange();
        range.setStart(node, word.index);
        range.setEnd(node, word.index + word[0].length);
        const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
        if (lines.size > 1) broken.push(`"${word[0]}" in "${heading.textContent.trim()}"`);
      }
    }
  }
  return broken;
}"""


async def layout_problems(page: Page) -> list[str]:
    problems: list[str] = []
    scroll_width, inner_width = await page.evaluate(_SIDEWAYS)
    if scroll_width > inner_width:
        problems.append(f"the page scrolls sideways ({scroll_width} px wide in {inner_width} px)")
    problems += [
        f"heading word broken: {word}" for word in await page.evaluate(_BROKEN_HEADING_WORDS)
    ]
    return problems
