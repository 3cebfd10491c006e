"""Local mode's model catalogue, end to end: two real chat models (SmolLM2-135M-Instruct and Gemma 3 270M)
and one embedding model, each tenant answered only by the models its spec allows, at its URL and at the
gateway; a disabled model refused while the others answer; a spec naming a model the catalogue lacks
refused before anything starts."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tenant_spec import SPEC_FILENAME
from tenantctl.commands.main import main
from tenantctl.local.catalogue import DEFAULT_CATALOGUE
from tenantctl.local.platform import LocalPlatform, LocalSettings
from tests.helpers import TENANTS_DIR, free_port, specs_on_free_ports

EMBEDDING = "all-minilm-l6-v2"


def gateway_chat(platform, tenant: str, model: str) -> httpx.Response:
    return httpx.post(
        platform.gateway_url + "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8},
        headers={"Authorization": f"Bearer {platform.keys[tenant]}"},
        timeout=120,
    )


def test_each_tenant_is_answered_by_the_models_it_may_use_and_refused_the_others(platform):
    default = platform.ask("acme-corp", question="Say hello.", max_tokens=8)
    assert default.status_code == 200 and default.json()["backend"] == "smollm2-135m-instruct"
    by_alias = platform.ask("acme-corp", question="Say hello.", max_tokens=8, model="gemma3")
    assert by_alias.status_code == 200 and by_alias.json()["backend"] == "gemma-3-270m", by_alias.text
    assert by_alias.json()["answer"]
    refused = platform.ask("closed-ai", question="Say hello.", max_tokens=8, model="gemma-3-270m")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "model_not_allowed"
    assert "'gemma-3-270m'" in refused.json()["error"]["message"]
    at_the_gateway = gateway_chat(platform, "closed-ai", "gemma3")
    assert at_the_gateway.status_code == 403 and at_the_gateway.json()["error"]["code"] == "model_not_allowed"
    assert gateway_chat(platform, "acme-corp", "gemma-3-270m").status_code == 200
    unknown = platform.ask("acme-corp", question="Hi", model="gpt-9")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"


@pytest.mark.parametrize(
    "tenant, models",
    [
        ("acme-corp", ["smollm2-135m-instruct", "gemma-3-270m", "gpt-4o-mini", EMBEDDING]),
        ("closed-ai", ["smollm2-135m-instruct", EMBEDDING]),
    ],
)
def test_the_openai_sdk_lists_exactly_the_tenants_models(platform, tenant, models):
    at_its_url = openai.OpenAI(base_url=platform.tenant_urls[tenant] + "/v1", api_key="unused")
    at_the_gateway = openai.OpenAI(base_url=platform.gateway_url + "/v1", api_key=platform.keys[tenant])
    for client in (at_its_url, at_the_gateway):
        listed = client.models.list().data
        assert [model.id for model in listed] == models
        assert listed[0].model_extra["default"] and listed[0].model_extra["context_length"] == 2048
    assert at_its_url.models.retrieve("gemma3" if tenant == "acme-corp" else "smollm2").id in models


def test_a_disabled_model_is_refused_while_the_other_answers(tmp_path):
    catalogue = {**DEFAULT_CATALOGUE, "gemma-3-270m": {**DEFAULT_CATALOGUE["gemma-3-270m"], "enabled": False}}
    (tmp_path / "models.json").write_text(json.dumps(catalogue))
    settings = LocalSettings(
        run_dir=tmp_path / "run",
        gateway_port=free_port(),
        first_model_port=None,
        redis_port=free_port(),
        prometheus_port=None,
        alertmanager_port=None,
        catalogue_file=tmp_path / "models.json",
        workers=1,
    )
    local = LocalPlatform(specs_on_free_ports(), settings, environ={})
    assert local.catalogue_warnings == [
        "tenant acme-corp: models.allowed: gemma-3-270m is disabled in the catalogue (answers 503 until enabled)",
        "tenant acme-corp: models.allowed: gpt-4o-mini is disabled in the catalogue (answers 503 until enabled)",
    ]
    assert "gemma-3-270m" not in local.model_servers  # a disabled model runs no server
    try:
        local.start()
        acme = local.endpoints[0].url
        disabled = httpx.post(acme + "/ask", json={"question": "Hi", "model": "gemma3"}, timeout=60)
        assert disabled.status_code == 503 and disabled.json()["error"]["code"] == "model_disabled"
        assert int(disabled.headers["Retry-After"]) > 0
        answered = httpx.post(acme + "/ask", json={"question": "Hi", "max_tokens": 8}, timeout=120)
        assert answered.status_code == 200 and answered.json()["backend"] == "smollm2-135m-instruct"
    finally:
        local.stop()


def test_a_spec_naming_a_model_the_catalogue_lacks_is_refused_naming_it(tmp_path, capsys):
    tenants = tmp_path / "tenants"
    (tenants / "globex").mkdir(parents=True)
    spec = json.loads((TENANTS_DIR / "closed-ai" / SPEC_FILENAME).read_text())
    (tenants / "globex" / SPEC_FILENAME).write_text(
        json.dumps({**spec, "name": "globex", "models": {"allowed": ["smollm2", "llama-3-70b"]}})
    )
    for command in (["validate"], ["up", "--run-dir", str(tmp_path / "run"), "--no-prometheus"]):
        assert main(["--tenants-dir", str(tenants), *command]) == 1
        error = capsys.readouterr().err
        assert "tenant globex: models.allowed: llama-3-70b is not served by the platform; served: " in error
        assert "gemma-3-270m" in error and not (tmp_path / "run").exists()  # nothing was started


def test_tenantctl_models_shows_each_models_health_replicas_load_and_tenants(platform, capsys):
    run_dir = platform.platform.settings.run_dir
    assert main(["--tenants-dir", str(TENANTS_DIR), "models", "--run-dir", str(run_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["MODEL", "ENGINE", "KIND", "ALIASES", "ENABLED", "HEALTH", "READY", "LOAD", "TENANTS"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["smollm2-135m-instruct"] == ["smollm2-135m-instruct", "cpu", "chat", "smollm2", "yes", "up", "1/1"] + [
        rows["smollm2-135m-instruct"][7],
        "acme-corp,closed-ai",
    ]
    assert rows["gemma-3-270m"][5:7] == ["up", "1/1"] and rows["gemma-3-270m"][8] == "acme-corp"
    assert rows["all-minilm-l6-v2"][2] == "embedding" and rows["all-minilm-l6-v2"][8] == "(all)"
    assert rows["gpt-4o-mini"][4:6] == ["no", "-"]  # no OpenAI key here
