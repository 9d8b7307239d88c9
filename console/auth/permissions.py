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
    table = dict(STATIC)
    for path, methods in roles.items():
        table[path] = Rule(methods, csrf_exempt=path in exempt)
    return table


def required_role(rule: Rule, method: str) -> str | None:
    return rule.roles.get("GET" if method == "HEAD" else method)
