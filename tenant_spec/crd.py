"""The TenantRoute CRD's openAPIV3Schema, generated from the TenantRoute model (tenant_spec/route.py).

Kubernetes wants a structural schema: no `$ref`, `nullable` instead of a null alternative,
`exclusiveMinimum` as a flag, no `additionalProperties` beside `properties`. Defaults are left out,
so the API server stores a route as the tenant apply wrote it; the gateway applies the defaults.
The route's name is the object's name, so it is not a field of `spec`.
"""

from __future__ import annotations

from tenant_spec.route import TenantRoute

DROPPED_KEYWORDS = frozenset({"title", "default", "additionalProperties", "$defs"})


def tenant_route_schema() -> dict:
    """The CRD's openAPIV3Schema: `spec` is the route without its name."""
    document = TenantRoute.model_json_schema()
    spec = _structural(document, document.get("$defs", {}))
    del spec["properties"]["name"]
    spec["required"] = [field for field in spec["required"] if field != "name"]
    # Fields a newer tenant module writes are kept for a newer gateway, not pruned.
    spec["x-kubernetes-preserve-unknown-fields"] = True
    return {"type": "object", "required": ["spec"], "properties": {"spec": spec}}


def _structural(schema: dict, definitions: dict) -> dict:
    if "$ref" in schema:
        return _structural(definitions[schema["$ref"].rsplit("/", 1)[-1]], definitions)
    alternatives = schema.get("anyOf")
    if alternatives is not None:
        present = [alternative for alternative in alternatives if alternative != {"type": "null"}]
        if len(present) != 1:
            raise ValueError(f"no structural form for anyOf {alternatives}")
        merged = {**{k: v for k, v in schema.items() if k != "anyOf"}, **present[0]}
        return {**_structural(merged, definitions), "nullable": True}
    result = {key: value for key, value in schema.items() if key not in DROPPED_KEYWORDS}
    if schema.get("type") == "object" and "properties" not in schema:
        result["x-kubernetes-preserve-unknown-fields"] = True  # a free-form object (e.g. `alerts`)
    if "exclusiveMinimum" in result:
        result["minimum"], result["exclusiveMinimum"] = result["exclusiveMinimum"], True
    if "properties" in result:
        result["properties"] = {name: _structural(field, definitions) for name, field in result["properties"].items()}
    if "items" in result:
        result["items"] = _structural(result["items"], definitions)
    return result
