"""OpenTelemetry for the shop: one tracer provider per service, W3C trace context in headers.

Each service has its own `service.name` and exports its spans over OTLP/HTTP to the
console's own `POST /v1/traces`. Producers inject `traceparent` into the Kafka record
headers and consumers extract it, so one order is one trace across every service.
Span names and attributes follow OpenTelemetry's messaging conventions.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

Headers = list[tuple[str, bytes]]

_PROPAGATOR = TraceContextTextMapPropagator()
EXPORT_DELAY_MS = 500  # spans reach the console about half a second after they end


class _HeaderSetter(Setter[Headers]):
    def set(self, carrier: Headers, key: str, value: str) -> None:
        carrier[:] = [(name, raw) for name, raw in carrier if name != key]
        carrier.append((key, value.encode()))


class _HeaderGetter(Getter[Sequence[tuple[str, bytes | None]]]):
    def get(self, carrier: Sequence[tuple[str, bytes | None]], key: str) -> list[str] | None:
        values = [
            raw.decode("utf-8", "replace")
            for name, raw in carrier
            if raw is not None and name.lower() == key.lower()
        ]
        return values or None

    def keys(self, carrier: Sequence[tuple[str, bytes | None]]) -> list[str]:
        return [name for name, _ in carrier]


def inject(headers: Headers) -> None:
    """Write the current span's context into Kafka record headers (`traceparent`)."""
    _PROPAGATOR.inject(headers, setter=_HeaderSetter())


def extract(headers: Sequence[tuple[str, bytes | None]]) -> Context:
    """The producer's context from a consumed record's headers (empty when absent)."""
    return _PROPAGATOR.extract(headers, getter=_HeaderGetter())


class Telemetry:
    """Tracer providers of the shop's services, all exporting to one OTLP/HTTP endpoint.

    Without an endpoint spans are still made (their context travels in the headers) but
    sent nowhere. The exporter reads OTEL_EXPORTER_OTLP_TRACES_HEADERS, e.g. to send a token.
    """

    def __init__(self, endpoint: str | None, namespace: str = "eventscope-demo") -> None:
        self.endpoint = endpoint
        self.namespace = namespace
        self._providers: dict[str, TracerProvider] = {}

    def tracer(self, service: str) -> Tracer:
        provider = self._providers.get(service)
        if provider is None:
            resource = Resource.create(
                {"service.name": service, "service.namespace": self.namespace}
            )
            provider = TracerProvider(resource=resource)
            if self.endpoint:
                exporter = OTLPSpanExporter(endpoint=self.endpoint, timeout=5)
                provider.add_span_processor(
                    BatchSpanProcessor(exporter, schedule_delay_millis=EXPORT_DELAY_MS)
                )
            self._providers[service] = provider
        return provider.get_tracer("eventscope.demo")

    def shutdown(self) -> None:
        """Flush and stop every provider (blocking: call it off the event loop)."""
        for provider in self._providers.values():
            provider.shutdown()
        self._providers.clear()
