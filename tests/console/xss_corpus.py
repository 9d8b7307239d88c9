"""Hostile input for the console: keys, header names and values, payloads, identity fields,
dead-letter headers and OTLP spans that try to run script wherever they are shown.

Drawn from the OWASP XSS filter evasion cheat sheet and from how real systems mangle data
(broken UTF-8, NUL bytes, bidirectional overrides, megabyte headers). Every script payload
sets `window.__xss` or opens a dialog, so a browser test can tell whether any of it ran.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field

Header = tuple[str, bytes]
Record = tuple[bytes | None, bytes | None, list[Header]]

MARK = "window.__xss=1"

# Each one is shown as text if the page is right, and runs if it is not.
SCRIPT_PAYLOADS: tuple[str, ...] = (
    f"<script>{MARK}</script>",
    f'"><img src=x onerror="{MARK}">',
    f"'><img src=x onerror={MARK}>",
    f"<svg onload={MARK}>",
    f"<svg><script>{MARK}</script></svg>",
    f"</script><script>{MARK}</script>",
    f"</textarea><script>{MARK}</script>",
    f"</title><script>{MARK}</script>",
    f"javascript:{MARK}",
    f" javascript:{MARK}//",
    f'<a href="javascript:{MARK}">click me</a>',
    '<iframe srcdoc="<script>parent.__xss=1</script>"></iframe>',
    f"<details open ontoggle={MARK}>",
    f"<input autofocus onfocus={MARK}>",
    f"<body onload={MARK}>",
    "<img src=x onerror=alert(document.domain)>",
    f"<math><mtext><table><mglyph><style><img src=x onerror={MARK}>",
    f"<IMG SRC=JaVaScRiPt:{MARK}>",
    f"<img src=`x` onerror={MARK}>",
    f'<div hx-get="/api/whoami" hx-trigger="load" hx-on::after-request="{MARK}">htmx</div>',
    f"data:text/html,<script>{MARK}</script>",
    f"&lt;script&gt;{MARK}&lt;/script&gt;",
    f"\\u003cscript\\u003e{MARK}\\u003c/script\\u003e",
    "';alert(1);//",
    '";alert(1);//',
    "`-alert(1)-`",
)
# Template languages must not evaluate data (the page shows these literally).
TEMPLATE_PAYLOADS: tuple[str, ...] = (
    "{{7*7}}",
    "${7*7}",
    "{% print 7*7 %}",
    "#{7*7}",
    "<%= 7*7 %>",
    "{{constructor.constructor('alert(1)')()}}",
)
RTL_OVERRIDE = "\u202e"
ODD_TEXT: tuple[str, ...] = (
    f"invoice{RTL_OVERRIDE}fdp.exe",
    "nul\x00byte",
    "line\r\nbreak: injected-header",
    "\ufeffbom and \u2028line separator",
    "zero\u200bwidth",
)
BROKEN_UTF8: tuple[bytes, ...] = (
    b"\xff\xfe\xfd<script>window.__xss=1</script>",
    b"\xc3\x28 half a character",
    b"\xed\xa0\x80 a lone surrogate",
    b"\x00\x01\x02 binary \x80\x81",
)
SVG_DOCUMENT = (
    f'<svg xmlns="http://www.w3.org/2000/svg" onload="{MARK}"><script>{MARK}</script></svg>'
)
HUGE_HEADER_BYTES = 200_000  # well past any cap the console sets on what it shows


def hostile_texts() -> list[str]:
    return [*SCRIPT_PAYLOADS, *TEMPLATE_PAYLOADS, *ODD_TEXT]


@dataclass
class Corpus:
    """One run's hostile data: identity values carry `run` so pages can be looked up."""

    topic: str
    run: str = field(default_factory=lambda: os.urandom(4).hex())

    @property
    def dlq_topic(self) -> str:
        return f"{self.topic}.DLT"

    @property
    def correlation_id(self) -> str:
        return f'"><svg onload={MARK}>corr-{self.run}-{RTL_OVERRIDE}live'

    @property
    def saga_id(self) -> str:
        return f"<script>{MARK}</script>saga-{self.run}-{RTL_OVERRIDE}live"

    @property
    def group_id(self) -> str:
        return f"<img src=x onerror={MARK}>group-{self.run}-{RTL_OVERRIDE}live"

    @property
    def service(self) -> str:
        return f"<svg onload={MARK}>svc-{self.run}-{RTL_OVERRIDE}live"

    @property
    def trace_id(self) -> str:
        return self.run * 4  # 32 hex digits

    def traceparent(self, span: int) -> str:
        return f"00-{self.trace_id}-{span:016x}-01"

    def records(self) -> list[Record]:
        """Records for the main topic: every field of every kind is hostile somewhere."""
        records: list[Record] = []
        texts = hostile_texts()
        for number, payload in enumerate(SCRIPT_PAYLOADS):
            headers: list[Header] = [
                ("ce_id", f"{payload}-id-{number}-{self.run}".encode()),
                ("ce_type", f"{payload}Created".encode()),
                ("ce_source", payload.encode()),
                ("correlation_id", self.correlation_id.encode()),
                (
                    "causation_id",
                    f"{SCRIPT_PAYLOADS[number - 1]}-id-{number - 1}-{self.run}".encode(),
                ),
                ("saga_id", self.saga_id.encode()),
                (payload, payload.encode()),  # the header name is hostile too
                ("traceparent", self.traceparent(number + 1).encode()),
                ("x-template", TEMPLATE_PAYLOADS[number % len(TEMPLATE_PAYLOADS)].encode()),
                ("x-odd", ODD_TEXT[number % len(ODD_TEXT)].encode()),
            ]
            value = json.dumps(
                {
                    "eventId": payload,
                    "url": f"javascript:{MARK}",
                    "html": payload,
                    "nested": {
                        "script": "</script><script>window.__xss=1</script>",
                        "svg": payload,
                    },
                    "template": TEMPLATE_PAYLOADS,
                    "texts": texts[:5],
                }
            ).encode()
            records.append((payload.encode(), value, headers))
        records.append(
            (
                b"\xff\xfe<script>window.__xss=1</script>",
                BROKEN_UTF8[0],
                [
                    ("correlation_id", self.correlation_id.encode()),
                    ("x-broken", BROKEN_UTF8[1]),
                    ("x-surrogate", BROKEN_UTF8[2]),
                    ("x-binary", BROKEN_UTF8[3]),
                    ("traceparent", b"00-<script>window.__xss=1</script>-zz-01"),
                    (f"huge-{MARK}", b"A" * HUGE_HEADER_BYTES + SCRIPT_PAYLOADS[1].encode()),
                ],
            )
        )
        records.append(
            (
                f"svg-{self.run}".encode(),
                SVG_DOCUMENT.encode(),
                [
                    ("content-type", b"image/svg+xml"),
                    ("correlation_id", self.correlation_id.encode()),
                    ("saga_id", self.saga_id.encode()),
                    ("ce_type", f"<svg onload={MARK}>Failed".encode()),
                ],
            )
        )
        records.append(
            (
                f"html-{self.run}".encode(),
                f"<html><body onload={MARK}><script>{MARK}</script></body></html>".encode(),
                [("content-type", b"text/html"), ("correlation_id", self.correlation_id.encode())],
            )
        )
        return records

    def dlq_records(self) -> list[Record]:
        """Spring Kafka dead-letter records whose headers point at hostile values."""
        records: list[Record] = []
        for number, payload in enumerate(SCRIPT_PAYLOADS[:6]):
            headers: list[Header] = [
                ("kafka_dlt-original-topic", payload.encode()),
                ("kafka_dlt-original-partition", struct.pack(">i", 0)),
                ("kafka_dlt-original-offset", struct.pack(">q", number)),
                ("kafka_dlt-original-timestamp", struct.pack(">q", 1_700_000_000_000)),
                ("kafka_dlt-original-consumer-group", self.group_id.encode()),
                ("kafka_dlt-exception-fqcn", f"com.example.{payload}Exception".encode()),
                ("kafka_dlt-exception-cause-fqcn", payload.encode()),
                (
                    "kafka_dlt-exception-message",
                    f"failed: {payload} {TEMPLATE_PAYLOADS[0]}".encode(),
                ),
                (
                    "kafka_dlt-exception-stacktrace",
                    f"java.lang.RuntimeException: {payload}\n\tat {payload}(X.java:1)\n".encode(),
                ),
                ("correlation_id", self.correlation_id.encode()),
                ("saga_id", self.saga_id.encode()),
                ("ce_type", f"{payload}Failed".encode()),
            ]
            records.append((payload.encode(), json.dumps({"failed": payload}).encode(), headers))
        records.append(
            (
                None,
                BROKEN_UTF8[0],
                [
                    ("kafka_dlt-original-topic", self.topic.encode()),
                    ("kafka_dlt-original-partition", struct.pack(">i", 0)),
                    ("kafka_dlt-original-offset", struct.pack(">q", 0)),
                    ("kafka_dlt-exception-fqcn", BROKEN_UTF8[1]),
                    ("kafka_dlt-exception-message", BROKEN_UTF8[0]),
                ],
            )
        )
        return records

    def otlp_request(self, now_ns: int) -> dict:
        """An OTLP/HTTP JSON export: hostile service names, span names, attributes, events."""

        def attribute(key: str, value: str) -> dict:
            return {"key": key, "value": {"stringValue": value}}

        spans = []
        for number, payload in enumerate(SCRIPT_PAYLOADS[:8]):
            start = now_ns - (20 - number) * 10_000_000
            spans.append(
                {
                    "traceId": self.trace_id,
                    "spanId": f"{number + 1:016x}",
                    "name": f"send {payload}",
                    "kind": 4 if number % 2 == 0 else 5,
                    "startTimeUnixNano": str(start),
                    "endTimeUnixNano": str(start + 5_000_000),
                    "attributes": [
                        attribute("messaging.system", "kafka"),
                        attribute("messaging.destination.name", self.topic),
                        attribute("messaging.consumer.group.name", self.group_id),
                        attribute(payload, payload),
                        attribute("template", TEMPLATE_PAYLOADS[number % len(TEMPLATE_PAYLOADS)]),
                    ],
                    "events": [
                        {
                            "name": payload,
                            "timeUnixNano": str(start + 1),
                            "attributes": [attribute("exception.message", payload)],
                        }
                    ],
                    "status": {"code": 2, "message": payload},
                }
            )
        return {
            "resourceSpans": [
                {
                    "resource": {"attributes": [attribute("service.name", self.service)]},
                    "scopeSpans": [{"scope": {"name": SCRIPT_PAYLOADS[0]}, "spans": spans}],
                }
            ]
        }
