"""The layered drawing (console/graph_layout.py): labels capped and made visible, crossings
counted and reduced, boxes placed left to right without overlapping, links routed."""

from __future__ import annotations

from itertools import pairwise

from console import graph_layout as layout
from console.graph_layout import Box, Link


def _box(box_id: str, layer: int, text: str = "", order: int = 0) -> Box:
    return Box(box_id, box_id, layer, tuple(layout.label(text or box_id)), box_id, order=(order,))


def _mid_y(box: layout.BoxJson) -> float:
    return box["y"] + box["h"] / 2


def test_wrap_breaks_after_a_separator_and_ellipsises_the_last_line() -> None:
    assert layout.wrap("orders", 18) == ["orders"]
    assert layout.wrap("shop.payment.commands-retry", 18) == ["shop.payment.", "commands-retry"]
    assert layout.wrap("abcdefghijklmnopqrstuvwxyz", 10) == ["abcdefghij", "klmnopqrs…"]
    assert layout.wrap("a.b" * 40, 18, max_lines=1) == ["a.ba.ba.ba.ba.ba.…"]
    assert all(len(text) <= 18 for text in layout.wrap("x-" * 200, 18, max_lines=3))


def test_labels_show_direction_overrides_and_control_characters_as_text() -> None:
    assert layout.visible("\u202elive\n") == "\\u202elive "
    assert [line["text"] for line in layout.label("\u2066a")] == ["\\u2066a"]
    title = layout.capped_title("x" * 5000, "second")
    assert len(title) == layout.MAX_TITLE_CHARS and title.endswith("…")
    assert layout.capped_title("a", "", "b\u202e") == "a\nb\\u202e"


def test_crossings_are_the_pairs_of_edges_in_opposite_orders() -> None:
    assert layout.crossings(["a", "b"], ["c", "d"], [("a", "c"), ("b", "d")]) == 0
    assert layout.crossings(["a", "b"], ["c", "d"], [("a", "d"), ("b", "c")]) == 1
    # a to all three below, c to the first: below a, c's edge crosses a's two others
    edges = [("a", "x"), ("a", "y"), ("a", "z"), ("c", "x")]
    assert layout.crossings(["a", "c"], ["x", "y", "z"], edges) == 2
    assert layout.crossings(["c", "a"], ["x", "y", "z"], edges) == 0


def test_barycentric_ordering_untangles_crossed_edges() -> None:
    layers = [["a", "b", "c"], ["x", "y", "z"]]
    pairs = [("a", "z"), ("b", "y"), ("c", "x")]
    ordered = layout.order_layers(layers, pairs)
    assert layout.crossings(ordered[0], ordered[1], pairs) == 0


def test_layers_run_left_to_right_and_boxes_of_a_layer_do_not_overlap() -> None:
    boxes = [_box("root", 0), _box("cause", -1)] + [
        _box(f"effect-{n}", 1, order=n) for n in range(5)
    ]
    links = [Link("cause", "root", "e0")] + [Link("root", f"effect-{n}", f"e{n + 1}")
                                             for n in range(5)]  # fmt: skip
    drawing = layout.draw(boxes, links)
    placed = {box["id"]: box for box in drawing["boxes"]}
    cause, root = placed["cause"], placed["root"]
    assert cause["x"] + cause["w"] < root["x"]
    effects = sorted((placed[f"effect-{n}"] for n in range(5)), key=lambda b: b["y"])
    assert all(root["x"] + root["w"] < box["x"] for box in effects)
    assert all(a["y"] + a["h"] < b["y"] for a, b in pairwise(effects))
    for box in drawing["boxes"]:
        assert box["x"] >= 0 and box["x"] + box["w"] <= drawing["width"]
        assert box["y"] >= 0 and box["y"] + box["h"] <= drawing["height"]
    # the root sits in the middle of its effects, level with its single cause
    assert _mid_y(root) == _mid_y(cause) == _mid_y(effects[2])


def test_a_link_leaves_its_source_on_the_right_and_enters_its_target_on_the_left() -> None:
    drawing = layout.draw([_box("a", 0), _box("b", 1)], [Link("a", "b", "a->b")])
    a, b = drawing["boxes"]
    (link,) = drawing["links"]
    assert link["points"] == [[a["x"] + a["w"], _mid_y(a)], [b["x"], _mid_y(b)]]
    assert not link["back"] and link["edges"] == ["a->b"]


def test_parallel_edges_share_one_line() -> None:
    links = [Link("a", "b", "causation:1-2"), Link("a", "b", "trace:1-2")]
    drawing = layout.draw([_box("a", 0), _box("b", 1)], links)
    assert [link["edges"] for link in drawing["links"]] == [["causation:1-2", "trace:1-2"]]


def test_a_link_that_skips_layers_passes_between_the_boxes_of_each() -> None:
    boxes = [_box("a", 0), _box("b", 1), _box("c", 2), _box("d", 3)]
    links = [Link("a", "b", "1"), Link("b", "c", "2"), Link("c", "d", "3"), Link("a", "d", "4")]
    drawing = layout.draw(boxes, links)
    placed = {box["id"]: box for box in drawing["boxes"]}
    long = next(link for link in drawing["links"] if link["edges"] == ["4"])
    assert len(long["points"]) == 2 + 2 * 2  # in and out of layers 1 and 2
    for middle, (x, y) in zip(("b", "b", "c", "c"), long["points"][1:-1], strict=True):
        box = placed[middle]
        assert box["x"] - 1 <= x <= box["x"] + box["w"] + 1
        assert not box["y"] <= y <= box["y"] + box["h"], "the line runs through a box"


def test_backward_and_same_layer_links_are_curves() -> None:
    boxes = [_box("group", 2), _box("topic", 1), _box("dead-letters", 1, order=1)]
    links = [Link("topic", "group", "t->g"), Link("group", "dead-letters", "g->d"),
             Link("topic", "dead-letters", "t->d")]  # fmt: skip
    drawing = layout.draw(boxes, links)
    placed = {box["id"]: box for box in drawing["boxes"]}
    by_edge = {link["edges"][0]: link for link in drawing["links"]}
    back, same = by_edge["g->d"], by_edge["t->d"]
    assert back["back"] and same["back"] and not by_edge["t->g"]["back"]
    assert len(back["points"]) == len(same["points"]) == 4
    group, dead = placed["group"], placed["dead-letters"]
    assert back["points"][0] == [group["x"], _mid_y(group)]  # leaves to the left
    assert back["points"][-1] == [dead["x"] + dead["w"], _mid_y(dead)]  # arrives from the right
    assert same["points"][1][0] > max(same["points"][0][0], same["points"][-1][0])


def test_boxes_fit_their_label_and_a_wide_fan_out_stays_in_one_column() -> None:
    wide = Box("w", "w", 0, (layout.line("x" * 16, bold=True), layout.line("y" * 18)), "w")
    width, height = layout.box_size(wide.lines)
    assert width >= 16 * layout.TITLE_PX * layout.BOLD_EM
    assert height == 2 * layout.LINE_PX + 2 * layout.PAD_Y
    boxes = [_box("root", 0)] + [_box(f"e{n}", 1, order=n) for n in range(500)]
    links = [Link("root", f"e{n}", str(n)) for n in range(500)]
    drawing = layout.draw(boxes, links)
    centres = {round(box["x"] + box["w"] / 2, 1) for box in drawing["boxes"] if box["id"] != "root"}
    assert len(centres) == 1 and len(drawing["links"]) == 500


def test_nothing_to_draw() -> None:
    assert layout.draw([], []) == {"width": 0, "height": 0, "boxes": [], "links": []}
