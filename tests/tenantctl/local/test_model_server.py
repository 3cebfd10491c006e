"""The CPU model server (tenantctl/local/model_server.py) with the catalogue's built-in models: a GGUF file
without a chat template is prompted in its architecture's format, and each chat model, started as
`tenantctl up` starts it (launchers.catalogue_model_server), answers the openai SDK, /health and /metrics."""

from __future__ import annotations

import httpx
import pytest
from llama_cpp.server.settings import ModelSettings
from openai import OpenAI

from tenantctl.local import model_cache
from tenantctl.local.launchers import catalogue_model_server
from tenantctl.local.model_server import (
    GEMMA_FORMAT,
    chat_format_for,
    choose_chat_format,
    format_gemma_system_first,
    gguf_metadata,
)
from tests.helpers import free_port, metric_value

GEMMA = "gemma-3-270m-q4_k_m.gguf"
SMOLLM2 = "SmolLM2-135M-Instruct.Q4_1.gguf"
MINILM = "all-MiniLM-L6-v2.f32.gguf"
KEY = "model-server-test-key"
QUESTION = "What is the capital of France? Answer with one word."
SYSTEM = "You are the assistant of Acme Corp."


@pytest.mark.parametrize(
    ("source", "architecture", "template", "chat_format"),
    [(GEMMA, "gemma3", False, GEMMA_FORMAT), (SMOLLM2, "llama", True, None), (MINILM, "bert", False, None)],
)
def test_the_chat_format_follows_the_gguf_files_metadata(source, architecture, template, chat_format):
    """Gemma 3 270M's file has no chat template: without one, llama-cpp-python would prompt it in llama-2's
    format. SmolLM2 brings its own template; an embedding model has no chat format to choose."""
    metadata = gguf_metadata(str(model_cache.model_file(source)))
    assert metadata["general.architecture"] == architecture
    assert ("tokenizer.chat_template" in metadata) is template
    assert chat_format_for(metadata) == chat_format


def test_gemmas_format_keeps_the_system_prompt_in_the_first_user_turn():
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Who are you?"},
    ]
    formatted = format_gemma_system_first(messages)
    assert formatted.prompt == (
        f"<start_of_turn>user\n{SYSTEM}\n\nHi<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n"
        "<start_of_turn>user\nWho are you?<end_of_turn>\n<start_of_turn>model\n"
    )
    assert formatted.stop == "<end_of_turn>\n"
    only_system = format_gemma_system_first([{"role": "system", "content": SYSTEM}])
    assert only_system.prompt == f"<start_of_turn>user\n{SYSTEM}<end_of_turn>\n<start_of_turn>model\n"


def test_a_chat_format_given_is_kept():
    gemma = str(model_cache.model_file(GEMMA))
    chosen = ModelSettings(model=gemma)
    choose_chat_format(chosen)
    assert chosen.chat_format == GEMMA_FORMAT
    given = ModelSettings(model=gemma, chat_format="chatml")
    choose_chat_format(given)
    assert given.chat_format == "chatml"
    smollm2 = ModelSettings(model=str(model_cache.model_file(SMOLLM2)))
    choose_chat_format(smollm2)
    assert smollm2.chat_format is None  # llama-cpp-python takes the file's own template


@pytest.mark.parametrize(
    ("name", "source", "prompt", "answer"),
    [
        # A base model, Gemma answers poorly; but in Gemma's turns, not llama-2's `[INST] ... [/INST]`.
        # Gemma has no system role: the tenant's prompt opens the first user turn (as Gemma's own template does).
        (
            "gemma-3-270m",
            GEMMA,
            f"<start_of_turn>user\n{SYSTEM}\n\n{QUESTION}<end_of_turn>\n<start_of_turn>model\n",
            None,
        ),
        ("smollm2-135m-instruct", SMOLLM2, None, "paris"),  # its own template
    ],
)
def test_a_catalogue_chat_model_answers_the_openai_sdk(process_group, tmp_path, name, source, prompt, answer):
    port = free_port()
    server = process_group(
        catalogue_model_server(name, source, name, port, tmp_path, context_length=1024, threads=2, api_key=KEY)
    )
    assert server.name == f"model-{name}"
    url = f"http://127.0.0.1:{port}"
    client = OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0, timeout=120)

    completion = client.chat.completions.create(
        model=name,
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}],
        max_tokens=16,
        temperature=0,
        seed=1,
    )
    assert completion.model == name
    content = completion.choices[0].message.content
    assert content.strip() and completion.usage.completion_tokens > 0
    if answer is not None:
        assert answer in content.lower()
    if prompt is not None:
        counted = httpx.post(
            url + "/extras/tokenize/count", json={"input": prompt}, headers={"Authorization": f"Bearer {KEY}"}
        )
        assert counted.status_code == 200, counted.text
        assert completion.usage.prompt_tokens == counted.json()["count"]
    anonymous = httpx.post(url + "/v1/chat/completions", json={"messages": [{"role": "user", "content": "Hi"}]})
    assert anonymous.status_code == 401

    assert httpx.get(url + "/health", timeout=10).status_code == 200
    metrics = httpx.get(url + "/metrics", timeout=10)
    assert metrics.status_code == 200
    for status in ("200", "401"):
        assert (
            metric_value(metrics.text, "model_server_requests_total", route="/v1/chat/completions", status=status) == 1
        )
