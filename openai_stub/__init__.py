"""A stub OpenAI-compatible upstream for the tests and the benchmarks (server.py says what it does).

`app` is its ASGI app (for a server in the caller's process); `command()` runs it as a process of its
own. server.py needs only Starlette and uvicorn, so it also runs as a plain script.
"""

from __future__ import annotations

import sys
from pathlib import Path

from openai_stub.server import FAULT, INTERNAL_DETAIL, MODEL, app

SERVER = Path(__file__).with_name("server.py")

__all__ = ["FAULT", "INTERNAL_DETAIL", "MODEL", "SERVER", "app", "command"]


def command(port: int, *options: str) -> list[str]:
    """The argv of a stub on 127.0.0.1:`port`; `options` e.g. `--no-seen`, `--stream-tokens 20`."""
    return [sys.executable, str(SERVER), "--port", str(port), *options]
