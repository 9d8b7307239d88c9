"""The OTLP/HTTP trace receiver: `POST /v1/traces` (protobuf or JSON, optionally gzip).

Answers follow the OTLP/HTTP specification: 200 with an (optionally partial) success
body in the request's own format, 400 for bodies that are not a trace export, 413 past
the size limit, 415 for other media types or encodings, and 503 (retryable) when the
index cannot take the spans right now. Nothing a sender does leads to a 500.
"""

from __future__ import annotations

import logging
import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from collectors.otlp import decode_traces_request, encode_error, encode_response
from collectors.otlp_model import MAX_BODY_BYTES, OtlpError
from collectors.traces import store_spans
from console.auth.roles import OPERATOR
from console.web.endpoints import CLOSE_AFTER, BodyTooLarge, Call, Endpoint, read_capped

log = logging.getLogger("eventscope.otlp")

RETRY_AFTER_S = "5"


async def receive_traces(call: Call) -> Response:
    state, request = call.state, call.request
    content_type = request.headers.get("content-type")
    try:
        try:
            body = await read_capped(request, MAX_BODY_BYTES)
        except BodyTooLarge as exc:
            raise OtlpError(413, str(exc)) from None
        result = await run_in_threadpool(
            decode_traces_request, body, content_type, request.headers.get("content-encoding")
        )
    except OtlpError as exc:
        refused = _error(exc.status, exc.message, content_type)
        if exc.status == 413:
            refused.headers.update(CLOSE_AFTER)
        return refused
    except ClientDisconnect:
        return _error(400, "client disconnected before the body was complete", content_type)
    except Exception as exc:  # a decoder bug must not become a 500 the exporter retries forever
        log.exception("OTLP request could not be decoded")
        return _error(400, f"could not decode the request: {type(exc).__name__}", content_type)
    try:
        now_ms = int(time.time() * 1000)
        await run_in_threadpool(store_spans, state.engine, result.spans, now_ms)
    except Exception as exc:
        log.warning("storing %d spans failed: %s", len(result.spans), exc)
        response = _error(503, "the index is not available, retry later", content_type)
        response.headers["Retry-After"] = RETRY_AFTER_S
        return response
    body_out, media_type = encode_response(result, content_type)
    return Response(body_out, status_code=200, media_type=media_type)


def _error(status: int, message: str, content_type: str | None) -> Response:
    body, media_type = encode_error(status, message, content_type)
    return Response(body, status_code=status, media_type=media_type)


# OTLP bodies are protobuf or JSON, which a cross-site form cannot send, and exporters
# authenticate with API tokens: no CSRF token.
ENDPOINT = Endpoint(receive_traces, OPERATOR, path="/v1/traces", method="POST", csrf_exempt=True)
ENDPOINTS = [ENDPOINT]
