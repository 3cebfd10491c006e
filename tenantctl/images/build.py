"""`ensure_images`: every image the platform root and the tenant module deploy, from its cached archive or
built (with what it builds on) when its content changed; `planned` says which archives that would be,
without building; `terraform_variables` gives the platform root's variables that deploy them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from tenantctl.images.builder import Builder, mark_content
from tenantctl.images.cache import BuiltImage, archive_path, prune_archives, record_build_times, sha256
from tenantctl.images.context import ImageBuildError
from tenantctl.images.recipes import DEPLOYED, RECIPES

Log = Callable[[str], None]


def content_hash(name: str, hashes: dict[str, str]) -> str:
    recipe = RECIPES[name]
    return sha256(name, *(hashes[need] for need in recipe.needs), *recipe.hash_inputs())


def planned(names: Iterable[str] = DEPLOYED) -> dict[str, BuiltImage]:
    """Every image (with what it needs) and its archive path, without building anything."""
    hashes: dict[str, str] = {}
    images: dict[str, BuiltImage] = {}
    for name in _with_needs(names):
        hashes[name] = content_hash(name, hashes)
        images[name] = BuiltImage(name, RECIPES[name].reference, hashes[name], archive_path(name, hashes[name]))
    return images


def _with_needs(names: Iterable[str]) -> list[str]:
    ordered: list[str] = []

    def visit(name: str) -> None:
        for need in RECIPES[name].needs:
            visit(need)
        if name not in ordered:
            ordered.append(name)

    for name in names:
        if name not in RECIPES:
            raise ImageBuildError(f"unknown image '{name}' (known: {', '.join(RECIPES)})")
        visit(name)
    return ordered


def ensure_images(
    names: Iterable[str] = DEPLOYED, *, force: bool = False, log: Log = print, docker_host: str | None = None
) -> dict[str, BuiltImage]:
    """Build whatever is not cached (or everything with force); returns the deployed images by name."""
    wanted = list(names)
    images = planned(wanted)
    # `force` rebuilds the images asked for, not the bases they build on.
    missing = [name for name, image in images.items() if (force and name in wanted) or not image.cached]
    if missing:
        builder = Builder(log=log, docker_host=docker_host)
        try:
            for name, image in images.items():
                if name not in missing:
                    if any(name in RECIPES[other].needs for other in missing):
                        builder.load(image)  # a base a missing image builds on
                    continue
                started = time.monotonic()
                log(f"building {image.reference} ({RECIPES[name].describe})")
                if force or not builder.has_image(image.reference, image.content_hash):
                    RECIPES[name].build(builder, image.reference)
                    mark_content(builder.client, image.reference, image.content_hash)
                builder.save(image.reference, image.archive)
                builder.timings[name] = time.monotonic() - started
                log(f"built {image.reference} in {builder.timings[name]:.0f}s -> {image.archive}")
                prune_archives(name, image.archive)
            record_build_times(builder.timings)
            builder.prune()
        finally:
            builder.close()
    return {name: images[name] for name in wanted}


def terraform_variables(images: dict[str, BuiltImage] | None = None) -> dict:
    """The platform root's variables that deploy the images built here (the tenant roots take
    `proxy_image` = the platform image)."""
    images = images or planned()
    return {
        "platform_image": images["platform"].reference,
        "cpu_model_server": {"image": images["model-server"].reference},
        "prometheus": {"image": images["prometheus"].reference},
        "redis": {"image": images["redis"].reference},
        "ledger": {"postgres_image": images["postgres"].reference},
        "alertmanager": {"image": images["alertmanager"].reference},
        "grafana": {"enabled": False},
        "kube_state_metrics": {"enabled": False},
    }
