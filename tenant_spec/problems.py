"""pydantic's validation errors in our words: `field.path: message`, one per problem.

Every place that validates a document with pydantic (tenant specs, service configs, request bodies)
reports problems this way, so an error reads the same wherever it comes from.
"""

from __future__ import annotations

from pydantic import ValidationError


def problems(error: ValidationError, whole: str = "(top level)") -> list[str]:
    """Each problem as `field.path: message`; `whole` names the document when it is wrong as a whole."""
    return [_describe(found, whole) for found in error.errors(include_url=False)]


def _describe(found: dict, whole: str) -> str:
    field = ".".join(str(part) for part in found["loc"])
    message = found["msg"].removeprefix("Value error, ")
    if found["type"] == "missing":
        message = "is required"
    elif found["type"] == "extra_forbidden":
        message = "is not a known field"
    elif ": " in message and message.split(": ", 1)[0].replace(".", "").replace("_", "").isalnum():
        named, message = message.split(": ", 1)  # a check of a whole (sub)model names the field it is about
        field = f"{field}.{named}" if field else named
    return f"{field or whole}: {message}"
