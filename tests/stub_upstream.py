"""bench/stub_openai.py's app served in this test process (uvicorn on a thread, a free loopback port):
the fast layer's upstream at the HTTP boundary, with no process to start. Same answers, same faults
(`stub-fault:<status>`), same `GET /seen` as the stub the end-to-end tests run as a process."""

from __future__ import annotations

import threading

import uvicorn

from bench.stub_openai import app
from tenantctl.processes import free_port
from tests.helpers import wait_for


class StubUpstream:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                     access_log=False, lifespan="off",
                                                     timeout_graceful_shutdown=2))
        self._thread = threading.Thread(target=self._server.run, name="stub-upstream", daemon=True)

    def start(self) -> "StubUpstream":
        self._thread.start()
        wait_for(lambda: self._server.started or not self._thread.is_alive(), timeout=30, what="the stub upstream")
        assert self._server.started, "the stub upstream did not start"
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
