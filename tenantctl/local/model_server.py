"""The CPU model server (local mode, and the model-server image on a cluster): llama-cpp-python's
OpenAI-compatible server plus `/metrics` and `/health`.

llama-cpp-python's server has no Prometheus endpoint and no health route (vLLM has both), so this
wraps its FastAPI app with request metrics and a `/health` that answers 200 once the model is
loaded (the server only listens then), like vLLM's: probes and the gateway's health checks use the
same path for both servers. Same arguments as `python -m llama_cpp.server`:

    python -m tenantctl.local.model_server --model model.gguf --port 8000 ...

plus `--api_key_file FILE`: the OpenAI routes then need `Authorization: Bearer <the key in FILE>`
(llama-cpp-python's own `api_key`, read from a file so it is not on the command line). The
OpenAPI document (the liveness check) and `/metrics` stay open, as upstream's.

A GGUF file without a chat template (`tokenizer.chat_template`; Gemma 3 270M's has none) and no
`--chat_format` would be prompted in llama-2's format, which such a model does not know: the chat
format is then chosen by the model's architecture (`general.architecture`, ARCHITECTURE_CHAT_FORMATS).
For Gemma that is `gemma-system-first` (below): llama-cpp-python's own `gemma` format drops system
messages, and with them the tenant's prompt.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import llama_cpp
import uvicorn
from fastapi import FastAPI, Response
from llama_cpp import llama_chat_format
from llama_cpp._internals import LlamaModel
from llama_cpp.server.app import create_app
from llama_cpp.server.cli import add_args_from_model, parse_model_from_args
from llama_cpp.server.settings import ModelSettings, ServerSettings, Settings
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from llm_common.metrics_registry import LATENCY_BUCKETS

# The model endpoints; anything else (health, docs, /metrics) is not counted.
COUNTED_ROUTES = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
# llama-cpp-python's chat format for a model whose GGUF file carries no chat template, by architecture.
GEMMA_FORMAT = "gemma-system-first"
ARCHITECTURE_CHAT_FORMATS = {"gemma": GEMMA_FORMAT, "gemma2": GEMMA_FORMAT, "gemma3": GEMMA_FORMAT}
GEMMA_TURN_END = "<end_of_turn>\n"


@llama_chat_format.register_chat_format(GEMMA_FORMAT)
def format_gemma_system_first(messages: list[dict], **_: object) -> llama_chat_format.ChatFormatterResponse:
    """Gemma's turns (`user` and `model`), the system messages at the top of the first user turn, as Gemma's
    own chat template places them (Gemma has no system role)."""
    system = "\n\n".join(_text(m) for m in messages if m["role"] in ("system", "developer"))
    turns = [m for m in messages if m["role"] not in ("system", "developer")]
    if system and (not turns or turns[0]["role"] != "user"):
        turns = [{"role": "user", "content": ""}, *turns]
    prompt = ""
    for index, message in enumerate(turns):
        role = "model" if message["role"] == "assistant" else "user"
        text = _text(message)
        if index == 0 and system:
            text = f"{system}\n\n{text}" if text else system
        prompt += f"<start_of_turn>{role}\n{text}{GEMMA_TURN_END}"
    return llama_chat_format.ChatFormatterResponse(prompt=prompt + "<start_of_turn>model\n", stop=GEMMA_TURN_END)


def _text(message: dict) -> str:
    """A message's text: its content, or its text parts joined."""
    content = message.get("content") or ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


class ModelServerMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.requests = Counter(
            "model_server_requests_total",
            "Model requests answered, by route and HTTP status.",
            ["route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "model_server_request_duration_seconds",
            "Time to the full answer (streams: to the last byte).",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "model_server_in_flight_requests",
            "Requests being generated or waiting for the model.",
            ["route"],
            registry=registry,
        )
        for route in COUNTED_ROUTES:  # at zero, so the first requests show in rate()
            self.requests.labels(route=route, status="200")
            self.duration.labels(route=route)
            self.in_flight.labels(route=route)


class RequestMetricsMiddleware:
    """Plain ASGI middleware, so a streamed answer is timed until its last byte is sent."""

    def __init__(self, app, metrics: ModelServerMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        route = scope.get("path") if scope["type"] == "http" else None
        if route not in COUNTED_ROUTES:
            await self.app(scope, receive, send)
            return
        status = "500"  # unless the app starts a response

        async def send_and_note_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = str(message["status"])
            await send(message)

        started = time.perf_counter()
        self.metrics.in_flight.labels(route=route).inc()
        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            self.metrics.in_flight.labels(route=route).dec()
            self.metrics.requests.labels(route=route, status=status).inc()
            self.metrics.duration.labels(route=route).observe(time.perf_counter() - started)


def with_metrics(app: FastAPI) -> FastAPI:
    registry = CollectorRegistry(auto_describe=True)
    app.add_middleware(RequestMetricsMiddleware, metrics=ModelServerMetrics(registry))

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/health", include_in_schema=False)
    def health() -> Response:
        return Response(status_code=200)

    return app


def gguf_metadata(model_path: str) -> dict[str, str]:
    """The GGUF file's key-value metadata as llama.cpp reads it, loading the vocabulary only (no weights, no
    context: `Llama(vocab_only=True)` would make a context and warn about it). LlamaModel is llama-cpp-python's
    own wrapper (its `_internals`, at the version pinned; tests/tenantctl/local/test_model_server.py reads the
    real model files with it)."""
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = LlamaModel(path_model=model_path, params=params, verbose=False)
    try:
        return model.metadata()
    finally:
        model.close()


def chat_format_for(metadata: dict[str, str]) -> str | None:
    """The chat format to give llama-cpp-python for a model with this metadata; None: its own choice (the
    GGUF file's chat template, or a model we know no better format for)."""
    if "tokenizer.chat_template" in metadata:
        return None
    return ARCHITECTURE_CHAT_FORMATS.get(metadata.get("general.architecture", ""))


def choose_chat_format(model_settings: ModelSettings) -> None:
    """Without `--chat_format`, a GGUF file without a chat template gets its architecture's format."""
    if model_settings.chat_format is not None or model_settings.embedding or not Path(model_settings.model).is_file():
        return
    chat_format = chat_format_for(gguf_metadata(model_settings.model))
    if chat_format is not None:
        print(f"model_server: no chat template in {model_settings.model}: chat format {chat_format}", file=sys.stderr)
        model_settings.chat_format = chat_format


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="tenantctl.local.model_server", description="llama-cpp-python's server with Prometheus metrics"
    )
    add_args_from_model(parser, Settings)
    parser.add_argument("--api_key_file", help="require the API key in this file (kept off the command line)")
    args = parser.parse_args(argv)
    server_settings = parse_model_from_args(ServerSettings, args)
    if args.api_key_file:
        server_settings.api_key = Path(args.api_key_file).read_text(encoding="utf-8").strip()
    model_settings = parse_model_from_args(ModelSettings, args)
    choose_chat_format(model_settings)
    app = with_metrics(create_app(server_settings=server_settings, model_settings=[model_settings]))
    uvicorn.run(app, host=server_settings.host, port=server_settings.port)


if __name__ == "__main__":
    main()
