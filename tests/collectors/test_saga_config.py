"""The [sagas] configuration: words, patterns and definitions; bad keys are named."""

import pytest

from collectors.saga_config import saga_rules_from_mapping
from collectors.saga_rules import (
    Outcome,
)
from tests.collectors.saga_fixtures import (
    TRIP_DEFINITION,
)


def test_configured_words_beat_the_defaults() -> None:
    rules = saga_rules_from_mapping({"outcomes": {"succeeded": ["Created"]}})
    assert rules.classify("OrderCreated", "").outcome is Outcome.SUCCEEDED
    assert rules.classify("FlightReserved", "").outcome is Outcome.SUCCEEDED


def test_configured_prefix_word_and_topic_patterns() -> None:
    rules = saga_rules_from_mapping(
        {
            "use_defaults": False,
            "outcomes": {"failed": ["Oops*"], "compensation": ["*Storno*"]},
            "topics": {"started": ["orchestrator.*"]},
        }
    )
    assert rules.classify("OopsPayment", "").outcome is Outcome.FAILED
    assert rules.classify("payment.storno.done", "").outcome is Outcome.COMPENSATION
    assert rules.classify("Anything", "orchestrator.trips").outcome is Outcome.STARTED
    assert rules.classify("FlightReserved", "").outcome is Outcome.INFO


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"outcomes": {"started": [1]}}, "outcomes.started[0]"),
        ({"outcomes": {"started": ["*"]}}, "outcomes.started[0]"),
        ({"outcomes": {"begun": ["X"]}}, "outcomes.begun"),
        ({"outcomes": ["Failed"]}, "outcomes"),
        ({"topics": {"failed": "x"}}, "topics.failed"),
        ({"use_defaults": "no"}, "use_defaults"),
        ({"colour": 1}, "colour"),
        ({"definitions": {}}, "definitions"),
        ({"definitions": [{"steps": []}]}, "definitions[0].name"),
        ({"definitions": [{"name": "x"}]}, "definitions[0]"),
        (
            {"definitions": [{"name": "x", "event_types": ["A"], "timeout_s": -1}]},
            "definitions[0].timeout_s",
        ),
        (
            {"definitions": [{"name": "x", "event_types": ["A"], "timeout_s": True}]},
            "definitions[0].timeout_s",
        ),
        (
            {"definitions": [{"name": "x", "steps": [{"name": "a", "failed": [None]}]}]},
            "definitions[0].steps[0].failed[0]",
        ),
        (
            {"definitions": [{"name": "x", "steps": [{"name": "a"}, {"name": "A"}]}]},
            "definitions[0].steps[1].name",
        ),
        (
            {"definitions": [{"name": "x", "steps": [{"name": "a", "compensation": ["B"]}]}]},
            "definitions[0].steps[0].compensation",
        ),
        (
            {"definitions": [TRIP_DEFINITION, TRIP_DEFINITION]},
            "definitions[1].name",
        ),
    ],
)
def test_bad_configuration_names_the_bad_key(config: dict, named: str) -> None:
    with pytest.raises(ValueError, match=named.replace("[", r"\[").replace("]", r"\]")):
        saga_rules_from_mapping(config)
