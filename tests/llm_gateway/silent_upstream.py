"""An OpenAI-compatible upstream that reports no usage, as llama.cpp's server does in streams: the stub's
answers (openai_stub/) without `usage`, plain, streamed (whatever `stream_options` asks) and embedded.
`app` is its ASGI app, for a server on a thread of the test process (tests/helpers.py: InProcessServer)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from openai_stub import server as stub

CONTENT_CHUNKS = len(stub.WORDS)  # a stream's chunks with answer text


async def chat_completions(request: Request):
    body = await request.json()
    if not body.get("stream"):
        return JSONResponse({key: value for key, value in stub.completion().items() if key != "usage"})

    async def events():
        for word in stub.WORDS:
            yield stub.chunk(word)
        yield stub.chunk(None, "stop")
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


async def embeddings(request: Request):
    inputs = (await request.json())["input"]
    texts = inputs if isinstance(inputs, list) else [inputs]
    return JSONResponse(
        {
            "object": "list",
            "model": "stub-embedding",
            "data": [
                {"object": "embedding", "index": index, "embedding": stub.embedding(str(text))}
                for index, text in enumerate(texts)
            ],
        }
    )


async def health(_: Request):
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/health", health),
    ]
)
