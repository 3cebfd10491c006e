"""`tenantctl images build|list`: the command line of tenantctl/images (the logic lives there)."""

from __future__ import annotations

import argparse
import time

from tenantctl.images import DEPLOYED, RECIPES, ensure_images, planned


def command_build(args: argparse.Namespace) -> int:
    started = time.monotonic()
    images = ensure_images(args.only or DEPLOYED, force=args.force, docker_host=args.docker_host,
                           log=lambda message: print(f"[images] {message}", flush=True))
    _print_table(images)
    print(f"images ready in {time.monotonic() - started:.1f}s")
    return 0


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
    build.add_argument("--docker-host", help="use this Docker daemon (e.g. unix:///var/run/docker.sock) "
                                             "instead of starting one of our own")
    build.set_defaults(handler=command_build)
    listing = actions.add_parser("list", help="the images, their references and cached archives")
    listing.set_defaults(handler=command_list)
    for action in (build, listing):
        action.add_argument("--only", action="append", choices=sorted(RECIPES), metavar="IMAGE",
                            help=f"only this image (repeatable): {', '.join(RECIPES)}")
