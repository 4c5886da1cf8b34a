"""Persons (防灾责任人、监测人、值班人员…) and organisations (部门、政府)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from geowarn.api.schemas.common import PHONE_AND_ID, Input, Public, Timestamps, UnitCode
from geowarn.inventory.domain import Department, PersonRole


class PersonFields(Input):
    name: str | None = Field(default=None, min_length=1, max_length=50)
    phone: str | None = Field(default=None, max_length=20)
    id_number: str | None = Field(default=None, max_length=18)
    title: str | None = Field(default=None, max_length=100)
    roles: list[PersonRole] | None = None
    unit_code: UnitCode | None = None
    organisation_id: int | None = None
    active: bool | None = None


class PersonCreate(PersonFields):
    name: str = Field(min_length=1, max_length=50)
    unit_code: UnitCode


class PersonUpdate(PersonFields):
    """Changes to a person; a person leaves by ``active: false`` (they stay in the history)."""


class PersonPublic(Public, Timestamps):
    masked: ClassVar = PHONE_AND_ID
    id: int
    name: str
    phone: str | None = None
    id_number: str | None = None
    title: str | None = None
    roles: list[str]
    unit_code: str
    organisation_id: int | None = None
    active: bool


class OrganisationFields(Input):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    department: Department | None = None
    unit_code: UnitCode | None = None


class OrganisationCreate(OrganisationFields):
    name: str = Field(min_length=1, max_length=100)
    department: Department
    unit_code: UnitCode


class OrganisationUpdate(OrganisationFields):
    pass


class OrganisationPublic(Public, Timestamps):
    id: int
    name: str
    department: str
    unit_code: str
