"""Benchmark: seconds to onboard one tenant (`terraform init` + `apply` of its root) as the
number of tenants already on the cluster grows. Each tenant has its own root and state, so the
time should stay flat. Target: <= 10 s per tenant.

One run against the local control plane (etcd + kube-apiserver + controllers, `wait_for_rollout`
off since Pods cannot run here): apply the platform root, then onboard tenants one after another
up to 50 + probes, timing every one; the table compares the onboardings made with 1, 10 and 50
tenants already present. Writes bench/results/onboarding.{json,md}.

    python bench/onboarding.py [--existing 1 10 50] [--probes 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tenantctl.cluster.control_plane import LocalControlPlane  # noqa: E402
from tenantctl.terraform.roots import onboard_tenant  # noqa: E402
from tenantctl.terraform.runner import Terraform  # noqa: E402

RESULTS = REPO / "bench" / "results"
TARGET_SECONDS = 10.0
LINKED_PARTS = ("shared-infrastructure", "dashboards", "tenant-template")


def workspace(directory: Path) -> Path:
    """A tenants/ directory beside links to the real modules, as tenant roots expect (../../...)."""
    directory.mkdir()
    for part in LINKED_PARTS:
        (directory / part).symlink_to(REPO / part)
    (directory / "tenants").mkdir()
    return directory / "tenants"


def onboard_seconds(tenants_dir: Path, name: str, variables: dict) -> dict[str, float]:
    onboard_tenant(tenants_dir, name, industry="Benchmarking", system_prompt=f"You are the assistant of {name}.")
    terraform = Terraform(tenants_dir / name, variables=variables)
    started = time.monotonic()
    terraform.init()
    initialised = time.monotonic()
    terraform.apply()
    done = time.monotonic()
    return {"init": initialised - started, "apply": done - initialised, "total": done - started}


def run(existing_points: list[int], probes: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-onboarding-") as tmp:
        tmp_path = Path(tmp)
        tenants_dir = workspace(tmp_path / "repo")
        with LocalControlPlane(tmp_path / "control-plane") as plane:
            variables = {"kubeconfig_path": str(plane.kubeconfig), "wait_for_rollout": False}
            # The platform root's state must not land in the repository: use a copy of it.
            platform = Terraform(_platform_copy(tmp_path), variables=variables)
            platform.init()
            platform.apply()
            timings: list[dict] = []
            for index in range(max(existing_points) + probes):
                timing = onboard_seconds(tenants_dir, f"tenant-{index:03d}", variables)
                timings.append({"existing": index, **timing})
                print(
                    f"tenant {index + 1}: {timing['total']:.2f}s "
                    f"(init {timing['init']:.2f}s, apply {timing['apply']:.2f}s)",
                    flush=True,
                )
    rows = []
    for existing in existing_points:
        sample = [t for t in timings if existing <= t["existing"] < existing + probes]
        rows.append(
            {
                "existing_tenants": existing,
                "samples": len(sample),
                "median_total_seconds": round(statistics.median(t["total"] for t in sample), 2),
                "median_apply_seconds": round(statistics.median(t["apply"] for t in sample), 2),
                "median_init_seconds": round(statistics.median(t["init"] for t in sample), 2),
                "max_total_seconds": round(max(t["total"] for t in sample), 2),
            }
        )
    return {
        "target_seconds": TARGET_SECONDS,
        "rows": rows,
        "all_onboardings": [{k: round(v, 3) if isinstance(v, float) else v for k, v in t.items()} for t in timings],
    }


def _platform_copy(tmp_path: Path) -> Path:
    """shared-infrastructure/platform refers to ../../dashboards: copy it into a linked tree."""
    root = tmp_path / "platform-repo"
    shutil.copytree(
        REPO / "shared-infrastructure",
        root / "shared-infrastructure",
        ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", ".terraform.lock.hcl"),
    )
    (root / "dashboards").symlink_to(REPO / "dashboards")
    return root / "shared-infrastructure" / "platform"


def write_results(results: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "onboarding.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "| tenants already applied | onboardings timed | median init + apply (s) | median apply (s) | max (s) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in results["rows"]:
        lines.append(
            f"| {row['existing_tenants']} | {row['samples']} | {row['median_total_seconds']} | "
            f"{row['median_apply_seconds']} | {row['max_total_seconds']} |"
        )
    lines.append(f"\nTarget: <= {results['target_seconds']} s per tenant.")
    (RESULTS / "onboarding.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--existing", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--probes", type=int, default=3, help="onboardings timed at each point")
    args = parser.parse_args()
    write_results(run(sorted(args.existing), args.probes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
