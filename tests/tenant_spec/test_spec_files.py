"""Tenant spec validation: every error names the file and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tenant_spec import SPEC_FILENAME, SpecError, discover_tenant_specs, load_tenant_spec
from tenantctl.local.configs import assign_ports
from tests.helpers import TENANTS_DIR

VALID = {
    "name": "globex",
    "display_name": "Globex",
    "industry": "Energy",
    "system_prompt": "You are the assistant of Globex.",
    "local_port": 6000,
}


def write_spec(root: Path, document: object, directory: str = "globex") -> Path:
    path = root / directory / SPEC_FILENAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def test_example_tenants_are_valid_and_differ():
    specs = {spec.name: spec for spec in discover_tenant_specs(TENANTS_DIR)}
    assert set(specs) == {"acme-corp", "closed-ai"}
    assert specs["acme-corp"].industry == "Technology"
    assert specs["closed-ai"].industry != "Technology"
    assert "Acme Corp" in specs["acme-corp"].system_prompt
    assert "Acme Corp" not in specs["closed-ai"].system_prompt


def test_defaults_fill_optional_fields(tmp_path):
    spec = load_tenant_spec(write_spec(tmp_path, VALID))
    assert spec.models.allowed == ["smollm2-135m-instruct"] and spec.models.default_model == "smollm2-135m-instruct"
    assert spec.quota.pods == 10
    assert spec.rate_limits.requests_per_minute == 60


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"name": "Globex_Inc"}, "name", "DNS-1123"),
        ({"name": "x" * 41}, "name", "at most 40"),
        ({"name": 'glo"bex}'}, "name", "DNS-1123"),
        ({"system_prompt": "   "}, "system_prompt", "must not be blank"),
        ({"system_prompt": ""}, "system_prompt", "at least 1"),
        ({"backend": "vllm"}, "models", "backend, model and openai_model were replaced by models"),
        ({"models": {"allowed": []}}, "models.allowed", "at least 1 item"),
        ({"models": {"allowed": ["a", "a"]}}, "models.allowed", "each model may be listed once"),
        ({"models": {"allowed": ["a"], "default": "b"}}, "models.default", "'b' must be one of allowed"),
        ({"models": {"allowed": ["a", "b"], "fallback": "a"}}, "models.fallback", "must differ from the default"),
        ({"models": {"allowed": ["a b"]}}, "models.allowed.0", "should match pattern"),
        ({"max_tokens": 0}, "max_tokens", "greater than or equal to 1"),
        ({"max_tokens": "100"}, "max_tokens", "valid integer"),
        ({"quota": {"cpu": "-1"}}, "quota.cpu", "positive Kubernetes CPU quantity"),
        ({"quota": {"memory": "lots"}}, "quota.memory", "positive Kubernetes memory quantity"),
        ({"quota": {"pods": -3}}, "quota.pods", "greater than or equal to 1"),
        ({"rate_limits": {"requests_per_minute": 0}}, "rate_limits.requests_per_minute", "greater than or equal to 1"),
        ({"local_port": 80}, "local_port", "greater than or equal to 1024"),
        ({"monthly_budget_usd": 0}, "monthly_budget_usd", "greater than 0"),
        ({"max_concurrent_requests": 0}, "max_concurrent_requests", "greater than or equal to 1"),
        ({"max_concurrent_requests": "8"}, "max_concurrent_requests", "valid integer"),
        (
            {"allowed_request_extensions": ["chat_template"]},
            "allowed_request_extensions",
            "'chat_template' is never allowed: can change or drop the tenant's system prompt",
        ),
        ({"allowed_request_extensions": ["warp_speed"]}, "allowed_request_extensions", "not a known backend extension"),
        ({"allowed_request_extensions": ["top_k", "top_k"]}, "allowed_request_extensions", "listed once"),
        ({"monthly_budget_usd": "50"}, "monthly_budget_usd", "valid number"),
        ({"colour": "blue"}, "colour", "not a known field"),
        (
            {"guardrails": {"sensitive_patterns": [{"name": "repeated digits", "pattern": r"(\d)\1{12}"}]}},
            "guardrails.sensitive_patterns.0.pattern",
            "not a valid RE2 regular expression (invalid escape sequence: \\1)",
        ),
        (
            {"guardrails": {"refusal_rules": [{"regex": r"(?!x)y", "reason": "r"}]}},
            "guardrails.refusal_rules.0.regex",
            "no back-references, no look-arounds",
        ),
        ({"admin_key_sha256": ["not-a-digest"]}, "admin_key_sha256", "lower-case hex SHA-256 digest"),
    ],
)
def test_invalid_field_is_named_with_the_file(tmp_path, change, field, message):
    document = {**VALID, **change}
    path = write_spec(tmp_path, document, directory=document["name"] if change.get("name") == "x" * 41 else "globex")
    with pytest.raises(SpecError) as error:
        load_tenant_spec(path)
    text = str(error.value)
    assert text.startswith(str(path))
    assert f"{field}:" in text
    assert message in text


def test_missing_required_field(tmp_path):
    document = {k: v for k, v in VALID.items() if k != "system_prompt"}
    with pytest.raises(SpecError, match=r"system_prompt: is required"):
        load_tenant_spec(write_spec(tmp_path, document))


def test_malformed_json_names_the_file(tmp_path):
    path = write_spec(tmp_path, "{not json")
    with pytest.raises(SpecError, match="not valid JSON") as error:
        load_tenant_spec(path)
    assert str(path) in str(error.value)


def test_directory_must_match_name(tmp_path):
    with pytest.raises(SpecError, match="must equal the directory name 'other'"):
        load_tenant_spec(write_spec(tmp_path, VALID, directory="other"))


def test_duplicate_local_port_is_refused(tmp_path):
    write_spec(tmp_path, VALID)
    write_spec(tmp_path, {**VALID, "name": "initech"}, directory="initech")
    with pytest.raises(SpecError, match="local_port: 6000 is already used by tenant"):
        discover_tenant_specs(tmp_path)


def test_empty_tenants_directory(tmp_path):
    with pytest.raises(SpecError, match="no tenant found"):
        discover_tenant_specs(tmp_path)


def test_ports_assigned_from_5002_skipping_taken(tmp_path):
    write_spec(tmp_path, {**VALID, "local_port": 5002})
    unset = {k: v for k, v in VALID.items() if k != "local_port"}
    write_spec(tmp_path, {**unset, "name": "initech"}, directory="initech")
    write_spec(tmp_path, {**unset, "name": "umbrella"}, directory="umbrella")
    ports = assign_ports(discover_tenant_specs(tmp_path), 5002)
    assert ports == {"globex": 5002, "initech": 5003, "umbrella": 5004}


@pytest.mark.parametrize(
    "name",
    [
        'acme"corp',
        "acme'corp",
        "acme{corp}",
        "acme}",
        "acme\\corp",
        "acme corp",
        "acme\ncorp",
        "acme=~.*",
        "x" * 41,
        "Acme",
        "-acme",
        "acme-",
        "",
        "acme.corp",
        "acme_corp",
    ],
)
def test_names_that_would_break_promql_or_a_grafana_uid_are_rejected(tmp_path, name):
    """Tenant names go into PromQL matchers, dashboard uids and titles as they are: never escaped."""
    path = write_spec(tmp_path, {**VALID, "name": name})
    with pytest.raises(SpecError, match=r"name: .*DNS-1123 label of at most 40"):
        load_tenant_spec(path)


def test_a_40_character_name_is_the_longest_accepted(tmp_path):
    name = "a" * 38 + "-b"
    assert load_tenant_spec(write_spec(tmp_path, {**VALID, "name": name}, directory=name)).name == name
