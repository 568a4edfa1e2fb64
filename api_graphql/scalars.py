"""The `DateTime` scalar, with the domain's rule for the times a client sends.

strawberry's own DateTime parses input with `dateutil.parser.isoparse`, which refuses text naming no
time (day 30 of February, year 0, hour 25, offset +25:00) with its own message, and before any
resolver runs, so the error named no field. Here the input is the text as sent, and the domain
parses it (`tasks.models.parse_aware_datetime`, in the write services and the list filters) as it
parses REST's: the same message on every protocol, the field named in `extensions.fields`
(docs/domain.md, "Rules"). The SDL is strawberry's: the same name and description.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, NewType, TypeAlias

import strawberry


def _serialize(value: datetime) -> str:
    return value.isoformat()


def _parse_value(value: object) -> str:
    """A DateTime is sent as text; whether the text names a time is the domain's to say."""
    if not isinstance(value, str):
        raise ValueError(f"DateTime cannot represent a non-string value: {value!r}")
    return value


if TYPE_CHECKING:
    # Outputs hold datetimes; inputs hold the text sent.
    DateTime: TypeAlias = datetime | str
else:
    DateTime = NewType("DateTime", datetime)

# The scalar's definition, given to the schema in `StrawberryConfig.scalar_map` (api_graphql/schema.py).
DATETIME_SCALAR = strawberry.scalar(
    name="DateTime",
    description="Date with time (isoformat)",
    serialize=_serialize,
    parse_value=_parse_value,
)
