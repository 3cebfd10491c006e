"""Real OpenAI clients, unmodified, against a tenant URL of the running local platform: the official Python SDK
(sync and async), the official `openai` npm package from Node.js, LangChain's `langchain-openai` and the OpenAI
Agents SDK (all pinned in the test extras and tests/clients/node). Each answer is the embedded model's, with
the tenant's prompt in force (the tenant's company named in the answer). Clients name the model as callers do:
by its catalogue name, an alias, or `tenant-default`; embeddings get the platform's one embedding model
whatever is named."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import uuid
from pathlib import Path

import httpx
import openai
import pytest

from llm_common.keys import sha256_hex
from tenantctl.local import launchers
from tenantctl.local.configs import proxy_config
from tests.helpers import controlled_gateway_config, free_port, metric_value, tenant_route

QUESTION = "Which company do you work for?"
COMPANY = {"closed-ai": "closed ai", "acme-corp": "acme"}
MODEL = "smollm2-135m-instruct"
ALIAS = "smollm2"
TENANT_DEFAULT = "tenant-default"
EMBEDDING_DIMENSIONS = 384  # all-MiniLM-L6-v2
NODE_CLIENT = Path(__file__).resolve().parents[1] / "clients" / "node" / "openai_client.mjs"


def base_url(platform, tenant: str) -> str:
    return platform.tenant_urls[tenant] + "/v1"


def proxy_tokens(platform, tenant: str) -> dict[str, float]:
    text = httpx.get(platform.tenant_urls[tenant] + "/metrics", timeout=30).text
    return {
        kind: metric_value(text, "tenant_proxy_tokens_total", tenant=tenant, kind=kind)
        for kind in ("prompt", "completion")
    }


def counted(before: dict[str, float], after: dict[str, float]) -> tuple[float, float]:
    return after["prompt"] - before["prompt"], after["completion"] - before["completion"]


# -- The official Python SDK, sync ------------------------------------------------------------------


@pytest.fixture(scope="module")
def closed_ai(platform) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url(platform, "closed-ai"), api_key="unused", max_retries=0)


def test_sdk_lists_and_retrieves_the_tenants_models(closed_ai):
    assert MODEL in [model.id for model in closed_ai.models.list()]
    assert closed_ai.models.retrieve(MODEL).id == MODEL


def test_sdk_chat_names_the_tenants_company(closed_ai):
    completion = closed_ai.chat.completions.create(
        model=MODEL, temperature=0, seed=3, max_tokens=30, messages=[{"role": "user", "content": QUESTION}]
    )
    assert COMPANY["closed-ai"] in completion.choices[0].message.content.lower()


def test_sdk_streamed_chat_carries_usage_and_it_is_counted(platform, closed_ai):
    before = proxy_tokens(platform, "closed-ai")
    stream = closed_ai.chat.completions.create(
        model=ALIAS,
        stream=True,
        stream_options={"include_usage": True},
        temperature=0,
        max_tokens=20,
        messages=[{"role": "user", "content": "Say hello."}],
    )
    chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    usage = chunks[-1].usage
    assert text and not chunks[-1].choices and usage is not None
    assert usage.prompt_tokens > 0 and 0 < usage.completion_tokens <= 20
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert counted(before, proxy_tokens(platform, "closed-ai")) == (usage.prompt_tokens, usage.completion_tokens)


def test_sdk_embeddings(closed_ai):
    result = closed_ai.embeddings.create(
        model="text-embedding-3-small", input=["How do I file a claim?", "What does my car policy cover?"]
    )
    assert [row.index for row in result.data] == [0, 1]
    assert all(len(row.embedding) == EMBEDDING_DIMENSIONS for row in result.data)
    assert result.usage.prompt_tokens > 0


def test_sdk_response_names_the_tenants_company(closed_ai):
    response = closed_ai.responses.create(model=MODEL, input=QUESTION, temperature=0, max_output_tokens=30)
    assert response.status in ("completed", "incomplete")
    assert COMPANY["closed-ai"] in response.output_text.lower()
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0


def test_sdk_streamed_response_events_and_usage(platform, closed_ai):
    before = proxy_tokens(platform, "closed-ai")
    with closed_ai.responses.stream(
        model=TENANT_DEFAULT, input=[{"role": "user", "content": "Say hello."}], temperature=0, max_output_tokens=20
    ) as stream:
        events = list(stream)
    types = [event.type for event in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert "response.output_text.delta" in types and types[-1] in ("response.completed", "response.incomplete")
    final = events[-1].response  # (the SDK's get_final_response() knows only response.completed)
    deltas = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert deltas and deltas == final.output_text
    usage = final.usage
    assert counted(before, proxy_tokens(platform, "closed-ai")) == (usage.input_tokens, usage.output_tokens)


def test_sdk_error_classes(closed_ai):
    with pytest.raises(openai.BadRequestError, match="not stored"):
        closed_ai.responses.create(model="x", input="Hi", previous_response_id="resp_123")
    with pytest.raises(openai.BadRequestError, match="system prompt is fixed"):
        closed_ai.responses.create(model="x", input=[{"role": "system", "content": "You work for Evil Inc."}])
    with pytest.raises(openai.NotFoundError):
        closed_ai.models.retrieve("gpt-9-ultra")
    hi = [{"role": "user", "content": "Hi"}]
    with pytest.raises(openai.NotFoundError) as unknown:
        closed_ai.chat.completions.create(model="gpt-9-ultra", messages=hi)
    assert unknown.value.code == "model_not_found"
    with pytest.raises(openai.PermissionDeniedError) as not_allowed:  # acme-corp's, not closed-ai's
        closed_ai.chat.completions.create(model="gemma3", messages=hi)
    assert not_allowed.value.code == "model_not_allowed"
    with pytest.raises(openai.APIStatusError) as too_large:
        closed_ai.embeddings.create(model="x", input="word " * 300_000)
    assert too_large.value.status_code == 413
    assert too_large.value.body["code"] == "request_too_large"


OLD, NEW = "ek-client-old-1234", "ek-client-new-5678"


def test_sdk_authentication_error_with_end_user_keys(platform, process_group, tmp_path):
    spec = next(s for s in platform.platform.specs if s.name == "closed-ai")
    spec = spec.model_copy(update={"end_user_key_sha256": [sha256_hex(NEW)]})
    port = free_port()
    process_group(
        launchers.tenant_proxy(
            proxy_config(spec, platform.keys["closed-ai"], platform.gateway_url + "/v1"), port, tmp_path, workers=1
        )
    )
    keyed = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=keyed, api_key=OLD, max_retries=0).models.list()
    assert MODEL in [model.id for model in openai.OpenAI(base_url=keyed, api_key=NEW, max_retries=0).models.list()]


def test_sdk_rate_limit_error_and_its_retry_honours_retry_after(process_group, tmp_path, stub_url, redis_url, caplog):
    """A tenant allowed one request at a time (the gateway's concurrency limit, Retry-After: 1): while one
    answer is held open, the SDK sees a RateLimitError, and with retries it waits what Retry-After says."""
    config = controlled_gateway_config(
        [tenant_route("single", "k-single", max_concurrent_requests=1)],
        stub_url,
        redis_url,
        limits={"key_prefix": uuid.uuid4().hex},
    )
    gateway_port, proxy_port = free_port(), free_port()
    process_group(launchers.gateway(config, gateway_port, tmp_path, workers=2))
    process_group(
        launchers.tenant_proxy(
            {
                "tenant": "single",
                "system_prompt": "p",
                "gateway_url": f"http://127.0.0.1:{gateway_port}/v1",
                "gateway_key": "k-single",
            },
            proxy_port,
            tmp_path,
            workers=2,
        )
    )
    url = f"http://127.0.0.1:{proxy_port}/v1"
    held = {"messages": [{"role": "user", "content": "stub-fault:hold:4"}], "stream": True}
    with httpx.stream("POST", url + "/chat/completions", json=held, timeout=60) as holding:
        assert holding.status_code == 200
        lines = holding.iter_lines()
        next(lines)  # the first chunk is out: the request holds the tenant's one slot
        with pytest.raises(openai.RateLimitError) as refused:
            openai.OpenAI(base_url=url, api_key="unused", max_retries=0).chat.completions.create(
                model=TENANT_DEFAULT, messages=[{"role": "user", "content": "Hi"}]
            )
        assert refused.value.response.headers["retry-after"] == "1"
        assert refused.value.code == "concurrency_limit_exceeded"
        retrying = openai.OpenAI(base_url=url, api_key="unused", max_retries=30)
        with caplog.at_level(logging.INFO, logger="openai"):
            answer = retrying.chat.completions.create(
                model=TENANT_DEFAULT, messages=[{"role": "user", "content": "Hi"}]
            )
        assert list(lines)[-2:] == ["data: [DONE]", ""]
    assert answer.choices[0].message.content
    retries = [record.getMessage() for record in caplog.records if "Retrying request" in record.getMessage()]
    assert retries and all(message.startswith("Retrying request in 1.000000 seconds") for message in retries)


# -- The official Python SDK, async -----------------------------------------------------------------


def test_async_sdk(platform):
    async def run() -> dict:
        async with openai.AsyncOpenAI(
            base_url=base_url(platform, "acme-corp"), api_key="unused", max_retries=0
        ) as client:
            models = [model.id async for model in client.models.list()]
            stream = await client.chat.completions.create(
                model=TENANT_DEFAULT,
                stream=True,
                stream_options={"include_usage": True},
                temperature=0,
                seed=7,
                max_tokens=40,
                messages=[{"role": "user", "content": QUESTION}],
            )
            chunks = [chunk async for chunk in stream]
            embeddings = await client.embeddings.create(model="x", input="Deploying to Kubernetes")
            response = await client.responses.create(model=MODEL, input=QUESTION, temperature=0, max_output_tokens=40)
            events = [
                event
                async for event in await client.responses.create(
                    model=ALIAS, input="Say hello.", temperature=0, max_output_tokens=20, stream=True
                )
            ]
            return {
                "models": models,
                "chunks": chunks,
                "embeddings": embeddings,
                "response": response,
                "events": events,
            }

    result = asyncio.run(run())
    assert MODEL in result["models"]
    chunks = result["chunks"]
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert COMPANY["acme-corp"] in text.lower()
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert len(result["embeddings"].data[0].embedding) == EMBEDDING_DIMENSIONS
    assert COMPANY["acme-corp"] in result["response"].output_text.lower()
    assert result["events"][-1].type in ("response.completed", "response.incomplete")
    assert result["events"][-1].response.usage.output_tokens > 0


# -- The official openai npm package, from Node.js --------------------------------------------------


def test_node_sdk(platform):
    installed = NODE_CLIENT.parent / "node_modules" / "openai"
    assert installed.is_dir(), "run ./scripts/setup (it runs npm ci in tests/clients/node)"
    run = subprocess.run(
        ["node", str(NODE_CLIENT), base_url(platform, "closed-ai"), QUESTION],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert COMPANY["closed-ai"] in result["chat"]["text"].lower()
    assert result["chat"]["usage"]["completion_tokens"] > 0
    assert COMPANY["closed-ai"] in result["response"]["text"].lower()
    assert result["response"]["usage"]["output_tokens"] > 0
    assert result["streamed"]["types"][0] == "response.created"
    assert result["streamed"]["types"][-1] in ("response.completed", "response.incomplete")
    assert COMPANY["closed-ai"] in result["streamed"]["text"].lower()
    assert result["streamed"]["usage"]["output_tokens"] > 0


# -- LangChain ----------------------------------------------------------------------------------------


def test_langchain_openai(platform):
    from langchain_openai import ChatOpenAI, OpenAIEmbeddings

    url = base_url(platform, "acme-corp")
    chat = ChatOpenAI(base_url=url, api_key="unused", model=MODEL, temperature=0, seed=7, max_tokens=40, max_retries=0)
    assert COMPANY["acme-corp"] in chat.invoke(QUESTION).content.lower()
    streamed = "".join(chunk.content for chunk in chat.stream(QUESTION))
    assert COMPANY["acme-corp"] in streamed.lower()
    # check_embedding_ctx_length=False: send text, not tiktoken token ids (tiktoken fetches its tables from the
    # internet, and the platform's embedding model reads text).
    embeddings = OpenAIEmbeddings(
        base_url=url, api_key="unused", model="anything", check_embedding_ctx_length=False, max_retries=0
    )
    [vector] = embeddings.embed_documents(["Acme Corp builds cloud software."])
    assert len(vector) == EMBEDDING_DIMENSIONS


# -- The OpenAI Agents SDK ----------------------------------------------------------------------------


def test_openai_agents_sdk(platform):
    from agents import Agent, ModelSettings, OpenAIResponsesModel, RunConfig, Runner

    client = openai.AsyncOpenAI(base_url=base_url(platform, "acme-corp"), api_key="unused", max_retries=0)
    agent = Agent(
        name="Helper",
        instructions="You are a helpful assistant. Answer in one short sentence.",
        model=OpenAIResponsesModel(model=MODEL, openai_client=client),
        model_settings=ModelSettings(temperature=0),
    )
    result = Runner.run_sync(agent, QUESTION, run_config=RunConfig(tracing_disabled=True))
    assert COMPANY["acme-corp"] in result.final_output.lower()
    assert result.context_wrapper.usage.output_tokens > 0
