"""A stub OpenAI-compatible upstream for the tests and the benchmarks (server.py says what it does).

`app` is its ASGI app (for a server in the caller's process); `command()` runs it as a process of its
own. server.py needs only Starlette and uvicorn, so it also runs as a plain script.
"""

from __future__ import annotations

import sys
from pathlib import Path

from openai_stub.server import FAULT, INTERNAL_DETAIL, MODEL, app

SERVER = Path(__file__).with_name("server.py")

EMBEDDING_MODEL = "stub-embedding"  # the catalogue name a gateway gives the stub's embeddings

__all__ = ["EMBEDDING_MODEL", "FAULT", "INTERNAL_DETAIL", "MODEL", "SERVER", "app", "command", "stub_models"]


def command(port: int, *options: str) -> list[str]:
    """The argv of a stub on 127.0.0.1:`port`; `options` e.g. `--no-seen`, `--stream-tokens 20`."""
    return [sys.executable, str(SERVER), "--port", str(port), *options]


def stub_models(urls: str | list[str], *, entry: dict | None = None, **pool) -> dict:
    """The `models` and `pools` sections of a gateway config whose chat model (`MODEL`, with `entry`'s
    catalogue fields) and embedding model are both served by stubs at `urls` (as cpu models: the
    gateway's own pools, with `pool`'s settings)."""
    urls = [urls] if isinstance(urls, str) else urls
    return {
        "models": {
            MODEL: {"engine": "cpu", "source": "stub.gguf", **(entry or {})},
            EMBEDDING_MODEL: {"engine": "cpu", "kind": "embedding", "source": "stub-embedding.gguf"},
        },
        "pools": {name: {"endpoints": urls, **pool} for name in (MODEL, EMBEDDING_MODEL)},
    }
