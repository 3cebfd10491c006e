"""Benchmark of the Kubernetes toolchain and the local control plane.

Reports, into bench/results/control_plane.json (and a markdown table beside it):
- cold build seconds of each binary, as recorded by the build that produced the cached
  binary (tenantctl.terraform.toolchain keeps build-times.json); `--cold` rebuilds every binary first,
  each with an empty GOCACHE, to measure them now (about half an hour on 2 cores);
- warm set-up seconds: `scripts/build-toolchain` when everything is cached;
- control-plane start-to-ready seconds (etcd, apiserver /readyz, controllers working),
  over several runs. Target: warm start-to-ready <= 15 s.

    python bench/control_plane.py [--runs 3] [--cold]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tenantctl.cluster.control_plane import LocalControlPlane  # noqa: E402
from tenantctl.terraform import toolchain  # noqa: E402

RESULTS = REPO / "bench" / "results"
TARGET_READY_SECONDS = 15.0


def cold_build(log) -> None:
    """Rebuild each binary with its own empty build cache (modules stay cached: no network)."""
    previous = os.environ.get("GOCACHE")
    try:
        for component in toolchain.COMPONENTS:
            with tempfile.TemporaryDirectory(prefix="gocache-") as gocache:
                os.environ["GOCACHE"] = gocache
                toolchain.build(component, log)
    finally:
        if previous is None:
            os.environ.pop("GOCACHE", None)
        else:
            os.environ["GOCACHE"] = previous
    toolchain.install_provider_mirror()


def warm_setup_seconds() -> float:
    started = time.monotonic()
    subprocess.run(
        [str(REPO / "scripts" / "build-toolchain")],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "PYTHON": sys.executable},
    )
    return time.monotonic() - started


def start_to_ready(runs: int) -> list[float]:
    seconds = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench-cp-") as state:
            plane = LocalControlPlane(Path(state))
            try:
                plane.start()
                seconds.append(round(plane.start_seconds, 2))
            finally:
                plane.stop()
    return seconds


def markdown(report: dict) -> str:
    lines = ["| measure | seconds |", "| --- | --- |"]
    for name, item in sorted(report["cold_build_seconds"].items()):
        lines.append(f"| cold build {name} {item.get('version', '')} | {item.get('seconds', 'n/a')} |")
    lines.append(f"| warm set-up (scripts/build-toolchain, all cached) | {report['warm_setup_seconds']} |")
    ready = report["start_to_ready_seconds"]
    lines.append(
        f"| control plane start-to-ready, median of {len(ready['runs'])} "
        f"(target <= {TARGET_READY_SECONDS:.0f}) "
        f"| {ready['median']} |"
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="rebuild everything with an empty GOCACHE first")
    args = parser.parse_args(argv)
    log = lambda message: print(f"[bench] {message}", flush=True)  # noqa: E731
    if args.cold:
        cold_build(log)
    warm = round(warm_setup_seconds(), 2)
    runs = start_to_ready(args.runs)
    report = {
        "kubernetes": toolchain.KUBERNETES_VERSION,
        "etcd": toolchain.ETCD_VERSION,
        "provider": f"{toolchain.KUBECTL_PROVIDER_SOURCE} {toolchain.KUBECTL_PROVIDER_VERSION}",
        "cold_build_seconds": toolchain.recorded_build_times(),
        "warm_setup_seconds": warm,
        "start_to_ready_seconds": {
            "runs": runs,
            "median": statistics.median(runs),
            "max": max(runs),
            "target": TARGET_READY_SECONDS,
            "met": max(runs) <= TARGET_READY_SECONDS,
        },
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{os.cpu_count()} cores",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "control_plane.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "control_plane.md").write_text(markdown(report))
    print(markdown(report))
    return 0 if report["start_to_ready_seconds"]["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
