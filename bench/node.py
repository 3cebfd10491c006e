"""Benchmark of the local node: `cluster up` to node Ready, cold and warm, beside the control plane alone.

Reports, into bench/results/node.json (and a markdown table beside it):
- cold build seconds of the node's binaries, as recorded by the build that produced them
  (tenantctl.terraform.toolchain keeps build-times.json);
- control plane alone, start to ready (etcd, apiserver, controllers), for comparison in the same run;
- cold `cluster up`: a fresh state directory, so containerd imports the node's images first;
- warm `cluster up`, several runs reusing that state directory (images already in containerd),
  each split into its phases: control plane ready, node Ready, kube-proxy + kube-router + scheduler
  ready, CoreDNS Ready (= everything ready). Target: warm node Ready <= 30 s.

    python bench/node.py [--runs 3]     (as root, like the node itself)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tenantctl.cluster.control_plane import LocalControlPlane  # noqa: E402
from tenantctl.cluster.local_cluster import LocalCluster  # noqa: E402
from tenantctl.terraform import toolchain  # noqa: E402

RESULTS = REPO / "bench" / "results"
TARGET_NODE_READY_SECONDS = 30.0


def control_plane_alone(state_dir: Path) -> float:
    plane = LocalControlPlane(state_dir)
    try:
        plane.start()
        return round(plane.start_seconds, 2)
    finally:
        plane.stop()


def cluster_up(state_dir: Path) -> dict:
    """One `cluster up` (what `tenantctl cluster up` runs), timed by phase, then stopped."""
    cluster = LocalCluster(state_dir, lock_timeout=3600)  # another checkout's tests may hold the machine's node
    try:
        cluster.start()  # its start_seconds leave out any wait for that node
        total = cluster.start_seconds
        plane = cluster.control_plane.start_seconds
        return {
            "control_plane_ready": round(plane, 2),
            "node_ready": round(plane + cluster.node.timings["node_ready"], 2),
            "everything_ready": round(total, 2),
            "phases_after_control_plane": cluster.node.timings,
        }
    finally:
        cluster.stop()


def markdown(report: dict) -> str:
    lines = ["| measure | seconds |", "| --- | --- |"]
    for name in ("kube-scheduler", "kubelet", "kube-proxy", "crictl", "kube-router-netpol", "coredns"):
        item = report["cold_build_seconds"].get(name, {})
        lines.append(f"| cold build {name} {item.get('version', '')} | {item.get('seconds', 'n/a')} |")
    lines.append(f"| control plane alone, start to ready | {report['control_plane_alone_seconds']} |")
    cold = report["cold_up"]
    lines.append(
        f"| cold `cluster up` (fresh state, images imported): node Ready / everything ready "
        f"| {cold['node_ready']} / {cold['everything_ready']} |"
    )
    warm = report["warm_up"]
    lines.append(
        f"| warm `cluster up`, median of {len(warm['runs'])}: node Ready (target <= "
        f"{TARGET_NODE_READY_SECONDS:.0f}) | {warm['node_ready_median']} |"
    )
    lines.append(
        f"| warm `cluster up`, median of {len(warm['runs'])}: everything ready (CoreDNS Ready) "
        f"| {warm['everything_ready_median']} |"
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="warm runs")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-node-") as work:
        work_dir = Path(work)
        plane_alone = control_plane_alone(work_dir / "plane")
        cold = cluster_up(work_dir / "cluster")
        warm_runs = [cluster_up(work_dir / "cluster") for _ in range(args.runs)]
    node_ready = [run["node_ready"] for run in warm_runs]
    report = {
        "kubernetes": toolchain.KUBERNETES_VERSION,
        "containerd": "Debian 1.6",
        "cold_build_seconds": toolchain.recorded_build_times(),
        "control_plane_alone_seconds": plane_alone,
        "cold_up": cold,
        "warm_up": {
            "runs": warm_runs,
            "node_ready_median": statistics.median(node_ready),
            "everything_ready_median": statistics.median(r["everything_ready"] for r in warm_runs),
            "target_node_ready": TARGET_NODE_READY_SECONDS,
            "met": max(node_ready) <= TARGET_NODE_READY_SECONDS,
        },
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "node.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "node.md").write_text(markdown(report))
    print(markdown(report))
    return 0 if report["warm_up"]["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
