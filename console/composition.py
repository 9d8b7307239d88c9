"""The composition root: which background services a process runs, built in one place.

`eventscope serve` and `eventscope collect` run the collectors and the console's own
services (replay/redrive runner, alert evaluator and delivery); `eventscope console` runs
none. Every service is built (configured) before any starts, in start order: receivers
before senders, which stop in reverse (collectors/services.ServiceGroup).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from collectors.config import Settings
from collectors.index.retention import RetentionPolicy, RetentionService
from collectors.kafka.lag import LagSampler
from collectors.kafka.tap import Tap
from collectors.saga_follower import SagaFollower, derives_after_commit
from collectors.sagas import SagaEvaluator, SagaHook
from collectors.schemas.decoding import RecordDecoder
from collectors.schemas.redecode import Redecoder
from collectors.schemas.usage import SchemaUsageHook
from collectors.services import Service
from console.actions.runner import ActionRunner
from console.alerts.delivery import DeliveryWorker
from console.alerts.evaluator import AlertEvaluator, collector_delays_of, collector_problems_of
from console.alerts.settings import external_url
from console.otlp_listener import OtlpListener
from console.state import AppState

ServiceFactory = Callable[[AppState], Sequence[Service]]


def background_services(state: AppState) -> list[Service]:
    """The services that run beside the web app, in start order."""
    settings = state.settings
    conventions, sagas = state.areas.conventions, state.areas.sagas
    decoders = {cluster.name: RecordDecoder.for_cluster(cluster) for cluster in settings.clusters}
    follower = derives_after_commit(state.engine)
    services: list[Service] = [
        # On PostgreSQL the follower below derives the sagas after the commit; on SQLite the
        # tap's hook does, inline (a hook holds what it collected until its writer commits).
        Tap(cluster, state.engine, conventions, settings.collector,
            hooks=[] if follower else [SagaHook(sagas)], decoder=decoders[cluster.name])
        for cluster in settings.clusters
    ]  # fmt: skip
    # Records indexed while the registry was out of reach are decoded when it answers; a
    # hook holds what it collected until its writer commits: one per writer.
    services += [
        Redecoder(cluster.name, state.engine, conventions, decoders[cluster.name],
                  hooks=[SagaHook(sagas), SchemaUsageHook()])
        for cluster in settings.clusters if cluster.schema_registry is not None
    ]  # fmt: skip
    if settings.server.otlp_port:  # a receiver too; first, so that a busy port fails fast
        services.insert(0, OtlpListener(state))
    # Sagas from the committed events (collectors/saga_follower.py), then their clock.
    if follower:
        services.append(SagaFollower(state.engine, sagas))
    services.append(SagaEvaluator(state.engine, sagas))
    # The lag sampler starts after the taps (it reads the positions they write).
    services += [
        LagSampler(cluster, state.engine, settings.lag, [settings.collector.group_id])
        for cluster in settings.clusters
    ]
    services.append(RetentionService(state.engine, retention_policy(settings)))
    # Replay and redrive jobs (producers) start after every receiver.
    services.append(ActionRunner(state.engine, settings.clusters, conventions))
    # The alert evaluator reads what the services above write; its sender starts after it.
    alerting = state.areas.alerts
    taps = [service for service in services if isinstance(service, Tap)]
    services.append(
        AlertEvaluator(state.engine, alerting, settings.clusters,
                       external_url(settings), collector_delays_of(taps),
                       collector_problems=collector_problems_of(taps),
                       event_health=state.areas.event_health)
    )  # fmt: skip
    services.append(DeliveryWorker(state.engine, alerting.retry))
    return services


def retention_policy(settings: Settings) -> RetentionPolicy:
    collector = settings.collector
    return RetentionPolicy(
        max_age_s=collector.retention_max_age_s or None,
        max_bytes=collector.retention_max_bytes or None,
        unfinished_saga_max_age_s=collector.retention_unfinished_sagas_s or None,
    )
