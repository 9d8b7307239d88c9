"""Requests that arrive while a credential is being looked up share that look-up."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from sqlalchemy import Engine

from console.app import create_app
from console.auth.middleware import AccessControl
from console.stores.auth import Principal
from tests.conftest import make_settings


async def test_concurrent_look_ups_of_one_token_make_one_trip_and_keep_nothing(
    tmp_path: Path,
) -> None:
    app = create_app(make_settings(None, f"sqlite:///{tmp_path / 'x.db'}"), mode="console")
    control = AccessControl(app, app.state.eventscope, routes=[], permissions={})
    calls = 0
    release = threading.Event()

    def look_up(engine: Engine, secret: str) -> Principal | None:
        nonlocal calls
        calls += 1
        release.wait(10)
        return Principal("ci", "viewer", "token") if secret == "esk_good" else None

    waiters = [
        asyncio.create_task(control._shared_look_up(look_up, "token", "esk_good")) for _ in range(5)
    ]
    other = asyncio.create_task(control._shared_look_up(look_up, "token", "esk_other"))
    await asyncio.sleep(0)  # every task has started and is waiting for its look-up
    release.set()
    assert {principal.name for principal in await asyncio.gather(*waiters)} == {"ci"}
    assert await other is None
    assert calls == 2  # one for each token
    await control._shared_look_up(look_up, "token", "esk_good")
    assert calls == 3  # nothing was kept: a later request asks again
