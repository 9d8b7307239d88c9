"""What the views that change things in Kafka share: finding the cluster a request names,
and turning what an operation raises into an HTTP answer in its own words."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from starlette.exceptions import HTTPException

from collectors.config import ClusterConfig
from console.operations.fields import PlanError
from console.web.endpoints import Call


def cluster_names(call: Call) -> list[str]:
    return [cluster.name for cluster in call.settings.clusters]


def chosen_cluster(call: Call, given: str) -> str:
    """The cluster a form names, or the only one when it names none."""
    names = cluster_names(call)
    return given or (names[0] if len(names) == 1 else "")


def cluster_of(call: Call, name: str, status: int = 400) -> ClusterConfig:
    """The configured cluster `name`: HTTP `status` (400 for a field, 404 for a path) when
    there is none."""
    try:
        return call.settings.cluster(name)
    except KeyError:
        raise HTTPException(status, f"cluster: no cluster {name!r} is configured") from None


@contextlib.contextmanager
def kafka_refusals() -> Iterator[None]:
    """A PlanError (bad input, or Kafka's refusal in words) answers 400; an HTTPException
    passes; anything else failed talking to Kafka and answers 502 saying what."""
    try:
        yield
    except PlanError as exc:
        raise HTTPException(400, str(exc)) from None
    except HTTPException:
        raise
    except Exception as exc:
        raise HTTPException(502, f"Kafka: {type(exc).__name__}: {exc}") from None
