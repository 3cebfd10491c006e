"""Latency that the tenant proxy + gateway add over calling the backend directly.

One run measures, side by side, the same requests sent
  direct   client -> backend
  gateway  client -> gateway -> backend
  proxy    client -> tenant proxy -> gateway -> backend   (both hops, /v1/chat/completions)
at 1, 16 and 64 concurrent requests, non-streaming latency and streaming
time-to-first-token, against a zero-latency OpenAI-compatible stub and (at
concurrency 1, fewer requests) against the real embedded model. With `--baseline <rev>`,
that revision's proxy and gateway are measured too, on the stub (path `proxy+gateway@<rev>`):
what the changes since then cost per request.
Results: bench/results/overhead.json and bench/results/overhead.md (`--name` for another name).

    python bench/overhead.py [--requests 400] [--rounds 5] [--model-requests 10] [--skip-model] [--baseline REV]
                             [--concurrency 1 16 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import baseline  # noqa: E402

import openai_stub  # noqa: E402
from llm_gateway.auth import hash_gateway_key  # noqa: E402
from tenantctl.local import launchers, model_cache  # noqa: E402
from tenantctl.processes import ManagedProcess, free_port  # noqa: E402

RESULTS = REPO / "bench" / "results"
KEY = "gk-bench-key"
SYSTEM_PROMPT = "You are a helpful assistant."
QUESTION = [{"role": "user", "content": "Say hello."}]
# What reaches the backend is the same on every path: the proxy adds the system prompt itself.
MESSAGES = [{"role": "system", "content": SYSTEM_PROMPT}, *QUESTION]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


async def one_request(client: httpx.AsyncClient, url: str, headers: dict, body: dict, stream: bool) -> float:
    """Seconds to the full answer, or to the first content chunk when streaming."""
    started = time.perf_counter()
    if not stream:
        response = await client.post(url, json=body, headers=headers)
        response.raise_for_status()
        return time.perf_counter() - started
    first_content = None
    async with client.stream("POST", url, json={**body, "stream": True}, headers=headers) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():  # read to the end so the connection is reusable
            if first_content is None and line.startswith("data: {") and '"content"' in line:
                first_content = time.perf_counter() - started
    if first_content is None:
        raise RuntimeError(f"{url}: stream without content")
    return first_content


async def measure(
    url: str, headers: dict, body: dict, *, concurrency: int, requests: int, stream: bool
) -> tuple[list[float], float]:
    """Latencies of `requests` requests sent by `concurrency` workers, and the wall time."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        for _ in range(min(concurrency, 8)):  # warm connections and code paths
            await one_request(client, url, headers, body, stream)
        queue = list(range(requests))
        latencies: list[float] = []

        async def worker() -> None:
            while queue:
                queue.pop()
                latencies.append(await one_request(client, url, headers, body, stream))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, time.perf_counter() - started


def summarize(latencies: list[float], wall: float) -> dict:
    return {
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000,
        "requests": len(latencies),
        "throughput_rps": len(latencies) / wall,
    }


def start(process: ManagedProcess) -> ManagedProcess:
    process.start()
    process.wait_healthy(180)
    return process


def gateway_config(backend_url: str, health_path: str, model: str, tree: Path | None = None) -> dict:
    """One tenant allowed `model`, a self-hosted catalogue model served at `backend_url`. A baseline revision
    from before the model catalogue (no llm_common/catalogue.py) gets its own shape: the same tenant on the
    `vllm` pool."""
    identity = {"name": "bench", "max_tokens": 64, "key_sha256": [hash_gateway_key(KEY)]}
    pool = {"endpoints": [backend_url], "health_path": health_path}
    if tree is not None and not (tree / "llm_common" / "catalogue.py").is_file():
        return {"tenants": [{**identity, "backend": "vllm", "model": model}], "pool": pool}
    return {
        "tenants": [{**identity, "models": {"allowed": [model]}}],
        "models": {model: {"engine": "cpu", "source": f"{model}.gguf"}},  # the source is the server's business
        "pools": {model: pool},
    }


def start_hops(
    backend_url: str, health_path: str, model: str, run_dir: Path, workers: int, tree: Path | None = None
) -> tuple[list, str, str]:
    """Gateway and proxy in front of `backend_url`; from `tree` (another revision) when given."""
    in_tree = (lambda process: baseline.from_tree(process, tree)) if tree else (lambda process: process)
    gateway_port, proxy_port = free_port(), free_port()
    gateway = start(
        in_tree(
            launchers.gateway(
                gateway_config(backend_url, health_path, model, tree),
                gateway_port,
                run_dir,
                workers=workers,
            )
        )
    )
    proxy = start(
        in_tree(
            launchers.tenant_proxy(
                {
                    "tenant": "bench",
                    "system_prompt": SYSTEM_PROMPT,
                    "max_tokens": 64,
                    "gateway_url": f"http://127.0.0.1:{gateway_port}/v1",
                    "gateway_key": KEY,
                },
                proxy_port,
                run_dir,
                workers=workers,
            )
        )
    )
    return [proxy, gateway], f"http://127.0.0.1:{gateway_port}", f"http://127.0.0.1:{proxy_port}"


def run_paths(
    backend_url: str,
    gateway_url: str,
    proxy_url: str,
    model: str,
    *,
    concurrencies: list[int],
    requests: int,
    label: str,
    rounds: int,
    baseline_urls: dict[str, tuple[str, str]] | None = None,
) -> list[dict]:
    """Each path is measured in `rounds` interleaved slices, so drift in machine load
    (this is a shared 2-core VM) falls on every path alike. `baseline_urls`: {rev: (gateway, proxy)}."""
    body = {"model": model, "messages": MESSAGES, "max_tokens": 16, "temperature": 0}
    proxy_body = {"messages": QUESTION, "max_tokens": 16, "temperature": 0}
    paths = {
        "direct": (backend_url + "/v1/chat/completions", {}, body),
        "gateway": (gateway_url + "/v1/chat/completions", {"Authorization": f"Bearer {KEY}"}, body),
        "proxy+gateway": (proxy_url + "/v1/chat/completions", {}, proxy_body),
    }
    for rev, (old_gateway, old_proxy) in (baseline_urls or {}).items():
        paths[f"gateway@{rev}"] = (old_gateway + "/v1/chat/completions", {"Authorization": f"Bearer {KEY}"}, body)
        paths[f"proxy+gateway@{rev}"] = (old_proxy + "/v1/chat/completions", {}, proxy_body)
    rows = []
    for stream in (False, True):
        for concurrency in concurrencies:
            samples: dict[str, tuple[list[float], float]] = {path: ([], 0.0) for path in paths}
            for _ in range(rounds):
                for path, (url, headers, payload) in paths.items():
                    latencies, wall = asyncio.run(
                        measure(
                            url,
                            headers,
                            payload,
                            concurrency=concurrency,
                            requests=max(1, requests // rounds),
                            stream=stream,
                        )
                    )
                    samples[path] = (samples[path][0] + latencies, samples[path][1] + wall)
            for path, (latencies, wall) in samples.items():
                row = {
                    "backend": label,
                    "mode": "ttft" if stream else "full",
                    "concurrency": concurrency,
                    "path": path,
                    **summarize(latencies, wall),
                }
                rows.append(row)
                print(
                    f"{label:>5} {row['mode']:>4} c={concurrency:<3} {path:<14} p50={row['p50_ms']:7.2f} ms "
                    f"p99={row['p99_ms']:7.2f} ms  {row['throughput_rps']:7.1f} req/s",
                    flush=True,
                )
    return rows


def overheads(rows: list[dict]) -> list[dict]:
    """Both hops' added latency: proxy+gateway minus direct, per backend/mode/concurrency."""
    table = []
    keyed = {(r["backend"], r["mode"], r["concurrency"], r["path"]): r for r in rows}
    for (backend, mode, concurrency, path), row in keyed.items():
        if path != "direct":
            continue
        full = keyed[(backend, mode, concurrency, "proxy+gateway")]
        gateway = keyed[(backend, mode, concurrency, "gateway")]
        table.append(
            {
                "backend": backend,
                "mode": mode,
                "concurrency": concurrency,
                "both_hops_p50_ms": full["p50_ms"] - row["p50_ms"],
                "both_hops_p99_ms": full["p99_ms"] - row["p99_ms"],
                "gateway_hop_p50_ms": gateway["p50_ms"] - row["p50_ms"],
            }
        )
    return table


def against_baseline(rows: list[dict]) -> list[dict]:
    """This tree minus the baseline revision, per path/mode/concurrency (stub only)."""
    keyed = {(r["backend"], r["mode"], r["concurrency"], r["path"]): r for r in rows}
    table = []
    for (backend, mode, concurrency, path), row in keyed.items():
        if "@" not in path:
            continue
        current = keyed[(backend, mode, concurrency, path.split("@")[0])]
        table.append(
            {
                "backend": backend,
                "mode": mode,
                "concurrency": concurrency,
                "path": path,
                "baseline_p50_ms": row["p50_ms"],
                "now_p50_ms": current["p50_ms"],
                "added_p50_ms": current["p50_ms"] - row["p50_ms"],
                "baseline_p99_ms": row["p99_ms"],
                "now_p99_ms": current["p99_ms"],
            }
        )
    return table


def write_results(rows: list[dict], summary: list[dict], settings: dict, name: str = "overhead") -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    compared = against_baseline(rows)
    (RESULTS / f"{name}.json").write_text(
        json.dumps({"settings": settings, "runs": rows, "overhead": summary, "against_baseline": compared}, indent=2)
    )
    lines = [
        "| backend | mode | concurrency | direct p50 / p99 (ms) | proxy+gateway p50 / p99 (ms) "
        "| added p50 / p99 (ms) |",
        "|---|---|---|---|---|---|",
    ]
    keyed = {(r["backend"], r["mode"], r["concurrency"], r["path"]): r for r in rows}
    for item in summary:
        key = (item["backend"], item["mode"], item["concurrency"])
        direct, full = keyed[(*key, "direct")], keyed[(*key, "proxy+gateway")]
        lines.append(
            f"| {key[0]} | {key[1]} | {key[2]} | {direct['p50_ms']:.2f} / {direct['p99_ms']:.2f} "
            f"| {full['p50_ms']:.2f} / {full['p99_ms']:.2f} "
            f"| {item['both_hops_p50_ms']:.2f} / {item['both_hops_p99_ms']:.2f} |"
        )
    if compared:
        lines += [
            "",
            "| path (stub) | mode | concurrency | baseline p50 / p99 (ms) | now p50 / p99 (ms) | added p50 (ms) |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {item['path']} | {item['mode']} | {item['concurrency']} "
            f"| {item['baseline_p50_ms']:.2f} / {item['baseline_p99_ms']:.2f} "
            f"| {item['now_p50_ms']:.2f} / {item['now_p99_ms']:.2f} | {item['added_p50_ms']:.2f} |"
            for item in compared
        ]
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400, help="requests per stub measurement")
    parser.add_argument("--model-requests", type=int, default=10, help="requests per real-model measurement")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers of gateway and proxy")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved slices per measurement")
    parser.add_argument("--skip-model", action="store_true")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64], help="stub concurrencies")
    parser.add_argument("--name", default="overhead", help="results go to bench/results/<name>.{json,md}")
    parser.add_argument("--baseline", help="git revision whose proxy and gateway to measure too (stub only)")
    args = parser.parse_args()
    run_dir = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    rows: list[dict] = []
    processes: list[ManagedProcess] = []
    try:
        stub_port = free_port()
        stub = start(
            ManagedProcess(
                "stub", openai_stub.command(stub_port), f"http://127.0.0.1:{stub_port}/health", run_dir / "stub.log"
            )
        )
        processes.append(stub)
        hops, gateway_url, proxy_url = start_hops(
            f"http://127.0.0.1:{stub_port}", "/health", "stub-model", run_dir / "stub-hops", args.workers
        )
        processes += hops
        baseline_urls = {}
        if args.baseline:
            tree = baseline.extract(args.baseline, run_dir / "baseline")
            old_hops, old_gateway, old_proxy = start_hops(
                f"http://127.0.0.1:{stub_port}", "/health", "stub-model", run_dir / "baseline-hops", args.workers, tree
            )
            processes += old_hops
            baseline_urls[baseline.short(args.baseline)] = (old_gateway, old_proxy)
        rows += run_paths(
            f"http://127.0.0.1:{stub_port}",
            gateway_url,
            proxy_url,
            "stub-model",
            concurrencies=args.concurrency,
            requests=args.requests,
            label="stub",
            rounds=args.rounds,
            baseline_urls=baseline_urls,
        )
        if not args.skip_model:
            model_port = free_port()
            model = launchers.catalogue_model_server(
                launchers.EMBEDDED_MODEL_NAME,
                model_cache.SMOLLM2_SOURCE,
                launchers.EMBEDDED_MODEL_NAME,
                model_port,
                run_dir,
            )
            processes.append(start(model))
            model_url = f"http://127.0.0.1:{model_port}"
            hops, gateway_url, proxy_url = start_hops(
                model_url,
                launchers.EMBEDDED_MODEL_HEALTH_PATH,
                launchers.EMBEDDED_MODEL_NAME,
                run_dir / "model-hops",
                args.workers,
            )
            processes += hops
            rows += run_paths(
                model_url,
                gateway_url,
                proxy_url,
                launchers.EMBEDDED_MODEL_NAME,
                concurrencies=[1],
                requests=args.model_requests,
                label="model",
                rounds=2,
            )
    finally:
        for process in reversed(processes):
            process.stop()
    write_results(
        rows,
        overheads(rows),
        {
            "workers": args.workers,
            "requests": args.requests,
            "model_requests": args.model_requests,
            "rounds": args.rounds,
            "baseline": args.baseline,
            "concurrency": args.concurrency,
        },
        args.name,
    )


if __name__ == "__main__":
    main()
