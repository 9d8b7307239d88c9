"""The filters and rules every template shares."""

from console.templating import human_number, make_templates


def test_figures_are_rounded_as_a_person_reads_them() -> None:
    assert human_number(16.132784366607666) == "16.1"
    assert human_number(0.004127) == "0.00413"
    assert human_number(12400.0) == "12,400"
    assert human_number(7) == "7"
    assert human_number(None) == "\u2013"


def test_every_printed_value_shows_direction_overrides_instead_of_obeying_them() -> None:
    template = make_templates().env.from_string("<b>{{ value }}</b>{{ markup|safe }}")
    html = template.render(value="\u202elive<", markup="<i>\u2066x</i>")
    assert html == "<b>\\u202elive&lt;</b><i>\\u2066x</i>"
