"""Latency the tenant controls add to a request: rate limits + budgets (one Redis call before the
backend, one after) and the usage ledger row (committed before the answer is sent).

One run, side by side, the same requests to three gateways in front of the zero-latency stub:
  off         no limits, no ledger (as before issue 6)
  sqlite      Redis limits + token and cost budgets + the SQLite ledger (local mode's default)
  postgresql  Redis limits + budgets + the PostgreSQL ledger (cluster mode)
non-streamed and streamed (time to the last byte, the record being written before `[DONE]`),
at concurrency 1 and 8, in interleaved slices so machine-load drift falls on every path alike.
It also times the controls alone, in process (admit + record, no HTTP), to isolate our code.
Results: bench/results/tenant_controls.json and .md.

    python bench/tenant_controls.py [--requests 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import redis as redis_client

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from overhead import KEY, percentile, start, summarize  # noqa: E402

from llm_gateway.auth import hash_gateway_key  # noqa: E402
from llm_gateway.config import GatewayConfig  # noqa: E402
from llm_gateway.ledger import UsageRecord  # noqa: E402
from llm_gateway.metering import Metering  # noqa: E402
from llm_gateway.metrics import GatewayMetrics  # noqa: E402
from llm_common.metrics_registry import MetricsRegistry  # noqa: E402
from tenantctl import launchers  # noqa: E402
from tenantctl.processes import ManagedProcess, free_port  # noqa: E402

RESULTS = REPO / "bench" / "results"
BODY = {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16}
HIGH = {"requests_per_minute": 10**9, "requests_per_hour": 10**9, "tokens_per_minute": 10**12}


def tenant(controls: bool) -> dict:
    route = {"name": "bench", "model": "stub-model", "key_sha256": [hash_gateway_key(KEY)]}
    if controls:  # every check runs: three rate limits and both budgets
        route.update(rate_limits=HIGH, monthly_token_budget=10**12, monthly_budget_usd=10**6)
    return route


def gateway_config(stub_url: str, redis_url: str | None, ledger_url: str | None) -> dict:
    config = {"tenants": [tenant(redis_url is not None)], "pool": {"endpoints": [stub_url]},
              "prices": {"stub-model": {"prompt_usd_per_million_tokens": 1, "completion_usd_per_million_tokens": 2}}}
    if redis_url:
        config["limits"] = {"redis_url": redis_url, "key_prefix": f"bench-{uuid.uuid4().hex}"}
    if ledger_url:
        config["ledger"] = {"url": ledger_url}
    return config


async def one(client: httpx.AsyncClient, url: str, stream: bool) -> float:
    """Seconds to the last byte of the answer."""
    started = time.perf_counter()
    async with client.stream("POST", url, json={**BODY, "stream": stream},
                             headers={"Authorization": f"Bearer {KEY}"}) as response:
        await response.aread()
        response.raise_for_status()
    return time.perf_counter() - started


async def measure(url: str, concurrency: int, requests: int, stream: bool) -> tuple[list[float], float]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        for _ in range(concurrency):
            await one(client, url, stream)
        remaining = [requests]
        latencies: list[float] = []

        async def worker() -> None:
            while remaining[0] > 0:
                remaining[0] -= 1
                latencies.append(await one(client, url, stream))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, time.perf_counter() - started


def run_paths(gateways: dict[str, str], requests: int, rounds: int) -> list[dict]:
    rows = []
    for stream in (False, True):
        for concurrency in (1, 8):
            samples: dict[str, tuple[list[float], float]] = {name: ([], 0.0) for name in gateways}
            for _ in range(rounds):
                for name, url in gateways.items():
                    latencies, wall = asyncio.run(measure(url + "/v1/chat/completions", concurrency,
                                                          requests // rounds, stream))
                    samples[name] = (samples[name][0] + latencies, samples[name][1] + wall)
            for name, (latencies, wall) in samples.items():
                row = {"mode": "stream" if stream else "full", "concurrency": concurrency, "path": name,
                       **summarize(latencies, wall)}
                rows.append(row)
                print(f"{row['mode']:>6} c={concurrency} {name:<11} p50={row['p50_ms']:6.2f} ms "
                      f"p99={row['p99_ms']:6.2f} ms {row['throughput_rps']:7.1f} req/s", flush=True)
    return rows


def in_process(redis_url: str, ledger_url: str, iterations: int) -> dict:
    """The controls alone: Metering.admit + record, as the gateway calls them, without HTTP."""
    config = GatewayConfig.model_validate(gateway_config("http://127.0.0.1:9", redis_url, ledger_url))
    metering = Metering(config, GatewayMetrics(MetricsRegistry(None)))
    route = config.tenants[0]
    timings = []
    try:
        for index in range(iterations + 50):
            started = time.perf_counter()
            meter = metering.admit(route, BODY)
            meter.finish("vllm", "stub-model", {"prompt_tokens": 10, "completion_tokens": 7})
            meter.update_counters()
            if index >= 50:  # warm-up excluded
                timings.append(time.perf_counter() - started)
    finally:
        metering.close()
    return {"p50_ms": percentile(timings, 0.5) * 1000, "p99_ms": percentile(timings, 0.99) * 1000,
            "iterations": iterations}


def redis_ping(url: str, iterations: int) -> dict:
    client = redis_client.Redis.from_url(url)
    timings = []
    for _ in range(iterations):
        started = time.perf_counter()
        client.ping()
        timings.append(time.perf_counter() - started)
    client.close()
    return {"p50_ms": percentile(timings, 0.5) * 1000, "p99_ms": percentile(timings, 0.99) * 1000,
            "iterations": iterations}


def added(rows: list[dict]) -> list[dict]:
    keyed = {(r["mode"], r["concurrency"], r["path"]): r for r in rows}
    table = []
    for (mode, concurrency, path), row in keyed.items():
        if path == "off":
            continue
        off = keyed[(mode, concurrency, "off")]
        table.append({"mode": mode, "concurrency": concurrency, "path": path,
                      "off_p50_ms": off["p50_ms"], "off_p99_ms": off["p99_ms"],
                      "on_p50_ms": row["p50_ms"], "on_p99_ms": row["p99_ms"],
                      "added_p50_ms": row["p50_ms"] - off["p50_ms"], "added_p99_ms": row["p99_ms"] - off["p99_ms"]})
    return table


def write_results(rows: list[dict], table: list[dict], alone: dict, settings: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tenant_controls.json").write_text(json.dumps(
        {"settings": settings, "runs": rows, "added": table, "in_process": alone}, indent=2))
    lines = ["| answer | concurrency | ledger | off p50 / p99 (ms) | on p50 / p99 (ms) | added p50 / p99 (ms) |",
             "|---|---|---|---|---|---|"]
    for item in table:
        lines.append(f"| {item['mode']} | {item['concurrency']} | {item['path']} "
                     f"| {item['off_p50_ms']:.2f} / {item['off_p99_ms']:.2f} "
                     f"| {item['on_p50_ms']:.2f} / {item['on_p99_ms']:.2f} "
                     f"| {item['added_p50_ms']:.2f} / {item['added_p99_ms']:.2f} |")
    lines += ["", "| controls alone, in process (admit + ledger row + counters) | p50 (ms) | p99 (ms) |",
              "|---|---|---|"]
    lines += [f"| {name} | {value['p50_ms']:.3f} | {value['p99_ms']:.3f} |" for name, value in alone.items()]
    (RESULTS / "tenant_controls.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="requests per path and measurement")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved slices per measurement")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per gateway")
    parser.add_argument("--iterations", type=int, default=2000, help="in-process iterations")
    args = parser.parse_args()
    run_dir = Path(tempfile.mkdtemp(prefix="bench-controls-"))
    postgres_dir = Path(tempfile.mkdtemp(prefix="bench-ledger-pg-"))  # searchable by the postgres user
    processes: list[ManagedProcess] = []
    try:
        stub_port, redis_port = free_port(), free_port()
        processes.append(start(ManagedProcess("stub", [sys.executable, str(REPO / "bench" / "stub_openai.py"),
                                                       "--port", str(stub_port)],
                                              f"http://127.0.0.1:{stub_port}/health", run_dir / "stub.log")))
        redis_password = secrets.token_urlsafe(16)
        processes.append(start(launchers.redis_server(redis_port, run_dir, password=redis_password)))
        processes.append(start(launchers.postgres_server(free_port(), postgres_dir)))
        stub_url, redis_url, postgres_url = (f"http://127.0.0.1:{stub_port}",
                                             launchers.redis_url("127.0.0.1", redis_port, redis_password),
                                             processes[2].health_url)
        ledgers = {"off": (None, None), "sqlite": (redis_url, f"sqlite:///{run_dir / 'ledger.sqlite3'}"),
                   "postgresql": (redis_url, postgres_url)}
        gateways = {}
        for name, (redis, ledger) in ledgers.items():
            port = free_port()
            processes.append(start(launchers.gateway(gateway_config(stub_url, redis, ledger), port,
                                                     run_dir / name, workers=args.workers)))
            gateways[name] = f"http://127.0.0.1:{port}"
        rows = run_paths(gateways, args.requests, args.rounds)
        alone = {name: in_process(redis, ledger, args.iterations)
                 for name, (redis, ledger) in ledgers.items() if redis}
        alone["redis PING alone (the floor of one round trip)"] = redis_ping(redis_url, args.iterations)
    finally:
        for process in reversed(processes):
            process.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
        shutil.rmtree(postgres_dir, ignore_errors=True)
        Path(f"{postgres_dir}-postgres.log").unlink(missing_ok=True)
    write_results(rows, added(rows), alone, {"requests": args.requests, "rounds": args.rounds,
                                             "workers": args.workers, "iterations": args.iterations})


if __name__ == "__main__":
    main()
