"""A zero-latency OpenAI-compatible server (Starlette + uvicorn) for the benchmarks and the tests.

It answers instantly with a fixed completion, so whatever latency a path adds
on top of calling it directly is the cost of our proxy and gateway hops. Streams end
with a usage chunk when asked (`stream_options.include_usage`), as OpenAI and vLLM do.

For the tests it also embeds (`/v1/embeddings`: hashed bag-of-words vectors, so texts that
share words are similar) and misbehaves on request, as a backend can: a last message of
`stub-fault:<status>` (optionally `:<Retry-After>`) is answered with that HTTP status and an
error body full of internal details (a URL, a path) that must never reach a caller;
`stub-fault:hold:<seconds>` waits that long before the answer (a stream: after its first chunk),
like a slow generation. Every request's path, X-Request-Id and body are kept: `GET /seen` lists them.

With `--stream-tokens N --token-interval S` every stream is N content chunks S seconds apart, a
model generating at 1/S tokens per second (bench/gateway_capacity.py's slow streams); `--no-seen`
keeps no requests (a long benchmark would fill memory).

It counts the chat completions it is answering (a stream until it ends or its caller leaves):
`GET /stats` gives `{"in_flight", "peak_in_flight"}`, and `GET /metrics` exports the count as vLLM
does (`vllm:num_requests_running`, `vllm:num_requests_waiting`), plus `extra_running` sequences of
nobody's. `POST /control` takes `{"reset_peak": true}` (the peak restarts from what runs now),
`{"extra_running": n}`, and `{"holds": "released"}` (every hold, running or to come, ends at once)
or `{"holds": "on"}` (holds hold again).

    python -m openai_stub --port 9100      (or: python openai_stub/server.py --port 9100)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
import zlib
from collections import deque

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route

MODEL = "stub-model"
FAULT = "stub-fault:"
INTERNAL_DETAIL = "upstream http://10.11.12.13:8000/v1/internal failed reading /srv/models/secret.gguf"
SEEN: deque[dict] = deque(maxlen=10_000)  # {"path", "request_id", "body"} of the latest requests, in order
SLOW_STREAMS = {"tokens": 0, "interval": 0.1}
KEEP_SEEN = {"on": True}
WORDS = ["Hello", " from", " the", " zero", "-latency", " stub", "."]
EMBEDDING_DIMENSIONS = 384
# Chat completions being answered, the most at once, sequences of nobody's reported to /metrics, and
# whether holds are released.
LOAD = {"in_flight": 0, "peak": 0, "extra_running": 0, "holds_released": False}


def started() -> None:
    LOAD["in_flight"] += 1
    LOAD["peak"] = max(LOAD["peak"], LOAD["in_flight"])


def ended() -> None:
    LOAD["in_flight"] -= 1


async def hold_for(seconds: float) -> None:
    """Wait `seconds`, or less once holds are released (POST /control)."""
    until = time.monotonic() + seconds
    while not LOAD["holds_released"] and time.monotonic() < until:
        await asyncio.sleep(min(0.05, max(0.0, until - time.monotonic())))


def completion() -> dict:
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 0,
        "model": MODEL,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "".join(WORDS)}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": len(WORDS), "total_tokens": 10 + len(WORDS)},
    }


def chunk(content: str | None, finish: str | None = None) -> bytes:
    delta = {"content": content} if content is not None else {}
    body = {
        "id": "chatcmpl-stub",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


def fault_of(body: dict) -> list[str] | None:
    """The fault asked for by the last message (`stub-fault:...`), split at ':'."""
    messages = body.get("messages") or []
    content = messages[-1].get("content") if messages and isinstance(messages[-1], dict) else None
    if isinstance(content, str) and content.startswith(FAULT):
        return content[len(FAULT) :].split(":")
    return None


async def seen(request: Request) -> dict:
    body = await request.json()
    if KEEP_SEEN["on"]:
        SEEN.append({"path": request.url.path, "request_id": request.headers.get("x-request-id"), "body": body})
    return body


async def chat_completions(request: Request):
    body = await seen(request)
    fault = fault_of(body)
    hold = float(fault[1]) if fault and fault[0] == "hold" else 0.0
    if fault and not hold:
        headers = {"Retry-After": fault[1]} if len(fault) > 1 else {}
        return JSONResponse(
            {"error": {"type": "BadRequestError", "message": INTERNAL_DETAIL, "code": int(fault[0])}},
            status_code=int(fault[0]),
            headers=headers,
        )
    if not body.get("stream"):
        started()
        try:
            await hold_for(hold)
        finally:
            ended()
        return JSONResponse(completion())

    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True

    async def events():
        started()
        try:
            if SLOW_STREAMS["tokens"]:
                for index in range(SLOW_STREAMS["tokens"]):
                    await asyncio.sleep(SLOW_STREAMS["interval"])
                    yield chunk(WORDS[index % len(WORDS)])
            for index, word in enumerate(WORDS if not SLOW_STREAMS["tokens"] else []):
                yield chunk(word)
                if index == 0:
                    await hold_for(hold)
            yield chunk(None, "stop")
            if include_usage:
                usage = {
                    "id": "chatcmpl-stub",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": MODEL,
                    "choices": [],
                    "usage": completion()["usage"],
                }
                yield f"data: {json.dumps(usage)}\n\n".encode()
            yield b"data: [DONE]\n\n"
        finally:
            ended()

    return StreamingResponse(events(), media_type="text/event-stream")


def embedding(text: str) -> list[float]:
    """Hashed bag of words: one dimension per word (mod 384), so shared words make texts similar."""
    vector = [0.0] * EMBEDDING_DIMENSIONS
    for word in re.findall(r"\w+", text.lower()):
        vector[zlib.crc32(word.encode()) % EMBEDDING_DIMENSIONS] += 1.0
    vector[0] += 0.01  # never all zeros
    return vector


async def embeddings(request: Request):
    body = await seen(request)
    inputs = body["input"] if isinstance(body.get("input"), list) else [body.get("input")]
    data = [
        {"object": "embedding", "index": index, "embedding": embedding(str(text))} for index, text in enumerate(inputs)
    ]
    return JSONResponse(
        {
            "object": "list",
            "model": "stub-embedding",
            "data": data,
            "usage": {"prompt_tokens": 3 * len(inputs), "total_tokens": 3 * len(inputs)},
        }
    )


async def seen_requests(_: Request):
    return JSONResponse(list(SEEN))


async def stats(_: Request):
    return JSONResponse({"in_flight": LOAD["in_flight"], "peak_in_flight": LOAD["peak"]})


async def control(request: Request):
    body = await request.json()
    if body.get("reset_peak"):
        LOAD["peak"] = LOAD["in_flight"]
    if "extra_running" in body:
        LOAD["extra_running"] = int(body["extra_running"])
    if "holds" in body:
        LOAD["holds_released"] = body["holds"] == "released"
    return JSONResponse({"in_flight": LOAD["in_flight"], "peak_in_flight": LOAD["peak"]})


async def engine_metrics(_: Request):
    """The two series of vLLM's /metrics the gateway reads (llm_gateway/pool_admission.py)."""
    labels = f'{{engine="0",model_name="{MODEL}"}}'
    text = (
        "# TYPE vllm:num_requests_running gauge\n"
        f"vllm:num_requests_running{labels} {float(LOAD['in_flight'] + LOAD['extra_running'])}\n"
        "# TYPE vllm:num_requests_waiting gauge\n"
        f"vllm:num_requests_waiting{labels} 0.0\n"
    )
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")


async def health(_: Request):
    return JSONResponse({"status": "ok"})


async def models(_: Request):
    return JSONResponse({"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "stub"}]})


app = Starlette(
    routes=[
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/seen", seen_requests),
        Route("/stats", stats),
        Route("/control", control, methods=["POST"]),
        Route("/metrics", engine_metrics),
        Route("/v1/models", models),
        Route("/health", health),
    ]
)


def main() -> None:
    parser = argparse.ArgumentParser(description="A stub OpenAI-compatible upstream on 127.0.0.1.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--stream-tokens", type=int, default=0)
    parser.add_argument("--token-interval", type=float, default=0.1)
    parser.add_argument("--no-seen", action="store_true")
    args = parser.parse_args()
    SLOW_STREAMS.update(tokens=args.stream_tokens, interval=args.token_interval)
    KEEP_SEEN["on"] = not args.no_seen
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
