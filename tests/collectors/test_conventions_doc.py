from pathlib import Path

from collectors.conventions_doc import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "conventions.md"


def test_committed_conventions_page_matches_the_code() -> None:
    """Regenerate with: eventscope docs conventions > docs/conventions.md"""
    assert DOC.read_text(encoding="utf-8") == render()


def test_every_index_column_is_documented() -> None:
    page = render()
    for column in ("event_id", "correlation_id", "trace_id", "dlq_original_topic"):
        assert f"`{column}`" in page
