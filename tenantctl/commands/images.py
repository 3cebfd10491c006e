"""`tenantctl images build|list`: the command line of tenantctl/images/ (the logic lives there)."""

from __future__ import annotations

import argparse
import time

from tenantctl.cluster.containerd import Containerd
from tenantctl.cluster.state import running_state
from tenantctl.images.build import ensure_images, planned
from tenantctl.images.recipes import DEPLOYED, RECIPES


def command_build(args: argparse.Namespace) -> int:
    started = time.monotonic()
    images = ensure_images(
        args.only or DEPLOYED,
        force=args.force,
        docker_host=args.docker_host,
        log=lambda message: print(f"[images] {message}", flush=True),
    )
    _print_table(images)
    print(f"images ready in {time.monotonic() - started:.1f}s")
    if args.load:
        load_into_local_node(images.values())
    return 0


def load_into_local_node(images) -> None:
    """Import the images into the containerd of the node `tenantctl cluster up` runs."""
    state = running_state()
    if not state or not state.get("containerd_socket"):
        raise RuntimeError("no local node is running: start one with `tenantctl cluster up --detach`")
    containerd = Containerd(state["containerd_socket"])
    for image in images:
        result = containerd.ctr("images", "import", str(image.archive), timeout=None)
        if result.returncode != 0:
            raise RuntimeError(f"importing {image.reference} into the node failed: {result.stderr.strip()}")
        print(f"loaded {image.reference} into node {state.get('node_name')}")


def command_list(args: argparse.Namespace) -> int:
    _print_table(planned(args.only or DEPLOYED))
    return 0


def _print_table(images) -> None:
    width = max(len(image.reference) for image in images.values())
    for image in images.values():
        state = "cached" if image.cached else "not built"
        print(f"{image.reference:<{width}}  {state:<9}  {image.archive}")


def register(subparsers) -> None:
    images = subparsers.add_parser("images", help="build the container images the cluster runs (no registry needed)")
    actions = images.add_subparsers(dest="images_command", required=True)
    build = actions.add_parser("build", help="build every image that is not cached (keyed by content)")
    build.add_argument("--force", action="store_true", help="rebuild even when cached")
    build.add_argument(
        "--docker-host",
        help="use this Docker daemon (e.g. unix:///var/run/docker.sock) instead of starting one of our own",
    )
    build.add_argument(
        "--load", action="store_true", help="then import them into the node of a running `tenantctl cluster up`"
    )
    build.set_defaults(handler=command_build)
    listing = actions.add_parser("list", help="the images, their references and cached archives")
    listing.set_defaults(handler=command_list)
    for action in (build, listing):
        action.add_argument(
            "--only",
            action="append",
            choices=sorted(RECIPES),
            metavar="IMAGE",
            help=f"only this image (repeatable): {', '.join(RECIPES)}",
        )
