"""The one piece every background service shares: ending its loop task."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel a service's loop task and wait until it has ended (None: nothing to do).

    The loop logs and records its own errors; what it raises while being cancelled is of
    no use to the caller that is stopping it.
    """
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
