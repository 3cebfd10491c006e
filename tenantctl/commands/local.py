"""`tenantctl up` (local mode until Ctrl-C: tenantctl/local/) and `tenantctl ask` (a question to a running tenant)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

import httpx

from tenant_spec import discover_tenant_specs
from tenantctl.commands.alerts import platform_alerts
from tenantctl.local.catalogue import parse_model_endpoints
from tenantctl.local.platform import LocalPlatform, LocalSettings, TenantEndpoint
from tenantctl.local.state import DEFAULT_RUN_DIR, tenant_url


def register(commands) -> None:
    up = commands.add_parser("up", help="run the whole platform locally until Ctrl-C")
    up.add_argument(
        "--run-dir", type=Path, default=DEFAULT_RUN_DIR, help="logs, configs and state (default: .run/local)"
    )
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--gateway-port", type=int, default=8080)
    up.add_argument(
        "--first-model-port", type=int, default=8000, help="the local model servers take ports from here upward"
    )
    up.add_argument(
        "--first-tenant-port", type=int, default=5002, help="first port for tenants whose spec sets no local_port"
    )
    up.add_argument(
        "--model-endpoint",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="a catalogue model served elsewhere, e.g. a vLLM server (repeatable); no local server is started for it",
    )
    up.add_argument("--workers", type=int, default=2, help="gunicorn workers per service")
    up.add_argument("--prometheus-port", type=int, default=9090, help="port of the local Prometheus (default 9090)")
    up.add_argument("--no-prometheus", dest="prometheus", action="store_false", help="do not start Prometheus")
    up.add_argument("--scrape-interval", default="15s", help="Prometheus scrape and rule evaluation interval")
    up.add_argument("--redis-port", type=int, default=6380, help="port of the Redis holding rate limit counters")
    up.add_argument("--ledger", metavar="URL", help="usage ledger: postgresql://... (default: SQLite in the run dir)")
    up.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        help="port of tenantctl's own /metrics (child restarts), scraped by Prometheus (default: any free)",
    )
    up.add_argument("--alertmanager-port", type=int, default=9093, help="port of the local Alertmanager (default 9093)")
    up.add_argument("--no-alertmanager", dest="alertmanager", action="store_false", help="do not start Alertmanager")
    up.add_argument(
        "--platform-alert-webhook",
        action="append",
        default=[],
        metavar="URL",
        help="a receiver of the platform's alerts (and every tenant's), e.g. the on-call's webhook (repeatable)",
    )
    up.set_defaults(handler=command_up)

    ask = commands.add_parser("ask", help="ask a running tenant a question")
    ask.add_argument("tenant")
    ask.add_argument("question")
    ask.add_argument("--stream", action="store_true", help="print the answer as it is generated")
    ask.add_argument("--max-tokens", type=int)
    ask.add_argument("--model", help="a model (or alias) the tenant may use; default: the tenant's default")
    ask.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR)
    ask.set_defaults(handler=command_ask)


def command_up(args: argparse.Namespace) -> int:
    specs = discover_tenant_specs(args.tenants_dir)
    settings = LocalSettings(
        run_dir=args.run_dir,
        host=args.host,
        gateway_port=args.gateway_port,
        first_model_port=args.first_model_port,
        first_tenant_port=args.first_tenant_port,
        catalogue_file=args.models,
        model_endpoints=parse_model_endpoints(args.model_endpoint),
        workers=args.workers,
        prometheus_port=args.prometheus_port if args.prometheus else None,
        scrape_interval=args.scrape_interval,
        redis_port=args.redis_port,
        ledger_url=args.ledger,
        metrics_port=args.metrics_port,
        alertmanager_port=args.alertmanager_port if args.alertmanager else None,
        platform_alerts=platform_alerts(args.platform_alert_webhook, "--platform-alert-webhook"),
    )
    platform = LocalPlatform(specs, settings)
    for warning in platform.catalogue_warnings:
        print(f"warning: {warning}", file=sys.stderr)
    stop = threading.Event()
    starting = True

    def on_signal(*_) -> None:
        stop.set()
        if starting:  # abort a long start (e.g. model loading) at once
            raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    try:
        endpoints = platform.start(progress=lambda message: print(message, flush=True))
        starting = False
        print_endpoints(platform.gateway_url, endpoints, platform.prometheus_url, platform.alertmanager_url)
        print(f"tenantctl metrics: {platform.metrics_url}/metrics  (child restarts)")
        if platform.admin_keys:
            print(f"admin keys (document uploads): {args.run_dir}/admin-keys/<tenant>.key")
        print("\nPress Ctrl-C to stop.", flush=True)
        supervisor = platform.supervisor(log=lambda message: print(message, file=sys.stderr, flush=True))
        while not stop.wait(0.5):  # in the main thread: restarted children must die with it
            supervisor.check()
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        print("stopping…", flush=True)
        platform.stop()
        print("stopped.", flush=True)


def print_endpoints(
    gateway_url: str,
    endpoints: list[TenantEndpoint],
    prometheus_url: str | None = None,
    alertmanager_url: str | None = None,
) -> None:
    rows = [("TENANT", "URL", "MODELS (DEFAULT FIRST)")] + [(e.name, e.url, ", ".join(e.models)) for e in endpoints]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    print(f"\ngateway: {gateway_url}  (OpenAI API at {gateway_url}/v1)")
    if prometheus_url:
        print(f"prometheus: {prometheus_url}  (alerts at {prometheus_url}/alerts)")
    if alertmanager_url:
        print(
            f"alertmanager: {alertmanager_url}  (silence: amtool --alertmanager.url={alertmanager_url} silence add ...)"
        )
    print()
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    example = endpoints[0].url if endpoints else "http://127.0.0.1:5002"
    print(
        f"\ntry: curl -s {example}/ask -H 'Content-Type: application/json' "
        '-d \'{"question": "Which company do you work for?"}\''
    )


def command_ask(args: argparse.Namespace) -> int:
    url = tenant_url(args.run_dir, args.tenant) + "/ask"
    body: dict = {"question": args.question, "stream": args.stream}
    if args.max_tokens:
        body["max_tokens"] = args.max_tokens
    if args.model:
        body["model"] = args.model
    try:
        if args.stream:
            return _ask_streaming(url, body)
        response = httpx.post(url, json=body, timeout=300)
    except httpx.HTTPError as error:
        raise RuntimeError(f"cannot reach {url}: {error}") from None
    document = response.json()
    if response.status_code != 200:
        print(f"error {response.status_code}: {document['error']['message']}", file=sys.stderr)
        return 1
    print(document["answer"])
    print(
        f"\n[{document['tenant']} · {document['backend']} · {document['model']} · {document['usage']}]", file=sys.stderr
    )
    return 0


def _ask_streaming(url: str, body: dict) -> int:
    with httpx.stream("POST", url, json=body, timeout=300) as response:
        if response.status_code != 200:
            response.read()
            print(f"error {response.status_code}: {response.json()['error']['message']}", file=sys.stderr)
            return 1
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if event["type"] == "delta":
                print(event["content"], end="", flush=True)
            elif event["type"] == "error":
                print(f"\nerror: {event['error']['message']}", file=sys.stderr)
                return 1
            elif event["type"] == "done":
                print(f"\n\n[{event['tenant']} · {event['backend']} · {event['model']}]", file=sys.stderr)
    return 0
