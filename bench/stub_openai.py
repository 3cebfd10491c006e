"""A zero-latency OpenAI-compatible server (Starlette + uvicorn) for the overhead benchmark.

It answers instantly with a fixed completion, so whatever latency a path adds
on top of calling it directly is the cost of our proxy and gateway hops. Streams end
with a usage chunk when asked (`stream_options.include_usage`), as OpenAI and vLLM do.

For the tests it also embeds (`/v1/embeddings`: hashed bag-of-words vectors, so texts that
share words are similar) and shows the last requests it received (`GET /requests`: path and
JSON body), so a test can check what a proxy sent upstream.

    python bench/stub_openai.py --port 9100
"""

from __future__ import annotations

import argparse
import json
import re
import zlib
from collections import deque

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

MODEL = "stub-model"
WORDS = ["Hello", " from", " the", " zero", "-latency", " stub", "."]
EMBEDDING_DIMENSIONS = 384
RECEIVED: deque = deque(maxlen=50)  # the latest requests: {"path", "body"}


def completion() -> dict:
    return {
        "id": "chatcmpl-stub", "object": "chat.completion", "created": 0, "model": MODEL,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "".join(WORDS)}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": len(WORDS), "total_tokens": 10 + len(WORDS)},
    }


def chunk(content: str | None, finish: str | None = None) -> bytes:
    delta = {"content": content} if content is not None else {}
    body = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 0, "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body)}\n\n".encode()


async def chat_completions(request: Request):
    body = await request.json()
    RECEIVED.append({"path": request.url.path, "body": body})
    if not body.get("stream"):
        return JSONResponse(completion())

    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True

    async def events():
        for word in WORDS:
            yield chunk(word)
        yield chunk(None, "stop")
        if include_usage:
            usage = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 0, "model": MODEL,
                     "choices": [], "usage": completion()["usage"]}
            yield f"data: {json.dumps(usage)}\n\n".encode()
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


def embedding(text: str) -> list[float]:
    """Hashed bag of words: one dimension per word (mod 384), so shared words make texts similar."""
    vector = [0.0] * EMBEDDING_DIMENSIONS
    for word in re.findall(r"\w+", text.lower()):
        vector[zlib.crc32(word.encode()) % EMBEDDING_DIMENSIONS] += 1.0
    vector[0] += 0.01  # never all zeros
    return vector


async def embeddings(request: Request):
    body = await request.json()
    RECEIVED.append({"path": request.url.path, "body": body})
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    return JSONResponse({"object": "list", "model": "stub-embedding",
                         "data": [{"object": "embedding", "index": i, "embedding": embedding(text)}
                                  for i, text in enumerate(inputs)],
                         "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)}})


async def received(_: Request):
    return JSONResponse(list(RECEIVED))


async def health(_: Request):
    return JSONResponse({"status": "ok"})


async def models(_: Request):
    return JSONResponse({"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "stub"}]})


app = Starlette(routes=[
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/embeddings", embeddings, methods=["POST"]),
    Route("/requests", received),
    Route("/v1/models", models),
    Route("/health", health),
])

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
