"""docs/tenant-spec.md: the reference of `tenant.json`, generated from the model (python -m tenant_spec.generate)."""

from __future__ import annotations

import json
import typing

from pydantic import BaseModel

from tenant_spec.files import SPEC_FILENAME
from tenant_spec.model import TenantSpec

HEADER = f"""# The tenant spec reference

One `{SPEC_FILENAME}` per tenant (`tenants/<name>/{SPEC_FILENAME}`; start from `tenant-template/`) describes
the tenant in local mode and on a cluster. Local mode reads it with the spec package (`tenant_spec/`);
the Terraform tenant root reads the same file and checks it with the same rules
(`shared-infrastructure/modules/tenant/spec`). An invalid spec is refused with the file and the field,
e.g. `tenants/acme-corp/{SPEC_FILENAME}: quota.cpu: must be ...`.

This page is generated from `tenant_spec/model.py` by `python -m tenant_spec.generate`; a test fails
when it is out of date. Only `name`, `display_name`, `industry` and `system_prompt` are required.
"""


def spec_reference() -> str:
    schema = TenantSpec.model_json_schema()
    definitions = schema.get("$defs", {})
    models = _models(TenantSpec)
    sections = [HEADER, _section(SPEC_FILENAME, schema, TenantSpec)]
    for name in _referenced_models(schema, definitions):
        sections.append(_section(name, definitions[name], models[name]))
    return "\n".join(sections)


def _models(model: type[BaseModel], found: dict | None = None) -> dict[str, type[BaseModel]]:
    """Every model the spec uses, by class name (the JSON schema's $defs names)."""
    found = {} if found is None else found
    for field in model.model_fields.values():
        for kind in _leaf_types(field.annotation):
            if isinstance(kind, type) and issubclass(kind, BaseModel) and kind.__name__ not in found:
                found[kind.__name__] = kind
                _models(kind, found)
    return found


def _leaf_types(annotation: object) -> list[object]:
    arguments = typing.get_args(annotation)
    return [leaf for argument in arguments for leaf in _leaf_types(argument)] if arguments else [annotation]


def _referenced_models(schema: dict, definitions: dict) -> list[str]:
    """Nested models in the order the fields first use them."""
    order: list[str] = []

    def visit(node: object) -> None:
        if isinstance(node, dict):
            reference = node.get("$ref")
            if reference:
                name = reference.rsplit("/", 1)[-1]
                if name not in order:
                    order.append(name)
                    visit(definitions[name])
            for key, value in node.items():
                if key != "$defs":
                    visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(schema)
    return order


def _section(title: str, schema: dict, model: type[BaseModel]) -> str:
    lines = [f"## {_anchor_title(title)}", ""]
    if schema.get("description") and title != SPEC_FILENAME:
        lines += [" ".join(schema["description"].split()), ""]
    lines += ["| Field | Type | Default | Rules | Description |", "|---|---|---|---|---|"]
    required = set(schema.get("required", []))
    for name, field in schema.get("properties", {}).items():
        default = (
            "required"
            if name in required
            else _default(model.model_fields[name].get_default(call_default_factory=True))
        )
        lines.append(
            f"| `{name}` | {_type(field)} | {default} | {_rules(field)} | {_cell(field.get('description', ''))} |"
        )
    return "\n".join(lines) + "\n"


def _anchor_title(title: str) -> str:
    return f"`{title}`" if title == SPEC_FILENAME else title


def _type(field: dict) -> str:
    if "$ref" in field:
        name = field["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "anyOf" in field:
        present = [_type(option) for option in field["anyOf"] if option != {"type": "null"}]
        return " or ".join(present) + " or null"
    if "enum" in field:
        return " \\| ".join(f"`{json.dumps(value)}`" for value in field["enum"])
    if field.get("type") == "array":
        return f"list of {_type(field.get('items', {}))}"
    return field.get("type", "any")


def _default(value: object) -> str:
    if isinstance(value, BaseModel):
        return "see its section"
    return f"`{json.dumps(value)}`"


RULES = (
    ("minLength", "at least {} character(s)"),
    ("maxLength", "at most {} characters"),
    ("minimum", "≥ {}"),
    ("exclusiveMinimum", "> {}"),
    ("maximum", "≤ {}"),
    ("minItems", "at least {} entries"),
    ("maxItems", "at most {} entries"),
    ("pattern", "matches `{}`"),
)


def _rules(field: dict) -> str:
    rules = []
    for option in [field, *field.get("anyOf", []), field.get("items", {})]:
        for keyword, wording in RULES:
            if keyword in option:
                rules.append(wording.format(_cell(str(option[keyword]))))
    return "; ".join(rules)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
