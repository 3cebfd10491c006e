"""`scripts/build-toolchain`: the Kubernetes and Terraform toolchain the tests and `tenantctl cluster` use,
built from source (tenantctl/terraform/toolchain.py), the Terraform provider's mirror
(tenantctl/terraform/provider_mirror.py), and the images the local node runs, which need those binaries
(tenantctl/cluster/node_images.py). Idempotent: a warm run takes about a second.

    python -m tenantctl.commands.build_toolchain [--force] [--print-paths]
"""

from __future__ import annotations

import argparse
import sys
import time

from tenantctl.cluster.node_images import ensure_node_images
from tenantctl.terraform.provider_mirror import install_provider_mirror, terraform_cli_config
from tenantctl.terraform.toolchain import COMPONENTS, ToolchainError, ensure_binaries, toolchain_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="build-toolchain",
        description="The Kubernetes and Terraform toolchain the tests and `tenantctl cluster` use, built from source.",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even when cached")
    parser.add_argument("--print-paths", action="store_true", help="only print where each binary is (or would be)")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(f"[build-toolchain] {message}", flush=True)

    if args.print_paths:
        for component in COMPONENTS:
            print(f"{component.name}\t{component.path()}")
        print(f"terraform.rc\t{terraform_cli_config()}")
        return 0
    started = time.monotonic()
    try:
        ensure_binaries(force=args.force, log=log)
        install_provider_mirror()
        ensure_node_images(log)  # they need the binaries above (CoreDNS)
    except ToolchainError as error:
        print(f"build-toolchain: error: {error}", file=sys.stderr)
        return 1
    log(f"toolchain ready in {time.monotonic() - started:.1f}s (cache {toolchain_dir()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
