"""A client for Kafka Connect's REST API: what the console shows of a Connect cluster and
the actions an operator takes on its connectors.

Every failure is a `ConnectError` in Connect's own words (its `{"error_code", "message"}`
body) or saying that the worker could not be reached; `status` is Connect's HTTP status
(409 while the cluster rebalances, 404 for an unknown connector), None when unreachable.
Answers are capped in size: a worker is trusted no more than a record is.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from collectors.config import ConnectConfig

MAX_RESPONSE_BYTES = 8 * 1024 * 1024
MAX_MESSAGE_CHARS = 2_000
READ_RETRY_PAUSES_S = (0.25, 0.5, 1.0)  # a read that meets a rebalance is asked again
Query = list[tuple[str, str | int | float | bool | None]]


class ConnectError(Exception):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _part(name: str) -> str:
    return quote(name, safe="")


def _tls(config: ConnectConfig) -> ssl.SSLContext | bool:
    if not config.verify:
        return False
    if config.ca_file:
        return ssl.create_default_context(cafile=config.ca_file)
    return True


class ConnectClient:
    """One Connect cluster; use as `async with ConnectClient(config) as client:`."""

    def __init__(
        self, config: ConnectConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        auth = httpx.BasicAuth(config.username, config.password or "") if config.username else None
        self._http = httpx.AsyncClient(
            base_url=config.url.rstrip("/"), auth=auth, timeout=config.timeout_s,
            verify=_tls(config), transport=transport, follow_redirects=False,
            headers={"Accept": "application/json"},
        )  # fmt: skip

    async def __aenter__(self) -> ConnectClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    # --- reading ------------------------------------------------------------------------

    async def worker(self) -> dict[str, Any]:
        """`GET /`: the version, commit and Kafka cluster id of the worker answering."""
        return _mapping(await self._json("GET", "/"))

    async def connectors(self) -> dict[str, dict[str, Any]]:
        """Every connector with its info (config, tasks, type) and status, in one call."""
        body = await self._json("GET", "/connectors", params=[("expand", "info"),
                                                               ("expand", "status")])  # fmt: skip
        return {str(name): _mapping(item) for name, item in _mapping(body).items()}

    async def status(self, name: str) -> dict[str, Any]:
        return _mapping(await self._json("GET", f"/connectors/{_part(name)}/status"))

    async def info(self, name: str) -> dict[str, Any]:
        return _mapping(await self._json("GET", f"/connectors/{_part(name)}"))

    async def topics(self, name: str) -> list[str]:
        """The topics the connector has used since it was created or its topics were reset
        (KIP-558); empty when the worker does not track them."""
        try:
            body = await self._json("GET", f"/connectors/{_part(name)}/topics")
        except ConnectError as exc:
            if exc.status in (404, 403):
                return []
            raise
        found = _mapping(_mapping(body).get(name))
        return [str(topic) for topic in found.get("topics") or [] if isinstance(topic, str)]

    async def plugins(self) -> list[dict[str, Any]]:
        body = await self._json("GET", "/connector-plugins", params=[("connectorsOnly", "true")])
        return [_mapping(item) for item in body] if isinstance(body, list) else []

    async def validate(self, plugin_class: str, config: Mapping[str, str]) -> dict[str, Any]:
        """Connect's own validation of a connector config (the plugin's ConfigDef)."""
        short = plugin_class.rsplit(".", 1)[-1]
        path = f"/connector-plugins/{_part(short)}/config/validate"
        return _mapping(await self._json("PUT", path, json=dict(config)))

    # --- acting -------------------------------------------------------------------------

    async def restart(self, name: str, *, include_tasks: bool, only_failed: bool) -> None:
        params: Query = [("includeTasks", str(include_tasks).lower()),
                  ("onlyFailed", str(only_failed).lower())]  # fmt: skip
        await self._json("POST", f"/connectors/{_part(name)}/restart", params=params)

    async def restart_task(self, name: str, task: int) -> None:
        await self._json("POST", f"/connectors/{_part(name)}/tasks/{task}/restart")

    async def pause(self, name: str) -> None:
        await self._json("PUT", f"/connectors/{_part(name)}/pause")

    async def resume(self, name: str) -> None:
        await self._json("PUT", f"/connectors/{_part(name)}/resume")

    async def stop(self, name: str) -> None:
        await self._json("PUT", f"/connectors/{_part(name)}/stop")

    async def delete(self, name: str) -> None:
        await self._json("DELETE", f"/connectors/{_part(name)}")

    async def put_config(self, name: str, config: Mapping[str, str]) -> dict[str, Any]:
        """Create the connector or replace its config; Connect answers its info."""
        path = f"/connectors/{_part(name)}/config"
        return _mapping(await self._json("PUT", path, json=dict(config)))

    # --- the wire -----------------------------------------------------------------------

    async def _json(
        self,
        method: str,
        path: str,
        *,
        params: Query | None = None,
        json: Any = None,
    ) -> Any:
        """Connect's answer. A read that meets a rebalance (409) is asked again after a short
        pause, a few times: stopping or resuming a connector starts one, and the page that
        follows should not fail for it. Actions are never repeated: the caller decides."""
        for pause in READ_RETRY_PAUSES_S if method == "GET" else ():
            try:
                return await self._once(method, path, params, json)
            except ConnectError as exc:
                if exc.status != 409:
                    raise
            await asyncio.sleep(pause)
        return await self._once(method, path, params, json)

    async def _once(self, method: str, path: str, params: Query | None, json: Any) -> Any:
        where = f"Kafka Connect {self.config.name!r}"
        try:
            response = await self._http.request(method, path, params=params, json=json)
        except httpx.TimeoutException:
            raise ConnectError(
                f"{where} did not answer within {self.config.timeout_s:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise ConnectError(f"{where} is unreachable at {self.config.url} "
                               f"({type(exc).__name__}: {str(exc)[:200]})") from None  # fmt: skip
        if len(response.content) > MAX_RESPONSE_BYTES:
            raise ConnectError(f"{where} answered with over 8 MiB", response.status_code)
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None
        if response.is_success:
            return body
        message = _mapping(body).get("message") if isinstance(body, Mapping) else None
        text = str(message or response.reason_phrase or "error")[:MAX_MESSAGE_CHARS]
        status = response.status_code
        if status == 500 and "BadRequestException" in text:
            status = 400  # what validation answers for a plugin it does not know
        elif status == 500 and "rebalance is expected" in text:
            status = 409  # a worker about to rebalance: the same wait as one rebalancing
        raise ConnectError(f"{where} refused: {text} (HTTP {response.status_code})", status)


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}
