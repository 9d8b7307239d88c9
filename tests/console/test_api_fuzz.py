"""Fuzz every operation of the JSON API with schemathesis: no input may cause a 5xx, and
every answer must match the shape the endpoint declares for its status.

The console runs with access control on and an admin API token, over an index of its own,
in "console" mode: no action runner runs, so jobs that the fuzzer creates are written to
the throwaway index and never sent to Kafka. Its one cluster is the test broker under a
name of its own, so cluster pages answer from a real broker.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from collectors.config import settings_from_mapping
from console.app import create_app
from console.stores import auth as auth_store
from console.views.openapi import build_document
from tests.conftest import serve_in_thread

EXAMPLES_PER_OPERATION = 40


@dataclass
class FuzzConsole:
    url: str
    token: str
    token_id: int

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def fuzz_console(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzConsole]:
    index = Path(tmp_path_factory.mktemp("fuzz")) / "index.db"
    configured = settings_from_mapping({
        "index": {"url": f"sqlite:///{index}"},
        "server": {"auth": "on"},
        "clusters": {f"fuzz-{uuid.uuid4().hex[:6]}": {"bootstrap": kafka_bootstrap}},
    })  # fmt: skip
    app = create_app(configured, mode="console")
    with serve_in_thread(app) as url:
        engine = app.state.eventscope.engine
        token_id, token = auth_store.create_token(engine, "fuzzer", "admin", "test")
        yield FuzzConsole(url, token, token_id)


# Built from the same table the console serves (test_openapi.py checks that the served
# document is this one), so the operations are known when tests are collected.
schema = schemathesis.openapi.from_dict(build_document())


# Hypothesis compares the global `random` state around each strategy draw; a console of an
# earlier test still running in this process (its services back off with random jitter)
# moves that state from another thread, which Hypothesis would report as misuse.
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_operation_answers_with_a_server_error(case, fuzz_console: FuzzConsole) -> None:  # type: ignore[no-untyped-def]
    # The fuzzer may revoke any token but its own, or the rest of the run is all 401s.
    if (
        case.path == "/api/admin/tokens/{token_id}"
        and case.method == "DELETE"
        and case.path_parameters
        and case.path_parameters.get("token_id") == fuzz_console.token_id
    ):
        case.path_parameters["token_id"] = fuzz_console.token_id + 1_000
    case.call_and_validate(
        base_url=fuzz_console.url,
        headers=fuzz_console.headers,
        checks=[not_a_server_error, response_schema_conformance],
        timeout=30,
    )
