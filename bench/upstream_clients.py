"""The gateway's client of its pool members, measured: httpx's AsyncClient against aiohttp, both on uvloop,
posting the same chat completion to the zero-latency stub, one run, side by side.

    .venv/bin/python bench/upstream_clients.py

For each client and concurrency (1, 16, 64 requests in flight): requests per second and the client
process's CPU time per request (the cost the gateway pays on its one core per worker). Results:
bench/results/upstream_clients.{json,md}. Numbers from a shared 2-core machine: read the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import openai_stub  # noqa: E402
from tenantctl.processes import ManagedProcess, free_port  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
BODY = {"model": "stub-model", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 32}
SECONDS = 4


async def with_httpx(url: str, concurrency: int) -> int:
    limits = httpx.Limits(max_connections=4096, max_keepalive_connections=4096)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def one() -> None:
            (await client.post(url, json=BODY)).raise_for_status()

        return await _loop(one, concurrency)


async def with_aiohttp(url: str, concurrency: int) -> int:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=4096)) as client:

        async def one() -> None:
            async with client.post(
                url, data=json.dumps(BODY).encode(), headers={"Content-Type": "application/json"}
            ) as response:
                response.raise_for_status()
                await response.read()

        return await _loop(one, concurrency)


async def _loop(one, concurrency: int) -> int:
    done = 0
    deadline = time.perf_counter() + SECONDS

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await one()
            done += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    port = free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="upstream-clients-"))
    stub = ManagedProcess(
        "stub", openai_stub.command(port, "--no-seen"), f"http://127.0.0.1:{port}/health", log_dir / "stub.log"
    )
    stub.start()
    rows = []
    try:
        stub.wait_healthy(60)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        for concurrency in (1, 16, 64):
            for name, run in (("httpx", with_httpx), ("aiohttp", with_aiohttp)):
                cpu = time.process_time()
                requests = uvloop.run(run(url, concurrency))
                cpu = time.process_time() - cpu
                rows.append(
                    {
                        "client": name,
                        "concurrency": concurrency,
                        "rps": round(requests / SECONDS, 1),
                        "cpu_ms_per_request": round(cpu / requests * 1000, 3),
                    }
                )
                print(rows[-1], flush=True)
    finally:
        stub.stop()
        shutil.rmtree(log_dir, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "upstream_clients.json").write_text(json.dumps(rows, indent=2))
    lines = ["| client | in flight | requests/s | client CPU per request (ms) |", "|---|---|---|---|"]
    lines += [f"| {r['client']} | {r['concurrency']} | {r['rps']} | {r['cpu_ms_per_request']} |" for r in rows]
    (RESULTS / "upstream_clients.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
