"""A runner in a process of its own, for the kill -9 test: python -m ... <index url> <bootstrap>."""

from __future__ import annotations

import asyncio
import sys

from collectors.config import ClusterConfig
from collectors.index.engine import create_index_engine
from console.actions.runner import ActionRunner


async def main(index_url: str, bootstrap: str) -> None:
    engine = create_index_engine(index_url)
    runner = ActionRunner(
        engine, [ClusterConfig(name="local", bootstrap=bootstrap)], chunk=500, poll_s=0.1
    )
    await runner.start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
