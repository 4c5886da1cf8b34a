"""Imports every table so that ``Base.metadata`` is complete (Alembic and tests use this)."""

from geowarn.admin.models import AdminUnit
from geowarn.audit import hook as _audit_hook  # noqa: F401  (registers the audit listener)
from geowarn.audit.models import AuditEntry
from geowarn.auth.models import ApiToken, User
from geowarn.db import Base
from geowarn.dissemination.models import (
    Endpoint,
    IssueRecipient,
    OutboxMessage,
    Preference,
    ResponseTask,
    TemplateOverride,
    TransferRecord,
    WarningIssue,
)
from geowarn.fieldwork.models import (
    FieldPhoto,
    HazardEvent,
    HazardEventVersion,
    Patrol,
    PhoneCheck,
    ResponsePeriod,
    WriteOff,
    WriteOffTarget,
    ZeroReport,
)
from geowarn.fieldwork.reminder_models import ZeroReportReminder
from geowarn.inventory import summary as _register_summary  # noqa: F401  (registers the summary listener)
from geowarn.inventory.models import (
    HazardSite,
    Household,
    Organisation,
    Person,
    Resident,
    RiskZone,
    RiskZoneSite,
    Shelter,
    SiteStatusChange,
)
from geowarn.inventory.stamp import RegisterStamp
from geowarn.io.models import ImportBatch, ImportRejection
from geowarn.monitoring.models import (
    DeadLetter,
    Device,
    DeviceEvent,
    MonitoringStation,
    Observation,
    ObservationHourly,
    Sensor,
    SensorLatest,
)
from geowarn.warning.models import Alert, AlertEvent, RuleOverride, Silence
from geowarn.warning.product_models import ProductArea, ProductSignoff, ProductVersion, RegionalProduct

__all__ = [
    "AdminUnit",
    "Alert",
    "AlertEvent",
    "ApiToken",
    "AuditEntry",
    "Base",
    "DeadLetter",
    "Device",
    "DeviceEvent",
    "Endpoint",
    "FieldPhoto",
    "HazardEvent",
    "HazardEventVersion",
    "HazardSite",
    "Household",
    "ImportBatch",
    "ImportRejection",
    "IssueRecipient",
    "MonitoringStation",
    "Observation",
    "ObservationHourly",
    "Organisation",
    "OutboxMessage",
    "Patrol",
    "Person",
    "PhoneCheck",
    "Preference",
    "ProductArea",
    "ProductSignoff",
    "ProductVersion",
    "RegionalProduct",
    "RegisterStamp",
    "Resident",
    "ResponsePeriod",
    "ResponseTask",
    "RiskZone",
    "RiskZoneSite",
    "RuleOverride",
    "Sensor",
    "SensorLatest",
    "Shelter",
    "Silence",
    "SiteStatusChange",
    "TemplateOverride",
    "TransferRecord",
    "User",
    "WarningIssue",
    "WriteOff",
    "WriteOffTarget",
    "ZeroReport",
    "ZeroReportReminder",
]
