"""What several views read from a request the same way: the coordinates of one record, a
window in minutes. Bad input is a 400 naming what is wrong."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request

MAX_PARTITION = 2**31  # Kafka's partition numbers and offsets are int32 and int64
MAX_OFFSET = 2**63


def record_coordinates(request: Request) -> tuple[str, str, int, int]:
    """(cluster, topic, partition, offset) from the path of a one-record page."""
    params = request.path_params
    try:
        partition, offset = int(params["partition"]), int(params["offset"])
    except ValueError:
        raise HTTPException(400, "partition and offset must be integers") from None
    if not (0 <= partition < MAX_PARTITION and 0 <= offset < MAX_OFFSET):
        raise HTTPException(400, "partition or offset out of range")
    return params["cluster"], params["topic"], partition, offset


def window_minutes(request: Request, default: int, maximum: int) -> int:
    """`?window=` in whole minutes, from 1 to `maximum`; `default` when absent."""
    raw = request.query_params.get("window") or str(default)
    try:
        minutes = int(raw)
    except ValueError:
        raise HTTPException(400, f"window: not a number of minutes: {raw[:40]!r}") from None
    if not 1 <= minutes <= maximum:
        raise HTTPException(400, f"window: between 1 and {maximum} minutes")
    return minutes
