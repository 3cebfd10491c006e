"""What is generated from the spec package is up to date, and what is derived from the spec agrees with it."""

from __future__ import annotations

import re

import pytest

from app.config import PROXY_SPEC_FIELDS, ProxyConfig
from tenant_spec import TenantSpec
from tenant_spec.crd import tenant_route_schema
from tenant_spec.generate import REPO_ROOT, generated_files
from tenant_spec.route import ROUTE_FIELDS, TenantRoute, gateway_route


@pytest.mark.parametrize("path", list(generated_files()), ids=lambda path: path.name)
def test_generated_files_are_up_to_date(path):
    assert path.read_text(encoding="utf-8") == generated_files()[path], (
        f"{path} is stale: run python -m tenant_spec.generate"
    )


@pytest.mark.parametrize(
    "derived, fields",
    [(TenantRoute, ROUTE_FIELDS), (ProxyConfig, PROXY_SPEC_FIELDS)],
    ids=["gateway route", "proxy settings"],
)
def test_derived_fields_are_the_specs_own(derived, fields):
    for name in fields:
        assert derived.model_fields[name] is TenantSpec.model_fields[name] or repr(derived.model_fields[name]) == repr(
            TenantSpec.model_fields[name]
        ), name


def test_a_route_written_from_a_spec_is_a_valid_route():
    spec = TenantSpec.model_validate(
        {
            "name": "acme",
            "display_name": "Acme",
            "industry": "Retail",
            "system_prompt": "Be brief.",
            "weight": 2.5,
            "prefix_cache_group": "shared",
            "allowed_request_extensions": ["top_k"],
        }
    )
    route = TenantRoute.model_validate(gateway_route(spec, ["a" * 64]))
    assert (
        route.weight == 2.5 and route.prefix_cache_group == "shared" and route.allowed_request_extensions == ["top_k"]
    )
    assert route.rate_limits == spec.rate_limits


def test_the_crd_schema_is_structural():
    """Kubernetes refuses $ref, anyOf, additionalProperties beside properties, and a numeric exclusiveMinimum."""

    def walk(node):
        assert not {"$ref", "anyOf", "additionalProperties", "default", "$defs"} & set(node)
        assert node.get("exclusiveMinimum") in (None, True)
        assert "type" in node
        for child in node.get("properties", {}).values():
            walk(child)
        if "items" in node:
            walk(node["items"])

    schema = tenant_route_schema()
    walk(schema)
    assert "name" not in schema["properties"]["spec"]["properties"]
    assert schema["properties"]["spec"]["required"] == ["key_sha256"]


def test_the_tenant_module_writes_every_route_field():
    """The tenant module's TenantRoute (Terraform) carries the same spec fields as local mode's route."""
    main_tf = (REPO_ROOT / "shared-infrastructure" / "modules" / "tenant" / "main.tf").read_text(encoding="utf-8")
    block = main_tf.split("route_spec = { for field, value in {", 1)[1].split("} : field => value if value != null }")[
        0
    ]
    written = set(re.findall(r"^\s*([a-z_0-9]+)\s*=", block, flags=re.MULTILINE))
    assert written == set(TenantRoute.model_fields) - {"name"}
