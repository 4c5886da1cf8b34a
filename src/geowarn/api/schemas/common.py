"""Building blocks shared by the schemas: pages, masking, GeoJSON, 万元 amounts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Generic, Self, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from geowarn.api.geojson import to_geojson
from geowarn.auth.masking import mask_id_number, mask_name, mask_phone
from geowarn.auth.tokens import as_utc

T = TypeVar("T")

YUAN_PER_WAN = 10_000


def wan_from_yuan(value: Any) -> Any:
    """Integer yuan → Decimal 万元, exact (``123456`` → ``12.3456``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value) / YUAN_PER_WAN
    return value


#: 万元 as an exact decimal on input; a JSON number on output (at most 4 decimals, shortest form).
WanIn = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=4)]
WanOut = Annotated[
    Decimal,
    BeforeValidator(wan_from_yuan),
    PlainSerializer(lambda d: int(d) if d == d.to_integral_value() else float(d), return_type=Any, when_used="json"),
]
#: A stored time, always with its UTC offset (SQLite hands back naive UTC values).
UtcDatetime = Annotated[dt.datetime, AfterValidator(as_utc)]
GeoJSONOut = Annotated[dict[str, Any] | None, BeforeValidator(to_geojson)]
UnitCode = Annotated[str, Field(pattern=r"^\d{6}(\d{3}(\d{3})?)?$", examples=["350922100"])]
Longitude = Annotated[float, Field(ge=-180, le=180)]
Latitude = Annotated[float, Field(ge=-90, le=90)]


def yuan_from_wan(value: Decimal) -> int:
    return int(value * YUAN_PER_WAN)


class Input(BaseModel):
    """Base of request bodies: unknown fields are errors, so a typo is not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Public(BaseModel):
    """Base of response bodies read from records, with masking of personal data.

    ``masked`` names the fields hidden from roles without ``Permission.PERSONAL_DATA`` and how.
    """

    model_config = ConfigDict(from_attributes=True)
    masked: ClassVar[dict[str, Callable[[str | None], str | None]]] = {}

    @classmethod
    def of(cls, obj: Any, personal: bool) -> Self:
        out = cls.model_validate(obj)
        if not personal:
            out.mask()
        return out

    def mask(self) -> None:
        for name, fn in self.masked.items():
            setattr(self, name, fn(getattr(self, name)))
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, Public):
                value.mask()
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, Public):
                        item.mask()


PHONE_AND_ID: dict[str, Callable[[str | None], str | None]] = {"phone": mask_phone, "id_number": mask_id_number}
NAME_PHONE_AND_ID: dict[str, Callable[[str | None], str | None]] = {**PHONE_AND_ID, "name": mask_name}


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class Timestamps(BaseModel):
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
