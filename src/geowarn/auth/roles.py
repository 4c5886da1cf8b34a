"""Roles and what each may do. A user's role applies within their unit and its children only."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMINISTRATOR = "administrator"
    OPERATOR = "operator"
    MONITOR = "monitor"
    VIEWER = "viewer"
    #: A weather-bureau forecaster: reads, and signs regional warning products for the weather side.
    WEATHER = "weather"


class Permission(StrEnum):
    READ = "read"
    WRITE = "write"  # edit the register, import
    PERSONAL_DATA = "personal_data"  # see names with phones and ID numbers unmasked
    MANAGE_USERS = "manage_users"
    AUDIT = "audit"  # read the audit log
    REPORT = "report"  # field reports by monitors (patrols, quick reports)
    WARN = "warn"  # draft regional products, manage warning rules and silences
    ACKNOWLEDGE = "acknowledge"  # acknowledge alerts with a comment
    SIGN_NATURAL_RESOURCES = "sign_natural_resources"  # sign off a product for natural resources
    SIGN_WEATHER = "sign_weather"  # sign off a product for the weather bureau


ROLE_ZH = {
    Role.ADMINISTRATOR: "管理员",
    Role.OPERATOR: "业务人员",
    Role.MONITOR: "监测员",
    Role.VIEWER: "查看者",
    Role.WEATHER: "气象预报员",
}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    # Administrators manage; they sign for natural resources but never for the weather bureau.
    Role.ADMINISTRATOR: frozenset(Permission) - {Permission.SIGN_WEATHER},
    Role.OPERATOR: frozenset(
        {
            Permission.READ,
            Permission.WRITE,
            Permission.PERSONAL_DATA,
            Permission.REPORT,
            Permission.AUDIT,
            Permission.WARN,
            Permission.ACKNOWLEDGE,
            Permission.SIGN_NATURAL_RESOURCES,
        }
    ),
    Role.MONITOR: frozenset({Permission.READ, Permission.REPORT, Permission.ACKNOWLEDGE}),
    Role.VIEWER: frozenset({Permission.READ}),
    Role.WEATHER: frozenset({Permission.READ, Permission.SIGN_WEATHER}),
}


def has_permission(role: str, permission: Permission) -> bool:
    try:
        return permission in ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return False
