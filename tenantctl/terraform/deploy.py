"""Deploying a root: `terraform init` then `apply` (or `destroy`), timed, with the changes and the outputs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenantctl.terraform.runner import Terraform


@dataclass(frozen=True)
class Deployment:
    root: Path
    destroyed: bool
    changes: dict[str, int]  # {"add": n, "change": n, "remove": n}
    seconds: float
    outputs: dict[str, Any] = field(default_factory=dict)  # none after a destroy

    def summary(self) -> str:
        return (
            f"{'destroyed' if self.destroyed else 'applied'} {self.root}: {self.changes.get('add', 0)} added, "
            f"{self.changes.get('change', 0)} changed, {self.changes.get('remove', 0)} removed "
            f"in {self.seconds:.1f}s"
        )

    def output_lines(self) -> list[str]:
        """Outputs as `name = value` lines; an object output (a tenant root's `tenant`) as `tenant.field`."""
        return [f"{name} = {value}" for name, value in _flattened(self.outputs)]


def deploy(root: Path, variables: dict[str, Any], destroy: bool = False) -> Deployment:
    started = time.monotonic()
    terraform = Terraform(root, variables=variables)
    terraform.init()
    result = terraform.destroy() if destroy else terraform.apply()
    seconds = time.monotonic() - started
    return Deployment(root, destroy, result.change_summary, seconds, {} if destroy else terraform.output())


def _flattened(outputs: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for name, value in outputs.items():
        if isinstance(value, dict):
            yield from _flattened(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", value
