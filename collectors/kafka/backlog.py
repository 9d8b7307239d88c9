"""The tap's backlog: how many records wait in Kafka for the index, and for how long.

Measured against the broker, not against the last write: the tap samples the end offsets
of its partitions every few seconds and compares them with the positions it has indexed.
The oldest waiting record arrived after the newest sample that the index has caught up
with, so its age is at least the time since the first sample after that one. While the
pipeline is stuck anywhere (the writer, the consumer, a rebalance that never ends) that
age grows with the clock, so a "collector behind" alert fires during the stall, not after.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

Position = tuple[str, int]  # (topic, partition)

MAX_SAMPLES = 720  # an hour of samples at one per 5 s; older ones say "at least an hour"


@dataclass(frozen=True)
class _Sample:
    at: float
    ends: Mapping[Position, int]


class Backlog:
    def __init__(self) -> None:
        self._samples: deque[_Sample] = deque(maxlen=MAX_SAMPLES)

    def sample(self, at: float, ends: Mapping[Position, int]) -> None:
        """The partitions' end offsets as the broker gave them at `at`."""
        self._samples.append(_Sample(at, dict(ends)))

    def forget(self) -> None:
        """The assignment changed: samples of other partitions no longer say anything."""
        self._samples.clear()

    def waiting(self, indexed: Mapping[Position, int]) -> int | None:
        """Records in Kafka not yet indexed, as of the latest sample (None before one)."""
        if not self._samples:
            return None
        ends = self._samples[-1].ends
        return sum(max(0, end - indexed.get(position, end)) for position, end in ends.items())

    def age_s(self, indexed: Mapping[Position, int], now: float) -> float:
        """How long the oldest waiting record has waited, at least (0 when none waits).
        Samples the index has caught up with are dropped on the way."""
        oldest_behind: float | None = None
        for sample in reversed(self._samples):
            if _caught_up(sample.ends, indexed):
                while self._samples[0] is not sample:
                    self._samples.popleft()
                break
            oldest_behind = sample.at
        return 0.0 if oldest_behind is None else max(0.0, now - oldest_behind)


def _caught_up(ends: Mapping[Position, int], indexed: Mapping[Position, int]) -> bool:
    return all(indexed.get(position, end) >= end for position, end in ends.items())
