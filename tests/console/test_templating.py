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


def test_times_are_time_elements_in_utc_that_the_page_can_switch_to_local_time() -> None:
    template = make_templates().env.from_string("{{ value | ts }}")
    assert template.render(value=1764788779770) == (
        '<time datetime="2025-12-03T19:06:19.770Z">2025-12-03 19:06:19.770Z</time>'
    )
    # a time a view already wrote in UTC reads as the others do
    assert template.render(value="2025-12-03T19:06:19.770Z") == (
        '<time datetime="2025-12-03T19:06:19.770Z">2025-12-03 19:06:19.770Z</time>'
    )
    # anything else is printed as text, escaped, never converted
    assert template.render(value="2025-12-03T19:06:19+02:00") == "2025-12-03T19:06:19+02:00"
    assert template.render(value="<b>soon</b>") == "&lt;b&gt;soon&lt;/b&gt;"
    assert template.render(value=None) == "\u2013"


def test_a_long_id_is_one_escaped_line_with_its_whole_text_in_its_title() -> None:
    template = make_templates().env.from_string("{{ value | long_id }}")
    assert template.render(value='a"<b>\u202e') == (
        '<span class="id" title="a&#34;&lt;b&gt;\\u202e">a&#34;&lt;b&gt;\\u202e</span>'
    )
    assert template.render(value="x" * 5000).count("x") == 2 * 2000  # capped
    assert template.render(value=None) == ""
