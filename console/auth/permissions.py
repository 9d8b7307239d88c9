"""Every route's permission: the role each endpoint declares, plus the static files.

The middleware refuses a route missing from the table (and a test enumerates the app's
routes to make sure none is missing). Methods: GET also covers HEAD. `public` needs no
login. CSRF-exempt routes accept only content types a cross-site form cannot send.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from console.auth.roles import PUBLIC
from console.web.endpoints import Endpoint


@dataclass(frozen=True)
class Rule:
    roles: dict[str, str]  # method -> required role
    csrf_exempt: bool = False


V, OP, A = "viewer", "operator", "admin"

# Routes not declared as endpoints yet (being moved over, area by area).
LEGACY: dict[str, Rule] = {
    # health, login, static files
    "/login": Rule({"GET": PUBLIC, "POST": PUBLIC}),
    "/logout": Rule({"POST": V}),
    # clusters and topics
    # events
    # consumer lag
    # tracing and lineage; OTLP accepts only protobuf or JSON bodies, which a cross-site
    # form cannot send, and exporters authenticate with API tokens
    # sagas
    # alerts: silences and test sends for operators, rules and receivers for admins
    # dead-letter queues, redrive and replay jobs
    # administration
    "/admin": Rule({"GET": A}),
    "/api/admin/users": Rule({"GET": A, "POST": A}),
    "/admin/users": Rule({"POST": A}),
    "/admin/users/{username}": Rule({"POST": A}),
    "/api/admin/users/{username}": Rule({"PATCH": A}),
    "/api/admin/tokens": Rule({"GET": A, "POST": A}),
    "/admin/tokens": Rule({"POST": A}),
    "/admin/tokens/{token_id:int}/revoke": Rule({"POST": A}),
    "/api/admin/tokens/{token_id:int}": Rule({"DELETE": A}),
    # audit log (read-only) and data masking rules
    "/audit": Rule({"GET": A}),
    "/api/audit": Rule({"GET": A}),
    "/admin/masking": Rule({"GET": A, "POST": A}),
    "/api/admin/masking": Rule({"GET": A, "POST": A}),
    "/admin/masking/{rule_id:int}/enable": Rule({"POST": A}),
    "/admin/masking/{rule_id:int}/delete": Rule({"POST": A}),
    "/api/admin/masking/{rule_id:int}": Rule({"PATCH": A, "DELETE": A}),
    "/api/whoami": Rule({"GET": V}),
    "/api/openapi.json": Rule({"GET": V}),
}


STATIC = {"/static": Rule({"GET": PUBLIC}), "/static/vendor": Rule({"GET": PUBLIC})}


def permission_table(endpoints: Iterable[Endpoint]) -> dict[str, Rule]:
    """Path template -> the role each method needs, from the endpoint declarations."""
    roles: dict[str, dict[str, str]] = {}
    exempt: set[str] = set()
    for endpoint in endpoints:
        for path, method, _ in endpoint.routes():
            roles.setdefault(path, {})[method] = endpoint.role
            if endpoint.csrf_exempt:
                exempt.add(path)
    table = {**LEGACY, **STATIC}
    for path, methods in roles.items():
        merged = {**table[path].roles, **methods} if path in table else methods
        table[path] = Rule(merged, csrf_exempt=path in exempt)
    return table


def required_role(rule: Rule, method: str) -> str | None:
    return rule.roles.get("GET" if method == "HEAD" else method)
