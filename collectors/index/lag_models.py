"""Consumer lag tables, written by the lag sampler (collectors/kafka/lag.py).

- `lag_groups`: the latest look at every consumer group, one row per (cluster, group). The
  per-partition detail (offsets, lag, time lag and how it was obtained, owner, status) is a
  JSON document in `detail`, so a look at 500 groups x 50 partitions is 500 rows, not 25,000.
- `lag_samples`: one row per group per look (totals only), kept for `lag.raw_retention_s`.
- `lag_rollups`: the samples summed up per group and 5-minute bucket, kept for
  `lag.rollup_retention_s`; the lag charts read them past the raw retention.
- `lag_status_changes`: when a group's status changed, and why.

Every change here needs a migration in `migrations/versions/`.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Text
from sqlmodel import Field, SQLModel

from collectors.index.models import ROW_ID


class LagGroup(SQLModel, table=True):
    __tablename__ = "lag_groups"

    cluster: str = Field(sa_column=Column(Text, primary_key=True))
    group_id: str = Field(sa_column=Column(Text, primary_key=True))
    sampled_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    state: str = Field(sa_column=Column(Text, nullable=False))  # Stable, Empty, ... as Kafka says
    status: str = Field(sa_column=Column(Text, nullable=False))  # OK, WARN, ERR, NOTFOUND
    complete: float = Field(sa_column=Column(Float, nullable=False))
    total_lag: int = Field(sa_column=Column(BigInteger, nullable=False))
    max_lag: int = Field(sa_column=Column(BigInteger, nullable=False))
    max_time_lag_s: float | None = Field(default=None, sa_column=Column(Float))
    members: int = Field(nullable=False)
    partition_count: int = Field(nullable=False)
    topics: str = Field(sa_column=Column(Text, nullable=False))  # JSON list of topic names
    detail: str = Field(sa_column=Column(Text, nullable=False))  # JSON: members, partitions


class LagSample(SQLModel, table=True):
    __tablename__ = "lag_samples"

    id: int | None = Field(
        default=None, sa_column=Column(ROW_ID, primary_key=True, autoincrement=True)
    )
    cluster: str = Field(sa_column=Column(Text, nullable=False))
    group_id: str = Field(sa_column=Column(Text, nullable=False))
    sampled_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    severity: int = Field(nullable=False)  # 0 OK, 1 WARN, 2 ERR
    total_lag: int = Field(sa_column=Column(BigInteger, nullable=False))
    max_time_lag_s: float | None = Field(default=None, sa_column=Column(Float))

    __table_args__ = (
        Index("ix_lag_samples_group_time", "cluster", "group_id", "sampled_at_ms"),
        Index("ix_lag_samples_time", "sampled_at_ms"),
    )


class LagRollup(SQLModel, table=True):
    __tablename__ = "lag_rollups"

    cluster: str = Field(sa_column=Column(Text, primary_key=True))
    group_id: str = Field(sa_column=Column(Text, primary_key=True))
    bucket_ms: int = Field(sa_column=Column(BigInteger, primary_key=True))
    samples: int = Field(nullable=False)
    severity_max: int = Field(nullable=False)
    total_lag_max: int = Field(sa_column=Column(BigInteger, nullable=False))
    total_lag_avg: float = Field(sa_column=Column(Float, nullable=False))
    max_time_lag_s: float | None = Field(default=None, sa_column=Column(Float))

    __table_args__ = (Index("ix_lag_rollups_bucket", "bucket_ms"),)


class LagStatusChange(SQLModel, table=True):
    __tablename__ = "lag_status_changes"

    id: int | None = Field(
        default=None, sa_column=Column(ROW_ID, primary_key=True, autoincrement=True)
    )
    cluster: str = Field(sa_column=Column(Text, nullable=False))
    group_id: str = Field(sa_column=Column(Text, nullable=False))
    changed_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    status: str = Field(sa_column=Column(Text, nullable=False))
    previous: str | None = Field(default=None, sa_column=Column(Text))
    reason: str = Field(sa_column=Column(Text, nullable=False))

    __table_args__ = (
        Index("ix_lag_status_changes_group", "cluster", "group_id", "changed_at_ms"),
        Index("ix_lag_status_changes_time", "changed_at_ms"),
    )


lag_groups_table = LagGroup.__table__  # type: ignore[attr-defined]
lag_samples_table = LagSample.__table__  # type: ignore[attr-defined]
lag_rollups_table = LagRollup.__table__  # type: ignore[attr-defined]
lag_status_changes_table = LagStatusChange.__table__  # type: ignore[attr-defined]
