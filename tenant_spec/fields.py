"""Field types the spec shares with what is derived from it (the gateway's route, the proxy's settings).

Each carries its own check, so a model built from the spec's fields (tenant_spec/route.py,
app/config.py) validates them exactly as the spec does.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema

from tenant_spec.extensions import ALLOWABLE_EXTENSIONS, check_allowed_extensions

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def check_sha256_digests(values: list[str]) -> list[str]:
    """Every entry must be a lower-case hex SHA-256 digest (keys are stored only as digests)."""
    for value in values:
        if not SHA256_HEX.match(value):
            raise ValueError("each entry must be a lower-case hex SHA-256 digest (64 characters 0-9a-f)")
    return values


def _not_blank(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError("must not be blank")
    return value


NonBlankText = Annotated[str, AfterValidator(_not_blank)]
# The item schemas say in JSON Schema (the TenantRoute CRD, the spec reference) what the checks enforce.
Sha256Digests = Annotated[
    list[Annotated[str, WithJsonSchema({"type": "string", "pattern": SHA256_HEX.pattern})]],
    AfterValidator(check_sha256_digests),
]
RequestExtensions = Annotated[
    list[Annotated[str, WithJsonSchema({"type": "string", "enum": sorted(ALLOWABLE_EXTENSIONS)})]],
    AfterValidator(check_allowed_extensions),
]
