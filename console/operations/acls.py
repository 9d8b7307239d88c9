"""A cluster's ACLs: list them, create one, delete one, through Kafka's own requests.

aiokafka's admin client has no calls for ACLs; its protocol module has the requests
(DescribeAcls, CreateAcls, DeleteAcls, versions 0-1), which this module sends and reads.
Names follow Kafka's (`kafka-acls`, the AdminClient): resource types TOPIC, GROUP, CLUSTER,
TRANSACTIONAL_ID...; pattern types LITERAL and PREFIXED; operations READ, WRITE...;
permissions ALLOW and DENY. A cluster without an authorizer answers every request with
SecurityDisabled, reported as such.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from aiokafka.errors import SecurityDisabled
from aiokafka.protocol.admin import CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest
from typing_extensions import TypedDict

from collectors.config import ClusterConfig
from collectors.kafka.admin import admin_client
from console.operations.fields import PlanError, refuse_on_error

RESOURCE_TYPES = {"TOPIC": 2, "GROUP": 3, "CLUSTER": 4, "TRANSACTIONAL_ID": 5,
                  "DELEGATION_TOKEN": 6, "USER": 7}  # fmt: skip
PATTERN_TYPES = {"LITERAL": 3, "PREFIXED": 4}
OPERATIONS = {"ALL": 2, "READ": 3, "WRITE": 4, "CREATE": 5, "DELETE": 6, "ALTER": 7,
              "DESCRIBE": 8, "CLUSTER_ACTION": 9, "DESCRIBE_CONFIGS": 10, "ALTER_CONFIGS": 11,
              "IDEMPOTENT_WRITE": 12, "CREATE_TOKENS": 13, "DESCRIBE_TOKENS": 14}  # fmt: skip
PERMISSIONS = {"DENY": 2, "ALLOW": 3}
ANY = 1
SECURITY_DISABLED = SecurityDisabled.errno
PRINCIPAL = re.compile(r"^[A-Za-z][A-Za-z0-9]*:[^\s]{1,200}$")  # e.g. User:alice


class AclJson(TypedDict):
    resource_type: str
    resource_name: str
    pattern_type: str
    principal: str
    host: str
    operation: str
    permission: str


def _name_of(table: Mapping[str, int], code: int) -> str:
    return next((name for name, value in table.items() if value == code), str(code))


def parse_acl(raw: Mapping[str, Any]) -> AclJson:
    """One ACL from a form or a JSON body; PlanError says which field is wrong."""

    def choice(field: str, table: Mapping[str, int], default: str | None = None) -> str:
        value = str(raw.get(field) or default or "").strip().upper()
        if value not in table:
            raise PlanError(f"{field}: one of {', '.join(table)}")
        return value

    resource_type = choice("resource_type", RESOURCE_TYPES)
    name = str(raw.get("resource_name") or "").strip()
    if resource_type == "CLUSTER":
        name = name or "kafka-cluster"
    if not name or len(name) > 249:
        raise PlanError("resource_name: 1 to 249 characters ('*' for every one)")
    principal = str(raw.get("principal") or "").strip()
    if not PRINCIPAL.match(principal):
        raise PlanError("principal: type:name, e.g. User:alice ('User:*' for everyone)")
    host = str(raw.get("host") or "*").strip()
    if not host or len(host) > 255 or " " in host:
        raise PlanError("host: an address, or * for any")
    return AclJson(
        resource_type=resource_type, resource_name=name,
        pattern_type=choice("pattern_type", PATTERN_TYPES, "LITERAL"), principal=principal,
        host=host, operation=choice("operation", OPERATIONS),
        permission=choice("permission", PERMISSIONS, "ALLOW"),
    )  # fmt: skip


def _codes(acl: AclJson) -> tuple[int, str, int, str, str, int, int]:
    return (
        RESOURCE_TYPES[acl["resource_type"]], acl["resource_name"],
        PATTERN_TYPES[acl["pattern_type"]], acl["principal"], acl["host"],
        OPERATIONS[acl["operation"]], PERMISSIONS[acl["permission"]],
    )  # fmt: skip


def _check(code: int, message: str | None, what: str) -> None:
    if code == SECURITY_DISABLED:
        raise PlanError(f"this cluster has no authorizer: ACLs are not enforced ({what})")
    refuse_on_error(code, message, what)


async def list_acls(cluster: ClusterConfig) -> list[AclJson]:
    request = DescribeAclsRequest(ANY, None, ANY, None, None, ANY, ANY)  # None: any name
    async with admin_client(cluster) as admin:
        response = await admin._send_request(request)
    _check(response.error_code, response.error_message, "list ACLs")
    found = []
    for resource in response.resources:
        resource_type, name = resource[0], resource[1]
        pattern = resource[2] if len(resource) > 3 else PATTERN_TYPES["LITERAL"]
        for principal, host, operation, permission in resource[-1]:
            found.append(
                AclJson(
                    resource_type=_name_of(RESOURCE_TYPES, resource_type), resource_name=name,
                    pattern_type=_name_of(PATTERN_TYPES, pattern), principal=principal,
                    host=host, operation=_name_of(OPERATIONS, operation),
                    permission=_name_of(PERMISSIONS, permission),
                )
            )  # fmt: skip
    return sorted(found, key=lambda a: (a["resource_type"], a["resource_name"], a["principal"],
                                        a["operation"]))  # fmt: skip


async def create_acl(cluster: ClusterConfig, acl: AclJson) -> None:
    async with admin_client(cluster) as admin:
        response = await admin._send_request(CreateAclsRequest(*_codes(acl)))
    for code, message in response.creation_responses:
        _check(code, message, "create the ACL")


async def delete_acl(cluster: ClusterConfig, acl: AclJson) -> int:
    """Delete exactly this ACL; returns how many Kafka deleted (0: there was none)."""
    async with admin_client(cluster) as admin:
        response = await admin._send_request(DeleteAclsRequest(*_codes(acl)))
    deleted = 0
    for result in response.filter_responses:
        _check(result[0], result[1], "delete the ACL")
        deleted += len(result[2])
    return deleted
