"""Roles of the admin API and the permissions each grants.

Role bindings live in `admin_role_bindings`, one row per (org, user, role).
A binding applies to its own org only; `platform-admin` exists only in the
org named `system` and adds the right to list and create orgs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from appliance.admin.errors import Forbidden

SYSTEM_ORG = "system"


class Permission(StrEnum):
    ORGS_MANAGE = "orgs.manage"
    USERS_READ = "users.read"
    USERS_WRITE = "users.write"
    GROUPS_READ = "groups.read"
    GROUPS_WRITE = "groups.write"
    RBAC_READ = "rbac.read"
    RBAC_WRITE = "rbac.write"
    CLIENTS_READ = "clients.read"
    CLIENTS_WRITE = "clients.write"
    PIM_READ = "pim.read"
    PIM_WRITE = "pim.write"
    BREAKGLASS_READ = "breakglass.read"
    BREAKGLASS_WRITE = "breakglass.write"
    KEYS_READ = "keys.read"
    KEYS_WRITE = "keys.write"
    AUDIT_READ = "audit.read"


READ_ALL = frozenset(p for p in Permission if p.value.endswith(".read"))
WRITE_ALL = frozenset(p for p in Permission if p.value.endswith(".write"))

ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "platform-admin": READ_ALL | WRITE_ALL | {Permission.ORGS_MANAGE},
    "org-admin": READ_ALL | WRITE_ALL,
    # Read-only on everything, including the audit trail and key metadata.
    "security-auditor": READ_ALL,
    # Manages PIM roles, eligibility and policies; reads the users and groups
    # those name, and nothing else.
    "pim-policy-manager": frozenset(
        {Permission.PIM_READ, Permission.PIM_WRITE, Permission.USERS_READ, Permission.GROUPS_READ}
    ),
}
ROLE_DESCRIPTIONS = {
    "platform-admin": "creates orgs and their first admin; only in the `system` org",
    "org-admin": "manages everything in its org",
    "security-auditor": "reads everything in its org, changes nothing",
    "pim-policy-manager": "manages PIM roles, eligibility and policies",
}
# Roles that may be bound in the `system` org, and in every other org.
SYSTEM_ORG_ROLES = frozenset({"platform-admin", "security-auditor"})
TENANT_ORG_ROLES = frozenset({"org-admin", "security-auditor", "pim-policy-manager"})


def bindable_roles(org_name: str) -> frozenset[str]:
    return SYSTEM_ORG_ROLES if org_name == SYSTEM_ORG else TENANT_ORG_ROLES


def admin_role_for(org_name: str) -> str:
    """The role that administers `org_name`: platform-admin in `system`, else org-admin."""
    return "platform-admin" if org_name == SYSTEM_ORG else "org-admin"


@dataclass(frozen=True)
class Caller:
    """The authenticated user of one admin API call, in the org of the URL."""

    user_id: UUID
    username: str
    org_id: UUID
    org_name: str
    roles: frozenset[str]
    session_id: UUID

    @property
    def permissions(self) -> frozenset[Permission]:
        granted: set[Permission] = set()
        for role in self.roles:
            granted |= ROLE_PERMISSIONS.get(role, frozenset())
        return frozenset(granted)

    def require(self, permission: Permission) -> None:
        if permission not in self.permissions:
            roles = ", ".join(sorted(self.roles)) or "none"
            raise Forbidden(
                f"permission {permission.value} is required; your roles in org "
                f"{self.org_name!r} ({roles}) do not grant it"
            )
