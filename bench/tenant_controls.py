"""Latency the tenant controls add to a request: rate limits + budgets + the concurrency lease (one
Redis call before the backend, one after), the usage ledger row (committed before the answer is
sent), and the request path's checks (the request contract, bounded body reading, request ids and
the per-request log line).

One run, side by side, the same requests to gateways in front of the zero-latency stub:
  off              no limits, no ledger (the relay alone)
  sqlite           Redis limits + token and cost budgets + a concurrency limit + the SQLite ledger
  postgresql       the same with the PostgreSQL ledger (cluster mode)
  sqlite@<rev>     with `--baseline <rev>`: that revision's gateway, configured like `sqlite`
                   (without the concurrency limit it did not have): `sqlite` minus it is what the
                   changes since cost
non-streamed and streamed (time to the last byte, the record being written before `[DONE]`),
at concurrency 1 and 8, in interleaved slices so machine-load drift falls on every path alike.
It also times the controls alone, in process (admit + record + settle, no HTTP), and the request
path's checks alone (parse, contract, prompt estimate), to isolate our code.
Results: bench/results/tenant_controls.json and .md.

    python bench/tenant_controls.py [--requests 1000] [--rounds 5] [--baseline REV]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
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

import baseline  # noqa: E402
from overhead import KEY, percentile, start, summarize  # noqa: E402

import openai_stub  # noqa: E402
from app.guardrails import GuardrailCheck  # noqa: E402
from llm_common.json_body import parse_json_object  # noqa: E402
from llm_common.metrics_registry import MetricsRegistry  # noqa: E402
from llm_common.request_contract import ChatPolicy, apply_chat_contract  # noqa: E402
from llm_common.tracing import RequestRecord, accepted_request_id, request_log  # noqa: E402
from llm_common.usage import estimate_request_prompt_tokens  # noqa: E402
from llm_gateway.auth import hash_gateway_key  # noqa: E402
from llm_gateway.config import GatewayConfig  # noqa: E402
from llm_gateway.metering import Metering  # noqa: E402
from llm_gateway.metrics import GatewayMetrics  # noqa: E402
from openai_stub import MODEL as STUB_MODEL  # noqa: E402
from openai_stub import stub_models  # noqa: E402
from tenant_spec import SPEC_FILENAME, load_tenant_spec  # noqa: E402
from tenantctl.local import launchers  # noqa: E402
from tenantctl.processes import ManagedProcess, free_port  # noqa: E402

RESULTS = REPO / "bench" / "results"
BODY = {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16}
HIGH = {"requests_per_minute": 10**9, "requests_per_hour": 10**9, "tokens_per_minute": 10**12}


def tenant(controls: bool, lease: bool = True) -> dict:
    route = {"name": "bench", "models": {"allowed": [STUB_MODEL]}, "key_sha256": [hash_gateway_key(KEY)]}
    if controls:  # every check runs: three rate limits, both budgets and (unless `lease` is off) a concurrency lease
        route.update(rate_limits=HIGH, monthly_token_budget=10**12, monthly_budget_usd=10**6)
        if lease:
            route["max_concurrent_requests"] = 1000
    return route


def gateway_config(
    stub_url: str, redis_url: str | None, ledger_url: str | None, lease: bool = True, tree: Path | None = None
) -> dict:
    """The bench tenant on the stub's model. A baseline revision from before the model catalogue (no
    llm_common/catalogue.py in `tree`) gets its own shape: the tenant on the `vllm` pool, with a price table."""
    route = tenant(redis_url is not None, lease)
    if tree is not None and not (tree / "llm_common" / "catalogue.py").is_file():
        del route["models"]
        config = {
            "tenants": [{**route, "model": STUB_MODEL}],
            "pool": {"endpoints": [stub_url]},
            "prices": {STUB_MODEL: {"prompt_usd_per_million_tokens": 1, "completion_usd_per_million_tokens": 2}},
        }
    else:
        config = {
            "tenants": [route],
            **stub_models(stub_url, entry={"usd_per_million_input_tokens": 1, "usd_per_million_output_tokens": 2}),
        }
    if redis_url:
        config["limits"] = {"redis_url": redis_url, "key_prefix": f"bench-{uuid.uuid4().hex}"}
    if ledger_url:
        config["ledger"] = {"url": ledger_url}
    return config


async def one(client: httpx.AsyncClient, url: str, stream: bool) -> float:
    """Seconds to the last byte of the answer."""
    started = time.perf_counter()
    async with client.stream(
        "POST", url, json={**BODY, "stream": stream}, headers={"Authorization": f"Bearer {KEY}"}
    ) as response:
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
                    latencies, wall = asyncio.run(
                        measure(url + "/v1/chat/completions", concurrency, requests // rounds, stream)
                    )
                    samples[name] = (samples[name][0] + latencies, samples[name][1] + wall)
            for name, (latencies, wall) in samples.items():
                row = {
                    "mode": "stream" if stream else "full",
                    "concurrency": concurrency,
                    "path": name,
                    **summarize(latencies, wall),
                }
                rows.append(row)
                print(
                    f"{row['mode']:>6} c={concurrency} {name:<11} p50={row['p50_ms']:6.2f} ms "
                    f"p99={row['p99_ms']:6.2f} ms {row['throughput_rps']:7.1f} req/s",
                    flush=True,
                )
    return rows


def in_process(redis_url: str, ledger_url: str, iterations: int, lease: bool = True) -> dict:
    """The controls alone: Metering.admit + finish + settle, as the gateway calls them, without HTTP."""
    config = GatewayConfig.model_validate(gateway_config("http://127.0.0.1:9", redis_url, ledger_url, lease))
    with asyncio.Runner() as runner:  # the gateway awaits these on its event loop; so does this
        metering = Metering(config, GatewayMetrics(MetricsRegistry(None)))
        route = config.tenants[0]

        async def one_request() -> None:
            meter = await metering.admit(route, STUB_MODEL, 10)
            # a self-hosted model's backend is its own pool, named after it
            await meter.finish(STUB_MODEL, STUB_MODEL, {"prompt_tokens": 10, "completion_tokens": 7})
            await meter.settle()

        try:
            return timed(lambda: runner.run(one_request()), iterations)
        finally:
            runner.run(metering.aclose())


def request_checks(iterations: int) -> dict:
    """The request path's own checks on a typical body: bounded parse (depth, Unicode), the request
    contract, the prompt estimate — the CPU the gateway spends on a request before calling anyone."""
    raw = json.dumps(
        {
            **BODY,
            "messages": [{"role": "system", "content": "You are a helpful assistant. " * 8}, *BODY["messages"]],
            "temperature": 0.2,
            "stream": False,
        }
    ).encode()
    policy = ChatPolicy(256, frozenset(), caller_sends_system=True)
    return timed(
        lambda: estimate_request_prompt_tokens(apply_chat_contract(parse_json_object(raw), policy).payload), iterations
    )


def proxy_guardrails(iterations: int) -> dict:
    """closed-ai's guardrails (app/guardrails.py: Unicode normalization, then its RE2 patterns, refusal rules and
    blocked topics) on a typical question: the CPU the proxy spends checking what a caller sent."""
    guardrails = GuardrailCheck(load_tenant_spec(REPO / "tenants" / "closed-ai" / SPEC_FILENAME).guardrails)
    messages = [{"role": "user", "content": "How do I rotate the API keys of our staging environment safely?"}]
    return timed(lambda: guardrails.check(messages), iterations)


def request_log_line(iterations: int) -> dict:
    """A request's id and its JSON log line (llm_common/tracing.py), written to /dev/null."""
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 (closed below)
    request_log.addHandler(handler)
    request_log.propagate, request_log.level = False, logging.INFO
    try:

        def one() -> None:
            record = RequestRecord(
                "gateway",
                accepted_request_id(None),
                "POST",
                "/v1/chat/completions",
                tenant="bench",
                status=200,
                backend=STUB_MODEL,
            )
            record.count_usage({"prompt_tokens": 10, "completion_tokens": 7})
            record.write()

        return timed(one, iterations)
    finally:
        request_log.removeHandler(handler)
        handler.stream.close()


def timed(action, iterations: int) -> dict:
    timings = []
    for index in range(iterations + 50):
        started = time.perf_counter()
        action()
        if index >= 50:  # warm-up excluded
            timings.append(time.perf_counter() - started)
    return {
        "p50_ms": percentile(timings, 0.5) * 1000,
        "p99_ms": percentile(timings, 0.99) * 1000,
        "iterations": iterations,
    }


def redis_ping(url: str, iterations: int) -> dict:
    client = redis_client.Redis.from_url(url)
    timings = []
    for _ in range(iterations):
        started = time.perf_counter()
        client.ping()
        timings.append(time.perf_counter() - started)
    client.close()
    return {
        "p50_ms": percentile(timings, 0.5) * 1000,
        "p99_ms": percentile(timings, 0.99) * 1000,
        "iterations": iterations,
    }


def added(rows: list[dict]) -> list[dict]:
    """Each path against `off`, and a baseline revision's path against this tree's (what the changes cost)."""
    keyed = {(r["mode"], r["concurrency"], r["path"]): r for r in rows}
    table = []
    for (mode, concurrency, path), row in keyed.items():
        if path == "off":
            continue
        if "@" in path:  # compared the other way round: this tree ("on") against the baseline ("off")
            row, off, path = keyed[(mode, concurrency, path.split("@")[0])], row, f"{path.split('@')[0]} vs {path}"
        else:
            off = keyed[(mode, concurrency, "off")]
        table.append(
            {
                "mode": mode,
                "concurrency": concurrency,
                "path": path,
                "off_p50_ms": off["p50_ms"],
                "off_p99_ms": off["p99_ms"],
                "on_p50_ms": row["p50_ms"],
                "on_p99_ms": row["p99_ms"],
                "added_p50_ms": row["p50_ms"] - off["p50_ms"],
                "added_p99_ms": row["p99_ms"] - off["p99_ms"],
            }
        )
    return table


def write_results(rows: list[dict], table: list[dict], alone: dict, settings: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tenant_controls.json").write_text(
        json.dumps({"settings": settings, "runs": rows, "added": table, "in_process": alone}, indent=2)
    )
    lines = [
        "| answer | concurrency | controls on (against off), or this tree against a baseline "
        "| before p50 / p99 (ms) | after p50 / p99 (ms) | added p50 / p99 (ms) |",
        "|---|---|---|---|---|---|",
    ]
    for item in table:
        lines.append(
            f"| {item['mode']} | {item['concurrency']} | {item['path']} "
            f"| {item['off_p50_ms']:.2f} / {item['off_p99_ms']:.2f} "
            f"| {item['on_p50_ms']:.2f} / {item['on_p99_ms']:.2f} "
            f"| {item['added_p50_ms']:.2f} / {item['added_p99_ms']:.2f} |"
        )
    lines += ["", "| alone, in process | p50 (ms) | p99 (ms) |", "|---|---|---|"]
    lines += [f"| {name} | {value['p50_ms']:.3f} | {value['p99_ms']:.3f} |" for name, value in alone.items()]
    (RESULTS / "tenant_controls.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="requests per path and measurement")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved slices per measurement")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per gateway")
    parser.add_argument("--iterations", type=int, default=2000, help="in-process iterations")
    parser.add_argument("--baseline", help="git revision whose gateway to measure beside this tree's (as sqlite)")
    args = parser.parse_args()
    run_dir = Path(tempfile.mkdtemp(prefix="bench-controls-"))
    postgres_dir = Path(tempfile.mkdtemp(prefix="bench-ledger-pg-"))  # searchable by the postgres user
    processes: list[ManagedProcess] = []
    try:
        stub_port, redis_port = free_port(), free_port()
        processes.append(
            start(
                ManagedProcess(
                    "stub", openai_stub.command(stub_port), f"http://127.0.0.1:{stub_port}/health", run_dir / "stub.log"
                )
            )
        )
        redis_password = secrets.token_urlsafe(16)
        processes.append(start(launchers.redis_server(redis_port, run_dir, password=redis_password)))
        processes.append(start(launchers.postgres_server(free_port(), postgres_dir)))
        stub_url, redis_url, postgres_url = (
            f"http://127.0.0.1:{stub_port}",
            launchers.redis_url("127.0.0.1", redis_port, redis_password),
            processes[2].health_url,
        )
        ledgers = {
            "off": (None, None),
            "sqlite": (redis_url, f"sqlite:///{run_dir / 'ledger.sqlite3'}"),
            "postgresql": (redis_url, postgres_url),
        }
        gateways = {}
        for name, (redis, ledger) in ledgers.items():
            port = free_port()
            processes.append(
                start(
                    launchers.gateway(
                        gateway_config(stub_url, redis, ledger), port, run_dir / name, workers=args.workers
                    )
                )
            )
            gateways[name] = f"http://127.0.0.1:{port}"
        if args.baseline:
            tree = baseline.extract(args.baseline, run_dir / "baseline")
            port = free_port()
            ledger_url = f"sqlite:///{run_dir / 'ledger-baseline.sqlite3'}"
            config = gateway_config(stub_url, redis_url, ledger_url, lease=False, tree=tree)
            processes.append(
                start(
                    baseline.from_tree(
                        launchers.gateway(config, port, run_dir / "baseline-gateway", workers=args.workers), tree
                    )
                )
            )
            gateways[f"sqlite@{baseline.short(args.baseline)}"] = f"http://127.0.0.1:{port}"
        rows = run_paths(gateways, args.requests, args.rounds)
        alone = {
            f"controls, {name} (admit + ledger row + counters, with a lease)": in_process(
                redis, ledger, args.iterations
            )
            for name, (redis, ledger) in ledgers.items()
            if redis
        }
        alone["controls, sqlite, without a concurrency limit"] = in_process(
            *ledgers["sqlite"], args.iterations, lease=False
        )
        alone["request checks (parse, contract, prompt estimate)"] = request_checks(args.iterations)
        alone["request id and JSON log line"] = request_log_line(args.iterations)
        alone["proxy guardrails (normalization + RE2 rules, closed-ai's spec)"] = proxy_guardrails(args.iterations)
        alone["redis PING alone (the floor of one round trip)"] = redis_ping(redis_url, args.iterations)
    finally:
        for process in reversed(processes):
            process.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
        shutil.rmtree(postgres_dir, ignore_errors=True)
        Path(f"{postgres_dir}-postgres.log").unlink(missing_ok=True)
    write_results(
        rows,
        added(rows),
        alone,
        {
            "requests": args.requests,
            "rounds": args.rounds,
            "workers": args.workers,
            "iterations": args.iterations,
            "baseline": args.baseline,
        },
    )


if __name__ == "__main__":
    main()
