"""The gateway's capacity side by side, in one run: direct to a stub model server, through our gateway
(every tenant control on: Redis rate limits, budgets and concurrency lease, the SQLite ledger), and
through the LiteLLM proxy (PyPI `litellm[proxy]`, pinned, in its own virtualenv, no database),
both pointed at the same stubs.

    (a) zero-latency stub, one request at a time: latency p50/p99 (wrk), the hop's added latency
    (b) zero-latency stub, 64 connections: requests per second (wrk)
        (a) and (b) also through our gateway with no tenant control, to tell the relay's cost from the controls'.
    (c) 200 and 1,000 concurrent slow streams (20 tokens, 100 ms apart: 2 s an answer): time to first
        token p50/p99, errors, the gateway's memory (RSS of its processes) at the end, and the CPU
        seconds the client, the stub and the path between (gateway + its Redis, or LiteLLM) each used
        (one asyncio client, aiohttp, for every path)
    (d) fairness on a saturated pool (our gateway only, the slow stub as one member of `FAIR_CAPACITY`
        sequences): a light tenant's streams alone, then while a heavy tenant keeps ten times as many
        streams going; the light tenant's TTFT p95 in both, and completed streams per second. As configured
        by default (claims held `share_hold_seconds`), and with claims off (`share_hold_seconds: 0`, fair
        order alone), to show what the claims do; each through one gateway worker (its own queue, no Redis),
        and through two gateway processes sharing the pool's admission in Redis, each tenant's streams
        spread over both
    (e) one tenant alone, `ALONE_CALLERS` callers one stream after the other, through two gateway
        processes in front of a pool of two slow stubs of `ALONE_SEQUENCES` sequences each: the streams
        running at the model servers (sampled every 50 ms: mean and peak) against the pool's capacity.
        Shared admission (Redis) with the callers spread over both processes, and all through one of them;
        and the per-process queues it replaces (no Redis, each process given half of max_sequences), through
        one process. With (d) and (e), in this process: what one admission and its release cost (both script
        calls, round trips included) as the tenants holding slots of the pool grow

Everything listens on loopback; LiteLLM is told to use its bundled model-cost map and no telemetry,
so nothing leaves the machine. LiteLLM is installed on first use into
`~/.cache/llm-tenants/litellm-<version>/venv` (`--install-only` does just that, e.g. in a set-up step).

    .venv/bin/python bench/gateway_capacity.py [--quick]
    .venv/bin/python bench/gateway_capacity.py --hop [--quick]   # (a) only, each control switched off in turn
    .venv/bin/python bench/gateway_capacity.py --pool [--quick]  # (d) and (e) only

Results: bench/results/gateway_capacity.{json,md} (--hop: gateway_hop.*, --pool: gateway_pool.*). The
machine is shared and has 2 cores: the ratios of one run are the result, not the absolute numbers; the load
generators run on the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import openai_stub  # noqa: E402
from llm_gateway.auth import hash_gateway_key  # noqa: E402
from llm_gateway.ledger import UsageRecord  # noqa: E402
from llm_gateway.ledger.asynchronous import AsyncLedger  # noqa: E402
from llm_gateway.ledger.sqlite import SqliteLedger  # noqa: E402
from llm_gateway.pool_admission import AdmissionHub, PoolAdmission  # noqa: E402
from openai_stub import stub_models  # noqa: E402
from tenantctl.local import launchers  # noqa: E402
from tenantctl.processes import ManagedProcess, free_port  # noqa: E402

LITELLM_VERSION = "1.80.0"
CACHE = Path(os.environ.get("LLM_TENANTS_CACHE", Path.home() / ".cache" / "llm-tenants"))
LITELLM_VENV = CACHE / f"litellm-{LITELLM_VERSION}" / "venv"
RESULTS = Path(__file__).resolve().parent / "results"
KEY = "gk-bench-capacity"
MODEL = "stub-model"
SLOW_TOKENS, TOKEN_INTERVAL = 20, 0.1
FAIR_CAPACITY, LIGHT_STREAMS, HEAVY_STREAMS = 8, 2, 20  # pool slots; each tenant's streams kept going
ALONE_MEMBERS, ALONE_SEQUENCES, ALONE_CALLERS = 2, 4, 16  # (e): a pool of 2 x 4, twice as many callers
HEAVY_KEY = "gk-bench-heavy"
# On a 2-core machine shared with the load generators, a burst of a thousand new connections keeps the
# gateway's event loop from seeing a connect complete within the default 2 s (a connect failure ejects the
# member) and Redis from answering within 0.25 s: give both the latitude LiteLLM's defaults give it.
PATIENT_POOL = {"connect_timeout_seconds": 30.0}
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 32}


# -- LiteLLM in its own virtualenv ----------------------------------------------------------------


def litellm_python() -> Path:
    """The virtualenv's python, installing litellm[proxy]==LITELLM_VERSION first when missing."""
    python = LITELLM_VENV / "bin" / "python"
    marker = LITELLM_VENV.parent / "installed"
    if python.exists() and marker.exists():
        return python
    shutil.rmtree(LITELLM_VENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", f"litellm[proxy]=={LITELLM_VERSION}"], check=True)
    marker.write_text(LITELLM_VERSION + "\n")
    return python


def litellm_proxy(run_dir: Path, port: int, models: dict[str, str], workers: int) -> ManagedProcess:
    """The LiteLLM proxy serving `models` (name -> OpenAI-compatible base URL), no database, no key."""
    config = {
        "model_list": [
            {"model_name": name, "litellm_params": {"model": f"openai/{MODEL}", "api_base": url, "api_key": "unused"}}
            for name, url in models.items()
        ],
        "litellm_settings": {"telemetry": False, "drop_params": True},
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / "litellm.json"
    config_path.write_text(json.dumps(config))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LITELLM_"))},
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOG": "ERROR",
        "NO_PROXY": "*",
    }
    argv = [
        str(litellm_python()),
        "-c",
        "from litellm.proxy.proxy_cli import run_server; run_server()",
        "--config",
        str(config_path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        str(workers),
    ]
    return ManagedProcess(
        "litellm", argv, f"http://127.0.0.1:{port}/health/liveliness", run_dir / "litellm.log", env=env
    )


# -- The processes ----------------------------------------------------------------------------------


def stub(run_dir: Path, name: str, *extra: str) -> tuple[ManagedProcess, str]:
    port = free_port()
    process = ManagedProcess(
        name, openai_stub.command(port, "--no-seen", *extra), f"http://127.0.0.1:{port}/health", run_dir / f"{name}.log"
    )
    return process, f"http://127.0.0.1:{port}"


def bench_redis(run_dir: Path) -> tuple[ManagedProcess, str]:
    """A Redis of the run's own for the gateway's tenant controls (not started), and its URL."""
    port, password = free_port(), secrets.token_urlsafe(16)
    return (
        launchers.redis_server(port, run_dir / "redis", password=password),
        launchers.redis_url("127.0.0.1", port, password),
    )


def our_gateway(
    run_dir: Path, backend_url: str, redis_url: str, workers: int, *, limits: bool = True, ledger: bool = True
) -> tuple[ManagedProcess, str]:
    """Our gateway with every tenant control on (limits far above the load: they are checked, never hit);
    `limits=False` drops rate limits, budgets and the concurrency lease (Redis), `ledger=False` the ledger."""
    tenant = bench_tenant("bench", KEY)
    config = {
        "tenants": [tenant],
        **stub_models(
            backend_url,
            entry={"usd_per_million_input_tokens": 1.0, "usd_per_million_output_tokens": 2.0},
            health_path="/health",
            **PATIENT_POOL,
        ),
    }
    if limits:
        tenant.update(
            {
                "monthly_budget_usd": 1e7,
                "max_concurrent_requests": 10_000,
                "rate_limits": {"requests_per_minute": 10**9, "requests_per_hour": 10**9, "tokens_per_minute": 10**9},
            }
        )
        config["limits"] = {
            "redis_url": redis_url,
            "key_prefix": f"bench-{secrets.token_hex(4)}",
            "socket_timeout_seconds": 2.0,
        }
    if ledger:
        config["ledger"] = {"url": f"sqlite:///{run_dir / f'ledger-{secrets.token_hex(4)}.sqlite3'}"}
    port = free_port()
    directory = run_dir / f"gateway-{port}"
    return launchers.gateway(config, port, directory, workers=workers), f"http://127.0.0.1:{port}"


def bench_tenant(name: str, key: str) -> dict:
    return {"name": name, "models": {"allowed": [MODEL]}, "max_tokens": 64, "key_sha256": [hash_gateway_key(key)]}


def pool_gateways(
    run_dir: Path,
    members: list[str],
    max_sequences: int,
    *,
    count: int = 1,
    redis_url: str | None = None,
    claims: bool = True,
    engine: dict | None = None,
) -> list[tuple[ManagedProcess, str]]:
    """`count` gateways of one worker each in front of `members` of `max_sequences` each, for the light
    (KEY) and the heavy (HEAVY_KEY) tenant; with `redis_url` they share the pool's admission (one key
    prefix), else each worker queues on its own. Without `claims`, `share_hold_seconds: 0`."""
    config = {
        "tenants": [bench_tenant("light", KEY), bench_tenant("heavy", HEAVY_KEY)],
        **stub_models(
            members,
            entry={"max_sequences": max_sequences, **(engine or {})},
            health_path="/health",
            **PATIENT_POOL,
            max_queued_per_tenant=1000,
            queue_timeout_seconds=120,
            **({} if claims else {"share_hold_seconds": 0}),
        ),
    }
    if redis_url is not None:
        config["limits"] = {
            "redis_url": redis_url,
            "key_prefix": f"bench-{secrets.token_hex(4)}",
            "socket_timeout_seconds": 2.0,
        }
    gateways = []
    for _ in range(count):
        port = free_port()
        gateways.append(
            (launchers.gateway(config, port, run_dir / f"gateway-{port}", workers=1), f"http://127.0.0.1:{port}")
        )
    return gateways


FAIR_VARIANTS = {  # (d): name -> (gateway processes, shared admission in Redis, claims)
    "claims": (1, False, True),
    "no_claims": (1, False, False),
    "shared_claims": (2, True, True),
    "shared_no_claims": (2, True, False),
}
# (e): name -> (gateway processes, shared admission, max_sequences each process counts, processes the callers use)
ALONE_VARIANTS = {
    "shared_both": (2, True, ALONE_SEQUENCES, 2),
    "shared_one": (2, True, ALONE_SEQUENCES, 1),
    "split_one": (2, False, ALONE_SEQUENCES // 2, 1),
}


def started(process: ManagedProcess, everything: list[ManagedProcess], timeout: float = 180) -> None:
    everything.append(process)
    process.start()
    process.wait_healthy(timeout)


def process_tree(pid: int) -> list[int]:
    """A process and all its descendants (gunicorn's master and workers)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def rss_mib(pid: int) -> float:
    """Resident memory of a process tree."""
    total = 0
    for member in process_tree(pid):
        try:
            total += int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{member}/status").read_text()).group(1))
        except (OSError, AttributeError):
            continue
    return round(total / 1024, 1)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the process trees of `pids` have used so far."""
    ticks = 0
    for member in (member for pid in pids for member in process_tree(pid)):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


# -- wrk: (a) and (b) -------------------------------------------------------------------------------

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
"""


def wrk_script(run_dir: Path) -> Path:
    """The chat completion every wrk run posts, as a wrk Lua script."""
    script = run_dir / "post.lua"
    script.write_text(WRK_SCRIPT.format(body=json.dumps(BODY), key=KEY))
    return script


def wrk(url: str, connections: int, seconds: int, script: Path) -> dict:
    threads = 1 if connections == 1 else 2
    output = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--latency",
            "-s",
            str(script),
            url + "/v1/chat/completions",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", output, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    return {
        "p50_ms": _ms(latency.get("50", "nan")),
        "p99_ms": _ms(latency.get("99", "nan")),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else None,
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return round(float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit], 3)


# -- (c) slow streams -------------------------------------------------------------------------------


async def streams(url: str, count: int, timeout: float) -> dict:
    """`count` streams at once; time to first content chunk of each, and how many failed."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)) as client:
        start = asyncio.Event()

        async def one() -> float | None:
            await start.wait()
            began = time.perf_counter()
            first = None
            try:
                async with client.post(
                    url + "/v1/chat/completions",
                    json={**BODY, "stream": True},
                    headers={"Authorization": f"Bearer {KEY}"},
                ) as response:
                    if response.status != 200:
                        return None
                    async for line in response.content:
                        if first is None and line.startswith(b"data: {") and b'"content"' in line:
                            first = time.perf_counter() - began
                        if line.startswith(b"data: [DONE]"):
                            return first
            except (TimeoutError, aiohttp.ClientError):
                return None
            return None  # ended without [DONE]

        tasks = [asyncio.create_task(one()) for _ in range(count)]
        await asyncio.sleep(0.2)  # every task waiting at the start line
        start.set()
        results = await asyncio.gather(*tasks)
    ttfts = sorted(value for value in results if value is not None)
    return {
        "streams": count,
        "errors": count - len(ttfts),
        "ttft_p50_s": _percentile(ttfts, 0.5),
        "ttft_p99_s": _percentile(ttfts, 0.99),
    }


async def closed_loop(client: aiohttp.ClientSession, url: str, key: str, clients: int, seconds: float) -> list[float]:
    """`clients` callers each sending one stream after the other for `seconds`; the TTFT of every stream
    that started in that time."""
    ttfts: list[float] = []
    deadline = time.perf_counter() + seconds

    async def caller() -> None:
        while time.perf_counter() < deadline:
            began, first = time.perf_counter(), None
            async with client.post(
                url + "/v1/chat/completions", json={**BODY, "stream": True}, headers={"Authorization": f"Bearer {key}"}
            ) as response:
                async for line in response.content:
                    if first is None and b'"content"' in line:
                        first = time.perf_counter() - began
            if first is not None:
                ttfts.append(first)

    await asyncio.gather(*(caller() for _ in range(clients)))
    return ttfts


async def spread_loop(
    client: aiohttp.ClientSession, urls: list[str], key: str, clients: int, seconds: float
) -> list[float]:
    """closed_loop() with the callers spread evenly over `urls` (gateway processes)."""
    shares = [clients // len(urls) + (index < clients % len(urls)) for index in range(len(urls))]
    ttfts = await asyncio.gather(
        *(closed_loop(client, url, key, share, seconds) for url, share in zip(urls, shares, strict=True) if share)
    )
    return [ttft for part in ttfts for ttft in part]


async def fairness(urls: list[str], seconds: float) -> dict:
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=180)
    ) as client:
        alone = await spread_loop(client, urls, KEY, LIGHT_STREAMS, seconds)
        began = time.perf_counter()
        light, heavy = await asyncio.gather(
            spread_loop(client, urls, KEY, LIGHT_STREAMS, seconds),
            spread_loop(client, urls, HEAVY_KEY, HEAVY_STREAMS, seconds),
        )
        wall = time.perf_counter() - began
    light_alone, light_shared = _percentile(sorted(alone), 0.95), _percentile(sorted(light), 0.95)
    return {
        "gateway_processes": len(urls),
        "capacity": FAIR_CAPACITY,
        "light_streams": LIGHT_STREAMS,
        "heavy_streams": HEAVY_STREAMS,
        "light_ttft_p95_alone_s": light_alone,
        "light_ttft_p95_contended_s": light_shared,
        "ratio": round(light_shared / light_alone, 2) if light_alone else None,
        "heavy_ttft_p95_s": _percentile(sorted(heavy), 0.95),
        "completed_per_s": round((len(light) + len(heavy)) / wall, 2),
        "pool_limit_per_s": round(FAIR_CAPACITY / (SLOW_TOKENS * TOKEN_INTERVAL), 2),
        "light_completed": len(light),
        "heavy_completed": len(heavy),
    }


async def alone(urls: list[str], members: list[str], seconds: float) -> dict:
    """(e): one tenant's ALONE_CALLERS callers over `urls`; the streams running at the `members` (their /stats),
    sampled every 50 ms after one answer's warm-up, against the pool's capacity."""
    capacity = len(members) * ALONE_SEQUENCES
    answer = SLOW_TOKENS * TOKEN_INTERVAL
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=180)
    ) as client:

        async def running() -> int:
            total = 0
            for member in members:
                async with client.get(member + "/stats") as reply:
                    total += (await reply.json())["in_flight"]
            return total

        for member in members:
            async with client.post(member + "/control", json={"reset_peak": True}):
                pass
        samples: list[int] = []

        async def sample() -> None:
            await asyncio.sleep(answer)  # warm-up: the first streams open
            deadline = time.perf_counter() + seconds - answer
            while time.perf_counter() < deadline:
                samples.append(await running())
                await asyncio.sleep(0.05)

        began = time.perf_counter()
        ttfts, _ = await asyncio.gather(spread_loop(client, urls, KEY, ALONE_CALLERS, seconds), sample())
        wall = time.perf_counter() - began
        peaks = []
        for member in members:
            async with client.get(member + "/stats") as reply:
                peaks.append((await reply.json())["peak_in_flight"])
    mean = sum(samples) / len(samples) if samples else 0.0
    return {
        "gateway_processes_used": len(urls),
        "capacity": capacity,
        "callers": ALONE_CALLERS,
        "mean_running": round(mean, 2),
        "share_of_capacity": round(mean / capacity, 3),
        "peak_running_per_member": peaks,
        "samples": len(samples),
        "completed_per_s": round(len(ttfts) / wall, 2),
        "pool_limit_per_s": round(capacity / answer, 2),
        "ttft_p50_s": _percentile(sorted(ttfts), 0.5),
    }


ADMISSION_TENANTS = (1, 10, 50, 200)


async def admission_costs_ms(redis_url: str, rounds: int = 500) -> dict:
    """Median ms of one shared admission and its release (two POOL_SCRIPT calls, in turn) with 1, 10, 50 and
    200 tenants each holding a slot of the pool, from this process (PoolAdmission on redis-py, as a worker);
    and Redis's own µs per script call meanwhile (INFO commandstats: every EVALSHA of the measured rounds)."""
    from llm_common.metrics_registry import MetricsRegistry
    from llm_gateway.concurrency import ConcurrencyLeases
    from llm_gateway.limits import LimitsConfig, SharedCounters
    from llm_gateway.metrics import GatewayMetrics

    costs = {}
    for tenants in ADMISSION_TENANTS:
        counters = SharedCounters(LimitsConfig(redis_url=redis_url, key_prefix=f"bench-{secrets.token_hex(4)}"))
        hub = AdmissionHub(counters, ConcurrencyLeases(counters))
        admission = PoolAdmission(
            MODEL,
            1000,
            lambda exclude: [("http://member-0", 0), ("http://member-1", 0)],
            GatewayMetrics(MetricsRegistry(None)),
            max_queued_per_tenant=100,
            queue_timeout=30,
            share_hold=1.0,
            hub=hub,
        )
        held = [await admission.acquire(f"tenant-{index}", 1.0) for index in range(tenants)]
        before = (await counters.redis.info("commandstats")).get("cmdstat_evalsha", {})
        times, local = [], 0
        for _ in range(rounds):
            began = time.perf_counter()
            slot = await admission.acquire("tenant-0", 1.0)
            slot.release()
            await hub.drain()  # the release's own call
            times.append(time.perf_counter() - began)
            local += slot.member is None  # Redis did not answer in time: this process's own queue
        after = (await counters.redis.info("commandstats")).get("cmdstat_evalsha", {})
        calls = after.get("calls", 0) - before.get("calls", 0)
        costs[tenants] = {
            "admission_and_release_ms": round(sorted(times)[rounds // 2] * 1000, 3),
            "redis_us_per_call": round((after.get("usec", 0) - before.get("usec", 0)) / calls, 1) if calls else None,
            "rounds_admitted_locally": local,
        }
        for slot in held:  # one at a time: 200 at once would queue for Redis past its deadline
            slot.release()
            await hub.drain()
        await counters.aclose()
    return costs


def pool_cases(run_dir: Path, everything: list[ManagedProcess], quick: bool, slow_url: str, redis_url: str) -> dict:
    """(d) and (e): their gateways (and (e)'s stubs) started here; `slow_url` and `redis_url` already run."""
    fair = {
        name: pool_gateways(
            run_dir, [slow_url], FAIR_CAPACITY, count=count, redis_url=redis_url if shared else None, claims=claims
        )
        for name, (count, shared, claims) in FAIR_VARIANTS.items()
    }
    # Each variant has model servers of its own: gateways of another variant (another key prefix, idle) would
    # see its streams as unleased (vLLM's count, which the stubs report) and rightly take them off their free
    # slots, still for up to one health interval when their own turn comes.
    vllm = {"engine": "vllm", "gpus": 1}  # the members report vLLM's counts: the drift correction runs
    lone, members = {}, {}
    for name, (count, shared, sequences, _) in ALONE_VARIANTS.items():
        members[name] = []
        for index in range(ALONE_MEMBERS):
            process, url = stub(
                run_dir,
                f"stub-{name}-{index}",
                "--stream-tokens",
                str(SLOW_TOKENS),
                "--token-interval",
                str(TOKEN_INTERVAL),
            )
            started(process, everything)
            members[name].append(url)
        lone[name] = pool_gateways(
            run_dir, members[name], sequences, count=count, redis_url=redis_url if shared else None, engine=vllm
        )
    for gateways in (*fair.values(), *lone.values()):
        for process, _ in gateways:
            started(process, everything, timeout=300)
    seconds = 15 if quick else 40
    results = {
        "fairness": {
            name: asyncio.run(fairness([url for _, url in gateways], seconds)) for name, gateways in fair.items()
        },
        "alone": {},
    }
    for name, gateways in lone.items():
        used = ALONE_VARIANTS[name][3]
        results["alone"][name] = asyncio.run(alone([url for _, url in gateways][:used], members[name], seconds))
    return results


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(fraction * len(values)))], 3)


# -- The run ----------------------------------------------------------------------------------------


def run(quick: bool, workers: int) -> dict:
    run_dir = Path(tempfile.mkdtemp(prefix="gateway-capacity-"))
    everything: list[ManagedProcess] = []
    try:
        fast, fast_url = stub(run_dir, "stub-fast")
        slow, slow_url = stub(
            run_dir, "stub-slow", "--stream-tokens", str(SLOW_TOKENS), "--token-interval", str(TOKEN_INTERVAL)
        )
        redis, redis_url = bench_redis(run_dir)
        for process in (fast, slow, redis):
            started(process, everything)
        gateway_fast, gateway_fast_url = our_gateway(run_dir, fast_url, redis_url, workers)
        gateway_slow, gateway_slow_url = our_gateway(run_dir, slow_url, redis_url, workers)
        bare_gateway, bare_gateway_url = our_gateway(run_dir, fast_url, redis_url, workers, limits=False, ledger=False)
        litellm_fast_port, litellm_slow_port = free_port(), free_port()
        litellm_fast = litellm_proxy(run_dir / "litellm-fast", litellm_fast_port, {MODEL: fast_url + "/v1"}, workers)
        litellm_slow = litellm_proxy(run_dir / "litellm-slow", litellm_slow_port, {MODEL: slow_url + "/v1"}, workers)
        for process in (gateway_fast, gateway_slow, bare_gateway, litellm_fast, litellm_slow):
            started(process, everything, timeout=300)
        paths = {
            "direct": (fast_url, slow_url, None),
            "gateway": (gateway_fast_url, gateway_slow_url, gateway_slow),
            "litellm": (f"http://127.0.0.1:{litellm_fast_port}", f"http://127.0.0.1:{litellm_slow_port}", litellm_slow),
        }
        script = wrk_script(run_dir)
        seconds = 3 if quick else 8
        results: dict = {"latency_c1": {}, "throughput_c64": {}, "streams": {}}
        # (a) and (b) also through our gateway with no tenant control: what the relay costs, what the controls add.
        fast_paths = {
            "direct": fast_url,
            "gateway": gateway_fast_url,
            "gateway_bare": bare_gateway_url,
            "litellm": paths["litellm"][0],
        }
        for name, url in fast_paths.items():
            wrk(url, 1, 1, script)  # warm-up
            results["latency_c1"][name] = wrk(url, 1, seconds, script)
        for name, url in fast_paths.items():
            results["throughput_c64"][name] = wrk(url, 64, seconds, script)
        for count in (200, 1000):
            results["streams"][str(count)] = {}
            for name, (_, url, process) in paths.items():
                # CPU each side spends on the run: this process (the client), the stub, and the path between
                # (our gateway with its Redis, or LiteLLM); all of them share the machine's cores.
                between = [process.pid] + ([redis.pid] if name == "gateway" else []) if process else []
                client_before, stub_before, between_before = (
                    time.process_time(),
                    cpu_seconds([slow.pid]),
                    cpu_seconds(between),
                )
                measured = asyncio.run(streams(url, count, timeout=120))
                measured["cpu_s"] = {
                    "client": round(time.process_time() - client_before, 2),
                    "stub": round(cpu_seconds([slow.pid]) - stub_before, 2),
                    "path": round(cpu_seconds(between) - between_before, 2) if between else None,
                }
                measured["memory_mib"] = rss_mib(process.pid) if process is not None else None
                results["streams"][str(count)][name] = measured
        results.update(pool_cases(run_dir, everything, quick, slow_url, redis_url))
        results["admission_ms"] = uvloop.run(admission_costs_ms(redis_url))
        return results
    finally:
        for process in reversed(everything):
            process.stop()
        shutil.rmtree(run_dir, ignore_errors=True)


def pool_only(quick: bool) -> dict:
    """--pool: (d) and (e) alone, with their own slow stub and Redis."""
    run_dir = Path(tempfile.mkdtemp(prefix="gateway-pool-"))
    everything: list[ManagedProcess] = []
    try:
        slow, slow_url = stub(
            run_dir, "stub-slow", "--stream-tokens", str(SLOW_TOKENS), "--token-interval", str(TOKEN_INTERVAL)
        )
        redis, redis_url = bench_redis(run_dir)
        for process in (slow, redis):
            started(process, everything)
        results = pool_cases(run_dir, everything, quick, slow_url, redis_url)
        results["admission_ms"] = uvloop.run(admission_costs_ms(redis_url))
        return results
    finally:
        for process in reversed(everything):
            process.stop()
        shutil.rmtree(run_dir, ignore_errors=True)


# -- --hop: where (a)'s time goes --------------------------------------------------------------------

HOP_VARIANTS = {
    "every control": (True, True),
    "no ledger": (True, False),
    "no limits (Redis)": (False, True),
    "no control": (False, False),
}


def hop_breakdown(rounds: int, seconds: int, workers: int) -> dict:
    """(a) alone, through our gateway with each control switched off in turn, in interleaved rounds (the
    median p50 of the rounds), and what the ledger's write costs outside the gateway."""
    run_dir = Path(tempfile.mkdtemp(prefix="gateway-hop-"))
    everything: list[ManagedProcess] = []
    try:
        fast, fast_url = stub(run_dir, "stub-fast")
        redis, redis_url = bench_redis(run_dir)
        for process in (fast, redis):
            started(process, everything)
        urls = {"direct": fast_url}
        for name, (limits, ledger) in HOP_VARIANTS.items():
            process, urls[name] = our_gateway(run_dir, fast_url, redis_url, workers, limits=limits, ledger=ledger)
            started(process, everything)
        script = wrk_script(run_dir)
        p50s: dict[str, list[float]] = {name: [] for name in urls}
        for url in urls.values():
            wrk(url, 1, 1, script)  # warm-up
        for _ in range(rounds):
            for name, url in urls.items():
                p50s[name].append(wrk(url, 1, seconds, script)["p50_ms"])
    finally:
        for process in reversed(everything):
            process.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
    medians = {name: sorted(values)[len(values) // 2] for name, values in p50s.items()}
    return {
        "p50_ms": p50s,
        "median_p50_ms": medians,
        "added_p50_ms": {name: round(value - medians["direct"], 3) for name, value in medians.items()},
        "isolated_us": uvloop.run(isolated_costs_us()),
    }


async def isolated_costs_us(count: int = 1000) -> dict:
    """Median µs, outside the gateway, of what its ledger write is made of: a handoff to another thread and
    back to the event loop (back to back, and after the loop idled 1.5 ms), and a whole awaited ledger
    record (AsyncLedger over SQLite, as the gateway writes one, 1.5 ms apart)."""
    loop = asyncio.get_running_loop()
    medians = {}
    with ThreadPoolExecutor(1) as executor:
        for name, idle in (("handoff_back_to_back", 0.0), ("handoff_after_1_5_ms_idle", 0.0015)):
            medians[name] = await _median_us(lambda: loop.run_in_executor(executor, int), count, idle)
    with tempfile.TemporaryDirectory(prefix="ledger-") as directory:
        ledger = AsyncLedger(SqliteLedger(Path(directory) / "ledger.sqlite3"))
        try:
            medians["ledger_record_after_1_5_ms_idle"] = await _median_us(
                lambda: ledger.record(
                    UsageRecord(
                        request_id=secrets.token_hex(8),
                        tenant="bench",
                        model=MODEL,
                        backend="vllm",
                        prompt_tokens=10,
                        completion_tokens=7,
                        cost_usd=0.00002,
                        latency_ms=1.0,
                        status="ok",
                        stream=False,
                        usage_estimated=False,
                    )
                ),
                count,
                0.0015,
            )
        finally:
            ledger.close()
    return medians


async def _median_us(action, count: int, idle: float) -> float:
    times = []
    for _ in range(count):
        if idle:
            await asyncio.sleep(idle)
        began = time.perf_counter()
        await action()
        times.append(time.perf_counter() - began)
    return round(sorted(times)[count // 2] * 1e6, 1)


def hop_markdown(results: dict, settings: dict) -> str:
    lines = [
        f"# Gateway hop at c=1, broken down ({settings['date']}, {settings['workers']} workers, median p50 of "
        f"{settings['rounds']} interleaved {settings['seconds']} s wrk runs)",
        "",
        "| path | p50 ms (each round) | median p50 ms | added over direct ms |",
        "|---|---|---|---|",
    ]
    for name, values in results["p50_ms"].items():
        label = name if name == "direct" else f"gateway, {name}"
        lines.append(
            f"| {label} | {' / '.join(str(value) for value in values)} | {results['median_p50_ms'][name]} | "
            f"{results['added_p50_ms'][name]} |"
        )
    isolated = results["isolated_us"]
    lines += [
        "",
        "Outside the gateway, medians: a handoff to another thread and back (run_in_executor on uvloop) "
        f"{isolated['handoff_back_to_back']} µs back to back, {isolated['handoff_after_1_5_ms_idle']} µs "
        f"after 1.5 ms idle; an awaited SQLite ledger record {isolated['ledger_record_after_1_5_ms_idle']} µs.",
    ]
    return "\n".join(lines) + "\n"


def markdown(results: dict, settings: dict) -> str:
    lines = [
        f"# Gateway capacity ({settings['date']}, {settings['workers']} workers each, LiteLLM "
        f"{LITELLM_VERSION}; one run, side by side)",
        "",
        "| path | (a) c=1 p50 / p99 ms | added p50 ms | (b) c=64 req/s | non-2xx |",
        "|---|---|---|---|---|",
    ]
    direct = results["latency_c1"]["direct"]["p50_ms"]
    names = {"gateway": "gateway (every tenant control on)", "gateway_bare": "gateway (no tenant control)"}
    for name in results["latency_c1"]:
        one, many = results["latency_c1"][name], results["throughput_c64"][name]
        lines.append(
            f"| {names.get(name, name)} | {one['p50_ms']} / {one['p99_ms']} | "
            f"{round(one['p50_ms'] - direct, 3)} | {many['rps']} | {one['non_2xx'] + many['non_2xx']} |"
        )
    lines += [
        "",
        "| concurrent slow streams | path | TTFT p50 / p99 s | errors | memory MiB | "
        "CPU s: client / stub / path between |",
        "|---|---|---|---|---|---|",
    ]
    for count, by_path in results["streams"].items():
        for name, row in by_path.items():
            cpu = row["cpu_s"]
            lines.append(
                f"| {count} | {name} | {row['ttft_p50_s']} / {row['ttft_p99_s']} | {row['errors']} | "
                f"{row['memory_mib'] if row['memory_mib'] is not None else '-'} | "
                f"{cpu['client']} / {cpu['stub']} / {cpu['path'] if cpu['path'] is not None else '-'} |"
            )
    return "\n".join(lines + pool_markdown_lines(results)) + "\n"


FAIR_LABELS = {
    "claims": "1 process, fair order + claims (default)",
    "no_claims": "1 process, fair order alone (share_hold_seconds: 0)",
    "shared_claims": "2 processes sharing admission (Redis), fair order + claims",
    "shared_no_claims": "2 processes sharing admission (Redis), fair order alone",
}
ALONE_LABELS = {
    "shared_both": "shared admission (Redis), callers over both processes",
    "shared_one": "shared admission (Redis), callers through one of the two",
    "split_one": "per-process queues (no Redis, max_sequences / 2 each), callers through one of the two",
}


def pool_markdown_lines(results: dict) -> list[str]:
    lines = []
    fairness_runs = results.get("fairness")
    if fairness_runs:
        some = next(iter(fairness_runs.values()))
        lines += [
            "",
            f"(d) Fairness: pool of {some['capacity']} slots, light tenant {some['light_streams']} streams at a "
            f"time, heavy {some['heavy_streams']} (with 2 processes each tenant's streams are spread over both).",
            "",
            "| queue | light TTFT p95 alone s | light TTFT p95 with heavy s | ratio | heavy TTFT p95 s | "
            "completed streams/s (pool limit) |",
            "|---|---|---|---|---|---|",
        ]
        for name, fair in fairness_runs.items():
            lines.append(
                f"| {FAIR_LABELS[name]} | {fair['light_ttft_p95_alone_s']} | {fair['light_ttft_p95_contended_s']} "
                f"| {fair['ratio']} | {fair['heavy_ttft_p95_s']} | {fair['completed_per_s']} "
                f"({fair['pool_limit_per_s']}) |"
            )
    alone_runs = results.get("alone")
    if alone_runs:
        some = next(iter(alone_runs.values()))
        lines += [
            "",
            f"(e) One tenant alone, {some['callers']} callers, two gateway processes, a pool of "
            f"{ALONE_MEMBERS} x {ALONE_SEQUENCES} = {some['capacity']} sequences.",
            "",
            "| admission | streams running at the model servers: mean (share of capacity) | peak per member | "
            "completed streams/s (pool limit) | TTFT p50 s |",
            "|---|---|---|---|---|",
        ]
        for name, row in alone_runs.items():
            lines.append(
                f"| {ALONE_LABELS[name]} | {row['mean_running']} ({row['share_of_capacity']:.1%}) | "
                f"{' / '.join(str(peak) for peak in row['peak_running_per_member'])} | {row['completed_per_s']} "
                f"({row['pool_limit_per_s']}) | {row['ttft_p50_s']} |"
            )
    costs = results.get("admission_ms")
    if costs:
        lines += [
            "",
            "One shared admission and its release (two script calls, round trips included), median ms, and Redis's "
            "own µs per script call, by the tenants holding slots of the pool: "
            + ", ".join(
                f"{tenants}: {cost['admission_and_release_ms']} ms, {cost['redis_us_per_call']} µs"
                for tenants, cost in costs.items()
            )
            + ".",
        ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 s wrk runs instead of 8 s, 15 s (d)/(e) phases, not 40")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of our gateway and of LiteLLM")
    parser.add_argument("--install-only", action="store_true", help="install LiteLLM's virtualenv and stop")
    parser.add_argument(
        "--hop",
        action="store_true",
        help="only (a), with each tenant control switched off in turn (results: gateway_hop.*)",
    )
    parser.add_argument(
        "--pool", action="store_true", help="only (d) and (e), the pool's admission (results: gateway_pool.*)"
    )
    args = parser.parse_args()
    if args.install_only:
        print(litellm_python())
        return
    if shutil.which("wrk") is None and not args.pool:
        sys.exit("wrk is missing: run ./scripts/setup (it installs Debian's wrk)")
    settings = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "workers": args.workers,
        "quick": args.quick,
        "slow_stream": f"{SLOW_TOKENS} tokens, {TOKEN_INTERVAL} s apart",
        "cpus": os.cpu_count(),
    }
    RESULTS.mkdir(exist_ok=True)
    if args.pool:
        results = pool_only(args.quick)
        (RESULTS / "gateway_pool.json").write_text(json.dumps({"settings": settings, "results": results}, indent=2))
        text = f"# Gateway pool admission ({settings['date']}, one worker per gateway process)\n" + "\n".join(
            pool_markdown_lines(results)
        )
        (RESULTS / "gateway_pool.md").write_text(text + "\n")
        print(text)
        return
    if args.hop:
        settings.update(rounds=5, seconds=3 if args.quick else 8)
        results = hop_breakdown(settings["rounds"], settings["seconds"], args.workers)
        (RESULTS / "gateway_hop.json").write_text(json.dumps({"settings": settings, "results": results}, indent=2))
        text = hop_markdown(results, settings)
        (RESULTS / "gateway_hop.md").write_text(text)
        print(text)
        return
    results = run(args.quick, args.workers)
    (RESULTS / "gateway_capacity.json").write_text(json.dumps({"settings": settings, "results": results}, indent=2))
    text = markdown(results, settings)
    (RESULTS / "gateway_capacity.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
