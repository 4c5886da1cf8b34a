"""Masking of personal data (个人信息脱敏) for roles without the personal-data permission.

Follows common practice of GB/T 35273-2020 (personal information security) de-identification:
mobile ``138****5678``, ID number keeps the first 6 and last 4 (``350921********1234``), a
resident's name keeps the surname (``张**``).
"""

from __future__ import annotations


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return phone
    p = phone.strip()
    if len(p) >= 7:
        return p[:3] + "*" * (len(p) - 7) + p[-4:] if len(p) > 7 else p[:3] + "****"
    return "*" * len(p)


def mask_id_number(value: str | None) -> str | None:
    if not value:
        return value
    v = value.strip()
    if len(v) <= 10:
        return "*" * len(v)
    return v[:6] + "*" * (len(v) - 10) + v[-4:]


def mask_name(name: str | None) -> str | None:
    if not name:
        return name
    n = name.strip()
    if len(n) <= 1:
        return "*"
    return n[0] + "*" * (len(n) - 1)


SENSITIVE_FIELDS = {"phone": mask_phone, "id_number": mask_id_number}
SECRET_FIELDS = frozenset({"password_hash", "token_hash"})
