"""Layered drawings of directed graphs, left to right: the topology map and event lineage.

The pages draw the result as SVG (static/js/graph.js); this module does the geometry, in
layout units that are screen pixels at scale 1. The scheme is Sugiyama's, kept small:

1. layers are given by the caller (topology: one column per kind of node; lineage: the
   breadth-first distance from the event, causes left of effects);
2. a link that skips layers gets a point in every layer it crosses, so the ordering keeps
   room for it and its line bends around the boxes, not through them;
3. each layer is ordered by the barycentre (mean row) of its neighbours in the layer
   before, then in the layer after, sweeping a few times and keeping the order with the
   fewest crossings;
4. boxes are sized from their label lines, stacked per layer and centred vertically.

Links that go backwards or stay in their layer (a dead-letter topic fed by its own
consumer group, a cycle) take no part in the ordering; the browser draws them as curves.

Label lines are capped here (wrapped at separators, then ellipsised): the full text goes
in the box's `title`, which the browser shows as a tooltip.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from typing_extensions import TypedDict

from console.payload_view import BIDI_CONTROLS

TITLE_PX = 13  # a box's first line, bold
TEXT_PX = 12  # every other line
CHAR_EM = 0.6  # a character's width in em, a little wide so that most labels fit
BOLD_EM = 0.66
LINE_PX = 15  # baseline to baseline
PAD_X = 8
PAD_Y = 5
LINE_CHARS = 18  # characters per label line
BOLD_LINE_CHARS = 18
ROW_GAP = 10  # between boxes of a layer
DUMMY_PX = 6  # the height a link passing through a layer takes in it
MARGIN = 8
SWEEPS = 4
MAX_TITLE_CHARS = 1_000


class LineJson(TypedDict):
    text: str
    size: int  # font size in layout units
    bold: bool


class BoxJson(TypedDict):
    id: str
    node: str  # the node it draws; a node may have two boxes (a service that also consumes)
    x: float  # left
    y: float  # top
    w: float
    h: float
    lines: list[LineJson]
    title: str  # the full text, for the tooltip


class LinkJson(TypedDict):
    id: str
    source: str  # box id
    target: str  # box id
    edges: list[str]  # the edges of the graph it draws (parallel edges share one line)
    points: list[list[float]]  # [x, y] from the source's side to the target's
    back: bool  # goes right to left, or stays in its layer: points are a cubic Bézier


class DrawingJson(TypedDict):
    width: float
    height: float
    boxes: list[BoxJson]
    links: list[LinkJson]


@dataclass(frozen=True)
class Box:
    id: str
    node: str
    layer: int
    lines: tuple[LineJson, ...]
    title: str
    order: tuple[object, ...] = ()  # the initial order within its layer (time, name)


@dataclass(frozen=True)
class Link:
    source: str  # box id
    target: str  # box id
    edge: str


CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f]")


def visible(text: str) -> str:
    """Direction-changing characters shown as `\\u202e` (as the pages' `no_bidi` does),
    control characters as spaces: a label reads as what it is."""
    text = BIDI_CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return CONTROL_CHARACTERS.sub(" ", text)


def line(text: str, *, bold: bool = False) -> LineJson:
    return LineJson(text=text, size=TITLE_PX if bold else TEXT_PX, bold=bold)


def label(text: str, chars: int = LINE_CHARS, max_lines: int = 2, *, bold: bool = False
          ) -> list[LineJson]:  # fmt: skip
    """The lines of a label: made visible, wrapped, capped."""
    return [line(part, bold=bold) for part in wrap(visible(text), chars, max_lines)]


def wrap(text: str, chars: int = LINE_CHARS, max_lines: int = 2) -> list[str]:
    """`text` in lines of at most `chars` characters, broken after a separator (. - _ / :
    or a space) when one is near, and an ellipsis on the last line when it does not fit."""
    lines: list[str] = []
    rest = text
    while rest and len(lines) < max_lines:
        if len(rest) <= chars:
            lines.append(rest)
            return lines
        if len(lines) == max_lines - 1:
            lines.append(rest[: chars - 1] + "…")
            return lines
        cut = max((rest.rfind(sep, 0, chars) for sep in ".-_/: "), default=-1) + 1
        if cut < chars // 2:
            cut = chars
        lines.append(rest[:cut].rstrip(" "))
        rest = rest[cut:].lstrip(" ")
    return lines


def capped_title(*parts: str) -> str:
    """A tooltip: the parts made visible, one a line, capped."""
    text = "\n".join(visible(part) for part in parts if part)
    return text if len(text) <= MAX_TITLE_CHARS else text[: MAX_TITLE_CHARS - 1] + "…"


def box_size(lines: Sequence[LineJson]) -> tuple[float, float]:
    widest = max(
        (len(ln["text"]) * ln["size"] * (BOLD_EM if ln["bold"] else CHAR_EM) for ln in lines),
        default=0.0,
    )
    return round(widest + 2 * PAD_X, 1), float(len(lines) * LINE_PX + 2 * PAD_Y)


def crossings(upper: Sequence[str], lower: Sequence[str], pairs: Iterable[tuple[str, str]]) -> int:
    """Crossings between two adjacent layers: pairs of edges whose ends are in opposite
    orders, counted as the inversions of a sequence (merge sort, E log E)."""
    top = {key: index for index, key in enumerate(upper)}
    bottom = {key: index for index, key in enumerate(lower)}
    ends = sorted((top[a], bottom[b]) for a, b in pairs if a in top and b in bottom)
    return _inversions([b for _, b in ends])


def _inversions(values: list[int]) -> int:
    if len(values) < 2:
        return 0
    middle = len(values) // 2
    left, right = values[:middle], values[middle:]
    count = _inversions(left) + _inversions(right)
    i = j = 0
    for k in range(len(values)):
        if j >= len(right) or (i < len(left) and left[i] <= right[j]):
            values[k] = left[i]
            i += 1
        else:
            values[k] = right[j]
            j += 1
            count += len(left) - i  # every remaining left value is above this one
    return count


def order_layers(
    layers: list[list[str]], pairs: Sequence[tuple[str, str]], sweeps: int = SWEEPS
) -> list[list[str]]:
    """Barycentric ordering: `pairs` join adjacent layers (from layer i to layer i + 1).
    Keeps the initial order for ties and the best order seen."""
    up: dict[str, list[str]] = {}
    down: dict[str, list[str]] = {}
    for a, b in pairs:
        down.setdefault(a, []).append(b)
        up.setdefault(b, []).append(a)
    current = [list(layer) for layer in layers]

    def total(order: list[list[str]]) -> int:
        return sum(crossings(order[i], order[i + 1], _between(order[i], down))
                   for i in range(len(order) - 1))  # fmt: skip

    best, best_count = [list(layer) for layer in current], total(current)
    for _ in range(sweeps):
        for index in range(1, len(current)):
            _by_barycentre(current, index, current[index - 1], up)
        for index in range(len(current) - 2, -1, -1):
            _by_barycentre(current, index, current[index + 1], down)
        count = total(current)
        if count < best_count:
            best, best_count = [list(layer) for layer in current], count
        if best_count == 0:
            break
    return best


def _between(layer: list[str], down: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [(a, b) for a in layer for b in down.get(a, ())]


def _by_barycentre(
    order: list[list[str]], index: int, fixed: list[str], neighbours: dict[str, list[str]]
) -> None:
    row = {key: position for position, key in enumerate(fixed)}
    keys = order[index]

    def barycentre(item: tuple[int, str]) -> tuple[float, int]:
        position, key = item
        rows = [row[n] for n in neighbours.get(key, ()) if n in row]
        return (sum(rows) / len(rows) if rows else float(position), position)

    order[index] = [key for _, key in sorted(enumerate(keys), key=barycentre)]


def draw(boxes: Sequence[Box], links: Sequence[Link], layer_gap: float = 36) -> DrawingJson:
    """The drawing of `boxes` and `links`: every box placed, every link routed."""
    if not boxes:
        return DrawingJson(width=0, height=0, boxes=[], links=[])
    lowest = min(box.layer for box in boxes)
    by_id = {box.id: box for box in boxes}
    layer_of = {box.id: box.layer - lowest for box in boxes}
    layer_count = max(layer_of.values()) + 1
    size = {box.id: box_size(box.lines) for box in boxes}

    merged: dict[tuple[str, str], list[str]] = {}
    for link in links:
        if link.source in by_id and link.target in by_id:
            merged.setdefault((link.source, link.target), []).append(link.edge)

    layers: list[list[str]] = [[] for _ in range(layer_count)]
    for box in sorted(boxes, key=lambda b: (b.order, b.id)):
        layers[layer_of[box.id]].append(box.id)
    pairs: list[tuple[str, str]] = []
    chains: dict[tuple[str, str], list[str]] = {}  # a forward link's points through layers
    for number, (source, target) in enumerate(merged):
        start, end = layer_of[source], layer_of[target]
        if end <= start:
            continue
        chain = [source]
        for layer in range(start + 1, end):
            dummy = f"~{number}:{layer}"
            layers[layer].append(dummy)
            size[dummy] = (0.0, DUMMY_PX)
            layer_of[dummy] = layer
            chain.append(dummy)
        chain.append(target)
        chains[(source, target)] = chain
        pairs += pairwise(chain)
    layers = order_layers(layers, pairs)

    column_x: list[float] = []
    column_w: list[float] = []
    x = float(MARGIN)
    for keys in layers:
        width = max((size[key][0] for key in keys), default=0.0)
        column_x.append(x)
        column_w.append(width)
        x += width + layer_gap
    width = x - layer_gap + MARGIN
    heights = [sum(size[key][1] for key in keys) + ROW_GAP * max(0, len(keys) - 1)
               for keys in layers]  # fmt: skip
    height = max(heights) + 2 * MARGIN
    place: dict[str, tuple[float, float]] = {}  # key -> (left, top)
    for index, keys in enumerate(layers):
        y = MARGIN + (height - 2 * MARGIN - heights[index]) / 2
        for key in keys:
            w, h = size[key]
            place[key] = (column_x[index] + (column_w[index] - w) / 2, y)
            y += h + ROW_GAP

    def mid_y(key: str) -> float:
        return round(place[key][1] + size[key][1] / 2, 1)

    def right(key: str) -> list[float]:
        return [round(place[key][0] + size[key][0], 1), mid_y(key)]

    def left(key: str) -> list[float]:
        return [round(place[key][0], 1), mid_y(key)]

    drawn_links: list[LinkJson] = []
    for (source, target), edges in merged.items():
        route = chains.get((source, target))
        if route is None:  # backwards, or within its layer: a curve (start, two controls, end)
            points = _back_curve(
                left(source) if layer_of[source] != layer_of[target] else right(source),
                right(target),
            )
        else:
            points = [right(source)]
            for dummy in route[1:-1]:
                column = layer_of[dummy]
                points.append([round(column_x[column], 1), mid_y(dummy)])
                points.append([round(column_x[column] + column_w[column], 1), mid_y(dummy)])
            points.append(left(target))
        drawn_links.append(LinkJson(
            id=f"{source}->{target}", source=source, target=target, edges=edges,
            points=points, back=route is None,
        ))  # fmt: skip
    drawn_boxes = [
        BoxJson(
            id=box.id, node=box.node, x=round(place[box.id][0], 1), y=round(place[box.id][1], 1),
            w=size[box.id][0], h=size[box.id][1], lines=list(box.lines), title=box.title,
        )
        for box in boxes
    ]  # fmt: skip
    return DrawingJson(width=round(width, 1), height=round(height, 1), boxes=drawn_boxes,
                       links=drawn_links)  # fmt: skip


BOW = 40  # how far a backward curve swings out of its ends


def _back_curve(start: list[float], end: list[float]) -> list[list[float]]:
    """A cubic Bézier (start, two control points, end) for a link that cannot run left to
    right: from a box's left side back to a box's right side, or between the right sides
    of two boxes of one layer, swinging out to the right."""
    bow = max(BOW, abs(start[1] - end[1]) / 3)
    if start[0] > end[0] + 1:  # backwards: leave to the left, arrive from the right
        controls = [[start[0] - bow, start[1]], [end[0] + bow, end[1]]]
    else:
        side = max(start[0], end[0]) + bow
        controls = [[side, start[1]], [side, end[1]]]
    return [start, *([round(x, 1), round(y, 1)] for x, y in controls), end]
