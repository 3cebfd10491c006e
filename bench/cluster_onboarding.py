"""Benchmark: the platform and tenants on the local node, Pods really running.

- platform: `terraform apply` of the platform root (wait_for_rollout on) until every Pod of
  `monitoring` is Ready: gateway, CPU model pool, embedding server, Prometheus, Redis, PostgreSQL;
- tenants: onboard and apply tenants one after another up to 30, timing each from the start of
  its `terraform apply` to its first `POST /ask` answered through its Service (the ingress path),
  and reading the node's memory: each proxy Pod's cgroup (RSS + mapped files) and the
  machine's MemAvailable.

Target: tenant apply to first answer <= 20 s, flat from 1 to 30 tenants. Writes
bench/results/cluster_onboarding.{json,md}. The cluster-up time is node.py's benchmark (bench/node.py).

    python bench/cluster_onboarding.py [--tenants 30] [--report-at 1 10 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kubernetes import client  # noqa: E402

from tenantctl.cluster.local_cluster import LocalCluster  # noqa: E402
from tenantctl.cluster.platform import NAMESPACE, NodePlatform, platform_on_node  # noqa: E402
from tenantctl.images.build import ensure_images  # noqa: E402
from tenantctl.waiting import wait_for  # noqa: E402

RESULTS = REPO / "bench" / "results"
TARGET_SECONDS = 20.0


def mem_available_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def proxy_memory(api: client.ApiClient) -> dict[str, int]:
    """Memory of each tenant proxy Pod (bytes, without the page cache), from its cgroup on this machine
    (the API server will not proxy to the node's address, so the kubelet's summary API is out of reach)."""
    usage = {}
    proxies = client.CoreV1Api(api).list_pod_for_all_namespaces(label_selector="app.kubernetes.io/name=tenant-proxy")
    for pod in proxies.items:
        for directory in Path("/sys/fs/cgroup/memory").glob(f"kubepods*/**/pod{pod.metadata.uid}"):
            stat = dict(line.split() for line in (directory / "memory.stat").read_text().splitlines())
            usage[pod.metadata.namespace] = int(stat["total_rss"]) + int(stat.get("total_mapped_file", 0))
    return usage


def tenant_spec(name: str) -> dict:
    template = json.loads((REPO / "tenants" / "acme-corp" / "tenant.json").read_text())
    return {
        **template,
        "name": name,
        "display_name": name.title(),
        "local_port": None,
        "system_prompt": f"You are the assistant of {name.title()}. You work for {name.title()}.",
    }


def first_answer(platform: NodePlatform, tenant: str, timeout: float = 120) -> float:
    """Seconds until the tenant's /ask answers 200 (the Pods are Ready when apply returns)."""
    started = time.monotonic()

    def answered() -> bool:
        try:
            return platform.ask(tenant, {"question": "Hello", "max_tokens": 4}, timeout=60).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(answered, timeout=timeout, what=f"{tenant} answers")
    return time.monotonic() - started


def run(tenant_count: int) -> dict:
    built = ensure_images(log=lambda message: print(f"[images] {message}", flush=True))
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        tmp_path = Path(tmp)
        with (
            LocalCluster(tmp_path / "cluster", log=print, lock_timeout=1800) as cluster,
            platform_on_node(cluster, built, tmp_path) as platform,
        ):
            started = time.monotonic()
            platform.apply_platform()
            platform.wait_all_ready(NAMESPACE)
            platform_seconds = time.monotonic() - started
            print(f"platform Ready in {platform_seconds:.1f}s", flush=True)
            memory_before = mem_available_bytes()
            rows = []
            for index in range(1, tenant_count + 1):
                name = f"bench-{index:02d}"
                platform.onboard(name, tenant_spec(name))
                started = time.monotonic()
                platform.apply_tenant(name)
                applied = time.monotonic() - started
                answered_after = first_answer(platform, name)
                rows.append(
                    {
                        "tenants": index,
                        "apply_seconds": round(applied, 2),
                        "first_answer_seconds": round(applied + answered_after, 2),
                    }
                )
                print(
                    f"{name}: applied in {applied:.1f}s, first answer after {applied + answered_after:.1f}s", flush=True
                )
            memory_after = mem_available_bytes()
            working_sets = proxy_memory(platform.api())
    return {
        "platform_ready_seconds": round(platform_seconds, 2),
        "tenants": rows,
        "proxy_memory_bytes": working_sets,
        "node_memory_used_per_tenant_bytes": round((memory_before - memory_after) / tenant_count),
        "target_seconds": TARGET_SECONDS,
    }


def markdown(results: dict, report_at: list[int]) -> str:
    rows = {row["tenants"]: row for row in results["tenants"]}
    sets = list(results["proxy_memory_bytes"].values())
    lines = [
        f"Platform apply to every Pod Ready: {results['platform_ready_seconds']:.1f} s",
        "",
        "| tenants on the node | tenant apply (s) | apply to first `/ask` answered (s) |",
        "|---:|---:|---:|",
    ]
    for count in report_at:
        if count in rows:
            row = rows[count]
            lines.append(f"| {count} | {row['apply_seconds']:.1f} | {row['first_answer_seconds']:.1f} |")
    firsts = [row["first_answer_seconds"] for row in results["tenants"]]
    lines += [
        "",
        f"All {len(firsts)} onboardings: median {statistics.median(firsts):.1f} s, max {max(firsts):.1f} s "
        f"(target <= {results['target_seconds']:.0f} s).",
    ]
    if sets:
        lines.append(
            f"Memory per tenant: proxy Pod (RSS + mapped files) median "
            f"{statistics.median(sets) / 2**20:.0f} MiB "
            f"(max {max(sets) / 2**20:.0f} MiB); node MemAvailable fell by "
            f"{results['node_memory_used_per_tenant_bytes'] / 2**20:.0f} MiB per tenant."
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=30)
    parser.add_argument("--report-at", type=int, nargs="+", default=[1, 10, 30])
    parser.add_argument("--name", default="cluster_onboarding", help="results file name (bench/results/NAME.*)")
    args = parser.parse_args()
    results = run(args.tenants)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / f"{args.name}.md").write_text(markdown(results, args.report_at))
    print(markdown(results, args.report_at))


if __name__ == "__main__":
    main()
