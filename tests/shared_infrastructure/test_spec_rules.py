"""One set of rules for the tenant spec: the spec package's model (tenant_spec/model.py, the reference) and the
Terraform tenant module (shared-infrastructure/modules/tenant/spec) give every spec of one corpus the
same verdict, and a refusal names the field in both.

Terraform runs each spec through the module in one `terraform test` (a plan per spec, no provider, no
cluster): a few seconds for the whole corpus.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tenant_spec import SpecError, parse_tenant_spec
from tenant_spec.extensions import ALLOWABLE_EXTENSIONS
from tenantctl.terraform.runner import Terraform
from tests.helpers import REPO_ROOT, TENANTS_DIR

SPEC_MODULE = REPO_ROOT / "shared-infrastructure" / "modules" / "tenant" / "spec"
DIGEST = "0" * 64


def example(name: str) -> dict:
    return json.loads((TENANTS_DIR / name / "tenant.json").read_text())


BASE = {**example("acme-corp"), "name": "spec-check"}
MINIMAL = {"name": "minimal", "display_name": "Minimal", "industry": "Retail", "system_prompt": "You help."}

GOOD = {
    "acme-corp": example("acme-corp"),
    "closed-ai": example("closed-ai"),
    "template": {**json.loads((REPO_ROOT / "tenant-template" / "tenant.json").read_text()), "name": "from-template"},
    "required fields only": MINIMAL,
    "local port null": {**MINIMAL, "local_port": None},
    "budgets null": {
        **MINIMAL,
        "monthly_budget_usd": None,
        "monthly_token_budget": None,
        "max_concurrent_requests": None,
    },
    "fractional budget": {**MINIMAL, "monthly_budget_usd": 12.5},
    "decimal cpu": {**MINIMAL, "quota": {"cpu": "0.5"}},
    "millicpu and Mi": {**MINIMAL, "quota": {"cpu": "750m", "memory": "512Mi", "pods": 1000}},
    "40-character name": {**MINIMAL, "name": "a" * 40},
    "cluster settings": {
        **MINIMAL,
        "proxy": {"replicas": 2, "workers": 4, "cpu_request": "25m", "memory_limit": "1Gi"},
        "knowledge_storage": {"size": "5Gi", "storage_class": "fast", "access_mode": "ReadWriteMany"},
        "admin_group": "ops",
        "ingress_namespace": "traefik",
        "previous_gateway_key_sha256": [DIGEST],
    },
    "no proxy replicas": {**MINIMAL, "proxy": {"replicas": 0}},
    "keys": {**MINIMAL, "end_user_key_sha256": [DIGEST] * 20, "admin_key_sha256": ["a" * 64]},
    "every extension": {**MINIMAL, "allowed_request_extensions": sorted(ALLOWABLE_EXTENSIONS)},
    "regex rule": {**MINIMAL, "guardrails": {"refusal_rules": [{"regex": "(?i)foo|bar", "reason": "no foo"}]}},
    "pool sharing": {**MINIMAL, "weight": 2.5, "prefix_cache_group": "research-team"},
    "alerts": {
        **MINIMAL,
        "alerts": {
            "webhook_urls": ["https://hooks.example.com/acme"],
            "severity_min": "critical",
            "webhook_token_secret": "alert-token",
        },
    },
    "one model": {**MINIMAL, "models": {"allowed": ["gemma-3-270m"]}},
    "models default and fallback": {
        **MINIMAL,
        "models": {"allowed": ["smollm2", "gemma3", "gpt-4o-mini"], "default": "gemma3", "fallback": "smollm2"},
    },
    "fallback beside the first allowed": {**MINIMAL, "models": {"allowed": ["a", "b"], "fallback": "b"}},
    "models default only": {**MINIMAL, "models": {"allowed": ["a", "b"], "default": "b"}},
    "Hugging Face model id": {**MINIMAL, "models": {"allowed": ["meta-llama/Llama-3.1-8B-Instruct", "qwen2.5:7b"]}},
    "fifty models": {**MINIMAL, "models": {"allowed": [f"model-{index}" for index in range(50)]}},
    "models empty object": {**MINIMAL, "models": {}},
    "models default null": {**MINIMAL, "models": {"allowed": ["a"], "default": None, "fallback": None}},
    "template characters in a prompt": {
        **MINIMAL,
        "system_prompt": "Answer with ${name} and %{ if } left as they are.",
    },
}

# (change to BASE, the field a refusal must name)
BAD = {
    "bad name": ({"name": "Bad_Name"}, "name"),
    "41-character name": ({"name": "a" * 41}, "name"),
    "reserved name": ({"name": "monitoring"}, "name"),
    "kube- name": ({"name": "kube-tenant"}, "name"),
    "quote in name": ({"name": 'glo"bex'}, "name"),
    "blank display name": ({"display_name": "  "}, "display_name"),
    "long industry": ({"industry": "x" * 61}, "industry"),
    "empty prompt": ({"system_prompt": ""}, "system_prompt"),
    "blank prompt": ({"system_prompt": "   "}, "system_prompt"),
    "prompt too long": ({"system_prompt": "x" * 16385}, "system_prompt"),
    # The models a tenant may use (tenant_spec/models.py); whether the platform serves them is the cluster's
    # admission (tests/shared_infrastructure/test_platform_root.py) and tenantctl validate's.
    "the replaced backend": ({"backend": "vllm"}, "models"),
    "the replaced model": ({"model": "smollm2-135m-instruct"}, "models"),
    "the replaced openai_model": ({"openai_model": "gpt-4o-mini"}, "models"),
    "no model allowed": ({"models": {"allowed": []}}, "models.allowed"),
    "fifty-one models": ({"models": {"allowed": [f"model-{index}" for index in range(51)]}}, "models.allowed"),
    "model listed twice": ({"models": {"allowed": ["a", "b", "a"]}}, "models.allowed"),
    "space in a model name": ({"models": {"allowed": ["small model"]}}, "models.allowed"),
    "model name ending in a dash": ({"models": {"allowed": ["smollm2-"]}}, "models.allowed"),
    "default not allowed": ({"models": {"allowed": ["a", "b"], "default": "c"}}, "models.default"),
    "fallback not allowed": ({"models": {"allowed": ["a", "b"], "fallback": "c"}}, "models.fallback"),
    "fallback is the default": (
        {"models": {"allowed": ["a", "b"], "default": "b", "fallback": "b"}},
        "models.fallback",
    ),
    "fallback is the first allowed": ({"models": {"allowed": ["a", "b"], "fallback": "a"}}, "models.fallback"),
    "misspelt models field": ({"models": {"allowed": ["a"], "fallbak": "a"}}, "models.fallbak"),
    # (Terraform's type conversion says `attribute "models": attribute "allowed": list of string required`.)
    "model names in a string": ({"models": {"allowed": "a"}}, "models"),
    "model number for a name": ({"models": {"allowed": ["a"], "default": 5}}, "models.default"),
    "null allowed models": ({"models": {"allowed": None}}, "models.allowed"),
    "models a list": ({"models": ["a"]}, "models"),
    "zero max_tokens": ({"max_tokens": 0}, "max_tokens"),
    "fractional max_tokens": ({"max_tokens": 1.5}, "max_tokens"),
    "huge max_tokens": ({"max_tokens": 32769}, "max_tokens"),
    "negative cpu": ({"quota": {"cpu": "-1"}}, "quota.cpu"),
    "zero cpu": ({"quota": {"cpu": "0m"}}, "quota.cpu"),
    "zero memory": ({"quota": {"memory": "0Gi"}}, "quota.memory"),
    "memory in words": ({"quota": {"memory": "lots"}}, "quota.memory"),
    "negative pods": ({"quota": {"pods": -3}}, "quota.pods"),
    "zero rate limit": ({"rate_limits": {"requests_per_minute": 0}}, "rate_limits"),
    "zero budget": ({"monthly_budget_usd": 0}, "monthly_budget_usd"),
    "negative token budget": ({"monthly_token_budget": -5}, "monthly_token_budget"),
    "zero concurrency": ({"max_concurrent_requests": 0}, "max_concurrent_requests"),
    "low local port": ({"local_port": 80}, "local_port"),
    "end-user key not a hash": ({"end_user_key_sha256": ["secret-key"]}, "end_user_key_sha256"),
    "too many admin keys": ({"admin_key_sha256": [DIGEST] * 21}, "admin_key_sha256"),
    "back-reference in a pattern": (
        {"guardrails": {"sensitive_patterns": [{"name": "repeats", "pattern": "(\\d)\\1"}]}},
        "guardrails",
    ),
    "rule with both matchers": (
        {"guardrails": {"refusal_rules": [{"contains": "a", "regex": "b", "reason": "c"}]}},
        "guardrails",
    ),
    "rule without a reason": ({"guardrails": {"refusal_rules": [{"contains": "a"}]}}, "guardrails"),
    "topic without keywords": ({"guardrails": {"blocked_topics": [{"topic": "t", "keywords": []}]}}, "guardrails"),
    "blank keyword": ({"guardrails": {"blocked_topics": [{"topic": "t", "keywords": [" "]}]}}, "guardrails"),
    "prompt-changing extension": ({"allowed_request_extensions": ["chat_template"]}, "allowed_request_extensions"),
    "unknown extension": ({"allowed_request_extensions": ["top_k", "warp_speed"]}, "allowed_request_extensions"),
    "extension twice": ({"allowed_request_extensions": ["top_k", "top_k"]}, "allowed_request_extensions"),
    # What Terraform's type conversion would have let through on its own
    "misspelt field": ({"sytem_prompt": "x"}, "sytem_prompt"),
    "misspelt nested field": ({"quota": {"cpus": "1"}}, "quota.cpus"),
    "unknown field in a rule": (
        {"guardrails": {"blocked_topics": [{"topic": "t", "keywords": ["k"], "why": "x"}]}},
        "guardrails.blocked_topics.0.why",
    ),
    "number in quotes": ({"max_tokens": "100"}, "max_tokens"),
    "number for a string": ({"display_name": 5}, "display_name"),
    "bool for a string": ({"industry": True}, "industry"),
    "number for a nested string": ({"quota": {"cpu": 2}}, "quota.cpu"),
    "number for a rule's string": (
        {"guardrails": {"blocked_topics": [{"topic": 5, "keywords": ["k"]}]}},
        "guardrails.blocked_topics.0.topic",
    ),
    "null for a defaulted field": ({"max_tokens": None}, "max_tokens"),
    "null for an object": ({"quota": None}, "quota"),
    "string for a list": ({"end_user_key_sha256": DIGEST}, "end_user_key_sha256"),
    # On a cluster
    "replicas on ReadWriteOnce": ({"proxy": {"replicas": 2}}, "knowledge_storage.access_mode"),
    "zero workers": ({"proxy": {"workers": 0}}, "proxy"),
    "cpu request in words": ({"proxy": {"cpu_request": "a little"}}, "proxy"),
    "unknown access mode": ({"knowledge_storage": {"access_mode": "ReadOnlyMany"}}, "knowledge_storage"),
    "blank admin group": ({"admin_group": " "}, "admin_group"),
    "ingress namespace not a label": ({"ingress_namespace": "Ingress NGINX"}, "ingress_namespace"),
    "previous key not a hash": ({"previous_gateway_key_sha256": ["gk-123"]}, "previous_gateway_key_sha256"),
    # Sharing the model pool
    "zero weight": ({"weight": 0}, "weight"),
    "cache group not a label": ({"prefix_cache_group": "Research Team"}, "prefix_cache_group"),
    # Alerts
    "credentials in a webhook URL": ({"alerts": {"webhook_urls": ["https://user:pw@hooks.example.com/x"]}}, "alerts"),
    "unknown severity": ({"alerts": {"severity_min": "info"}}, "alerts"),
}
CASES = {**GOOD, **{label: {**BASE, **change} for label, (change, _) in BAD.items()}}


def hcl_string(text: str) -> str:
    """`text` as an HCL string literal: JSON's escapes, and no template sequences."""
    return json.dumps(text).replace("${", "$${").replace("%{", "%%{")


def file_name(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


def terraform_verdicts(directory: Path) -> dict[str, list[str]]:
    """{case: the error details Terraform gave (empty: accepted)}, every case planned by one `terraform test`."""
    (directory / "main.tf").write_text(
        'variable "document" {\n  type = any\n}\n\n'
        f'module "spec" {{\n  source   = "{SPEC_MODULE}"\n  spec     = var.document\n  document = var.document\n}}\n'
    )
    labels = {file_name(label): label for label in CASES}
    assert len(labels) == len(CASES), "two cases share a file name"
    for name, label in labels.items():
        (directory / f"{name}.tftest.hcl").write_text(
            f'run "check" {{\n  command = plan\n  variables {{\n'
            f"    document = jsondecode({hcl_string(json.dumps(CASES[label]))})\n  }}\n}}\n"
        )
    terraform = Terraform(directory)
    terraform.init()
    result = terraform.run("test", "-json", "-no-color", check=False)
    verdicts: dict[str, list[str]] = {}
    for message in result.messages:
        label = labels.get(message.get("@testfile", "").removesuffix(".tftest.hcl"))
        if label is None:
            continue
        verdicts.setdefault(label, [])
        if message.get("type") == "diagnostic" and message["diagnostic"]["severity"] == "error":
            verdicts[label].append(message["diagnostic"]["summary"] + ": " + message["diagnostic"].get("detail", ""))
    assert set(verdicts) == set(CASES), f"no result for {set(CASES) - set(verdicts)}: {result.stdout[-2000:]}"
    return verdicts


def pydantic_verdict(document: dict) -> str:
    try:
        parse_tenant_spec(document, "spec")
    except SpecError as error:
        return str(error)
    return ""


@pytest.fixture(scope="module")
def terraform(tmp_path_factory) -> dict[str, list[str]]:
    return terraform_verdicts(tmp_path_factory.mktemp("spec-rules"))


@pytest.mark.parametrize("label", GOOD)
def test_both_accept_a_good_spec(terraform, label):
    assert pydantic_verdict(GOOD[label]) == ""
    assert terraform[label] == []


@pytest.mark.parametrize("label", BAD)
def test_both_refuse_a_bad_spec_naming_the_field(terraform, label):
    field = BAD[label][1]
    refused = pydantic_verdict(CASES[label])
    assert re.search(rf"(^|[ ;]){re.escape(field)}(\.[\w.]+)?: ", refused.removeprefix("spec: ")), refused
    assert terraform[label], "Terraform accepted it"
    assert any(field in detail for detail in terraform[label]), terraform[label]


def test_the_modules_extension_list_is_the_request_contracts():
    """Terraform checks allowed_request_extensions against the same list the gateway enforces."""
    variables = (SPEC_MODULE / "variables.tf").read_text()
    block = variables[variables.index("allowed_request_extensions : contains([") :]
    listed = re.findall(r'"([a-z_]+)"', block[: block.index("], name)")])
    assert sorted(listed) == sorted(ALLOWABLE_EXTENSIONS)
